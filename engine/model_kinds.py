"""Model kinds own their sampling and inversion, so no caller branches on what kind a model is.

* `MultiStepDiffusion` ("ddim"): an ε- or v-prediction UNet sampled by DDIM; inverted by naive DDIM
  inversion or backward Euler (exact inversion) step by step (docs/algorithms.md §2).
* `OneStepFlow` ("flow"): a one-step rectified flow, z0 = zT + v(zT) (InstaFlow); inverted from
  z0 − v(z0), refined by the backward-Euler fixed point unless "naive" is asked for.

Adding a kind is adding one class here and naming it in `KINDS`. The numerical modules are imported when a
kind is used, so that listing models (the window's model box) does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

if TYPE_CHECKING:
    import torch

    from engine.denoiser import Denoiser
    from engine.diffusion_inversion import DiffusionInversionConfig, DiffusionInversionResult, Grid
    from engine.progress import Progress

ModelKindName = Literal["ddim", "flow"]
InversionMethod = Literal["naive", "backward-euler"]


@dataclass(frozen=True)
class MultiStepDiffusion:
    name: ClassVar[str] = "ddim"
    title: ClassVar[str] = "DDIM (multi-step)"
    has_grid: ClassVar[bool] = True    # a sampling grid that can be walked part-way (regeneration, the diffusion prior)
    default_inversion: ClassVar[str] = "naive"          # Tree-Ring's and dec-inv's setting
    needs_scheduler: ClassVar[bool] = True

    def invert(self, denoiser: "Denoiser", z0: "torch.Tensor", scheduler_config: dict,
               config: "DiffusionInversionConfig", progress: "Progress", item: str = "") -> "DiffusionInversionResult":
        from engine.diffusion_inversion import invert_ddim

        return invert_ddim(denoiser, z0, scheduler_config, config, progress, item)

    def describe_inversion(self, config: "DiffusionInversionConfig") -> str:
        return config.label()

    def sample(self, denoiser: "Denoiser", z_t: "torch.Tensor", scheduler_config: dict, steps: int,
               grid: "Grid", progress: "Progress") -> "torch.Tensor":
        from engine.diffusion_inversion import ddim_generate, timestep_pairs

        pairs = timestep_pairs(scheduler_config, steps, grid)
        return ddim_generate(denoiser, z_t, pairs, scheduler_config.get("prediction_type", "epsilon"), progress)


@dataclass(frozen=True)
class OneStepFlow:
    name: ClassVar[str] = "flow"
    title: ClassVar[str] = "one-step rectified flow"
    has_grid: ClassVar[bool] = False
    default_inversion: ClassVar[str] = "backward-euler"  # dec-inv's InstaFlow setting
    needs_scheduler: ClassVar[bool] = False

    def invert(self, denoiser: "Denoiser", z0: "torch.Tensor", scheduler_config: dict,
               config: "DiffusionInversionConfig", progress: "Progress", item: str = "") -> "DiffusionInversionResult":
        from engine.diffusion_inversion import invert_flow

        return invert_flow(denoiser, z0, config, progress, item)

    def describe_inversion(self, config: "DiffusionInversionConfig") -> str:
        return f"{config.method} (one-step flow)"         # steps and grid do not apply

    def sample(self, denoiser: "Denoiser", z_t: "torch.Tensor", scheduler_config: dict, steps: int,
               grid: "Grid", progress: "Progress") -> "torch.Tensor":
        from engine.diffusion_inversion import flow_generate

        return flow_generate(denoiser, z_t)          # one Euler step: steps and grid do not apply


KINDS: dict[str, MultiStepDiffusion | OneStepFlow] = {k.name: k for k in (MultiStepDiffusion(), OneStepFlow())}


def model_kind(name: str) -> MultiStepDiffusion | OneStepFlow:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown model kind {name!r} (known: {', '.join(KINDS)})") from None


def require_grid(kind: str, model_id: str, what: str) -> None:
    """ValueError (one line) unless a model of this kind has a sampling grid to walk part-way, which `what`
    needs. Light: the window checks before a run starts, without importing torch."""
    if not model_kind(kind).has_grid:
        raise ValueError(f"{what} needs a multi-step (DDIM) model; {model_id} is {kind!r}, which has no sampling "
                         "grid to walk part-way")
