"""Detection rates and their uncertainty, one definition each for the engine (`robustness`) and the benchmarks:
AUC, TPR at a false-positive level with WAVES' threshold rule, and binomial intervals (Wilson; Clopper–Pearson
and its one-sided bound, for the small counts of wrong-key attributions), the exact McNemar test of two rules on the
same items, and the spread of the level a finite calibration holds."""

from __future__ import annotations

import functools
import math

import numpy as np


def auc(positives, negatives) -> float:
    """P(positive > negative) + ½ P(tie) (Mann–Whitney)."""
    pos, neg = np.asarray(positives, float)[:, None], np.asarray(negatives, float)[None, :]
    if not pos.size or not neg.size:
        return float("nan")
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def tpr_at_fpr(positives, negatives, level: float) -> float:
    """WAVES' rule: the threshold with strictly fewer than level·n negatives above it."""
    neg = np.sort(np.asarray(negatives, float))[::-1]
    if not neg.size or not len(positives):
        return float("nan")
    allowed = max(0, math.ceil(level * neg.size) - 1)
    return float(np.mean(np.asarray(positives, float) > neg[allowed]))


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95 % at z = 1.96)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def mcnemar(right_a, right_b) -> tuple[int, int, float]:
    """Two rules read on the same items (boolean arrays, True where each is right): how many only A gets right,
    how many only B, and the exact two-sided McNemar p-value (binomial on the discordant items; 1 without any)."""
    from scipy.stats import binomtest

    a, b = np.asarray(right_a, dtype=bool), np.asarray(right_b, dtype=bool)
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    return only_a, only_b, float(binomtest(only_a, only_a + only_b).pvalue) if only_a + only_b else 1.0


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial interval."""
    from scipy.stats import beta

    if n == 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def upper_bound(k: int, n: int, level: float = 0.95) -> float:
    """Exact one-sided upper confidence bound of a binomial rate (e.g. wrong keys among those named)."""
    from scipy.stats import beta

    return 1.0 if n == 0 or k == n else float(beta.ppf(level, k + 1, n - k))


@functools.lru_cache(maxsize=64)      # the same (n, level) for every exhibit of a run
def calibrated_level_range(n: int, level: float, coverage: float = 0.95) -> tuple[float, float] | None:
    """The false-positive rate that an empirical p-value (r + 1)/(n + 1) over n calibration images gives at
    `level`, over the draw of the calibration: it is Beta(m, n + 1 − m) with m = ⌊level·(n + 1)⌋ (Vovk 2012,
    "Conditional validity of inductive conformal predictors"), so the level holds on average but one calibration
    runs above or below it. The central `coverage` range, or None when no p-value reaches the level (m = 0)."""
    from scipy.stats import beta

    m = int(math.floor(level * (n + 1) + 1e-9))
    if m < 1:
        return None
    tail = (1 - coverage) / 2
    return float(beta.ppf(tail, m, n + 1 - m)), float(beta.ppf(1 - tail, m, n + 1 - m))
