"""The JPEG quality an evidence file was saved at, read from the file's own luma quantization table.

libjpeg (and every encoder built on it: Pillow, most browsers and platforms) scales one standard table by the
quality setting, so a file's table names its quality exactly when it is libjpeg's; other encoders (cameras,
some editors) use their own tables, and the nearest libjpeg quality is then an approximation, said so. The
tables are the encoder's own, so nothing is guessed from the pixels. The restoration (`engine.restoration`)
quantizes with the same tables.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image

QUALITIES = range(1, 101)


@lru_cache(maxsize=None)
def libjpeg_luma_table(quality: int) -> tuple[int, ...]:
    """libjpeg's luma quantization table at `quality` (1–100), 64 entries in natural (row-major) order, as
    Pillow writes and reads it (read from a file Pillow encodes: the encoder's own scaling, not a copy of it)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return tuple(int(v) for v in im.quantization[0])


@dataclass(frozen=True)
class JpegQuality:
    quality: int          # the libjpeg quality whose table is nearest the file's
    exact: bool           # the file's table is libjpeg's at that quality, entry for entry
    distance: float       # mean |log(file's entry / libjpeg's entry)| over the 64 entries (0 when exact)

    def describe(self) -> str:
        if self.exact:
            return f"quality {self.quality}, read from the file's luma quantization table (libjpeg's, exactly)"
        return (f"quality {self.quality}, the nearest libjpeg quality to the file's own luma quantization table "
                f"(not libjpeg's: mean |log ratio| {self.distance:.2f}), approximate")


def estimate_quality(table: Sequence[int]) -> JpegQuality:
    """The quality of a luma table (64 entries, natural order, 1–65535); ValueError for anything else."""
    t = np.asarray(table, dtype=np.float64)
    if t.shape != (64,) or not np.isfinite(t).all() or (t < 1).any() or (t > 65535).any():
        raise ValueError("a JPEG luma quantization table has 64 entries from 1 to 65535")
    distances = {q: float(np.abs(np.log(t / np.asarray(libjpeg_luma_table(q)))).mean()) for q in QUALITIES}
    best = min(QUALITIES, key=lambda q: (distances[q], q))
    return JpegQuality(best, tuple(int(v) for v in t) == libjpeg_luma_table(best), distances[best])
