"""Where the engine matches the public reference code, pinned (docs/algorithms.md names each rule)."""

import math

import numpy as np
import pytest
import torch

from engine.denoiser import Conditioning
from engine.diffusion_inversion import DiffusionInversionConfig, _FixedPointSolver
from engine.lr_schedules import gradient_free_lr_factor
from engine.progress import NULL_PROGRESS


@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_gradient_free_schedule_has_no_warm_up_below_ten_iterations(n):
    # The reference computes W = N_c // 10 = 0 there: the cosine from step 0, cut at 0.8 N_c, then held.
    def reference(i):
        cut = 0.8 * n
        j = i if i < cut else max(math.ceil(cut) - 1, 0)
        return 0.5 * (1 + math.cos(math.pi * j / n))

    assert [gradient_free_lr_factor(i, n) for i in range(n)] == pytest.approx([reference(i) for i in range(n)])


def test_gradient_free_schedule_warm_up_from_ten_iterations_on():
    assert gradient_free_lr_factor(0, 20) == pytest.approx(0.5)          # W = 2: starts at lr / W, not 0
    assert gradient_free_lr_factor(1, 20) == pytest.approx(1.0)
    assert gradient_free_lr_factor(99, 100) == pytest.approx(0.12843, abs=1e-5)


def test_backward_euler_halving_applies_to_the_next_update_like_reduce_lr_on_plateau():
    """The solver's step sizes equal those of SGD driven by torch's ReduceLROnPlateau stepped after each update."""
    cfg = DiffusionInversionConfig(exact_lr=0.5, exact_warmup=0, exact_tolerance=0.0, stall_patience=3,
                                   stall_rel_improvement=1e-4)
    losses = [10.0, 9.0, 9.0, 9.0, 9.0, 9.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    calls = iter(range(len(losses)))

    def residual(x):          # r with |r|² = the scripted loss, pointing along +1
        return torch.full_like(x, math.sqrt(losses[next(calls)] / x.numel()))

    x0 = torch.zeros(1, 4)
    x, *_ = _FixedPointSolver(cfg, len(losses)).solve(x0.clone(), residual, NULL_PROGRESS)

    p = torch.nn.Parameter(torch.zeros(1, 4))
    opt = torch.optim.SGD([p], lr=0.5)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=3, threshold=1e-4,
                                                       threshold_mode="rel")
    for loss in losses:
        p.grad = torch.full_like(p, math.sqrt(loss / p.numel()))
        opt.step()
        sched.step(loss)
    np.testing.assert_allclose(x.numpy(), p.detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("guidance, uses", [(0.0, False), (0.5, False), (1.0, False), (1.5, True), (7.5, True)])
def test_classifier_free_guidance_only_above_one(guidance, uses):
    assert Conditioning("a prompt", guidance).uses_guidance is uses


def test_exact_inversion_cap_reaches_the_config(tiny_ddim_dir):
    from engine.model_loader import load_model
    from engine.options import AnalysisOptions
    from forensics_app.cli import build_parser

    model = load_model(str(tiny_ddim_dir), device="cpu")
    assert AnalysisOptions().to_config(model).diffusion.exact_iterations == 50          # dec-inv's default
    args = build_parser().parse_args(["scan", "x.png", "--exact-iterations", "7"])
    assert AnalysisOptions(exact_iterations=args.exact_iterations).to_config(model).diffusion.exact_iterations == 7


def test_generate_takes_the_reference_grid(tiny_ddim_dir, tmp_path):
    from PIL import Image

    from forensics_app.cli import main

    common = ["generate", "--model", str(tiny_ddim_dir), "--no-watermark", "--count", "1", "--steps", "5", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "d")]) == 0
    assert main(common + ["--out", str(tmp_path / "r"), "--grid", "reference"]) == 0
    d = np.asarray(Image.open(tmp_path / "d" / "clean_00000.png"))
    r = np.asarray(Image.open(tmp_path / "r" / "clean_00000.png"))
    assert d.shape == r.shape and not np.array_equal(d, r)     # another grid, another sample from the same seed
