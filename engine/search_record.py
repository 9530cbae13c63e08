"""One exhibit's re-alignment search as the run keeps it (`ImageAnalysis.realignment`): the families searched, how
the intake brought the suspect to the model's size, each decoder inversion's `RealignmentResult` and the
conclusion drawn from it (`engine.search_verdict`). The scan JSON's "realignment" object and the case file
carry it in one form (`to_json_dict` / `from_json_dict`); the conclusions are stored as drawn, not redrawn
when a case is reopened. The plain analysis's conclusions are never changed by it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.progress import NULL_PROGRESS, Progress
from engine.realignment import RealignmentResult, SearchConfig, intake_note, realign_run
from engine.verdicts import Conclusion, image_conclusion


@dataclass(frozen=True)
class ImageSearch:
    families: tuple[str, ...]
    intake: str                              # how the suspect reached the model's size before the search
    results: dict[str, RealignmentResult]    # per decoder inversion
    conclusions: dict[str, Conclusion]       # per decoder inversion, at the run's level

    @property
    def conclusion(self) -> Conclusion:
        """The search's one conclusion: the deciding method's (as for the plain analysis), others' differences named."""
        return image_conclusion(self.conclusions)

    def to_json_dict(self) -> dict:
        return {"families": list(self.families), "intake": self.intake,
                "conclusion": self.conclusion.to_json_dict(),
                "methods": {m: {**r.to_json_dict(self.conclusions[m].fpr), "conclusion":
                                self.conclusions[m].to_json_dict()} for m, r in self.results.items()}}

    @classmethod
    def from_json_dict(cls, d: dict) -> "ImageSearch":
        """ValueError with the reason when `d` is not a search record."""
        if not isinstance(d, dict) or not isinstance(d.get("methods"), dict) or not d["methods"]:
            raise ValueError("a re-alignment search record needs its methods")
        families = d.get("families")
        if not isinstance(families, list) or not all(isinstance(f, str) for f in families):
            raise ValueError("a re-alignment search record's families are not a list of names")
        results, conclusions = {}, {}
        for m, md in d["methods"].items():
            results[m] = RealignmentResult.from_json_dict(md)
            conclusions[m] = Conclusion.from_json_dict(md.get("conclusion"))
        return cls(tuple(families), str(d.get("intake", "")), results, conclusions)


def search_image(image, results: dict[str, RealignmentResult], search: SearchConfig, fpr: float) -> ImageSearch:
    return ImageSearch(tuple(search.families), intake_note(image), dict(results),
                       {m: r.conclusion(fpr) for m, r in results.items()})


def search_run(model, keys, run, search: SearchConfig, progress: Progress = NULL_PROGRESS):
    """The `AnalysisRun` with every analysed image's re-alignment search attached (every method it ran), its
    conclusions at the run's level. Raises `Cancelled` when stopped (the caller keeps the plain run)."""
    found = realign_run(model, keys, run, search, progress)
    images = tuple(replace(a, realignment=search_image(a, found[a.evidence.path], search, run.config.fpr))
                   if a.evidence.path in found else a for a in run.images)
    return replace(run, images=images)
