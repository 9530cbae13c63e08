"""The VAE as the two maps the papers write E and D, on *scaled* latents.

E(x) = posterior mode (or a seeded sample) × scaling_factor; D(z) decodes z / scaling_factor. The
posterior mode is our default everywhere (the same evidence must always give the same verdict); the
reference code draws a fresh posterior sample at each call, kept here as a seeded option.
"""

from __future__ import annotations

import copy
import threading
import weakref
from dataclasses import dataclass, replace
from typing import Literal

import torch
from diffusers import AutoencoderKL

Posterior = Literal["mode", "sample"]

# Half-precision copies of loaded VAEs, made once per (VAE, dtype). Converting the shared model in place for
# each call copied every weight twice per call and changed the model under any other thread using it.
_precision_copies: "weakref.WeakKeyDictionary[AutoencoderKL, dict[torch.dtype, AutoencoderKL]]" = weakref.WeakKeyDictionary()
_copies_lock = threading.Lock()


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

    def in_precision(self, dtype: torch.dtype) -> "LatentCodec":
        """This codec with its networks in `dtype`: itself when they already are, else a converted copy kept
        for later calls (the loaded model is never modified)."""
        if dtype == self.dtype:
            return self
        with _copies_lock:
            copies = _precision_copies.setdefault(self.vae, {})
            if dtype not in copies:
                copies[dtype] = copy.deepcopy(self.vae).to(dtype)
            return replace(self, vae=copies[dtype])

    def encode(self, x: torch.Tensor, posterior: Posterior = "mode",
               generator: torch.Generator | None = None) -> torch.Tensor:
        dist = self.vae.encode(x.to(self.dtype)).latent_dist
        z = dist.mode() if posterior == "mode" else dist.sample(generator=generator)
        return (z - self.shift_factor) * self.scaling_factor

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z.to(self.dtype) / self.scaling_factor + self.shift_factor).sample
