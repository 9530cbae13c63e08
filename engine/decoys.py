"""Decoy keys and the max-statistic p-value that corrects a search (docs/algorithms.md §9).

A search over K candidate transforms (and N keys) reports the best of many correlated tests; its smallest
p-value is not a p-value. Two corrections that stay valid whatever the dependence between the candidates:

* Bonferroni: p* = min(1, K·N·min p).
* Decoy keys: draw M keys from the distribution the real keys came from. Under H0 (the image does not carry the
  real keys) the real key set is exchangeable with every decoy set, so with S = max over (candidate, key) of
  −log p, p* = (1 + #{j: S_j ≥ S_real}) / (M + 1) is exact — and costs only scoring, since every candidate's
  z_T is already computed. It cannot go below 1/(M + 1). Exactness needs the real keys to have been drawn like
  the decoys (dec-inv-style per-ring constants, `engine.treering.new_random_keys`); keys chosen by hand make it
  approximate, and Bonferroni is then the one to rely on.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np
import torch
from scipy import stats

from engine.treering import (DEFAULT_SCORE_TARGET, KeySet, ScoreTarget, TreeRingKey, dec_inv_ring_values, default_scale,
                             fft_latent)
from engine.treering_scoring import _independent_coefficients, _stacked_parts, p_value


def draw_decoy_key(key: TreeRingKey, rng: np.random.Generator, key_id: str) -> TreeRingKey:
    """A key of the same geometry and kind as `key`, its random part drawn afresh: per-ring constants like
    `new_random_keys` (factors U(0.5, 1.5) at the default scale for "values"), a new seed for "ring"/"rand"."""
    if key.pattern == "values":
        factors = rng.uniform(0.5, 1.5, size=key.radius)
        return replace(key, id=key_id, ring_values=dec_inv_ring_values(factors, default_scale(key.latent_shape)),
                       description="decoy")
    if key.pattern in ("ring", "rand"):
        return replace(key, id=key_id, seed=int(rng.integers(0, 2**62)), description="decoy")
    raise ValueError(f"key {key.id!r}: no decoy distribution is known for pattern {key.pattern!r} "
                     "(only per-ring values and seeded ring/rand keys); use the Bonferroni p-value")


def draw_decoy_sets(keys: KeySet, count: int, seed: int = 0) -> list[KeySet]:
    """`count` decoy key sets, each as many keys as `keys`, seeded (the same seed gives the same decoys)."""
    rng = np.random.default_rng(seed)
    return [KeySet(tuple(draw_decoy_key(k, rng, f"decoy{j}_{n}") for n, k in enumerate(keys.keys)))
            for j in range(count)]


def _same_geometry(keys: Sequence[TreeRingKey]) -> bool:
    first = keys[0]
    return all((k.latent_shape, k.radius, k.channel, k.centre) == (first.latent_shape, first.radius, first.channel,
                                                                   first.centre) for k in keys)


def p_value_matrix(z_t: torch.Tensor, keys: Sequence[TreeRingKey],
                   target: ScoreTarget = DEFAULT_SCORE_TARGET) -> np.ndarray:
    """(B, len(keys)) Tree-Ring p-values, equal to `engine.treering_scoring.p_value` per key; keys sharing one mask
    (the decoys of a key) are scored in one vectorised pass."""
    if target != "effective" or not _same_geometry(keys):
        return np.stack([p_value(z_t, k, target) for k in keys], axis=1)
    first = keys[0]
    full, real = _independent_coefficients(first)
    f = _stacked_parts(fft_latent(z_t.float())[:, first.channel], full, real)        # (B, n)
    expected = torch.zeros((len(keys), *first.latent_shape[1:]), dtype=torch.complex64)
    mask2d = torch.from_numpy(first.mask_2d())
    for i, k in enumerate(keys):
        expected[i][mask2d] = k.masked_target(target)
    t = _stacked_parts(expected, full, real)                                          # (N, n)
    sigma2 = f.var(dim=-1, unbiased=True)[:, None]                                     # (B, 1)
    chi = ((f**2).sum(-1)[:, None] - 2 * f @ t.T + (t**2).sum(-1)[None, :]) / sigma2
    lam = (t**2).sum(-1)[None, :] / sigma2
    return stats.ncx2.cdf(chi.clamp_min(0).numpy(), df=f.shape[-1], nc=lam.numpy())


def search_statistic(p: np.ndarray) -> float:
    """max over every (candidate, key) of −log p: larger = more watermark-like."""
    with np.errstate(divide="ignore"):
        return float(np.max(-np.log(np.asarray(p, dtype=np.float64))))


def bonferroni(min_p: float, tests: int) -> float:
    return float(min(1.0, tests * min_p))


def decoy_p_value(real_statistic: float, decoy_statistics: Sequence[float]) -> float:
    """(1 + #{decoys ≥ real}) / (M + 1)."""
    d = np.asarray(decoy_statistics, dtype=np.float64)
    return float((1 + np.count_nonzero(d >= real_statistic)) / (len(d) + 1))


def decoy_statistics(z_t: torch.Tensor, decoy_sets: Sequence[KeySet],
                     target: ScoreTarget = DEFAULT_SCORE_TARGET) -> np.ndarray:
    """S_j = max over candidates (the batch of z_t) and the keys of decoy set j, for every j."""
    flat = [k for s in decoy_sets for k in s.keys]
    p = p_value_matrix(z_t, flat, target).reshape(z_t.shape[0], len(decoy_sets), -1)
    with np.errstate(divide="ignore"):
        return (-np.log(p)).max(axis=(0, 2))
