"""Watermarked reference sets: seeded initial noise, the key injected, the model's sampler, 8-bit PNGs.

The hand-off to pixels follows the references (decode → (x/2 + 0.5).clamp(0, 1) → ×255 → round →
uint8), because the 8-bit rounding is part of what a suspect image has been through.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.denoiser import Conditioning
from engine.diffusion_inversion import ddim_generate, flow_generate, timestep_pairs, Grid
from engine.model_loader import LoadedModel
from engine.progress import NULL_PROGRESS, Phase, Progress, ProgressEvent
from engine.treering import TreeRingKey, inject


@dataclass(frozen=True)
class GenerationConfig:
    steps: int = 50
    grid: Grid = "diffusers"
    conditioning: Conditioning = Conditioning()


def initial_noise(model: LoadedModel, seeds: list[int]) -> torch.Tensor:
    """One seeded Gaussian latent per image (each image of each key gets its own seed's noise)."""
    return torch.stack([torch.randn(model.latent_shape, generator=torch.Generator().manual_seed(int(s)))
                        for s in seeds]).to(model.device)


@torch.no_grad()
def sample_latents(model: LoadedModel, z_t: torch.Tensor, config: GenerationConfig = GenerationConfig(),
                   progress: Progress = NULL_PROGRESS) -> torch.Tensor:
    denoiser = model.denoiser(config.conditioning)
    if model.kind == "flow":
        return flow_generate(denoiser, z_t)
    pairs = timestep_pairs(model.scheduler_config, config.steps, config.grid)
    return ddim_generate(denoiser, z_t, pairs, model.scheduler_config.get("prediction_type", "epsilon"), progress)


@torch.no_grad()
def decode_to_uint8(model: LoadedModel, z0: torch.Tensor) -> np.ndarray:
    """(B, H, W, 3) uint8, the references' rounding."""
    x = model.codec.decode(z0.to(model.device)).float()
    x = (x / 2 + 0.5).clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


@dataclass(frozen=True)
class GeneratedImage:
    file: str
    key_id: str | None
    seed: int


def generate_reference_set(model: LoadedModel, key: TreeRingKey | None, count: int, out_dir: str | Path,
                           seed: int = 0, config: GenerationConfig = GenerationConfig(), batch_size: int = 8,
                           prefix: str | None = None, progress: Progress = NULL_PROGRESS) -> list[GeneratedImage]:
    """Write `count` PNGs to out_dir (atomically, one by one), watermarked with `key` or not."""
    from engine.atomic_write import write_bytes_atomic
    import io

    if key is not None and tuple(key.latent_shape) != model.latent_shape:
        raise ValueError(f"key {key.id!r} is for latents {key.latent_shape}, the model makes {model.latent_shape}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prefix = prefix or (key.id if key is not None else "clean")
    made: list[GeneratedImage] = []
    for start in range(0, count, batch_size):
        progress.check_cancelled()
        seeds = list(range(seed + start, seed + min(start + batch_size, count)))
        z_t = initial_noise(model, seeds)
        if key is not None:
            z_t = inject(z_t, key)
        pixels = decode_to_uint8(model, sample_latents(model, z_t, config))
        for s, img in zip(seeds, pixels):
            name = f"{prefix}_{s:05d}.png"
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            write_bytes_atomic(out / name, buf.getvalue())
            made.append(GeneratedImage(name, key.id if key is not None else None, s))
        progress.report(ProgressEvent("generating", len(made), count, phase=Phase.GENERATING))
    return made
