"""Whether the keys of a set can be told apart after inversion, before any image is made (a stated simulation).

The identification test (`engine.treering_scoring.exclusion_statistics`) separates key k from key j by the part of
t_k − t_j that t_j cannot explain. On a recovered z_T the ring comes back with a gain α < 1 over noise whose
independent Fourier parts have variance about h·w/2 (white unit noise); so the test's expected statistic is
δ_jk = α·‖(t_k − t_j)⊥t_j‖ / √(h·w/2). To exclude the runner-up at level `level` (Bonferroni over K − 1) with
probability `power`, δ must reach z_{level/(K−1)} + z_power. α defaults to 0.5, about what the bundled models'
inversions return (benchmarks/results/ring_loss: ring amplitude 0.48 with the encoder, 0.60 gradient-free);
a calibration measures the real thing. docs/algorithms.md §4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

DEFAULT_GAIN = 0.5
DEFAULT_LEVEL = 0.01
DEFAULT_POWER = 0.9


@dataclass(frozen=True)
class PairSeparation:
    key_a: str
    key_b: str
    delta: float            # the smaller of δ_ab and δ_ba


@dataclass(frozen=True)
class Separability:
    pairs: tuple[PairSeparation, ...]
    required: float
    gain: float
    level: float
    power: float

    @property
    def closest(self) -> PairSeparation | None:
        return min(self.pairs, key=lambda p: p.delta) if self.pairs else None

    @property
    def ok(self) -> bool:
        return all(p.delta >= self.required for p in self.pairs)

    def warnings(self) -> list[str]:
        return [f"keys {p.key_a} and {p.key_b} are too close to be told apart reliably after inversion: expected "
                f"separation {p.delta:.2f}, {self.required:.2f} needed to exclude one at p ≤ {self.level:g} with "
                f"{self.power:.0%} power at a ring gain of {self.gain:g} (a simulation; calibrate on the model to "
                f"measure it)" for p in self.pairs if p.delta < self.required]


def required_separation(n_keys: int, level: float = DEFAULT_LEVEL, power: float = DEFAULT_POWER) -> float:
    return float(stats.norm.isf(level / max(n_keys - 1, 1)) + stats.norm.ppf(power))


def _targets(keys) -> tuple[np.ndarray, float]:
    import torch

    from engine.treering_scoring import _independent_coefficients, _stacked_parts

    first = keys.keys[0]
    full, real = _independent_coefficients(first)
    vectors = []
    for k in keys.keys:
        expected = torch.zeros(k.latent_shape, dtype=torch.complex64)
        expected[k.mask()] = k.masked_target("effective")
        vectors.append(_stacked_parts(expected[k.channel], full, real).numpy())
    h, w = first.latent_shape[1:]
    return np.stack(vectors), float(np.sqrt(h * w / 2))


def separability(keys, gain: float = DEFAULT_GAIN, level: float = DEFAULT_LEVEL,
                 power: float = DEFAULT_POWER) -> Separability:
    """δ for every pair of keys (keys of different geometry are compared only when they share one)."""
    from engine.treering_scoring import shares_geometry

    pairs: list[PairSeparation] = []
    if len(keys) > 1 and shares_geometry(keys):
        t, sigma = _targets(keys)
        for a in range(len(t)):
            for b in range(a + 1, len(t)):
                deltas = []
                for j, k in ((a, b), (b, a)):
                    deltas.append(gain * _delta(t[k], t[j]) / sigma)
                pairs.append(PairSeparation(keys.keys[a].id, keys.keys[b].id, min(deltas)))
    return Separability(tuple(pairs), required_separation(len(keys), level, power), gain, level, power)


def new_separable_keys(count: int, latent_shape, radius: int = 6, channel: int = 0, scale: float | None = None,
                       seed: int | None = None, prefix: str = "key", attempts: int = 20000, **criteria):
    """dec-inv-style random keys (per-ring constants scale·(2u − 1), u uniform in [0.5, 1.5]) drawn one by one,
    each kept only if it is separable from those already kept (`separability`); ValueError when `attempts`
    draws cannot make `count` such keys (use a larger radius or fewer keys)."""
    from engine.treering import KeySet, TreeRingKey, dec_inv_ring_values, default_scale

    scale = default_scale(latent_shape) if scale is None else scale
    rng = np.random.default_rng(seed)
    level, power = criteria.get("level", DEFAULT_LEVEL), criteria.get("power", DEFAULT_POWER)
    need = required_separation(count, level, power)
    gain = criteria.get("gain", DEFAULT_GAIN)
    best: list = []
    restarts = 20           # a first key in a crowded region can block the rest: start again from another
    for _ in range(restarts):
        kept: list = []
        vectors: list[np.ndarray] = []
        for _ in range(max(attempts // restarts, 1)):
            if len(kept) == count:
                return KeySet(tuple(kept))
            factors = rng.uniform(0.5, 1.5, size=radius)
            key = TreeRingKey(id=f"{prefix}{len(kept) + 1}", pattern="values", radius=radius, channel=channel,
                              latent_shape=tuple(latent_shape), ring_values=dec_inv_ring_values(factors, scale),
                              description="random ring key, drawn separable from the others of its set")
            (t,), sigma = _targets(KeySet((key,)))
            if all(min(_delta(t, u), _delta(u, t)) * gain / sigma >= need for u in vectors):
                kept.append(key)
                vectors.append(t)
        if len(kept) == count:
            return KeySet(tuple(kept))
        best = max(best, kept, key=len)
    raise ValueError(f"could not draw {count} separable keys of radius {radius} in {attempts} tries "
                     f"(got {len(best)}): use a larger --radius or fewer keys")


def _delta(tk: np.ndarray, tj: np.ndarray) -> float:
    """‖(t_k − t_j) ⊥ t_j‖: what separates key k from key j beyond a change of gain."""
    return float(np.linalg.norm(tk - (tk @ tj) / (tj @ tj) * tj))
