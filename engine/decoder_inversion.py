"""Decoder inversion: find z0 with D(z0) ≈ x (docs/algorithms.md §1).

* encoder — z0 = E(x), the cheap baseline;
* gradient-free (Hong et al., NeurIPS 2024) — iterate on the pseudo-gradient T(z) = E(D(z)) − E(x) with a
  forward step, inertial Krasnoselskii–Mann, or Adam with the warm-up/cosine/hold schedule; no autograd,
  so it runs in fp16 and needs only forward activations;
* gradient-based (Hong et al. 2023) — Adam on ‖D(z) − x‖² through autograd, the costly baseline.

All are batched over images. Progress is reported and cancellation polled once per iteration; the trace
is accumulated on the device and read once at the end, so the loop never waits for the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from diffusers.optimization import get_cosine_schedule_with_warmup

from engine.device import measure
from engine.latent_codec import LatentCodec, Posterior
from engine.lr_schedules import gradient_free_lr_factor
from engine.limits import require_choice, require_int, require_number
from engine.progress import NULL_PROGRESS, Phase, Progress, ProgressEvent

Method = Literal["encoder", "gradient-free", "gradient-based"]
Optimizer = Literal["adam", "forward-step", "inertial-km"]
Precision = Literal["fp32", "fp16"]
MAX_ITERATIONS = 100_000           # ~1 day per image on a CPU: beyond that a typo, not a choice
METHODS: tuple[Method, ...] = ("encoder", "gradient-free", "gradient-based")


@dataclass(frozen=True)
class DecoderInversionConfig:
    method: Method = "gradient-free"
    iterations: int = 100
    optimizer: Optimizer = "adam"            # gradient-free only
    lr: float | None = None                  # None → the paper's: 0.01 Adam, 0.001 forward step / KM, 0.1 grad-based
    schedule: Literal["scheduled", "fixed"] = "scheduled"
    km_alpha: float = 0.9                    # inertia of the KM iteration
    precision: Precision = "fp32"            # network precision; the iterate and Adam moments stay fp32
    posterior: Posterior = "mode"            # reference: "sample" (a fresh draw per call)
    seed: int = 0                            # for posterior sampling
    record_cocoercivity: bool = False        # keep the iterates to evaluate Eq. 14 (memory ∝ iterations)

    def __post_init__(self) -> None:
        require_choice(self.method, "the decoder inversion method", METHODS)
        require_int(self.iterations, "decoder-inversion iterations", 0, MAX_ITERATIONS)
        require_choice(self.optimizer, "the gradient-free optimiser", ("adam", "forward-step", "inertial-km"))
        if self.lr is not None:
            require_number(self.lr, "the decoder-inversion step size (--lr)", 0.0, 10.0, low_open=True)
        require_choice(self.schedule, "the step schedule", ("scheduled", "fixed"))
        require_number(self.km_alpha, "the KM inertia", 0.0, 1.0)
        require_choice(self.precision, "the precision", ("fp32", "fp16"))
        require_choice(self.posterior, "the posterior", ("mode", "sample"))
        if self.method == "gradient-based" and self.precision == "fp16":
            raise ValueError("the gradient-based baseline runs in fp32 only (fp16 gradients underflow)")

    @property
    def effective_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        if self.method == "gradient-based":
            return 0.1
        return 0.01 if self.optimizer == "adam" else 0.001

    def label(self) -> str:
        if self.method == "encoder":
            return "encoder"
        opt = f" {self.optimizer}" if self.method == "gradient-free" else ""
        return f"{self.method}{opt}, {self.iterations} it, lr {self.effective_lr:g} {self.schedule}, {self.precision}"


@dataclass(frozen=True)
class DecoderInversionTrace:
    objective: np.ndarray                  # (B, iters): ‖E(D(z)) − E(x)‖ (gradient-free) or ‖D(z) − x‖² (gradient-based)
    nmse_db: np.ndarray | None             # (B, iters+1) 10·log10 ‖z − z*‖²/‖z*‖², from the start; when z* is known
    cocoercivity: np.ndarray | None        # (B,) min_k ⟨ED z∞ − ED z_k, z∞ − z_k⟩ / ‖ED z∞ − ED z_k‖²
    seconds: float
    peak_memory_bytes: int | None


@dataclass(frozen=True)
class DecoderInversionResult:
    z0: torch.Tensor                        # (B, C, h, w) fp32
    latent_residual: np.ndarray             # (B,) ‖E(D(z0)) − E(x)‖ / ‖E(x)‖ — the self-consistency check for real suspects
    pixel_psnr_db: np.ndarray               # (B,) PSNR of D(z0) against x (peak-to-peak 2 in [−1, 1])
    trace: DecoderInversionTrace
    config: DecoderInversionConfig


def _nmse_db(z: torch.Tensor, z_star: torch.Tensor) -> torch.Tensor:
    err = (z.float() - z_star).flatten(1).pow(2).sum(1)
    return 10 * torch.log10(err / z_star.flatten(1).pow(2).sum(1))


def psnr_db(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR per image for tensors in [−1, 1] (peak-to-peak 2)."""
    mse = (a.float().clamp(-1, 1) - b.float()).flatten(1).pow(2).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-12))


def invert_decoder(codec: LatentCodec, x: torch.Tensor, config: DecoderInversionConfig,
                   z_star: torch.Tensor | None = None, progress: Progress = NULL_PROGRESS,
                   item: str = "") -> DecoderInversionResult:
    """Invert the decoder for a batch of images x (B, 3, H, W) in [−1, 1]."""
    device = codec.device
    net_dtype = torch.float16 if config.precision == "fp16" else torch.float32
    codec = codec.in_precision(net_dtype)
    x = x.to(device=device, dtype=torch.float32)
    z_star = z_star.to(device=device, dtype=torch.float32) if z_star is not None else None
    generator = torch.Generator(device=device).manual_seed(config.seed) if config.posterior == "sample" else None
    stage = f"decoder inversion ({config.method})"

    def encode(img: torch.Tensor) -> torch.Tensor:
        return codec.encode(img.to(net_dtype), config.posterior, generator).float()

    def ed(z: torch.Tensor) -> torch.Tensor:
        return encode(codec.decode(z.to(net_dtype)))

    with measure(device) as m:
        with torch.no_grad():
            target = encode(x)
        if config.method == "encoder":
            z, objective, nmse, coco = target, torch.zeros(x.shape[0], 0), None, None
        elif config.method == "gradient-free":
            z, objective, nmse, coco = _gradient_free(ed, target, config, z_star, progress, stage, item)
        else:
            z, objective, nmse, coco = _gradient_based(codec, x, target, config, z_star, progress, stage, item)
        with torch.no_grad():
            recon = codec.decode(z.to(net_dtype)).float()
            residual = (encode(recon) - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1)
            psnr = psnr_db(recon, x)
            if z_star is not None and nmse is None:
                nmse = _nmse_db(z, z_star)[:, None]
    trace = DecoderInversionTrace(
        objective=objective.cpu().numpy(),
        nmse_db=None if nmse is None else nmse.cpu().numpy(),
        cocoercivity=None if coco is None else coco.cpu().numpy(),
        seconds=m.seconds, peak_memory_bytes=m.peak_memory_bytes)
    return DecoderInversionResult(z0=z.float().detach(), latent_residual=residual.cpu().numpy(),
                                  pixel_psnr_db=psnr.cpu().numpy(), trace=trace, config=config)


@torch.no_grad()
def _gradient_free(ed, target, config: DecoderInversionConfig, z_star, progress: Progress, stage: str, item: str):
    n = config.iterations
    lr = config.effective_lr
    z = target.clone()
    batch = z.shape[0]
    objective = torch.zeros(batch, n, device=z.device)
    nmse = torch.zeros(batch, n + 1, device=z.device) if z_star is not None else None
    if nmse is not None:
        nmse[:, 0] = _nmse_db(z, z_star)
    history_z, history_ed = [], []

    if config.optimizer == "adam":
        # torch's Adam on a manually set pseudo-gradient; fp32 state keeps small moments from underflowing.
        z.grad = torch.zeros_like(z)
        opt = torch.optim.Adam([z], lr=lr, betas=(0.9, 0.999), eps=1e-8)
        factor = gradient_free_lr_factor if config.schedule == "scheduled" else (lambda i, n: 1.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: factor(i, n))
    previous = z.clone()
    for i in range(n):
        progress.check_cancelled()
        if config.optimizer == "inertial-km":
            y = z + config.km_alpha * (z - previous)
            previous = z.clone()
        else:
            y = z
        ed_y = ed(y)
        g = ed_y - target
        objective[:, i] = g.flatten(1).norm(dim=1)
        if config.record_cocoercivity:
            history_z.append(y.clone())
            history_ed.append(ed_y)
        if config.optimizer == "adam":
            z.grad.copy_(g)
            opt.step()
            sched.step()
        else:
            z.copy_(y - lr * g)
        if nmse is not None:
            nmse[:, i + 1] = _nmse_db(z, z_star)
        progress.report(ProgressEvent(stage, i + 1, n, item, phase=Phase.DECODER_INVERSION))
    z = z.detach().clone()
    z.grad = None
    coco = None
    if config.record_cocoercivity and history_z:
        ed_inf = ed(z)
        ratios = []
        for zk, edk in zip(history_z, history_ed):
            d_ed = (ed_inf - edk).flatten(1)
            d_z = (z - zk).flatten(1)
            ratios.append((d_ed * d_z).sum(1) / d_ed.pow(2).sum(1).clamp_min(1e-30))
        coco = torch.stack(ratios, 1).min(1).values
    return z, objective, nmse, coco


def _gradient_based(codec: LatentCodec, x, target, config: DecoderInversionConfig, z_star, progress: Progress,
                    stage: str, item: str):
    n = config.iterations
    z = target.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=config.effective_lr)
    sched = (get_cosine_schedule_with_warmup(opt, num_warmup_steps=n // 10, num_training_steps=n)
             if config.schedule == "scheduled" else None)
    objective = torch.zeros(z.shape[0], n, device=z.device)
    nmse = torch.zeros(z.shape[0], n + 1, device=z.device) if z_star is not None else None
    if nmse is not None:
        nmse[:, 0] = _nmse_db(z.detach(), z_star)
    for i in range(n):
        progress.check_cancelled()
        opt.zero_grad(set_to_none=True)
        per_image = (codec.decode(z).float() - x).pow(2).flatten(1).sum(1)
        per_image.sum().backward()
        opt.step()
        if sched is not None:
            sched.step()
        objective[:, i] = per_image.detach()
        if nmse is not None:
            nmse[:, i + 1] = _nmse_db(z.detach(), z_star)
        progress.report(ProgressEvent(stage, i + 1, n, item, phase=Phase.DECODER_INVERSION))
    return z.detach(), objective, nmse, None
