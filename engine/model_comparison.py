"""Which candidate model explains an exhibit: the same evidence analysed under several models, side by side.

Per exhibit and model: the conclusion (detection and identification), the decoder-inversion residuals and the
round-trip PSNR (regenerate from the recovered z_T with that model and compare with the evidence). The
statement is deliberately modest (docs/algorithms.md §4): models that share a VAE and have similar generators
recover similar z_T from the same image, so a positive under two models is common and does not say which one
made it. The round trip is compared only between models of one kind: a one-step flow's backward-Euler
inversion is a fixed point of its own sampler, so its round trip is near-exact for *any* image, while naive
DDIM inversion is approximate for every image — across kinds the numbers say nothing about origin. A
round-trip difference below `ROUND_TRIP_MARGIN_DB` is treated as no difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from engine.analysis import AnalysisRun
from engine.verdicts import OUTSIDE_CALIBRATION, Conclusion

# A heuristic, stated with every comparison: measured in benchmarks/results/model_comparison/.
ROUND_TRIP_MARGIN_DB = 1.0


@dataclass(frozen=True)
class ModelExplanation:
    model_id: str
    model_kind: str
    conclusion: Conclusion
    z0_residual: float
    pixel_psnr_db: float
    round_trip_psnr_db: float

    def to_json_dict(self) -> dict:
        return {"model": self.model_id, "model_kind": self.model_kind, "conclusion": self.conclusion.to_json_dict(), "z0_residual": self.z0_residual,
                "pixel_psnr_db": self.pixel_psnr_db, "round_trip_psnr_db": self.round_trip_psnr_db}


@dataclass(frozen=True)
class ExhibitComparison:
    path: str
    sha256: str
    models: tuple[ModelExplanation, ...]
    statement: str
    better_model: str | None          # None when no model, or no single model, explains the evidence better

    def to_json_dict(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "statement": self.statement,
                "better_model": self.better_model, "round_trip_margin_db": ROUND_TRIP_MARGIN_DB,
                "models": [m.to_json_dict() for m in self.models]}


def _explanation(run: AnalysisRun, image) -> ModelExplanation:
    c = image.conclusion
    r = image.methods.get(c.method) or next(iter(image.methods.values()))
    return ModelExplanation(run.model_id, run.model_kind, c, r.z0_residual, r.pixel_psnr_db, r.round_trip_psnr_db)


def statement_for(explanations: Sequence[ModelExplanation]) -> tuple[str, str | None]:
    """The plain statement, and the model that explains the evidence better if one does."""
    positive = [e for e in explanations if e.conclusion.detected and e.conclusion.calibration != OUTSIDE_CALIBRATION]
    if not positive:
        return "No candidate model finds a watermark in this exhibit.", None
    if len(positive) == 1:
        e = positive[0]
        return (f"Only {e.model_id} finds a watermark ({e.conclusion.headline().lower()}); the other model(s) do "
                f"not.", e.model_id)
    ranked = sorted(positive, key=lambda e: -(e.round_trip_psnr_db if np.isfinite(e.round_trip_psnr_db) else -1e9))
    best, second = ranked[0], ranked[1]
    gap = best.round_trip_psnr_db - second.round_trip_psnr_db
    names = " and ".join(e.model_id for e in positive)
    if len({e.model_kind for e in positive}) > 1:
        return (f"{names} all find a watermark and cannot be told apart on this evidence: they are of different "
                "kinds, whose round trips are not comparable (a one-step flow inverts exactly any image).", None)
    if not np.isfinite(gap) or gap < ROUND_TRIP_MARGIN_DB:
        return (f"{names} all find a watermark and cannot be told apart on this evidence (round trip within "
                f"{ROUND_TRIP_MARGIN_DB:g} dB: e.g. a shared autoencoder and similar generators).", None)
    return (f"{names} find a watermark; {best.model_id} explains the evidence better (round trip "
            f"{best.round_trip_psnr_db:.1f} dB vs {second.round_trip_psnr_db:.1f} dB under {second.model_id}).",
            best.model_id)


def compare_models(runs: Sequence[AnalysisRun]) -> list[ExhibitComparison]:
    """One comparison per exhibit analysed under every run's model (matched by SHA-256, in the first run's
    order); an exhibit missing from a run (failed there) is compared over the models that analysed it."""
    by_hash = [{im.evidence.sha256: im for im in run.images} for run in runs]
    out = []
    seen = set()
    for run in runs:
        for im in run.images:
            h = im.evidence.sha256
            if h in seen:
                continue
            seen.add(h)
            exps = tuple(_explanation(r, table[h]) for r, table in zip(runs, by_hash) if h in table)
            statement, better = statement_for(exps)
            out.append(ExhibitComparison(im.evidence.path, h, exps, statement, better))
    return out
