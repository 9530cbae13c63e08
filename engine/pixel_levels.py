"""The intake's pixels and 8-bit images, both ways.

Evidence is analysed as float (3, T, T) in [−1, 1], made from 8-bit levels as level/127.5 − 1
(`engine.intake`); attacks, regeneration and PNGs work on (T, T, 3) uint8. Both functions take one image or a
batch (a leading axis).
"""

from __future__ import annotations

import numpy as np


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """(…, 3, T, T) float in [−1, 1] → (…, T, T, 3) uint8 (exact for pixels that came from 8-bit levels)."""
    x = np.moveaxis(np.asarray(pixels), -3, -1)
    return np.clip(np.round((x + 1) * 127.5), 0, 255).astype(np.uint8)


def from_uint8(images: np.ndarray) -> np.ndarray:
    """(…, T, T, 3) uint8 → (…, 3, T, T) float32 in [−1, 1], the intake's mapping."""
    return np.moveaxis(np.asarray(images).astype(np.float32) / np.float32(127.5) - np.float32(1.0), -1, -3)
