"""Scoring recovered initial noise against Tree-Ring keys (docs/algorithms.md §3–§4): the L1 distance and
p-value of each key (detection), the family-wise verdict, and the pairwise exclusion test (identification).

The keys themselves (geometry, patterns, files, injection) are `engine.treering`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from scipy import stats

from engine.treering import (DEFAULT_SCORE_TARGET, Centre, KeySet, ScoreTarget, TreeRingKey, circle_mask,
                             fft_latent, ifft_latent)

def l1_distance(z: torch.Tensor, key: TreeRingKey, target: ScoreTarget = DEFAULT_SCORE_TARGET) -> torch.Tensor:
    """Mean |F(z)[mask] − key[mask]| per latent in the batch (lower = closer to the key)."""
    spectrum = fft_latent(z)
    mask = key.mask().to(z.device)
    target = key.masked_target(target).to(z.device)
    return (spectrum[:, mask] - target).abs().mean(dim=-1)


def _independent_coefficients(key: TreeRingKey) -> tuple[torch.Tensor, torch.Tensor]:
    return _independent_positions(key.latent_shape[1], key.radius, key.centre)


@functools.lru_cache(maxsize=256)
def _independent_positions(n: int, radius: int, centre: Centre) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked positions whose values are statistically independent for a real latent: F(−p) = conj F(p),
    so of a mirrored pair inside the mask only one is kept, and a self-conjugate bin (DC) carries only a
    real part. Returns (complex positions, real-only positions) as (k, 2) row/column index tensors."""
    mask = circle_mask(n, radius, centre)
    full, real = [], []
    for r, c in map(tuple, np.argwhere(mask)):
        mirror = ((n - r) % n, (n - c) % n)
        if mirror == (r, c):
            real.append((r, c))
        elif not (mask[mirror] and mirror < (r, c)):
            full.append((r, c))
    as_index = lambda rows: torch.tensor(rows, dtype=torch.long).reshape(-1, 2)
    return as_index(full), as_index(real)


def _stacked_parts(spectrum: torch.Tensor, full: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Real and imaginary parts of the complex positions, and the real parts of the self-conjugate ones
    scaled by 1/√2 so that every entry has the same variance under unit Gaussian noise."""
    a = spectrum[..., full[:, 0], full[:, 1]]
    parts = [a.real, a.imag]
    if len(real):
        parts.append(spectrum[..., real[:, 0], real[:, 1]].real / np.sqrt(2.0))
    return torch.cat(parts, dim=-1).double()


def p_value(z: torch.Tensor, key: TreeRingKey, target: ScoreTarget = DEFAULT_SCORE_TARGET) -> np.ndarray:
    """p-value per latent that the masked spectrum is this close to the key by chance: χ = Σ((F − key)/σ)²
    against a non-central χ² with n values and λ = Σ key²/σ², σ the sample std (ddof 1) of the suspect's
    own values. Small ⇒ closer to the key than chance.

    "reference": the papers' test over all real+imag parts of the mask. It counts mirrored coefficients
    twice, so it is anti-conservative: on exact Gaussian noise ≈ 3 % of latents fall below p = 0.01.
    "effective" (default): the same test on the independent coefficients only (see
    `_independent_coefficients`); measured conservative: ≈ 0.3–0.6 % below p = 0.01, none below 0.001."""
    spectrum = fft_latent(z)
    if target == "reference":
        mask = key.mask().to(z.device)
        f = spectrum[:, mask]
        t = key.masked_target(target).to(z.device)
        f_ri = torch.cat([f.real, f.imag], dim=-1).double()
        t_ri = torch.cat([t.real, t.imag]).double()
    else:
        full, real = _independent_coefficients(key)
        expected = torch.zeros(key.latent_shape, dtype=torch.complex64)
        expected[key.mask()] = key.masked_target(target)
        f_ri = _stacked_parts(spectrum[:, key.channel], full, real)
        t_ri = _stacked_parts(expected[key.channel].to(z.device), full, real)
    sigma = f_ri.std(dim=-1, keepdim=True, unbiased=True)
    lam = ((t_ri**2) / sigma**2).sum(dim=-1)
    chi = (((f_ri - t_ri) / sigma) ** 2).sum(dim=-1)
    return stats.ncx2.cdf(chi.cpu().numpy(), df=f_ri.shape[-1], nc=lam.cpu().numpy())


def key_pattern(key: TreeRingKey, target: ScoreTarget = DEFAULT_SCORE_TARGET) -> torch.Tensor:
    """The (H, W) real latent-space pattern of the key on its channel: the inverse FFT of the masked coefficients
    a watermarked latent is expected to carry, zero elsewhere (what injection adds to that channel's masked part)."""
    expected = torch.zeros(key.latent_shape, dtype=torch.complex64)
    expected[key.mask()] = key.masked_target(target)
    return ifft_latent(expected[None])[0][key.channel]


def covered_key_residuals(z: torch.Tensor, keys: KeySet, covered: np.ndarray,
                          target: ScoreTarget = DEFAULT_SCORE_TARGET) -> np.ndarray:
    """(K,) for one (C, H, W) latent: the least-squares residual Σ (z − g·w_k)² over the latent pixels `covered`
    ((H, W) bool) of the key channel, with each key's pattern w_k (`key_pattern`) fitted at its best gain g ≥ 0.
    The gain is free because inversion returns the ring attenuated (about half its written size on `demo`), by an
    amount no key should be charged for; a negative gain would be the opposite of a watermark. Where a
    re-alignment leaves area uncovered (a rotation's corners), the Fourier coefficients mix the fill into every
    ring; these residuals leave it out (docs/algorithms.md §6). Keys must share a channel."""
    channels = {k.channel for k in keys.keys}
    if len(channels) != 1:
        raise ValueError("covered-area key residuals need keys on one channel")
    m = torch.from_numpy(np.asarray(covered, dtype=bool))
    if m.shape != tuple(z.shape[-2:]) or not bool(m.any()):
        raise ValueError(f"the covered area {tuple(m.shape)} does not match the latent {tuple(z.shape[-2:])} or is empty")
    zc = z[channels.pop()].double()[m]
    w = torch.stack([key_pattern(k, target).double()[m] for k in keys.keys])
    dot, energy = w @ zc, (w ** 2).sum(dim=1)
    gain = torch.clamp(dot / energy, min=0.0)
    return ((zc ** 2).sum() - 2 * gain * dot + gain ** 2 * energy).numpy()


@dataclass(frozen=True)
class KeyScore:
    key_id: str
    l1: float
    p_value: float


@dataclass(frozen=True)
class Verdict:
    """The finding (numbers) and its reading, kept apart. `predicted_key` is None for "no watermark"."""

    predicted_key: str | None
    nearest_key: str               # argmin L1, the reference classifier's answer (it has no "none")
    nearest_l1: float
    nearest_p_value: float
    fpr: float                     # the family-wise false-positive level asked for
    keys_tested: int
    corrected_threshold: float     # fpr / keys_tested (Bonferroni over the K keys)

    @property
    def detected(self) -> bool:
        return self.predicted_key is not None

    def finding(self) -> str:
        return (f"nearest key {self.nearest_key}: L1 {self.nearest_l1:.3f}, p = {self.nearest_p_value:.3g} "
                f"({self.keys_tested} key(s) tested; threshold {self.corrected_threshold:.3g} = "
                f"{self.fpr:g} / {self.keys_tested})")

    def interpretation(self) -> str:
        if self.detected:
            return (f"The recovered initial noise is consistent with key {self.predicted_key} at a family-wise "
                    f"false-positive level of {self.fpr:g}. This is evidence, not proof of origin: a Tree-Ring "
                    f"pattern can be forged onto images the key holder never made.")
        return (f"No watermark detected at a family-wise false-positive level of {self.fpr:g}. This is not "
                f"proof of absence: compression, cropping, rotation or regeneration weaken the ring.")


def score_keys(z_t: torch.Tensor, keys: KeySet, target: ScoreTarget = DEFAULT_SCORE_TARGET) -> list[list[KeyScore]]:
    """Per latent in the batch, the L1 distance and p-value for every key (in key-set order)."""
    per_key = [(k.id, l1_distance(z_t, k, target).cpu().numpy(), p_value(z_t, k, target)) for k in keys.keys]
    return [[KeyScore(kid, float(l1[b]), float(p[b])) for kid, l1, p in per_key] for b in range(z_t.shape[0])]


def decide(scores: Sequence[KeyScore], fpr: float = 0.01) -> Verdict:
    """Nearest key by L1 (ties → lowest index, like the reference); a watermark is reported only if that
    key's p-value is below fpr / K."""
    if not 0 < fpr < 1:
        raise ValueError("the false-positive level must be in (0, 1)")
    best = min(range(len(scores)), key=lambda i: (scores[i].l1, i))
    k = len(scores)
    threshold = fpr / k
    s = scores[best]
    return Verdict(predicted_key=s.key_id if s.p_value < threshold else None, nearest_key=s.key_id,
                   nearest_l1=s.l1, nearest_p_value=s.p_value, fpr=fpr, keys_tested=k,
                   corrected_threshold=threshold)


def classify_nearest(scores: Sequence[KeyScore]) -> str:
    """The reference classifier: argmin L1 over keys (no 'no watermark' outcome)."""
    return min(scores, key=lambda s: s.l1).key_id if scores else ""


# -- identification: which key, tested against the others -----------------------------------------------

def shares_geometry(keys: KeySet) -> bool:
    """Whether all keys mark the same coefficients (shape, channel, radius, centre), which the pairwise
    identification test needs: it compares the keys on one common set of coefficients."""
    if not all(isinstance(k, TreeRingKey) for k in keys.keys):
        return False                  # other schemes (a key vault) have no ring geometry
    first = keys.keys[0]
    return all((k.latent_shape, k.channel, k.radius, k.centre) == (first.latent_shape, first.channel, first.radius,
                                                                   first.centre) for k in keys.keys)


def exclusion_statistics(z: torch.Tensor, keys: KeySet, target: ScoreTarget = DEFAULT_SCORE_TARGET
                         ) -> tuple[np.ndarray, int] | None:
    """Per latent and key j, how strongly the evidence contradicts "watermarked with key j" in favour of
    another key of the set (docs/algorithms.md §4): (B, K) statistics and their degrees of freedom.

    Model under H_j: the independent masked coefficients are f = α·t_j + ε with an unknown gain α (the
    inversion returns only part of the ring) and white noise ε. With α fitted by least squares, the residual's
    component along the part of t_k − t_j that t_j cannot explain is, under H_j, a Student t with n − 2
    degrees of freedom; the statistic is the largest such t over the other keys k (large ⇒ the evidence leans
    to some other key beyond what key j explains). None when the keys do not share one geometry or there is
    only one key."""
    if len(keys) < 2 or not shares_geometry(keys):
        return None
    key0 = keys.keys[0]
    full, real = _independent_coefficients(key0)
    f = _stacked_parts(fft_latent(z)[:, key0.channel], full, real).cpu()        # (B, n)
    targets = []
    for k in keys.keys:
        expected = torch.zeros(k.latent_shape, dtype=torch.complex64)
        expected[k.mask()] = k.masked_target(target)
        targets.append(_stacked_parts(expected[k.channel], full, real))
    t = torch.stack(targets)                                                  # (K, n)
    n = f.shape[-1]
    out = np.full((f.shape[0], len(keys)), -np.inf)
    for j in range(len(keys)):
        tj = t[j]
        alpha = (f @ tj) / (tj @ tj)
        r = f - alpha[:, None] * tj[None]
        for k in range(len(keys)):
            if k == j:
                continue
            v = t[k] - ((t[k] @ tj) / (tj @ tj)) * tj
            norm = torch.linalg.vector_norm(v)
            if norm <= 1e-9 * torch.linalg.vector_norm(t[k]):
                continue                      # key k is a multiple of key j: no direction tells them apart
            s = r @ (v / norm)
            rest = ((r * r).sum(-1) - s * s).clamp_min(1e-300)
            stat = (s / torch.sqrt(rest / (n - 2))).numpy()
            out[:, j] = np.maximum(out[:, j], stat)
    return out, n - 2


def exclusion_p_values(statistics: np.ndarray, df: int, keys_tested: int) -> np.ndarray:
    """The analytic p-value of each exclusion statistic: Student t tail, Bonferroni over the K − 1 other keys."""
    return np.minimum(1.0, max(keys_tested - 1, 1) * stats.t.sf(statistics, df))
