"""Restore-then-invert for degraded suspects (docs/algorithms.md §6): treat the suspect as y = A(D(z0)) for a
known degradation A and estimate the clean image before the diffusion inversion.

Two priors share P2L's pixel-space data-consistency step (Chung et al., ICML 2024),
x̂ = argmin ‖y − A x‖² + λ‖x − x_p‖² (closed form for each A below):
* "autoencoder" (the default): the model's own autoencoder; starting from z = E(y), repeat x_p = D(z), x̂, z = E(x̂);
* "diffusion": the model's denoiser along part of its DDIM grid, x_p the decoded Tweedie estimate at each step
  (`engine.diffusion_restoration`; DDIM models only).
The result x̂ goes into the normal pipeline (decoder inversion, diffusion inversion, scoring). P2L's
prompt-embedding tuning and STSL's second-order surrogate are NOT done.

Closed forms: blur — the Gaussian of the PIL radius as a circular convolution, solved per frequency by FFT;
downscale — an ideal low-pass at the kept band (y's low frequencies, x_p's high ones); crop/erasing — a pixel
mask; JPEG — approximate: the projection of x_p's 8×8 luma DCT onto the quantisation cells of y (the set of
images that re-encode to the same luma coefficients; chroma is taken from y as submitted).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.jpeg_quality import libjpeg_luma_table
from engine.limits import require_choice, require_int, require_number
from engine.model_loader import LoadedModel

DEGRADATIONS = ("blur", "downscale", "mask", "jpeg")
PRIORS = ("autoencoder", "diffusion")
# per prior, the iterations a restoration runs unless told: the autoencoder's closed-form round trips converge
# in a few; the diffusion prior walks 10 of a 50-step grid (0.2, where regenerating a watermarked `demo` image
# kept 87-94 % detected, benchmarks/results/robustness)
DEFAULT_ITERATIONS = {"autoencoder": 3, "diffusion": 10}
DEFAULT_WEIGHT = 0.1
DEFAULT_GRID_STEPS = 50


@dataclass(frozen=True)
class Degradation:
    """What the suspect went through. blur: `value` = PIL Gaussian radius; downscale: `value` = the kept
    share of the side (0.5 = halved, then brought back); jpeg: `value` = quality; mask: pixels given by
    `mask` (True = observed)."""

    kind: str
    value: float = 0.0
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        require_choice(self.kind, "the degradation", DEGRADATIONS)
        if self.kind == "blur":
            require_number(self.value, "the blur radius", 0.0, 100.0, low_open=True)
        elif self.kind == "downscale":
            require_number(self.value, "the kept share of the side", 0.0, 1.0, low_open=True)
        elif self.kind == "jpeg":
            require_number(self.value, "the JPEG quality", 1.0, 100.0)
        elif self.mask is None:
            raise ValueError("a mask degradation needs the mask of observed pixels")

    def describe(self) -> str:
        return {"blur": f"Gaussian blur, radius {self.value:g}", "downscale": f"downscaled to {self.value:g} of the side",
                "jpeg": f"JPEG quality {self.value:g} (approximate: luma only)",
                "mask": "pixels outside a mask lost"}[self.kind]


@dataclass(frozen=True)
class RestorationConfig:
    iterations: int = DEFAULT_ITERATIONS["autoencoder"]   # diffusion prior: the grid steps walked up and down
    weight: float = DEFAULT_WEIGHT  # λ: trust in the prior's image against the observed one
    prior: str = "autoencoder"
    grid_steps: int = DEFAULT_GRID_STEPS   # diffusion prior: the DDIM grid it walks part of

    def __post_init__(self) -> None:
        require_int(self.iterations, "restoration iterations", 1, 1000)
        require_number(self.weight, "the restoration weight λ", 0.0, 1e6, low_open=True)
        require_choice(self.prior, "the restoration prior", PRIORS)
        require_int(self.grid_steps, "the diffusion prior's grid steps", 1, 1000)
        if self.prior == "diffusion" and self.iterations > self.grid_steps:
            raise ValueError(f"the diffusion prior walks at most its grid's {self.grid_steps} steps, not "
                             f"{self.iterations}")

    def describe(self) -> str:
        if self.prior == "diffusion":
            return (f"diffusion prior: {self.iterations} of {self.grid_steps} DDIM steps up from the encoded suspect "
                    f"and back down, a data-consistency step at each, λ = {self.weight:g}")
        return f"{self.iterations} data-consistency iterations, λ = {self.weight:g}"   # the autoencoder's, as before


def restoration_config(prior: str = "autoencoder", iterations: int | None = None,
                       weight: float | None = None) -> RestorationConfig:
    """The one mapping from a user's restoration options (CLI, window, benchmarks) to the engine's config: what is
    not given takes the prior's default. ValueError (one line) for a bad value."""
    require_choice(prior, "the restoration prior", PRIORS)
    return RestorationConfig(DEFAULT_ITERATIONS[prior] if iterations is None else iterations,
                             DEFAULT_WEIGHT if weight is None else weight, prior)


def _gaussian_transfer(size: int, radius: float) -> torch.Tensor:
    """FFT of PIL's Gaussian blur of this radius (σ = radius), circular, (size, size) real."""
    d = torch.fft.fftfreq(size) * size
    g = torch.exp(-0.5 * (d / radius) ** 2)
    g = g / g.sum()
    kernel = g[:, None] * g[None, :]
    return torch.fft.fft2(kernel).real


def _fft_solve(y: torch.Tensor, prior: torch.Tensor, transfer: torch.Tensor, weight: float) -> torch.Tensor:
    """argmin ‖y − h∗x‖² + λ‖x − prior‖² per frequency: (H̄Y + λP) / (|H|² + λ)."""
    Y, P = torch.fft.fft2(y), torch.fft.fft2(prior)
    X = (transfer.conj() * Y + weight * P) / (transfer.abs() ** 2 + weight)
    return torch.fft.ifft2(X).real


def _low_pass(size: int, keep: float) -> torch.Tensor:
    f = torch.fft.fftfreq(size).abs()
    band = (f <= 0.5 * keep).float()
    return band[:, None] * band[None, :]


def _jpeg_tables(quality: int) -> np.ndarray:
    # libjpeg's luma table; this Pillow returns it in natural (row-major) order: measured, the DCT of a decoded
    # JPEG's luma is a multiple of it to 0.004 of a step, against 0.017 read as zigzag
    return np.asarray(libjpeg_luma_table(int(quality)), dtype=np.float64).reshape(8, 8)


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    m = np.sqrt(2 / 8) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 16)
    m[0] /= np.sqrt(2)
    return m


def _luma(rgb: np.ndarray) -> np.ndarray:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _jpeg_project(y: np.ndarray, prior: np.ndarray, quality: int) -> np.ndarray:
    """(3, T, T) in [0, 255]: the prior's luma DCT clipped into y's quantisation cells, y's chroma kept."""
    table = _jpeg_tables(quality)
    c = _dct_matrix()
    ly, lp = _luma(y) - 128, _luma(prior) - 128
    t = ly.shape[0] - ly.shape[0] % 8
    out = lp.copy()
    for r in range(0, t, 8):
        for s in range(0, t, 8):
            cy = c @ ly[r:r + 8, s:s + 8] @ c.T
            cp = c @ lp[r:r + 8, s:s + 8] @ c.T
            centre = np.round(cy / table) * table
            out[r:r + 8, s:s + 8] = c.T @ np.clip(cp, centre - table / 2, centre + table / 2) @ c
    return y + (out - ly)[None]               # change luma only: add the same offset to R, G, B


def data_consistency(y: torch.Tensor, prior: torch.Tensor, degradation: Degradation, weight: float) -> torch.Tensor:
    """One closed-form step for a batch (B, 3, T, T) in [−1, 1]."""
    size = y.shape[-1]
    if degradation.kind == "blur":
        return _fft_solve(y, prior, _gaussian_transfer(size, degradation.value), weight)
    if degradation.kind == "downscale":
        band = _low_pass(size, degradation.value)
        return torch.fft.ifft2(band * torch.fft.fft2(y) + (1 - band) * torch.fft.fft2(prior)).real
    if degradation.kind == "mask":
        m = torch.as_tensor(np.asarray(degradation.mask, dtype=np.float32)).expand_as(y)
        return (m * y + weight * prior) / (m + weight)
    q = int(round(degradation.value))
    out = [_jpeg_project((a.numpy() + 1) * 127.5, (b.numpy() + 1) * 127.5, q) for a, b in zip(y, prior)]
    return torch.from_numpy(np.stack(out) / 127.5 - 1).float()


@torch.no_grad()
def restore(model: LoadedModel, pixels: torch.Tensor, degradation: Degradation,
            config: RestorationConfig = RestorationConfig()) -> torch.Tensor:
    """(B, 3, T, T) degraded pixels in [−1, 1] → restored pixels, same shape, clipped to [−1, 1]."""
    return restore_traced(model, pixels, degradation, config)[0]


@torch.no_grad()
def restore_traced(model: LoadedModel, pixels: torch.Tensor, degradation: Degradation,
                   config: RestorationConfig = RestorationConfig()) -> tuple[torch.Tensor, np.ndarray]:
    """`restore`, and per iteration and image the prior gap: the RMS of x̂ − D(z) in 8-bit levels, how far the
    data-consistent image stays from the prior's own (B, iterations). It falls as the iterations agree;
    it says nothing about whether the restored image is the clean one."""
    y = pixels.float().cpu()
    if config.prior == "diffusion":
        from engine.diffusion_restoration import diffusion_prior_restore

        return diffusion_prior_restore(model, y, lambda prior: data_consistency(y, prior, degradation, config.weight),
                                       config.iterations, config.grid_steps)
    codec = model.codec
    z = codec.encode(y.to(model.device), "mode", None).float()
    x = y
    gaps = []
    for _ in range(config.iterations):
        prior = codec.decode(z).float().clamp(-1, 1).cpu()
        x = data_consistency(y, prior, degradation, config.weight).clamp(-1, 1)
        gaps.append((127.5 * (x - prior)).pow(2).flatten(1).mean(1).sqrt().numpy())
        z = codec.encode(x.to(model.device), "mode", None).float()
    return x, np.stack(gaps, axis=1).astype(np.float64)


def degradation_for_attack(name: str, parameter: float, size: int) -> Degradation | None:
    """The degradation model for an attack of `engine.attacks` at its absolute parameter, where one is known
    (blur, JPEG, downscale); None otherwise (geometric attacks are for the re-alignment search)."""
    if name == "blur" and parameter > 0:
        return Degradation("blur", parameter)
    if name == "jpeg":
        return Degradation("jpeg", parameter)
    if name == "downscale" and parameter < 1:
        return Degradation("downscale", parameter)
    return None
