"""Scores and verdicts of every scheme as plain JSON records and back (case files keep them): each scheme's own
statistic (Gaussian Shading's matched bits, RingID's two channel distances, PRC's code statistic) and its
verdict's wording survive a save and reopen. None of these numbers is a secret of a key."""

from __future__ import annotations

import dataclasses
import math

from engine.treering_scoring import KeyScore, Verdict
from engine.watermarks.base import SchemeVerdict

_BASE_FIELDS = {f.name for f in dataclasses.fields(KeyScore)}


def score_types() -> dict[str, type]:
    from engine.watermarks.gaussian_shading import BitScore
    from engine.watermarks.prc import CodeScore
    from engine.watermarks.ringid import RingScore

    return {t.scheme: t for t in (BitScore, RingScore, CodeScore)}


def _number(v: float):
    v = float(v)
    if math.isnan(v):
        return "NaN"
    return v if math.isfinite(v) else ("Infinity" if v > 0 else "-Infinity")


def _read_number(v, what: str) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if v in ("NaN", "Infinity", "-Infinity"):
        return float({"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}[v])
    raise ValueError(f"{what} is not a number ({v!r})")


def score_detail(score: KeyScore) -> dict:
    """The scheme's own fields of a score ({} for Tree-Ring's plain KeyScore), with its scheme's name."""
    scheme = getattr(score, "scheme", None)
    if scheme is None or scheme not in score_types():
        return {}
    detail = {"scheme": scheme}
    for f in dataclasses.fields(score):
        if f.name not in _BASE_FIELDS:
            v = getattr(score, f.name)
            detail[f.name] = v if isinstance(v, (bool, int)) else _number(v)
    return detail


def score_from_detail(key_id: str, l1: float, p_value: float, detail, what: str) -> KeyScore:
    """The score as its scheme made it when `detail` names a known scheme, else a plain KeyScore (records
    written before the detail was kept). ValueError for a detail of the wrong types."""
    if not detail:
        return KeyScore(key_id, l1, p_value)
    if not isinstance(detail, dict):
        raise ValueError(f"{what}: the score detail is not an object")
    cls = score_types().get(detail.get("scheme"))
    if cls is None:
        raise ValueError(f"{what}: unknown scheme {detail.get('scheme')!r} in the score detail")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in _BASE_FIELDS or f.name not in detail:
            continue
        v = detail[f.name]
        if isinstance(f.default, bool):
            if not isinstance(v, bool):
                raise ValueError(f"{what}: {f.name} is not true or false")
        elif isinstance(f.default, int):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"{what}: {f.name} is not an integer")
        else:
            v = _read_number(v, f"{what}: {f.name}")
        kwargs[f.name] = v
    return cls(key_id, l1, p_value, **kwargs)


def verdict_wording(verdict: Verdict) -> dict:
    """What a scheme's verdict says beyond the numbers: its statistic's name and the scheme's weakness."""
    if isinstance(verdict, SchemeVerdict):
        return {"statistic": verdict.statistic, "weakness": verdict.weakness}
    return {}


def verdict_with_wording(verdict: Verdict, record: dict) -> Verdict:
    """`verdict` as its scheme worded it when `record` keeps the wording (Tree-Ring's, and older records: as is)."""
    statistic, weakness = record.get("statistic"), record.get("weakness")
    if not isinstance(statistic, str) or not isinstance(weakness, str):
        return verdict
    return SchemeVerdict(**{f.name: getattr(verdict, f.name) for f in dataclasses.fields(Verdict)},
                         statistic=statistic, weakness=weakness)
