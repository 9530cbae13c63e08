"""The numpy half of the figures: the arrays the window's views and the report's figures draw. No Qt, so the
report's sections and headless code may use it; `forensics_app.figures` turns these arrays into QImages.

Only display transforms live here: colour maps, log-magnitude, cropping to the key's disc, the key's target
as the engine scores it, |F(zT) − key| inside the mask (whose mean is exactly the engine's L1 score, which
the window's caption shows as a cross-check) and the boundaries between the key's rings.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Perceptually uniform colour maps (anchor points of matplotlib's viridis and inferno), interpolated to
# 256 entries. They are data colours, the same in light and dark mode and in the PDF.
_VIRIDIS_ANCHORS = [(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
                    (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37)]
_INFERNO_ANCHORS = [(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66),
                    (245, 125, 21), (250, 193, 39), (252, 255, 164)]


def _lut(anchors) -> np.ndarray:
    a = np.asarray(anchors, dtype=np.float64)
    x = np.linspace(0, 1, len(a))
    t = np.linspace(0, 1, 256)
    return np.stack([np.interp(t, x, a[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


VIRIDIS = _lut(_VIRIDIS_ANCHORS)
INFERNO = _lut(_INFERNO_ANCHORS)
GREY = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)


def lut_indices(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Colour-map entry (0…255) of each value, clipped to [lo, hi]; non-finite values get entry 0 (callers
    that show "no data" mark them themselves)."""
    a = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(a)
    if not (np.isfinite(lo) and np.isfinite(hi)):     # bounds taken from data that holds no finite value
        lo, hi = 0.0, 1.0
    span = hi - lo if hi > lo else 1.0
    idx = np.zeros(a.shape, dtype=np.int64)
    idx[finite] = np.clip((a[finite] - lo) / span * 255.0, 0, 255).round().astype(np.int64)
    return idx


def colour_mapped(values: np.ndarray, lo: float, hi: float, lut: np.ndarray = VIRIDIS) -> np.ndarray:
    """(H, W) floats → (H, W, 3) uint8 through the colour map."""
    return lut[lut_indices(values, lo, hi)]


def pixels_to_rgb8(pixels: np.ndarray) -> np.ndarray:
    """Model input (3, H, W) in [−1, 1] → (H, W, 3) uint8, the inverse of the intake's scaling."""
    x = np.clip((np.asarray(pixels, dtype=np.float32) + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    return np.ascontiguousarray(x.transpose(1, 2, 0))


def log_magnitude(magnitude: np.ndarray) -> np.ndarray:
    return np.log1p(np.abs(magnitude))


def robust_range(values: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.5) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(v, [low_pct, high_pct])
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


# -- spectra of one result against one key ------------------------------------------------------------

@dataclass(frozen=True)
class KeyGeometry:
    centre: tuple[int, int]        # (row, column) of the mask disc
    radius: int
    channel: int
    size: int

    @classmethod
    def of(cls, key) -> "KeyGeometry":
        from engine.treering import mask_centre

        size = key.latent_shape[1]
        return cls(mask_centre(size, key.centre), key.radius, key.channel, size)

    def crop(self, margin: int = 2) -> tuple[int, int, int, int]:
        """(row0, col0, row1, col1) around the disc, clipped to the latent."""
        r0, c0 = self.centre
        m = self.radius + margin
        return (max(0, r0 - m), max(0, c0 - m), min(self.size, r0 + m + 1), min(self.size, c0 + m + 1))


def centred_spectrum(z: np.ndarray) -> np.ndarray:
    """fftshift(fft2(z)) over the last two axes — the same transform as `engine.treering.fft_latent`,
    done in numpy so that drawing never competes with the engine's torch threads (a test checks that
    the two agree)."""
    return np.fft.fftshift(np.fft.fft2(np.asarray(z, dtype=np.float64)), axes=(-2, -1))


def spectrum_log_magnitude(z_t: np.ndarray) -> np.ndarray:
    """log(1 + |F(zT)|) for every channel, (C, h, w)."""
    return log_magnitude(centred_spectrum(z_t))


@lru_cache(maxsize=256)
def key_target(key, target: str | None = None) -> np.ndarray:
    """The key's masked coefficients exactly as the engine scores against them (`masked_target`, with
    the run's score target), placed on the (h, w) grid of its channel; NaN outside the mask. Cached
    (keys are immutable); treat the result as read-only."""
    values = (key.masked_target(target) if target else key.masked_target()).numpy()
    out = np.full(key.latent_shape[1:], np.nan + 0j, dtype=np.complex128)
    out[key.mask_2d()] = values            # mask() is the disc on one channel: same row-major order
    out.setflags(write=False)
    return out


def key_pattern_log_magnitude(key, target: str | None = None) -> np.ndarray:
    """log(1 + |key|) inside the mask, NaN outside (h, w)."""
    t = key_target(key, target)
    out = np.full(t.shape, np.nan)
    inside = key.mask_2d()
    out[inside] = log_magnitude(t[inside])
    return out


def key_difference(z_t: np.ndarray, key, target: str | None = None) -> np.ndarray:
    """|F(zT) − key| on the key's channel inside the mask, NaN outside (h, w). Its mean is the L1 score."""
    spectrum = centred_spectrum(np.asarray(z_t)[key.channel])
    t = key_target(key, target)
    out = np.full(t.shape, np.nan)
    inside = key.mask_2d()
    out[inside] = np.abs(spectrum[inside] - t[inside])
    return out


def ring_boundaries(rings: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Pixel-edge segments (x0, y0, x1, y1) in cell units between cells of different ring number (0 =
    outside the disc), including the disc's edge where it meets the border of the window."""
    segs = []
    h, w = rings.shape
    for y in range(h):
        for x in range(w):
            r = rings[y, x]
            if x + 1 < w and rings[y, x + 1] != r and (r or rings[y, x + 1]):
                segs.append((x + 1, y, x + 1, y + 1))
            if y + 1 < h and rings[y + 1, x] != r and (r or rings[y + 1, x]):
                segs.append((x, y + 1, x + 1, y + 1))
            if r:
                if x == 0:
                    segs.append((0, y, 0, y + 1))
                if x == w - 1:
                    segs.append((w, y, w, y + 1))
                if y == 0:
                    segs.append((x, 0, x + 1, 0))
                if y == h - 1:
                    segs.append((x, h, x + 1, h))
    return segs
