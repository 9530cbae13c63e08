"""Regeneration by the model itself (WAVES' Regen-Diffusion, with the suspect's own model): encode, add
noise up to a timestep, denoise back with DDIM. The strength s ∈ [0, 1] is the share of the sampling grid
noised (s = 0.2 of 50 steps: noise to the 10th timestep of the grid, then 10 DDIM steps down). WAVES uses a
posterior sample, CFG 7.5 and an empty prompt with SD 1.4; here the posterior mode, the model's unconditional
denoiser and seeded noise, so that the attack is deterministic. Multi-step (DDIM) models only."""

from __future__ import annotations

import numpy as np
import torch

from engine.denoiser import Conditioning
from engine.diffusion_inversion import ddim_generate, timestep_pairs
from engine.generation import decode_to_uint8
from engine.limits import require_number
from engine.model_kinds import require_grid
from engine.model_loader import LoadedModel
from engine.pixel_levels import from_uint8


@torch.no_grad()
def regenerate(model: LoadedModel, pixels: np.ndarray, strength: float, seed: int = 0,
               steps: int = 50) -> np.ndarray:
    """(B, T, T, 3) uint8 at the model's size → regenerated (B, T, T, 3) uint8."""
    require_number(strength, "the regeneration strength", 0.0, 1.0, low_open=True)
    require_grid(model.kind, model.spec.id, "regeneration")
    pixels = np.asarray(pixels)
    x = torch.from_numpy(from_uint8(pixels)).to(model.device)
    z0 = model.codec.encode(x, "mode", None).float()
    pairs = timestep_pairs(model.scheduler_config, steps)
    k = max(1, int(round(strength * steps)))
    alpha = pairs[k - 1].alpha_high
    noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(seed)).to(z0.device)
    z = alpha**0.5 * z0 + (1 - alpha) ** 0.5 * noise
    z = ddim_generate(model.denoiser(Conditioning()), z, pairs[:k],
                      model.scheduler_config.get("prediction_type", "epsilon"))
    return decode_to_uint8(model, z)
