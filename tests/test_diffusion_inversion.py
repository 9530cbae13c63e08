"""DDIM and backward-Euler inversion: round trips on a small model, and agreement with diffusers."""

import numpy as np
import pytest
import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler

from engine.denoiser import Conditioning, Denoiser
from engine.diffusion_inversion import (DiffusionInversionConfig, ddim_generate, flow_generate, invert_ddim,
                                        invert_flow, timestep_pairs)
from engine.model_loader import load_model
from tests.tiny_models import SD21_SCHEDULER


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.fixture(scope="module")
def tiny(tiny_ddim_dir):
    return load_model(str(tiny_ddim_dir), device="cpu")


def z_t_batch(model, n=2, seed=0):
    return torch.randn(n, *model.latent_shape, generator=torch.Generator().manual_seed(seed))


def test_timestep_grids():
    diffusers_grid = timestep_pairs(SD21_SCHEDULER, 50, "diffusers")
    assert [p.t_high for p in diffusers_grid][:3] == [1, 21, 41] and diffusers_grid[-1].t_high == 981
    reference = timestep_pairs(SD21_SCHEDULER, 50, "reference")
    highs = [p.t_high for p in reference]
    assert highs[0] == 20 and highs[-1] == 999 and 500 in highs and 519 in highs
    # the off-grid step of the papers' code: 499 → 519; z0 is the t = 0 latent with ᾱ0 = 0.99915
    assert any(p.t_low == 499 and p.t_high == 519 for p in reference)
    assert reference[0].t_low == 0 and reference[0].alpha_low == pytest.approx(0.99915, abs=1e-5)


def test_generation_matches_diffusers_ddim_scheduler(tiny):
    den = tiny.denoiser()
    z_t = z_t_batch(tiny)
    ours = ddim_generate(den, z_t, timestep_pairs(tiny.scheduler_config, 20), "epsilon")
    sched = DDIMScheduler.from_config(tiny.scheduler_config)
    sched.set_timesteps(20)
    z = z_t.clone()
    for t in sched.timesteps:
        z = sched.step(den(z, int(t)), t, z, eta=0.0).prev_sample
    assert rel_err(ours, z) < 1e-5


def test_naive_inversion_matches_diffusers_ddim_inverse_scheduler(tiny):
    den = tiny.denoiser()
    z0 = z_t_batch(tiny, seed=1) * 0.5
    ours = invert_ddim(den, z0, tiny.scheduler_config, DiffusionInversionConfig(steps=20)).z_t
    sched = DDIMInverseScheduler.from_config(tiny.scheduler_config)
    sched.set_timesteps(20)
    z = z0.clone()
    for t in sched.timesteps:
        z = sched.step(den(z, int(t)), t, z).prev_sample
    assert rel_err(ours, z) < 1e-5


@pytest.mark.parametrize("grid", ["diffusers", "reference"])
def test_ddim_round_trip_recovers_z_t_and_backward_euler_beats_naive(tiny, grid):
    den = tiny.denoiser()
    z_t = z_t_batch(tiny, seed=2)
    pairs = timestep_pairs(tiny.scheduler_config, 50, grid)
    z0 = ddim_generate(den, z_t, pairs, "epsilon")
    naive = invert_ddim(den, z0, tiny.scheduler_config, DiffusionInversionConfig(grid=grid))
    exact = invert_ddim(den, z0, tiny.scheduler_config,
                        DiffusionInversionConfig(method="backward-euler", grid=grid, exact_tolerance=1e-5))
    e_naive, e_exact = rel_err(naive.z_t, z_t), rel_err(exact.z_t, z_t)
    assert e_naive < 0.05                    # naive DDIM inversion is close on 50 steps...
    assert e_exact < 0.5 * e_naive           # ...and the exact inversion is much closer
    assert exact.iterations.sum() > 0 and np.all(exact.final_residual < 1e-3)


def test_v_prediction_matches_diffusers_and_inverts(tiny):
    """SD 2.1 (768) is a v-prediction model: the prediction type is read from the config, never assumed."""
    config = dict(tiny.scheduler_config, prediction_type="v_prediction")
    den = tiny.denoiser()
    z_t = z_t_batch(tiny, seed=3)
    z0 = ddim_generate(den, z_t, timestep_pairs(config, 20), "v_prediction")
    sched = DDIMScheduler.from_config(config)
    sched.set_timesteps(20)
    z = z_t.clone()
    for t in sched.timesteps:
        z = sched.step(den(z, int(t)), t, z, eta=0.0).prev_sample
    assert rel_err(z0, z) < 1e-5
    exact = invert_ddim(den, z0, config, DiffusionInversionConfig(method="backward-euler", steps=20))
    assert rel_err(exact.z_t, z_t) < 0.02


def test_flow_inversion_residual_falls_monotonically(tiny_flow_dir):
    flow = load_model(str(tiny_flow_dir), device="cpu")
    assert flow.kind == "flow"
    den = flow.denoiser()
    z_t = z_t_batch(flow, n=3, seed=4)
    z0 = flow_generate(den, z_t)
    naive = invert_flow(den, z0, DiffusionInversionConfig(method="naive"))
    exact = invert_flow(den, z0, DiffusionInversionConfig(method="backward-euler", exact_tolerance=1e-8))
    trace = exact.residual_trace
    assert trace.shape[0] == 3 and trace.shape[1] > 5
    assert np.all(np.diff(trace, axis=1) <= 1e-9)
    assert rel_err(exact.z_t, z_t) < 0.3 * rel_err(naive.z_t, z_t)


def test_text_conditioned_unet_with_guidance(tmp_path):
    """SD-style models: a UNet2DConditionModel with a CLIP text encoder, prompt and classifier-free guidance."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(16, 32), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=4, norm_num_groups=8)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=1000, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, max_position_embeddings=77))

    class Tok:
        model_max_length = 77

        def __call__(self, text, **kw):
            ids = torch.tensor([[hash(w) % 1000 for w in text.split()][:77] + [0] * (77 - len(text.split()))])
            return type("T", (), {"input_ids": ids})

    z_t = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    outputs = {}
    for cond in (Conditioning("a red car", 1.0), Conditioning("a red car", 7.5), Conditioning("", 1.0)):
        den = Denoiser(unet, cond, text, Tok())
        pairs = timestep_pairs(SD21_SCHEDULER, 10)
        z0 = ddim_generate(den, z_t, pairs, "epsilon")
        inv = invert_ddim(den, z0, SD21_SCHEDULER, DiffusionInversionConfig(steps=10))
        assert rel_err(inv.z_t, z_t) < 0.1
        outputs[cond] = z0
    a, b, c = outputs.values()
    assert rel_err(a, b) > 1e-3 and rel_err(a, c) > 1e-4      # the prompt and the guidance matter
    with pytest.raises(ValueError, match="text encoder"):
        Denoiser(unet, Conditioning())
