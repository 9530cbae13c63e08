"""The VAE as the two maps the papers write E and D, on *scaled* latents.

E(x) = posterior mode (or a seeded sample) × scaling_factor; D(z) decodes z / scaling_factor. The
posterior mode is our default everywhere (the same evidence must always give the same verdict); the
reference code draws a fresh posterior sample at each call, kept here as a seeded option.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from diffusers import AutoencoderKL

Posterior = Literal["mode", "sample"]


@dataclass(frozen=True)
class LatentCodec:
    vae: AutoencoderKL
    scaling_factor: float
    shift_factor: float = 0.0

    @classmethod
    def from_vae(cls, vae: AutoencoderKL) -> "LatentCodec":
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        return cls(vae=vae, scaling_factor=float(vae.config.scaling_factor), shift_factor=float(shift))

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    def encode(self, x: torch.Tensor, posterior: Posterior = "mode",
               generator: torch.Generator | None = None) -> torch.Tensor:
        dist = self.vae.encode(x.to(self.dtype)).latent_dist
        z = dist.mode() if posterior == "mode" else dist.sample(generator=generator)
        return (z - self.shift_factor) * self.scaling_factor

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z.to(self.dtype) / self.scaling_factor + self.shift_factor).sample
