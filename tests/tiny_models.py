"""Small random-init models in diffusers format, made at test time, for tests that must not depend on the
bundled demo weights (the loader, the inversions' algebra, the CLI contract)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, FlowMatchEulerDiscreteScheduler, UNet2DModel

SD21_SCHEDULER = dict(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                      prediction_type="epsilon", clip_sample=False, set_alpha_to_one=False, steps_offset=1,
                      timestep_spacing="leading")


def tiny_vae(seed: int = 0) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(16, 32),
                         layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=32,
                         scaling_factor=1.0)


def tiny_unet(seed: int = 0, sample_size: int = 16) -> UNet2DModel:
    torch.manual_seed(seed)
    return UNet2DModel(sample_size=sample_size, in_channels=4, out_channels=4, layers_per_block=1,
                       block_out_channels=(16, 32), down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8)


def save_tiny_model(folder: Path, kind: str = "ddim", seed: int = 0) -> Path:
    """A complete diffusers folder: 32×32 images → 4×16×16 latents."""
    folder.mkdir(parents=True, exist_ok=True)
    vae, unet = tiny_vae(seed), tiny_unet(seed)
    if kind == "flow":
        # scale the random output down so the one-step map z ↦ z + v(z) is invertible (a contraction-like v)
        with torch.no_grad():
            unet.conv_out.weight.mul_(0.1)
            unet.conv_out.bias.zero_()
    vae.save_pretrained(folder / "vae", safe_serialization=True)
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    sched = (FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000) if kind == "flow"
             else DDIMScheduler(**SD21_SCHEDULER))
    sched.save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "TreeRingDemoLDM", "vae": ["diffusers", "AutoencoderKL"],
        "unet": ["diffusers", "UNet2DModel"],
        "scheduler": ["diffusers", type(sched).__name__]}), encoding="utf-8")
    return folder
