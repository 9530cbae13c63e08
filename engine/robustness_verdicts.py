"""The robustness study read as the tool concludes (docs/algorithms.md, robustness study): for each altered image,
the conclusion a scan would draw (`engine.verdicts.conclude`, with the calibration the scan would use for this
model, keys and settings), and per row the counts an examiner's error rates come from.

A positive is *defended* when its conclusion is a detection that is not "outside calibration": evidence the
calibration does not cover (a rotation's black corners, a crop's changed noise) is at most inconclusive and
says so, which is a stated refusal, not a false positive. The re-alignment search has its own conclusion
(`engine.search_verdict.search_conclusion`): corrected for the search, never calibrated, never naming a key.

The evidence a conclusion gets is read by `engine.latent_evidence.LatentReader`, as a scan reads it;
tests/test_robustness_verdicts.py checks that both give the same conclusions on the same images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from engine.latent_evidence import LatentReader
from engine.noise_statistics import evidence_statistics
from engine.verdicts import NOT_ANALYSED, OUTSIDE_CALIBRATION, Conclusion, conclude

if TYPE_CHECKING:
    from engine.calibration import CalibrationChoice, MethodCalibration


def study_calibration(model, keys, config) -> "CalibrationChoice":
    """What a default scan of this model with these keys and settings would use: the calibration shipped for
    a bundled model where its settings match, else none (`engine.calibration.choose_calibration`)."""
    from engine.calibration import choose_calibration

    return choose_calibration(model, keys, config)


def calibration_label(choice: "CalibrationChoice", method: str) -> str:
    """Which calibration a method's conclusions used, by origin and content hash, or why none (one line)."""
    cal = choice.calibration
    if cal is not None and method in choice.usable:
        return f"{choice.origin}: {cal.describe()}, sha256 {cal.content_sha256[:12]}"
    return f"{choice.origin}: {choice.status(method)}"


def latent_conclusions(keys, z_t: torch.Tensor, pixels: np.ndarray | torch.Tensor, config, method: str,
                       calibration: "MethodCalibration | None") -> list[Conclusion]:
    """One conclusion per image from its recovered z_T (B, C, h, w) and the pixels that were inverted
    (B, 3, T, T) in [−1, 1], at `config.fpr` with `calibration` (None: uncalibrated). An image whose z_T or
    scores are not finite is `not_analysed`, as the scan makes it a failure."""
    x = pixels.float().cpu().numpy() if isinstance(pixels, torch.Tensor) else np.asarray(pixels, np.float32)
    return conclusions_from_latents(keys, z_t, [evidence_statistics(xi) for xi in x], config.fpr,
                                    config.score_target, method, calibration)


def conclusions_from_latents(keys, z_t: torch.Tensor | np.ndarray, pixel_statistics: Sequence[dict], fpr: float,
                             score_target: str, method: str, calibration: "MethodCalibration | None"
                             ) -> list[Conclusion]:
    """`latent_conclusions` when the evidence's own statistics (`engine.noise_statistics.evidence_statistics`,
    one dict per image) were kept instead of its pixels: stored latents read against any calibration."""
    evidence, finite = LatentReader(keys, score_target).read(z_t, pixel_statistics)
    return [conclude(e, fpr, calibration, method) if ok else NOT_ANALYSED for e, ok in zip(evidence, finite)]


def defended(c: Conclusion) -> bool:
    """A detection the conclusion stands behind: detected and not outside what the calibration covers."""
    return c.detected and c.calibration != OUTSIDE_CALIBRATION


def verdict_counts(conclusions: Sequence[Conclusion], truths: Sequence[str | None]) -> dict:
    """The `Row` fields of the tool's conclusions; `truths[i]` is image i's key id (None: not watermarked)."""
    if len(conclusions) != len(truths):
        raise ValueError(f"{len(conclusions)} conclusions for {len(truths)} images")
    clean = [c for c, t in zip(conclusions, truths) if t is None]
    marked = [(c, t) for c, t in zip(conclusions, truths) if t is not None]
    n = len(marked)
    return {
        "verdict_null_flagged": sum(defended(c) for c in clean),
        "verdict_null_outside": sum(c.calibration == OUTSIDE_CALIBRATION for c in clean),
        "verdict_detected": sum(defended(c) for c, _ in marked) / n if n else float("nan"),
        "verdict_identified": sum(c.outcome == "identified" and c.key == t for c, t in marked) / n if n else float("nan"),
        "verdict_wrong_key": sum(c.outcome == "identified" and c.key != t for c, t in marked),
    }
