"""Step-size schedules of the decoder-inversion papers (docs/algorithms.md §1.4), as LambdaLR factors."""

from __future__ import annotations

import math


def gradient_free_lr_factor(step: int, iterations: int) -> float:
    """Hong et al. 2024's schedule for the gradient-free Adam: N_c = min(N, 100), W = N_c // 10; linear
    warm-up starting at 1/W (not 0); then the cosine that would reach 0 at N_c, cut at 0.8·N_c; after
    that the last value is held (0.12843 for N ≥ 100, 0.17861 for N = 20). Below 10 iterations W is 0:
    no warm-up at all, the cosine from step 0 (as the reference code does)."""
    n_c = min(iterations, 100)
    warmup = n_c // 10

    def raw(i: int) -> float:
        if i < warmup:
            return (i + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (i - warmup) / (n_c - warmup)))

    cut = 0.8 * n_c
    if step < cut:
        return raw(step)
    last = math.ceil(cut) - 1      # the last step index below the cut
    return raw(max(last, 0))
