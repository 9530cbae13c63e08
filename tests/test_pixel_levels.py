"""The intake's float pixels and 8-bit images convert both ways exactly (engine.pixel_levels)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from engine.intake import load_evidence
from engine.pixel_levels import from_uint8, to_uint8
from engine.resources import resource_path


def test_a_bundled_sample_round_trips_through_the_intake_exactly():
    path = resource_path("samples", "key1_00500.png")
    png = np.asarray(Image.open(path).convert("RGB"))
    evidence = load_evidence(path, png.shape[0])
    assert np.array_equal(from_uint8(png), evidence.pixels)        # the intake's own mapping
    assert np.array_equal(to_uint8(evidence.pixels), png)


def test_batches_and_single_images_take_the_same_path():
    u = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype(np.uint8)
    x = from_uint8(u)
    assert x.shape == (2, 3, 8, 8) and x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1
    assert np.array_equal(x[1], from_uint8(u[1]))
    assert np.array_equal(to_uint8(x), u) and np.array_equal(to_uint8(x[0]), u[0])
