"""Decoder inversion: mechanics on a random tiny VAE, the paper's premise on the bundled demo VAE."""

import numpy as np
import pytest
import torch

from engine.decoder_inversion import DecoderInversionConfig, invert_decoder
from engine.generation import GenerationConfig, decode_to_uint8, initial_noise, sample_latents
from engine.model_loader import load_model
from engine.progress import Cancelled, TaskState


@pytest.fixture(scope="module")
def tiny(tiny_ddim_dir):
    return load_model(str(tiny_ddim_dir), device="cpu")


def images_and_latents(model, n, seed=0):
    """Generated latents z* and the 8-bit PNG-like images a suspect would be (rounding included)."""
    z_star = sample_latents(model, initial_noise(model, list(range(seed, seed + n))), GenerationConfig(steps=20))
    pixels = decode_to_uint8(model, z_star)
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x, z_star


def test_trace_shapes_and_self_consistency_on_tiny_vae(tiny):
    x, z_star = images_and_latents(tiny, 2)
    enc = invert_decoder(tiny.codec, x, DecoderInversionConfig("encoder"), z_star=z_star)
    gf = invert_decoder(tiny.codec, x, DecoderInversionConfig(iterations=20, record_cocoercivity=True), z_star=z_star)
    assert gf.trace.objective.shape == (2, 20) and gf.trace.nmse_db.shape == (2, 21)
    assert gf.trace.cocoercivity.shape == (2,)
    assert np.allclose(gf.trace.nmse_db[:, 0], enc.trace.nmse_db[:, 0], atol=1e-4)   # it starts at E(x)
    gb = invert_decoder(tiny.codec, x, DecoderInversionConfig("gradient-based", iterations=20), z_star=z_star)
    assert np.all(gb.trace.objective[:, -1] < gb.trace.objective[:, 0])   # it lowers ‖D(z) − x‖²
    assert np.all(gb.pixel_psnr_db > enc.pixel_psnr_db)


def test_fp16_and_fp32_gradient_free_agree(tiny):
    x, _ = images_and_latents(tiny, 2, seed=5)
    a = invert_decoder(tiny.codec, x, DecoderInversionConfig(iterations=10, precision="fp32"))
    b = invert_decoder(tiny.codec, x, DecoderInversionConfig(iterations=10, precision="fp16"))
    assert ((a.z0 - b.z0).norm() / a.z0.norm()).item() < 1e-2      # measured 5e-3: fp16 has ~3 digits
    assert np.allclose(a.latent_residual, b.latent_residual, rtol=0.02)
    assert next(tiny.codec.vae.parameters()).dtype == torch.float32     # the loaded model is never converted


def test_half_precision_copy_is_made_once_and_leaves_the_model_alone(tiny):
    before = {k: v.clone() for k, v in tiny.codec.vae.state_dict().items()}
    half = tiny.codec.in_precision(torch.float16)
    assert half.vae is not tiny.codec.vae and half.dtype == torch.float16
    assert tiny.codec.in_precision(torch.float16).vae is half.vae        # reused, not re-converted per call
    assert tiny.codec.in_precision(torch.float32) is tiny.codec
    after = tiny.codec.vae.state_dict()
    assert all(after[k].dtype == torch.float32 and torch.equal(after[k], v) for k, v in before.items())
    assert half.scaling_factor == tiny.codec.scaling_factor


@pytest.mark.parametrize("optimizer", ["adam", "forward-step", "inertial-km"])
def test_gradient_free_optimizers_lower_the_residual_on_the_demo_vae(demo_model, optimizer):
    """A random VAE's T = E∘D − E(x) is not cocoercive (fixed steps diverge there); the trained one's is."""
    x, _ = images_and_latents(demo_model, 2, seed=7)
    r = invert_decoder(demo_model.codec, x, DecoderInversionConfig(iterations=20, optimizer=optimizer))
    assert np.all(r.trace.objective[:, -1] < r.trace.objective[:, 0])


def test_gradient_based_refuses_fp16():
    with pytest.raises(ValueError, match="fp32"):
        DecoderInversionConfig("gradient-based", precision="fp16")


def test_cancel_takes_effect_within_one_iteration(tiny):
    x, _ = images_and_latents(tiny, 1)
    steps = []

    def listener(event):
        steps.append(event.step)
        if event.step == 3:
            state.cancel()

    state = TaskState(listener)
    with pytest.raises(Cancelled):
        invert_decoder(tiny.codec, x, DecoderInversionConfig(iterations=50), progress=state)
    assert steps == [1, 2, 3]


def test_posterior_sampling_is_seeded(tiny):
    x, _ = images_and_latents(tiny, 1)
    cfg = DecoderInversionConfig(iterations=3, posterior="sample", seed=4)
    a, b = invert_decoder(tiny.codec, x, cfg), invert_decoder(tiny.codec, x, cfg)
    c = invert_decoder(tiny.codec, x, DecoderInversionConfig(iterations=3))
    assert torch.equal(a.z0, b.z0) and not torch.equal(a.z0, c.z0)


def test_gradient_free_beats_the_encoder_on_the_demo_vae(demo_model):
    """The paper's premise on our own model: E is not an exact inverse of D, and the gradient-free
    iteration gets closer to the true z0 of generated 8-bit images than the encoder alone."""
    x, z_star = images_and_latents(demo_model, 8, seed=100)
    enc = invert_decoder(demo_model.codec, x, DecoderInversionConfig("encoder"), z_star=z_star)
    gf = invert_decoder(demo_model.codec, x, DecoderInversionConfig(iterations=50, record_cocoercivity=True),
                        z_star=z_star)
    enc_db, gf_db = enc.trace.nmse_db[:, -1], gf.trace.nmse_db[:, -1]
    assert enc_db.mean() > -60                       # the encoder is not an exact inverse
    assert gf_db.mean() < enc_db.mean() - 1.0        # at least 1 dB closer on average
    assert np.mean(gf_db < enc_db) >= 0.75
    assert np.all(gf.latent_residual < enc.latent_residual)
    assert np.mean(gf.trace.cocoercivity > 0) >= 0.5   # Eq. 14 holds for most instances
