"""The audit trail of a case: every run, setting change, key import, export, evidence re-verification,
case save and open, with its UTC time and the examiner. Append-only: events are added, never edited or
removed; serialised with the case (`engine.case_file`, top-level "audit") and printed in the report's
appendix. No Qt: the window and the CLI both record through `AuditTrail.record`.

An audit trail records what this tool did at the examiner's request; like the case file's checksum it is
not a signature (anyone with the file can edit it), and it says so where it is printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping


def utc_now() -> str:
    """As engine.analysis.utc_now (not imported from there: the window records events before torch loads)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()

# The kinds of event, as written to the case (stable strings: older case files keep theirs).
RUN = "run"
SETTINGS = "settings changed"
KEYS_IMPORTED = "keys imported"
EXPORT = "export"
REVERIFICATION = "evidence re-verification"
CASE_SAVED = "case saved"
CASE_OPENED = "case opened"
ACTIONS = (RUN, SETTINGS, KEYS_IMPORTED, EXPORT, REVERIFICATION, CASE_SAVED, CASE_OPENED)

MAX_DETAIL_CHARS = 2000


@dataclass(frozen=True)
class AuditEvent:
    utc: str            # ISO 8601, seconds, UTC
    examiner: str       # as given in the report / case fields ("" when none was given)
    action: str         # one of ACTIONS (an unknown one from a newer version is kept as written)
    detail: str         # one line, for people

    def to_json_dict(self) -> dict:
        return {"utc": self.utc, "examiner": self.examiner, "action": self.action, "detail": self.detail}

    @classmethod
    def from_json_dict(cls, d: Mapping[str, Any]) -> "AuditEvent | None":
        """None for an entry that is not an audit event (a damaged or hand-edited case)."""
        fields = [d.get(k) for k in ("utc", "examiner", "action", "detail")]
        if not all(isinstance(v, str) for v in fields):
            return None
        return cls(*fields)


def _one_line(text: str) -> str:
    from engine.intake import one_line

    return one_line(text, MAX_DETAIL_CHARS)


class AuditTrail:
    """Append-only list of `AuditEvent`s."""

    def __init__(self, events: Iterable[AuditEvent] = ()) -> None:
        self._events: list[AuditEvent] = list(events)

    @classmethod
    def from_json(cls, entries: Iterable[Mapping[str, Any]]) -> "AuditTrail":
        return cls(e for e in (AuditEvent.from_json_dict(d) for d in entries if isinstance(d, Mapping))
                   if e is not None)

    def to_json(self) -> list[dict]:
        return [e.to_json_dict() for e in self._events]

    @property
    def events(self) -> tuple[AuditEvent, ...]:
        return tuple(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def record(self, action: str, detail: str, examiner: str = "", utc: str | None = None) -> AuditEvent:
        event = AuditEvent(utc or utc_now(), _one_line(examiner), action, _one_line(detail))
        self._events.append(event)
        return event


def settings_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    """"iterations 100 → 50, fpr 0.01 → 0.001" between two settings dicts (AnalysisOptions.to_json()); ""
    when nothing changed. The first settings of a case (before None) are listed in full."""
    if before is None:
        return ", ".join(f"{k} {after[k]!r}" for k in sorted(after))
    keys = sorted(set(before) | set(after))
    return ", ".join(f"{k} {before.get(k)!r} → {after.get(k)!r}" for k in keys if before.get(k) != after.get(k))


def run_detail(run) -> str:
    """One line describing an AnalysisRun for the trail."""
    status = "cancelled" if run.cancelled else "complete"
    return (f"model {run.model_id}, keys {', '.join(run.keys.ids)}, methods {' + '.join(run.config.methods)}, "
            f"FPR {run.config.fpr:g}: {len(run.images)} analysed, {len(run.failures)} failed, "
            f"{len(run.not_analysed)} not analysed ({status}; started {run.started_utc}, finished {run.finished_utc})")
