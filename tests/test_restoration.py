"""Restore-then-invert: the closed-form data-consistency steps (known answers) and a restoration on the demo
model that brings a degraded sample closer to the original."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from engine.restoration import (Degradation, RestorationConfig, _gaussian_transfer, _luma, data_consistency,
                                degradation_for_attack, restore)


def _smooth(seed=0, size=64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.asarray(Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).resize(
        (size, size), Image.Resampling.BICUBIC))


def _f(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1)[None]


def test_gaussian_transfer_is_pils_blur_away_from_the_border():
    img = _smooth()
    pil = _f(np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(2))))
    ours = torch.fft.ifft2(torch.fft.fft2(_f(img)) * _gaussian_transfer(64, 2.0)).real
    assert (ours - pil)[..., 12:52, 12:52].abs().max() < 0.03


def test_blur_step_returns_the_image_a_consistent_prior_agrees_with():
    truth = _f(_smooth(1))
    blurred = torch.fft.ifft2(torch.fft.fft2(truth) * _gaussian_transfer(64, 1.5)).real
    x = data_consistency(blurred, truth, Degradation("blur", 1.5), weight=0.1)
    torch.testing.assert_close(x, truth, atol=1e-4, rtol=0)
    # a flat prior: the observed low frequencies still come back
    x = data_consistency(blurred, torch.zeros_like(truth), Degradation("blur", 1.5), weight=1e-3)
    assert (x - truth).abs().mean() < 0.5 * (blurred - truth).abs().mean()


def test_mask_step_keeps_observed_pixels_and_fills_the_rest_from_the_prior():
    y, prior = _f(_smooth(2)), _f(_smooth(3))
    mask = np.zeros((64, 64), bool)
    mask[:, :40] = True
    x = data_consistency(y, prior, Degradation("mask", mask=mask), weight=1e-6)
    torch.testing.assert_close(x[..., :40], y[..., :40], atol=1e-5, rtol=0)
    torch.testing.assert_close(x[..., 40:], prior[..., 40:], atol=1e-6, rtol=0)


def test_jpeg_projection_moves_the_prior_into_the_files_quantisation_cells():
    original = _smooth(4)
    buf = io.BytesIO()
    Image.fromarray(original).save(buf, format="JPEG", quality=30)
    buf.seek(0)
    decoded = np.asarray(Image.open(buf).convert("RGB"))
    y = _f(decoded)
    # the decoded file is its own consistent image: projecting it onto its cells changes little
    same = data_consistency(y, y, Degradation("jpeg", 30), weight=1.0)
    assert (same - y).abs().mean() < 0.01
    # a prior equal to the original: the result's luma is closer to the original's than the JPEG's is
    x = data_consistency(y, _f(original), Degradation("jpeg", 30), weight=1.0)
    luma = lambda t: _luma((t[0].numpy() + 1) * 127.5)
    assert np.abs(luma(x) - luma(_f(original))).mean() < 0.7 * np.abs(luma(y) - luma(_f(original))).mean()


def test_degradations_refuse_nonsense_and_map_the_attacks():
    with pytest.raises(ValueError, match="blur radius"):
        Degradation("blur", -1)
    with pytest.raises(ValueError, match="mask"):
        Degradation("mask")
    assert degradation_for_attack("jpeg", 50, 64).kind == "jpeg"
    assert degradation_for_attack("rotation", 10, 64) is None


def test_restoration_on_the_demo_model_brings_a_blurred_sample_closer():
    from engine.intake import load_evidence
    from engine.model_loader import load_model
    from engine.resources import resource_path

    model = load_model("demo", device="cpu")
    sample = load_evidence(resource_path("samples") / "key1_00500.png", model.image_size)
    original = torch.from_numpy(sample.pixels)[None]
    img = np.round((sample.pixels.transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
    blurred = _f(np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(1.5))))
    restored = restore(model, blurred, Degradation("blur", 1.5), RestorationConfig(iterations=2, weight=0.05))
    assert restored.shape == blurred.shape and restored.abs().max() <= 1.0
    # measured: MSE 0.0020 restored against 0.0024 blurred (+0.8 dB): the autoencoder is a weak prior
    assert (restored - original).pow(2).mean() < 0.9 * (blurred - original).pow(2).mean()


# -- the diffusion prior (engine.diffusion_restoration) ------------------------------------------------------

def test_restoration_options_map_to_one_config_and_refuse_what_cannot_run():
    from types import SimpleNamespace

    from engine.diffusion_restoration import require_ddim
    from engine.restoration import restoration_config

    assert restoration_config() == RestorationConfig(3, 0.1, "autoencoder")
    dp = restoration_config("diffusion")
    assert (dp.iterations, dp.weight, dp.grid_steps) == (10, 0.1, 50)
    assert dp.describe() == ("diffusion prior: 10 of 50 DDIM steps up from the encoded suspect and back down, a "
                             "data-consistency step at each, λ = 0.1")
    # the autoencoder's description is what earlier records and benchmark settings hold
    assert restoration_config(iterations=2).describe() == "2 data-consistency iterations, λ = 0.1"
    with pytest.raises(ValueError, match="at most its grid's 50 steps, not 51"):
        restoration_config("diffusion", 51)
    with pytest.raises(ValueError, match="restoration prior"):
        restoration_config("gan")
    with pytest.raises(ValueError, match="needs a multi-step \\(DDIM\\) model; demo-flow is 'flow'"):
        require_ddim(SimpleNamespace(kind="flow", spec=SimpleNamespace(id="demo-flow")))


def test_diffusion_prior_on_the_demo_model_keeps_what_was_observed():
    """A demo sample downscaled to half its side: the diffusion prior may change the lost high band only, so the
    restored image's kept band stays the observed one (up to the final clipping); deterministic (no fresh noise)."""
    from engine.intake import load_evidence
    from engine.model_loader import load_model
    from engine.resources import resource_path
    from engine.restoration import _low_pass, restoration_config, restore_traced

    model = load_model("demo", device="cpu")
    sample = load_evidence(resource_path("samples") / "clean_00900.png", model.image_size)
    img = np.round((sample.pixels.transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
    y = _f(np.asarray(Image.fromarray(img).resize((32, 32), Image.Resampling.BICUBIC).resize(
        (64, 64), Image.Resampling.BICUBIC)))
    config = restoration_config("diffusion", 3)
    restored, gaps = restore_traced(model, y, Degradation("downscale", 0.5), config)
    again, _ = restore_traced(model, y, Degradation("downscale", 0.5), config)
    assert torch.equal(restored, again)
    assert restored.shape == y.shape and restored.abs().max() <= 1.0 and gaps.shape == (1, 3)
    assert np.isfinite(gaps).all() and (gaps > 0).all()
    band = _low_pass(64, 0.5)

    def low(a):
        return torch.fft.ifft2(band * torch.fft.fft2(a)).real

    changed = (restored - y).pow(2).mean().sqrt()
    assert changed > 0.01                      # the high band was filled in (measured 0.026) …
    assert (low(restored) - low(y)).pow(2).mean().sqrt() < 0.05 * changed   # … the observed band kept (8e-5)
