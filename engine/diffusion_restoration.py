"""The diffusion prior for restore-then-invert (docs/algorithms.md §6.2): the model's own denoiser, not only its
autoencoder, pulls the degraded suspect back towards the images the model makes.

After the latent inverse solvers P2L (Chung et al., ICML 2024) and ReSample (Song et al., ICLR 2024): encode the
suspect, z0 = E(y); walk it deterministically up the model's DDIM grid by k naive inversion steps (the same
inversion a scan uses, so the noise the watermark lives in is carried, not replaced by fresh noise as SDEdit
would); then walk k DDIM steps down, and at each step replace the denoiser's Tweedie estimate ẑ0 by a
data-consistent one: x_p = D(ẑ0), x̂ = argmin ‖y − A x‖² + λ‖x − x_p‖² (`restoration.data_consistency`, P2L's
pixel-space step), z̃0 = E(x̂). The step down keeps the denoiser's own ε (ReSample's hard data consistency):
z_{t'} = √ᾱ_{t'} z̃0 + √(1 − ᾱ_{t'}) ε. The last x̂ is the restored image.

Not done: P2L's prompt-embedding tuning (the demo models are unconditional; a text model runs with the empty
prompt) and STSL's second-order Tweedie surrogate. Multi-step (DDIM) models only: a one-step flow model has no
grid to walk part-way.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.denoiser import Conditioning
from engine.diffusion_inversion import ddim_step_up_naive, predicted_noise, timestep_pairs
from engine.model_kinds import require_grid
from engine.model_loader import LoadedModel


def require_ddim(model: LoadedModel) -> None:
    require_grid(model.kind, model.spec.id, "the diffusion prior")


@torch.no_grad()
def diffusion_prior_restore(model: LoadedModel, y: torch.Tensor, data_step, steps_down: int,
                            grid_steps: int) -> tuple[torch.Tensor, np.ndarray]:
    """(B, 3, T, T) degraded pixels in [−1, 1] → (restored pixels, prior gap (B, steps_down) in 8-bit levels).
    `data_step(prior_pixels) → data-consistent pixels` is the degradation's closed-form step."""
    require_ddim(model)
    if not 1 <= steps_down <= grid_steps:
        raise ValueError(f"the diffusion prior walks 1 to {grid_steps} steps of its grid, not {steps_down}")
    codec, device = model.codec, model.device
    denoiser = model.denoiser(Conditioning())
    prediction = model.scheduler_config.get("prediction_type", "epsilon")
    pairs = timestep_pairs(model.scheduler_config, grid_steps)[:steps_down]
    z = codec.encode(y.to(device), "mode", None).float()
    for pair in pairs:
        z = ddim_step_up_naive(denoiser, z, pair, prediction)
    x, gaps = y, []
    for pair in reversed(pairs):
        eps = predicted_noise(denoiser, z, pair, prediction)
        z0_hat = (z - (1 - pair.alpha_high) ** 0.5 * eps) / pair.alpha_high ** 0.5
        prior = codec.decode(z0_hat).float().clamp(-1, 1).cpu()
        x = data_step(prior).clamp(-1, 1)
        gaps.append((127.5 * (x - prior)).pow(2).flatten(1).mean(1).sqrt().numpy())
        z0_consistent = codec.encode(x.to(device), "mode", None).float()
        z = pair.alpha_low ** 0.5 * z0_consistent + (1 - pair.alpha_low) ** 0.5 * eps
    return x, np.stack(gaps, axis=1).astype(np.float64)
