"""From the clean latent z0 to the initial noise zT, and back (docs/algorithms.md §2).

DDIM models (ε- or v-prediction; SD 2.1, the `demo` model):
* naive DDIM inversion — each upward step evaluates the network at the *current* latent with the
  *target* timestep label, the convention of diffusers' `DDIMInverseScheduler`;
* backward-Euler exact inversion (Hong et al. 2023, Alg. 1) — per step, solve "the DDIM step down from
  z_t' lands on z_t" by a damped fixed-point iteration started at the naive estimate.
One-step rectified flows (InstaFlow, `demo-flow`): generation is z0 = zT + v(zT, 1000); inversion solves
that equation for zT by the same damped fixed-point iteration, started at z0 − v(z0, 1000).

Generation here is the exact mirror of the inversion on the same timestep grid, so a round trip tests
the inversion alone. Two grids: "diffusers" (`DDIMScheduler.set_timesteps`, e.g. 1, 21, …, 981 for SD
2.1) and "reference" (DPM-Solver's linspace grid of the papers' code, needed to reproduce their numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from diffusers import DDIMScheduler

from engine.denoiser import Denoiser
from engine.limits import require_choice, require_int, require_number
from engine.model_kinds import InversionMethod
from engine.progress import NULL_PROGRESS, Phase, Progress, ProgressEvent

Grid = Literal["diffusers", "reference"]
FLOW_TIME = 1000.0      # InstaFlow's time label at the noise end


@dataclass(frozen=True)
class DiffusionInversionConfig:
    method: InversionMethod = "naive"
    steps: int = 50                       # DDIM models only
    grid: Grid = "diffusers"
    # backward-Euler fixed-point rules (inv-dpm): η with linear warm-up, halved after a stall, stop at tol
    exact_iterations: int = 50            # per DDIM step; the flow inversion uses flow_iterations
    flow_iterations: int = 100
    exact_lr: float = 0.5
    exact_warmup: int = 20
    exact_tolerance: float = 1e-3         # summed squared residual per latent
    stall_patience: int = 20
    stall_rel_improvement: float = 1e-4

    def __post_init__(self) -> None:
        require_choice(self.method, "the diffusion inversion", ("naive", "backward-euler"))
        require_int(self.steps, "inversion steps (--steps)", 1, 1000)
        require_choice(self.grid, "the timestep grid", ("diffusers", "reference"))
        require_int(self.exact_iterations, "backward-Euler iterations per step (--exact-iterations)", 1, 10_000)
        require_int(self.flow_iterations, "flow inversion iterations", 1, 10_000)
        require_number(self.exact_lr, "the backward-Euler step", 0.0, 10.0, low_open=True)
        require_int(self.exact_warmup, "the backward-Euler warm-up", 0, 10_000)
        require_number(self.exact_tolerance, "the backward-Euler tolerance", 0.0, 1e6)
        require_int(self.stall_patience, "the stall patience", 0, 10_000)
        require_number(self.stall_rel_improvement, "the relative improvement", 0.0, 1.0)

    def label(self) -> str:
        return f"{self.method}, {self.steps} steps, {self.grid} grid"


@dataclass(frozen=True)
class TimestepPair:
    t_low: int               # the less noisy end (may be −steps for the final step to "t = −1" → ᾱ_final)
    t_high: int              # the noisier end and the network's timestep label
    alpha_low: float
    alpha_high: float


@dataclass(frozen=True)
class DiffusionInversionResult:
    z_t: torch.Tensor                     # (B, C, h, w) fp32, the recovered initial noise
    iterations: np.ndarray                # fixed-point iterations used per step (0 for naive)
    final_residual: np.ndarray            # (B,) summed squared residual of the last solved equation (nan for naive DDIM)
    residual_trace: np.ndarray | None     # flow inversion: (B, iters) residual per iteration
    config: DiffusionInversionConfig


def timestep_pairs(scheduler_config: dict, steps: int, grid: Grid = "diffusers") -> list[TimestepPair]:
    """The (t, t') pairs walked by inversion in ascending order (generation walks them reversed)."""
    sched = DDIMScheduler.from_config(scheduler_config)
    alphas = sched.alphas_cumprod.double().numpy()
    n_train = sched.config.num_train_timesteps
    if grid == "diffusers":
        sched.set_timesteps(steps)
        highs = sorted(int(t) for t in sched.timesteps)
        ratio = n_train // steps
        final = float(sched.final_alpha_cumprod)
        return [TimestepPair(h - ratio, h, float(alphas[h - ratio]) if h - ratio >= 0 else final, float(alphas[h]))
                for h in highs]
    if grid == "reference":
        # DPM-Solver's linspace grid walked upwards with t = t' − n_train/steps; z0 is the t = 0 latent.
        highs = np.linspace(0, n_train - 1, steps + 1).round().astype(int)[1:]
        ratio = n_train // steps
        return [TimestepPair(int(h) - ratio, int(h), float(alphas[max(int(h) - ratio, 0)]), float(alphas[int(h)]))
                for h in highs]
    raise ValueError(f"unknown timestep grid {grid!r}")


def _to_epsilon(output: torch.Tensor, z: torch.Tensor, alpha: float, prediction_type: str) -> torch.Tensor:
    if prediction_type == "epsilon":
        return output
    if prediction_type == "v_prediction":
        return alpha**0.5 * output + (1 - alpha) ** 0.5 * z
    if prediction_type == "sample":
        return (z - alpha**0.5 * output) / (1 - alpha) ** 0.5
    raise ValueError(f"unsupported prediction type {prediction_type!r}")


def _move(z: torch.Tensor, eps: torch.Tensor, alpha_from: float, alpha_to: float) -> torch.Tensor:
    """The deterministic DDIM map between noise levels given ε: through the implied clean latent."""
    x0 = (z - (1 - alpha_from) ** 0.5 * eps) / alpha_from**0.5
    return alpha_to**0.5 * x0 + (1 - alpha_to) ** 0.5 * eps


def predicted_noise(denoiser: Denoiser, z_high: torch.Tensor, pair: TimestepPair, prediction_type: str) -> torch.Tensor:
    """The denoiser's ε at the pair's noisier end, whatever the network predicts."""
    return _to_epsilon(denoiser(z_high, pair.t_high), z_high, pair.alpha_high, prediction_type)


def ddim_step_down(denoiser: Denoiser, z_high: torch.Tensor, pair: TimestepPair, prediction_type: str) -> torch.Tensor:
    eps = predicted_noise(denoiser, z_high, pair, prediction_type)
    return _move(z_high, eps, pair.alpha_high, pair.alpha_low)


def ddim_step_up_naive(denoiser: Denoiser, z_low: torch.Tensor, pair: TimestepPair, prediction_type: str) -> torch.Tensor:
    eps = _to_epsilon(denoiser(z_low, pair.t_high), z_low, pair.alpha_low, prediction_type)
    return _move(z_low, eps, pair.alpha_low, pair.alpha_high)


def ddim_generate(denoiser: Denoiser, z_t: torch.Tensor, pairs: list[TimestepPair], prediction_type: str,
                  progress: Progress = NULL_PROGRESS) -> torch.Tensor:
    z = z_t.float()
    for i, pair in enumerate(reversed(pairs)):
        progress.check_cancelled()
        z = ddim_step_down(denoiser, z, pair, prediction_type)
        progress.report(ProgressEvent("DDIM sampling", i + 1, len(pairs), phase=Phase.SAMPLING))
    return z


class _FixedPointSolver:
    """Damped fixed-point iteration x ← x − η·r(x) with inv-dpm's rules, per latent in the batch: η warms
    up linearly, halves after `patience` iterations without a relative improvement, and a latent stops
    once its summed squared residual is below the tolerance."""

    def __init__(self, cfg: DiffusionInversionConfig, iterations: int):
        self.cfg, self.iterations = cfg, iterations

    def solve(self, x: torch.Tensor, residual_fn, progress: Progress, record: bool = False,
              stage: str | None = None, item: str = ""):
        """`stage` given: report each iteration as progress of that stage (the flow inversion's only loop)."""
        cfg, b = self.cfg, x.shape[0]
        dev = x.device
        scale = torch.ones(b, device=dev)                 # halvings of η
        best = torch.full((b,), float("inf"), device=dev)
        stall = torch.zeros(b, device=dev)
        done = torch.zeros(b, dtype=torch.bool, device=dev)
        trace = []
        loss = torch.full((b,), float("nan"), device=dev)
        used = 0
        for i in range(self.iterations):
            progress.check_cancelled()
            r = residual_fn(x)
            loss = r.flatten(1).pow(2).sum(1)
            if record:
                trace.append(loss)
            done |= loss < cfg.exact_tolerance
            if bool(done.all()):          # one host read per iteration: this solver decides when to stop
                break
            warm = min(1.0, (i + 1) / cfg.exact_warmup) if cfg.exact_warmup else 1.0
            eta = (cfg.exact_lr * warm * scale * (~done)).view(b, *([1] * (x.dim() - 1)))
            x = x - eta * r
            # After the step, like the reference's ReduceLROnPlateau: a halving applies to the *next* update.
            improved = loss < best * (1 - cfg.stall_rel_improvement)
            best = torch.where(improved, loss, best)
            stall = torch.where(improved, torch.zeros_like(stall), stall + 1)
            halve = stall > cfg.stall_patience
            scale = torch.where(halve, scale * 0.5, scale)
            stall = torch.where(halve, torch.zeros_like(stall), stall)
            used = i + 1
            if stage is not None:
                progress.report(ProgressEvent(stage, used, self.iterations, item, phase=Phase.DIFFUSION_INVERSION))
        return x, loss, used, (torch.stack(trace, 1) if trace else None)


def invert_ddim(denoiser: Denoiser, z0: torch.Tensor, scheduler_config: dict, cfg: DiffusionInversionConfig,
                progress: Progress = NULL_PROGRESS, item: str = "") -> DiffusionInversionResult:
    prediction_type = scheduler_config.get("prediction_type", "epsilon")
    pairs = timestep_pairs(scheduler_config, cfg.steps, cfg.grid)
    z = z0.float()
    iterations = []
    loss = torch.full((z.shape[0],), float("nan"))
    solver = _FixedPointSolver(cfg, cfg.exact_iterations)
    stage = "DDIM inversion" if cfg.method == "naive" else "backward-Euler inversion"
    for i, pair in enumerate(pairs):
        progress.check_cancelled()
        z_high = ddim_step_up_naive(denoiser, z, pair, prediction_type)
        if cfg.method == "backward-euler":
            target = z
            z_high, loss, used, _ = solver.solve(
                z_high, lambda x: ddim_step_down(denoiser, x, pair, prediction_type) - target, progress)
            iterations.append(used)
        else:
            iterations.append(0)
        z = z_high
        progress.report(ProgressEvent(stage, i + 1, len(pairs), item, phase=Phase.DIFFUSION_INVERSION))
    return DiffusionInversionResult(z_t=z, iterations=np.array(iterations), final_residual=loss.cpu().numpy(),
                                    residual_trace=None, config=cfg)


def flow_generate(denoiser: Denoiser, z_t: torch.Tensor) -> torch.Tensor:
    """One Euler step of a one-step rectified flow (dt = 1): z0 = zT + v(zT, 1000)."""
    return z_t.float() + denoiser(z_t, FLOW_TIME)


def invert_flow(denoiser: Denoiser, z0: torch.Tensor, cfg: DiffusionInversionConfig,
                progress: Progress = NULL_PROGRESS, item: str = "") -> DiffusionInversionResult:
    z0 = z0.float()
    z_t = z0 - denoiser(z0, FLOW_TIME)
    if cfg.method == "naive":
        residual = (flow_generate(denoiser, z_t) - z0).flatten(1).pow(2).sum(1)
        return DiffusionInversionResult(z_t=z_t, iterations=np.array([0]), final_residual=residual.cpu().numpy(),
                                        residual_trace=None, config=cfg)

    stage = "backward-Euler flow inversion"
    z_t, loss, used, trace = _FixedPointSolver(cfg, cfg.flow_iterations).solve(
        z_t, lambda x: flow_generate(denoiser, x) - z0, progress, record=True, stage=stage, item=item)
    progress.report(ProgressEvent(stage, cfg.flow_iterations, cfg.flow_iterations, item,
                                    phase=Phase.DIFFUSION_INVERSION))
    return DiffusionInversionResult(z_t=z_t, iterations=np.array([used]), final_residual=loss.cpu().numpy(),
                                    residual_trace=None if trace is None else trace.cpu().numpy(), config=cfg)
