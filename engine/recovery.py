"""Pixels → recovered initial noise z_T, the core of `engine.analysis.analyze_batch` without the evidence
records: decoder inversion by one method, then the model's diffusion inversion. Re-alignment, restoration and
the robustness study run many variants of one suspect through this, in chunks of the analysis batch size.
"""

from __future__ import annotations

import torch

from engine.decoder_inversion import invert_decoder
from engine.model_loader import LoadedModel
from engine.progress import NULL_PROGRESS, Progress


def recover_z_t(model: LoadedModel, pixels: torch.Tensor, method: str, config, progress: Progress = NULL_PROGRESS,
                item: str = "") -> torch.Tensor:
    """(B, 3, T, T) pixels in [−1, 1] at the model's size → (B, C, h, w) float32 z_T on the CPU, with the
    decoder inversion `method` and the diffusion inversion of `config` (an `AnalysisConfig`)."""
    if pixels.ndim != 4 or pixels.shape[1] != 3 or pixels.shape[-1] != model.image_size \
            or pixels.shape[-2] != model.image_size:
        raise ValueError(f"pixels of shape {tuple(pixels.shape)} do not match the model's "
                         f"(B, 3, {model.image_size}, {model.image_size})")
    denoiser = model.denoiser(config.conditioning)
    out = []
    for start in range(0, pixels.shape[0], config.batch_size):
        progress.check_cancelled()
        x = pixels[start:start + config.batch_size].to(model.device)
        dec = invert_decoder(model.codec, x, config.decoder_config(method), progress=progress, item=item)
        inv = model.invert(denoiser, dec.z0, config.diffusion, progress, item)
        out.append(inv.z_t.float().cpu())
    return torch.cat(out)
