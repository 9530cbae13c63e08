"""Which latent diffusion models the tool knows, and where their weights are on this machine.

Never downloads: a model is a local diffusers folder, found by (in order) an explicit path, the
environment variable named in its spec, a folder the user registered, or the Hugging Face cache
(`local_files_only`). A missing model says where it looked and how to provide it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from engine.model_kinds import ModelKindName, model_kind
from engine.resources import bundled_keys, bundled_model_folder
from engine.strict_json import read_json_object

USER_MODELS_FILE = Path(os.environ.get("TREERING_FORENSICS_CONFIG", Path.home() / ".config" / "treering-forensics")) / "models.json"


@dataclass(frozen=True)
class ModelSpec:
    id: str
    title: str
    kind: ModelKindName                 # "ddim" (multi-step ε/v model) or "flow" (one-step rectified flow)
    hf_repo: str | None = None          # looked up in the HF cache, offline
    bundled: str | None = None          # folder name under resources/models
    env_var: str | None = None          # an explicit folder, e.g. TREERING_SD21_PATH
    default_steps: int = 50
    default_guidance: float = 1.0
    notes: str = ""
    # Gradient-free decoder inversion defaults. The papers' Adam (lr 0.01, warm-up + cosine) unless a
    # measurement on this model says otherwise: step sizes do not transfer between latent spaces
    # (docs/algorithms.md §1.6), so a model may carry its own, with the benchmark that chose it in `notes`.
    gradient_free_optimizer: str = "adam"
    gradient_free_lr: float | None = None          # None → the paper's for the optimiser
    gradient_free_schedule: str = "scheduled"
    default_keys: str | None = None     # a key set bundled for this model (file name under resources/keys)
    # The re-alignment search's key where its winner leaves part of the latent uncovered (a rotation's corners, a
    # crop's margin): the pattern fit over the latent the candidate covers (`engine.realignment.COVERED_FIT`)
    # instead of the smallest p-value, only where measured better on this model (benchmarks/results/search_rules/,
    # rotation_key_rule/): the fill that fit leaves out bends one model's rings and not another's.
    search_fits_covered_latent: bool = False

    def __post_init__(self) -> None:
        model_kind(self.kind)           # an unknown kind is refused here, not at the first inversion

    @property
    def default_inversion(self) -> str:
        return model_kind(self.kind).default_inversion

    @property
    def default_keys_path(self) -> Path | None:
        """The bundled key set made for this model, if any."""
        return bundled_keys(self.default_keys) if self.default_keys else None


BUILTIN_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("demo", "Demo LDM (bundled, DDIM, 64×64)", "ddim", bundled="demo",
              notes="trained by packaging/train_demo_model.py on scikit-image photographs; gradient-free "
                    "default = forward step 0.05 fixed (benchmarks/results/table2/table2_demo*.md: 243/300 against "
                    "Adam's 179/300 on this model)",
              default_keys="demo.json",
              gradient_free_optimizer="forward-step", gradient_free_lr=0.05, gradient_free_schedule="fixed",
              search_fits_covered_latent=True),
    ModelSpec("demo-flow", "Demo one-step flow (bundled, 64×64)", "flow", bundled="demo-flow",
              notes="one-step rectified flow, InstaFlow-like; same VAE as demo and the same gradient-free "
                    "default (benchmarks/results/table2/table2_demo-flow*.md: 243/300 against Adam's 217/300)",
              default_keys="demo.json",
              gradient_free_optimizer="forward-step", gradient_free_lr=0.05, gradient_free_schedule="fixed"),
    ModelSpec("sd21", "Stable Diffusion 2.1-base (512², DDIM)", "ddim",
              hf_repo="stabilityai/stable-diffusion-2-1-base", env_var="TREERING_SD21_PATH"),
    ModelSpec("instaflow", "InstaFlow 0.9B (one-step flow from SD 1.5)", "flow",
              hf_repo="XCLiu/instaflow_0_9B_from_sd_1_5", env_var="TREERING_INSTAFLOW_PATH"),
)


@dataclass(frozen=True)
class ModelLocation:
    spec: ModelSpec
    path: Path | None
    searched: tuple[str, ...]

    @property
    def found(self) -> bool:
        return self.path is not None

    def explain_missing(self) -> str:
        how = (f"On a machine with internet access run `huggingface-cli download {self.spec.hf_repo}` (or "
               f"`diffusers` from_pretrained) and copy the folder or the Hugging Face cache here; "
               if self.spec.hf_repo else "")
        env = f"set {self.spec.env_var}=/path/to/folder, " if self.spec.env_var else ""
        return (f"model {self.spec.id!r} was not found (looked in: {'; '.join(self.searched)}). {how}"
                f"{env}or give the folder itself (CLI: --model /path/to/diffusers-folder; window: "
                f"Add model folder…).")


def _user_models() -> dict[str, str]:
    try:
        data = json.loads(USER_MODELS_FILE.read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def register_user_model(model_id: str, folder: str | Path) -> None:
    """Remember a diffusers folder under an id (the GUI's "Add model folder…")."""
    from engine.atomic_write import write_json_atomic

    if model_id in {s.id for s in BUILTIN_MODELS}:
        raise ValueError(f"{model_id!r} names a built-in model: choose another id for {folder}")
    models = _user_models()
    models[model_id] = str(Path(folder).resolve())
    USER_MODELS_FILE.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(USER_MODELS_FILE, models, indent=2)


def _hf_cache_snapshot(repo: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo, local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError) or no usable cache: report as not found
        return None


def _class_name(path: Path) -> str:
    """The `_class_name` a diffusers config declares ("" when absent or unreadable)."""
    data = read_json_object(path, 4 << 20) or {}
    name = data.get("_class_name")
    return name if isinstance(name, str) else ""


def _kind_of_folder(folder: Path) -> ModelKindName:
    """A folder given by path: a one-step flow when its pipeline class is a rectified-flow pipeline or its
    scheduler class a flow-matching scheduler — read from the declared classes, never from other text (a
    prompt or a comment naming them must not switch the inversion)."""
    pipeline = _class_name(folder / "model_index.json")
    scheduler = _class_name(folder / "scheduler" / "scheduler_config.json")
    if "RectifiedFlow" in pipeline or scheduler.startswith("FlowMatch"):
        return "flow"
    return "ddim"


def all_model_specs() -> list[ModelSpec]:
    specs = list(BUILTIN_MODELS)
    for model_id, folder in _user_models().items():
        if model_id not in {s.id for s in specs}:
            specs.append(ModelSpec(model_id, f"{model_id} (user folder)", _kind_of_folder(Path(folder)),
                                   notes=folder))
    return specs


def get_spec(model: str) -> ModelSpec:
    for spec in all_model_specs():
        if spec.id == model:
            return spec
    path = Path(model)
    if path.exists():
        return ModelSpec(str(path), f"diffusers folder {path}", _kind_of_folder(path), notes=str(path))
    known = ", ".join(s.id for s in all_model_specs())
    raise ValueError(f"unknown model {model!r}: use one of {known} or a path to a diffusers folder")


def locate(model: str | ModelSpec) -> ModelLocation:
    spec = model if isinstance(model, ModelSpec) else get_spec(model)
    searched: list[str] = []
    candidates: list[Path] = []
    # A built-in id always means that model: neither a folder of the same name in the working directory nor a
    # user entry under that id (a hand-edited models.json) may stand in for it.
    builtin = spec in BUILTIN_MODELS
    if not builtin and Path(spec.id).exists():
        candidates.append(Path(spec.id))
    user = None if builtin else _user_models().get(spec.id)
    if user:
        candidates.append(Path(user))
    if spec.env_var:
        searched.append(f"${spec.env_var}")
        if os.environ.get(spec.env_var):
            candidates.append(Path(os.environ[spec.env_var]))
    if spec.bundled:
        candidates.append(bundled_model_folder(spec.bundled))
    for c in candidates:
        searched.append(str(c))
        if (c / "model_index.json").is_file() or (c / "vae").is_dir():
            return ModelLocation(spec, c, tuple(searched))
    if spec.hf_repo:
        searched.append(f"Hugging Face cache ({spec.hf_repo}, offline)")
        snap = _hf_cache_snapshot(spec.hf_repo)
        if snap is not None:
            return ModelLocation(spec, snap, tuple(searched))
    return ModelLocation(spec, None, tuple(searched))
