"""The batch matrix: which key each analysed image was attributed to, against the key its manifest claims.

One function for the window's batch tab and the report's confusion matrix, so the two cannot disagree on
the same folder. The claims come from `engine.provenance.manifest_labels` (a manifest is what its maker
says, not something this tool verified); images without a claim are grouped by folder instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Sequence

from engine.provenance import manifest_labels


@dataclass(frozen=True)
class ConfusionMatrix:
    """Rows = true key (None = un-watermarked), columns = predicted (None = no watermark detected)."""

    labels: tuple[str | None, ...]
    counts: tuple[tuple[int, ...], ...]

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str | None, str | None]], key_ids: Sequence[str]) -> "ConfusionMatrix":
        pairs = list(pairs)
        labels: list[str | None] = list(key_ids)
        # outcomes that are not a key (the conclusion's "inconclusive") get their own column (and an empty row)
        labels += sorted({p for _, p in pairs if p is not None and p not in labels})
        if any(t is None or p is None for t, p in pairs):
            labels.append(None)
        index = {lab: i for i, lab in enumerate(labels)}
        counts = [[0] * len(labels) for _ in labels]
        for true, pred in pairs:
            counts[index[true]][index[pred]] += 1
        return cls(tuple(labels), tuple(tuple(r) for r in counts))

    @property
    def total(self) -> int:
        return sum(sum(r) for r in self.counts)

    @property
    def correct(self) -> int:
        return sum(self.counts[i][i] for i in range(len(self.labels)))

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else float("nan")


@dataclass(frozen=True)
class BatchMatrix:
    row_labels: tuple[str | None, ...]     # claimed key (None = claimed un-watermarked), or folder names
    col_labels: tuple[str | None, ...]     # predicted key (None = no watermark detected)
    counts: tuple[tuple[int, ...], ...]
    has_truth: bool                        # rows are manifest claims (else folders)
    unlabelled: int                        # analysed images without a manifest entry (not in a claims matrix)
    accuracy: float | None                 # trace / total over claimed images

    @property
    def total(self) -> int:
        return sum(sum(r) for r in self.counts)


def attribution_matrix(predictions: Iterable[tuple[str, str | None]], key_ids: Sequence[str]) -> BatchMatrix:
    """Tally (evidence path, predicted key or None) pairs. With manifest claims for any of the images, rows are
    the claimed keys (claims naming keys outside `key_ids` get their own row and column); otherwise rows are
    the images' folders. Only bookkeeping: the predictions are the engine's verdicts."""
    predictions = list(predictions)
    claims = manifest_labels([p for p, _ in predictions])
    labelled = [(claims[p], pred) for p, pred in predictions if p in claims]
    groups = [(os.path.basename(os.path.dirname(os.path.abspath(p))) or os.path.dirname(os.path.abspath(p)), pred)
              for p, pred in predictions if p not in claims]
    if labelled:
        extra = sorted({t for t, _ in labelled if t is not None and t not in key_ids})
        cm = ConfusionMatrix.from_pairs(labelled, list(key_ids) + extra)
        return BatchMatrix(cm.labels, cm.labels, cm.counts, True, len(groups), cm.accuracy)
    cols: list[str | None] = list(key_ids)
    if any(p is None for _, p in groups):
        cols.append(None)
    for _, p in groups:
        if p not in cols:
            cols.append(p)
    rows = sorted({g for g, _ in groups})
    counts = [[0] * len(cols) for _ in rows]
    for g, p in groups:
        counts[rows.index(g)][cols.index(p)] += 1
    return BatchMatrix(tuple(rows), tuple(cols), tuple(tuple(r) for r in counts), False, len(groups), None)
