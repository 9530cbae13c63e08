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
from engine.limits import require_choice, require_int
from engine.diffusion_inversion import Grid
from engine.model_loader import LoadedModel
from engine.progress import NULL_PROGRESS, Phase, Progress, ProgressEvent
from engine.treering import KeySet, TreeRingKey
from engine.watermarks import scheme_named
from engine.watermarks.base import SchemeKeySet


@dataclass(frozen=True)
class GenerationConfig:
    steps: int = 50
    grid: Grid = "diffusers"
    conditioning: Conditioning = Conditioning()

    def __post_init__(self) -> None:
        require_int(self.steps, "sampling steps (--steps)", 1, 1000)
        require_choice(self.grid, "the timestep grid", ("diffusers", "reference"))


MAX_GENERATED = 1_000_000


def initial_noise(model: LoadedModel, seeds: list[int]) -> torch.Tensor:
    """One seeded Gaussian latent per image (each image of each key gets its own seed's noise)."""
    return torch.stack([torch.randn(model.latent_shape, generator=torch.Generator().manual_seed(int(s)))
                        for s in seeds]).to(model.device)


@torch.no_grad()
def sample_latents(model: LoadedModel, z_t: torch.Tensor, config: GenerationConfig = GenerationConfig(),
                   progress: Progress = NULL_PROGRESS) -> torch.Tensor:
    return model.sample(model.denoiser(config.conditioning), z_t, config.steps, config.grid, progress)


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
                           prefix: str | None = None, progress: Progress = NULL_PROGRESS,
                           force: bool = False) -> list[GeneratedImage]:
    """Write `count` PNGs to out_dir (atomically, one by one), watermarked with `key` or not. Every target
    name is checked before anything is written (`engine.output_paths`): an existing file is replaced only
    with `force`, and only if this tool generated it (listed in the folder's manifest)."""
    from engine.atomic_write import write_bytes_atomic
    from engine.output_paths import check_output
    from engine.provenance import own_manifest, update_manifest
    import io

    require_int(count, "the image count (--count)", 1, MAX_GENERATED)
    require_int(seed, "the seed (--seed)", 0, 2**63 - 1 - MAX_GENERATED)
    require_int(batch_size, "the batch size", 1, 4096)
    scheme = scheme_named(key.scheme) if key is not None else None
    if key is not None:
        scheme.check_fits(KeySet((key,)) if key.scheme == "tree-ring" else SchemeKeySet((key,), key.scheme),
                          model.latent_shape, model.spec.id)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prefix = prefix or (key.id if key is not None else "clean")
    for s in range(seed, seed + count):
        check_output(out / f"{prefix}_{s:05d}.png", force=force, what="generated image")
    own_manifest(out)              # refuses a manifest.json that is not ours before any image is written
    made: list[GeneratedImage] = []
    for start in range(0, count, batch_size):
        progress.check_cancelled()
        seeds = list(range(seed + start, seed + min(start + batch_size, count)))
        z_t = initial_noise(model, seeds)
        if key is not None:
            z_t = scheme.inject(z_t, key)
        pixels = decode_to_uint8(model, sample_latents(model, z_t, config))
        for s, img in zip(seeds, pixels):
            name = f"{prefix}_{s:05d}.png"
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            write_bytes_atomic(out / name, buf.getvalue())
            made.append(GeneratedImage(name, key.id if key is not None else None, s))
        update_manifest(out, model.spec.id, {m.file: {"key": m.key_id, "seed": m.seed} for m in made[-len(seeds):]})
        progress.report(ProgressEvent("generating", len(made), count, phase=Phase.GENERATING))
    return made
