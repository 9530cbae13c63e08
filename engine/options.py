"""What a user can choose, and the one mapping from those choices to the engine's `AnalysisConfig`.

The CLI's `scan` options, the window's Advanced panel, benchmarks and case files all describe a run as an
`AnalysisOptions` and call `to_config(model)`; so the same choices give the same configuration everywhere.
`None` means "the model's default": every per-model default (diffusion inversion, steps, guidance, the
gradient-free optimiser and step, the bundled key set) lives on the model's spec (`engine.model_registry`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:        # the engine's numerical modules import torch: only when a config is built
    from engine.analysis import AnalysisConfig
    from engine.decoder_inversion import DecoderInversionConfig
    from engine.model_loader import LoadedModel
    from engine.model_registry import ModelSpec


# The default pipeline's decoder inversion: what the CLI runs unless told otherwise, and what the window runs
# beside the encoder (the cheap baseline it is compared with).
DEFAULT_METHOD = "gradient-free"


@dataclass(frozen=True)
class AnalysisOptions:
    methods: tuple[str, ...] = ("encoder", DEFAULT_METHOD)
    iterations: int = 100                # decoder-inversion iterations (gradient-free and gradient-based)
    lr: float | None = None              # None → the model's step for its optimiser, else the paper's
    optimizer: str | None = None         # None → the model's gradient-free optimiser
    schedule: str | None = None          # None → as lr
    precision: str = "auto"              # auto → the engine's fastest for the device (fp16 on CUDA)
    inversion: str | None = None         # None → the model kind's (naive DDIM; backward Euler for flows)
    steps: int | None = None             # None → the model's default
    grid: str | None = None              # None → diffusers' grid
    exact_iterations: int | None = None  # None → 50 per DDIM step (dec-inv's cap for backward Euler)
    prompt: str = ""
    guidance: float = 1.0
    fpr: float = 0.01
    score_target: str = "effective"
    batch_size: int = 8
    device: str = "auto"                 # where the model is loaded (not part of AnalysisConfig)
    dtype: str = "fp32"

    def to_json(self) -> dict:
        d = asdict(self)
        d["methods"] = list(self.methods)
        return d

    @classmethod
    def from_json(cls, data) -> "AnalysisOptions":
        """Lenient: unknown keys are ignored and anything unusable gives the defaults (saved GUI settings of
        older builds)."""
        if not isinstance(data, dict):
            return cls()
        names = {f.name for f in fields(cls)}
        clean = {k: v for k, v in data.items() if k in names}
        if "methods" in clean:
            clean["methods"] = tuple(str(m) for m in clean["methods"] or ())
        if "schedule" not in data and clean.get("optimizer") == "adam" and clean.get("lr") is None:
            # Saved before models carried their own optimiser (no "schedule" key then): "adam" was the
            # fixed default, not a choice, so the model's default applies.
            clean["optimizer"] = None
        try:
            return replace(cls(), **clean)
        except (TypeError, ValueError):
            return cls()

    def to_config(self, model: "LoadedModel") -> "AnalysisConfig":
        """The engine configuration for a loaded model; ValueError (one sentence) for an impossible choice."""
        from engine.decoder_inversion import DecoderInversionConfig
        from engine.denoiser import Conditioning

        base = default_config(model)
        diffusion = replace(base.diffusion, **{k: v for k, v in dict(
            method=self.inversion, steps=self.steps, grid=self.grid,
            exact_iterations=self.exact_iterations).items() if v is not None})
        return replace(
            base, methods=tuple(self.methods), fpr=self.fpr, score_target=self.score_target,
            batch_size=self.batch_size, diffusion=diffusion, conditioning=Conditioning(self.prompt, self.guidance),
            gradient_free=gradient_free_config(model, iterations=self.iterations, optimizer=self.optimizer,
                                               lr=self.lr, schedule=self.schedule, precision=self.precision),
            gradient_based=DecoderInversionConfig("gradient-based", iterations=self.iterations))


def default_config(model: "LoadedModel") -> "AnalysisConfig":
    """The model's defaults: every method; its kind's diffusion inversion with its spec's steps; the
    gradient-free inversion with its spec's optimiser in the precision fastest on its device."""
    from engine.analysis import AnalysisConfig
    from engine.decoder_inversion import METHODS
    from engine.diffusion_inversion import DiffusionInversionConfig

    spec = model.spec
    return AnalysisConfig(methods=METHODS,
                          diffusion=DiffusionInversionConfig(method=spec.default_inversion, steps=spec.default_steps),
                          gradient_free=gradient_free_config(model))


def gradient_free_config(model: "LoadedModel", *, iterations: int = 100, optimizer: str | None = None,
                         lr: float | None = None, schedule: str | None = None,
                         precision: str = "auto") -> "DecoderInversionConfig":
    """The gradient-free settings for `model`, with what the user chose (None = default) laid over them.

    The model's own optimiser, step and schedule (its `ModelSpec`) apply unless another optimiser is
    chosen; another optimiser gets the paper's step and schedule, since a step tuned for one optimiser
    means nothing to another. "auto" precision is the fastest on the model's device.
    """
    from engine.decoder_inversion import DecoderInversionConfig
    from engine.device import fastest_precision

    spec = model.spec
    own = optimizer is None or optimizer == spec.gradient_free_optimizer
    return DecoderInversionConfig(
        "gradient-free", iterations=iterations,
        optimizer=spec.gradient_free_optimizer if optimizer is None else optimizer,
        lr=lr if lr is not None else (spec.gradient_free_lr if own else None),
        schedule=schedule or (spec.gradient_free_schedule if own else "scheduled"),
        precision=fastest_precision(model.device) if precision == "auto" else precision)


def model_defaults(spec: "ModelSpec") -> dict:
    """The per-model values an options editor shows for "model default": inversion, steps and guidance."""
    return {"inversion": spec.default_inversion, "steps": spec.default_steps, "guidance": spec.default_guidance}
