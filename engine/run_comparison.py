"""Two runs side by side: the same evidence (matched by SHA-256, so a moved file still matches) under two
models, two key sets or two settings — where their verdicts agree and where they do not.

A disagreement is information for the examiner, not an error: two models that share a VAE can both
"explain" an image (docs/algorithms.md §4). Nothing here decides which run is right."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from engine.analysis import AnalysisRun


@dataclass(frozen=True)
class VerdictPair:
    sha256: str
    name: str                      # the file name in run A (run B's may differ if the file moved)
    method: str
    verdict_a: str                 # key id or "none"
    p_a: float                     # nearest key's p-value
    verdict_b: str
    p_b: float

    @property
    def agree(self) -> bool:
        return self.verdict_a == self.verdict_b


@dataclass(frozen=True)
class RunComparison:
    label_a: str
    label_b: str
    settings_differences: tuple[str, ...]   # "model: demo → demo-flow", "settings.fpr: 0.01 → 0.001", …
    pairs: tuple[VerdictPair, ...]          # every (image, method) analysed in both runs
    only_a: tuple[str, ...]                 # file names analysed in A only
    only_b: tuple[str, ...]

    @property
    def disagreements(self) -> tuple[VerdictPair, ...]:
        return tuple(p for p in self.pairs if not p.agree)


def _flat(d, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = json.dumps(v, sort_keys=True, default=str)
    return out


def _settings(run: AnalysisRun) -> dict[str, str]:
    weights = {f"weights {name}": f"sha256 {digest[:16]}…" for name, digest in run.weight_sha256.items()}
    return {"model": run.model_id, **weights, "keys": ", ".join(run.keys.ids), **_flat(asdict(run.config), "settings.")}


def compare_runs(a: AnalysisRun, b: AnalysisRun, label_a: str = "A", label_b: str = "B") -> RunComparison:
    sa, sb = _settings(a), _settings(b)
    diffs = tuple(f"{k}: {sa.get(k, '—')} → {sb.get(k, '—')}" for k in sorted(set(sa) | set(sb))
                  if sa.get(k) != sb.get(k))
    by_hash_b = {img.evidence.sha256: img for img in b.images}
    pairs: list[VerdictPair] = []
    only_a: list[str] = []
    for img in a.images:
        other = by_hash_b.get(img.evidence.sha256)
        name = img.evidence.path.replace("\\", "/").rsplit("/", 1)[-1]
        if other is None:
            only_a.append(name)
            continue
        for method, ra in img.methods.items():
            rb = other.methods.get(method)
            if rb is None:
                continue
            pairs.append(VerdictPair(img.evidence.sha256, name, method, ra.verdict.predicted_key or "none",
                                     ra.verdict.nearest_p_value, rb.verdict.predicted_key or "none",
                                     rb.verdict.nearest_p_value))
    hashes_a = {img.evidence.sha256 for img in a.images}
    only_b = tuple(img.evidence.path.replace("\\", "/").rsplit("/", 1)[-1] for img in b.images
                   if img.evidence.sha256 not in hashes_a)
    return RunComparison(label_a, label_b, diffs, tuple(pairs), tuple(only_a), only_b)
