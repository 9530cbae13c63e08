"""Load a latent diffusion model from a local diffusers folder: offline, safetensors only.

Pickle-based weights (.bin, .ckpt, .pt, .pth, .pkl) can execute code when loaded, so they are refused
with a message saying so, never opened.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel, UNet2DModel
from diffusers.utils import logging as diffusers_logging

from engine.denoiser import Conditioning, Denoiser
from engine.device import pick_device
from engine.diffusion_inversion import DiffusionInversionConfig, DiffusionInversionResult, Grid
from engine.latent_codec import LatentCodec
from engine.model_kinds import model_kind
from engine.progress import NULL_PROGRESS, Progress
from engine.model_registry import ModelSpec, get_spec, locate
from engine.provenance import folder_weight_hashes, weight_files_in

MAX_CONFIG_BYTES = 4 << 20
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl", ".pickle")
UNET_CLASSES = {"UNet2DModel": UNet2DModel, "UNet2DConditionModel": UNet2DConditionModel}


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class LoadedModel:
    spec: ModelSpec
    path: Path
    codec: LatentCodec
    unet: torch.nn.Module
    scheduler_config: dict
    text_encoder: torch.nn.Module | None
    tokenizer: object | None
    device: torch.device
    dtype: torch.dtype
    weight_sha256: dict[str, str] = field(default_factory=dict)   # hashed when loaded: what the analysis ran with

    @property
    def kind(self) -> str:
        return self.spec.kind

    def invert(self, denoiser: Denoiser, z0: torch.Tensor, config: DiffusionInversionConfig,
               progress: Progress = NULL_PROGRESS, item: str = "") -> DiffusionInversionResult:
        """z0 → zT by this model kind's inversion (`engine.model_kinds`)."""
        return model_kind(self.kind).invert(denoiser, z0, self.scheduler_config, config, progress, item)

    def sample(self, denoiser: Denoiser, z_t: torch.Tensor, steps: int, grid: Grid = "diffusers",
               progress: Progress = NULL_PROGRESS) -> torch.Tensor:
        """zT → z0 by this model kind's sampler."""
        return model_kind(self.kind).sample(denoiser, z_t, self.scheduler_config, steps, grid, progress)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.codec.vae.config.block_out_channels) - 1)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        size = self.unet.config.sample_size
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        return (int(self.unet.config.in_channels), int(h), int(w))

    @property
    def image_size(self) -> int:
        return self.latent_shape[1] * self.vae_scale_factor

    @property
    def is_text_conditioned(self) -> bool:
        return isinstance(self.unet, UNet2DConditionModel)

    def denoiser(self, conditioning: Conditioning = Conditioning()) -> Denoiser:
        return Denoiser(self.unet, conditioning, self.text_encoder, self.tokenizer)

    def weight_files(self) -> list[Path]:
        return weight_files_in(self.path)


def _check_safetensors(folder: Path, component: str, required: bool = True) -> None:
    sub = folder / component
    if not sub.is_dir():
        if required:
            raise ModelLoadError(f"{folder} has no {component}/ subfolder: not a complete diffusers model folder")
        return
    if not (sub / "config.json").is_file():
        raise ModelLoadError(f"{sub} has no config.json")
    if any(sub.glob("*.safetensors")):
        return
    pickled = sorted(p.name for p in sub.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise ModelLoadError(
            f"refused to load {sub}: only pickle-based weights ({', '.join(pickled)}) are there, and loading "
            f"pickle can run arbitrary code. Convert them to .safetensors on a trusted machine first.")
    raise ModelLoadError(f"{sub} has no .safetensors weights")


def _read_json(path: Path) -> dict:
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ModelLoadError(f"cannot read {path}: larger than {MAX_CONFIG_BYTES >> 20} MiB, not a config file")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelLoadError(f"cannot read {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} is not a config (a JSON object was expected)")
    return data


# Older checkpoints name the VAE's attention tensors as diffusers did before 0.14; it renames them on load.
_LEGACY_ATTENTION_NAMES = {".query.": ".to_q.", ".key.": ".to_k.", ".value.": ".to_v.", ".proj_attn.": ".to_out.0."}


def _check_weights_complete(module: torch.nn.Module, folder: Path) -> None:
    """Every tensor of the network must come from the weight files, with its shape: diffusers initialises a
    missing tensor at random (and only logs it), which would turn every score into noise or NaN."""
    from safetensors import safe_open

    stored: dict[str, tuple[int, ...]] = {}
    try:
        for f in sorted(folder.glob("*.safetensors")):
            with safe_open(str(f), framework="pt") as st:
                for name in st.keys():
                    shape = tuple(st.get_slice(name).get_shape())
                    stored[name] = shape
                    for old, new in _LEGACY_ATTENTION_NAMES.items():
                        if old in name:
                            stored[name.replace(old, new)] = shape
    except Exception as exc:  # safetensors raises its own error types for damaged headers
        raise ModelLoadError(f"cannot read the weights in {folder}: {str(exc).splitlines()[0]}") from None
    missing, wrong = [], []
    for name, tensor in module.state_dict().items():
        shape = stored.get(name)
        if shape is None:
            missing.append(name)
        elif shape != tuple(tensor.shape) and not (len(shape) == 2 and tuple(tensor.shape) == (*shape, 1, 1)):
            wrong.append(f"{name} {shape} ≠ {tuple(tensor.shape)}")   # (legacy linear attention → 1×1 conv is fine)
    if missing or wrong:
        detail = (f"{len(missing)} tensor(s) missing (e.g. {missing[0]})" if missing else
                  f"{len(wrong)} tensor(s) of the wrong shape (e.g. {wrong[0]})")
        raise ModelLoadError(f"the weights in {folder} do not match its config.json: {detail}; refusing to run "
                             "with randomly initialised parts")


def _check_scheduler(path: Path, config: dict) -> None:
    """The scheduler config must describe a noise schedule this tool can invert."""
    from diffusers import DDIMScheduler

    prediction = config.get("prediction_type", "epsilon")
    if prediction not in ("epsilon", "v_prediction", "sample"):
        raise ModelLoadError(f"{path}: prediction type {prediction!r} is not supported")
    try:
        DDIMScheduler.from_config(config)
    except Exception as exc:  # diffusers raises NotImplementedError / ValueError / TypeError for bad values
        raise ModelLoadError(f"{path}: not a usable noise schedule ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


_cache: dict[tuple, LoadedModel] = {}
_cache_lock = threading.Lock()


def load_model(model: str | ModelSpec, dtype: str = "fp32", device: str = "auto") -> LoadedModel:
    """Load (and cache) a model. dtype "fp16" or "fp32"; device "auto" → cuda, mps, cpu."""
    spec = model if isinstance(model, ModelSpec) else get_spec(model)
    if Path(spec.id).is_file():
        if Path(spec.id).suffix in PICKLE_SUFFIXES:
            raise ModelLoadError(f"refused to load {spec.id}: pickle-based checkpoints can run arbitrary code; "
                                 f"use a diffusers folder with .safetensors weights")
        raise ModelLoadError(f"{spec.id} is a file: give a diffusers folder (model_index.json, vae/, unet/, scheduler/)")
    where = locate(spec)
    if not where.found:
        raise ModelLoadError(where.explain_missing())
    dev = pick_device(device)
    torch_dtype = {"fp16": torch.float16, "fp32": torch.float32}[dtype]
    if dev.type == "cpu" and torch_dtype == torch.float16:
        torch_dtype = torch.float32     # CPU half precision is slow and partly unsupported; fp16 is a GPU option
    key = (str(where.path.resolve()), spec.kind, str(dev), str(torch_dtype))
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        loaded = _load(spec, where.path, dev, torch_dtype)
        _cache[key] = loaded
        return loaded


def clear_model_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _load(spec: ModelSpec, path: Path, dev: torch.device, torch_dtype: torch.dtype) -> LoadedModel:
    for component in ("vae", "unet"):
        _check_safetensors(path, component)
    diffusers_logging.set_verbosity_error()   # its "install accelerate" advice is noise for an investigator
    common = dict(local_files_only=True, use_safetensors=True, torch_dtype=torch_dtype)
    unet_config = _read_json(path / "unet" / "config.json")
    unet_class = UNET_CLASSES.get(unet_config.get("_class_name", ""))
    if unet_class is None:
        raise ModelLoadError(f"{path / 'unet'}: unsupported UNet class {unet_config.get('_class_name')!r} "
                             f"(supported: {', '.join(UNET_CLASSES)})")
    sched_path = path / "scheduler" / "scheduler_config.json"
    if model_kind(spec.kind).needs_scheduler and not sched_path.is_file():
        raise ModelLoadError(f"{path} has no scheduler/scheduler_config.json (needed for DDIM inversion)")
    scheduler_config = _read_json(sched_path) if sched_path.is_file() else {}
    if model_kind(spec.kind).needs_scheduler:
        _check_scheduler(sched_path, scheduler_config)
    # Hash the weights before loading and check they did not change meanwhile, so the recorded hashes are
    # those of the bytes the analysis ran with (a case file must name them, not what the folder holds later).
    try:
        before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in weight_files_in(path)}
        hashes = folder_weight_hashes(path)
    except OSError as exc:
        raise ModelLoadError(f"cannot read the weights in {path}: {exc}") from exc
    try:
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae", **common)
        unet = unet_class.from_pretrained(path, subfolder="unet", **common)
    except Exception as exc:  # diffusers raises many types for shape / config mismatches
        raise ModelLoadError(f"cannot load the model in {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    _check_weights_complete(vae, path / "vae")
    _check_weights_complete(unet, path / "unet")
    text_encoder = tokenizer = None
    if unet_class is UNet2DConditionModel:
        _check_safetensors(path, "text_encoder")
        try:
            from transformers import CLIPTextModel, CLIPTokenizer

            text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder", **common).to(dev)
            tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer", local_files_only=True)
        except Exception as exc:
            raise ModelLoadError(f"cannot load the text encoder in {path}: {exc}".splitlines()[0]) from exc
    vae.to(dev).eval().requires_grad_(False)
    unet.to(dev).eval().requires_grad_(False)
    if text_encoder is not None:
        text_encoder.eval().requires_grad_(False)
    if vae.config.latent_channels != unet.config.in_channels:
        raise ModelLoadError(f"{path}: the VAE has {vae.config.latent_channels} latent channels but the UNet "
                             f"expects {unet.config.in_channels}")
    after = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in weight_files_in(path)}
    if after != before:
        raise ModelLoadError(f"the weight files in {path} changed while they were being loaded: load again")
    return LoadedModel(spec=spec, path=path, codec=LatentCodec.from_vae(vae), unet=unet,
                       scheduler_config=scheduler_config, text_encoder=text_encoder, tokenizer=tokenizer,
                       device=dev, dtype=torch_dtype, weight_sha256=hashes)


def weight_hashes(model: LoadedModel) -> dict[str, str]:
    """The hashes recorded when the model was loaded."""
    return dict(model.weight_sha256)
