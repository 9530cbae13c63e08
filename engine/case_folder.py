"""A case folder: one examination's runs kept as a history, with its audit trail.

    CASE/case.trcase          the latest run, the case's fields (case id, examiner …), the audit trail and
                              the index of every run (a case file, `engine.case_file`; opened by the window)
    CASE/runs/run-001.trcase  every run, in order, each a complete case file of its own; a new run is
    CASE/runs/run-002.trcase  appended, never replaces an earlier one (the index records each file's SHA-256)

The CLI writes here with `scan --case CASE`, shows it with `case show CASE` and re-hashes its evidence with
`case verify CASE`; the window's File ▸ Save / Open use the same functions. No Qt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from engine.analysis import AnalysisRun
from engine.audit import REVERIFICATION, AuditTrail
from engine.case_file import CaseFileError, _locate, load_case, read_case_payload, save_case
from engine.intake import shown_path, sha256_file
from engine.provenance import EvidenceStatus, Reverification, reverify

CASE_FILE_NAME = "case.trcase"
RUNS_FOLDER = "runs"


class CaseFolderError(ValueError):
    """A folder that cannot be used as a case folder. One sentence."""


@dataclass(frozen=True)
class CaseSummary:
    """A case folder as read without re-hashing anything (for `case show` and before appending)."""

    folder: Path
    info: dict
    audit: AuditTrail
    history: tuple[dict, ...]
    saved_utc: str


def case_file_in(folder: str | os.PathLike[str]) -> Path:
    return Path(folder) / CASE_FILE_NAME


def is_case_folder(folder: str | os.PathLike[str]) -> bool:
    return case_file_in(folder).is_file()


def case_folder_of(path: str | os.PathLike[str]) -> Path | None:
    """The case folder a path names: the folder itself, or the folder of its case.trcase; None otherwise."""
    p = Path(path)
    if p.is_dir() and is_case_folder(p):
        return p
    if p.name == CASE_FILE_NAME and p.is_file():
        return p.parent
    return None


def check_case_folder(folder: str | os.PathLike[str], evidence: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """Before a run: `folder` is a case folder, an empty folder, or a new folder in an existing one; and no
    file the case will write is evidence. Raises CaseFolderError."""
    from engine.output_paths import OutputRefused, check_not_evidence

    f = Path(folder)
    if f.exists() and not f.is_dir():
        raise CaseFolderError(f"the case folder {shown_path(f)} is a file: give a folder (created if new)")
    if f.is_dir():
        if not is_case_folder(f) and any(f.iterdir()):
            raise CaseFolderError(f"{shown_path(f)} is not empty and holds no {CASE_FILE_NAME}: it is not a case "
                                  "folder (give a new or empty folder, or an existing case)")
    elif not f.parent.is_dir():
        raise CaseFolderError(f"the case folder {shown_path(f)} cannot be created: its parent folder does not exist")
    try:
        check_not_evidence(case_file_in(f), evidence, "the case file")
    except OutputRefused as exc:
        raise CaseFolderError(str(exc)) from None
    return f


def read_case_folder(folder: str | os.PathLike[str]) -> CaseSummary:
    """The case's fields, audit trail and run index, without re-hashing evidence. CaseFolderError if `folder`
    is not a case folder; CaseFileError if its case file is damaged."""
    f = Path(folder)
    if not is_case_folder(f):
        raise CaseFolderError(f"{shown_path(f)} is not a case folder (no {CASE_FILE_NAME} in it)")
    payload = read_case_payload(case_file_in(f))
    info = payload.get("info") if isinstance(payload.get("info"), dict) else {}
    audit = AuditTrail.from_json(payload.get("audit") or [] if isinstance(payload.get("audit"), list) else [])
    history = tuple(h for h in payload.get("history", []) if isinstance(h, dict)) \
        if isinstance(payload.get("history"), list) else ()
    return CaseSummary(f, info, audit, history, str(payload.get("saved_utc", "")))


def _history_entry(run: AnalysisRun, name: str, sha256: str) -> dict:
    return {"file": name, "sha256": sha256, "model_id": run.model_id, "keys": list(run.keys.ids),
            "started_utc": run.started_utc, "finished_utc": run.finished_utc, "cancelled": run.cancelled,
            "images": len(run.images), "failures": len(run.failures), "not_analysed": len(run.not_analysed)}


def _evidence_of(run: AnalysisRun) -> list[str]:
    return [a.evidence.path for a in run.images] + [x.path for x in run.failures] + [n.path for n in run.not_analysed]


def append_run(folder: str | os.PathLike[str], run: AnalysisRun, info: dict | None = None,
               audit: AuditTrail | None = None) -> Path:
    """Add `run` to the case in `folder` (created if new): written as runs/run-NNN.trcase, and case.trcase
    rewritten with it as the latest run, the index of every run, `info` and `audit` (both: those already
    in the case when None). Returns the case file's path."""
    f = check_case_folder(folder, _evidence_of(run))
    existing = read_case_folder(f) if is_case_folder(f) else None
    history = list(existing.history) if existing else []
    info = dict(info) if info is not None else (dict(existing.info) if existing else {})
    audit = audit if audit is not None else (existing.audit if existing else AuditTrail())
    (f / RUNS_FOLDER).mkdir(parents=True, exist_ok=True)
    n = len(history) + 1
    while (f / RUNS_FOLDER / f"run-{n:03d}.trcase").exists():      # never over an earlier run's file
        n += 1
    name = f"{RUNS_FOLDER}/run-{n:03d}.trcase"
    save_case(run, f / name, info)
    history.append(_history_entry(run, name, sha256_file(f / name)))
    return save_case(run, case_file_in(f), info, audit.to_json(), history)


def update_case(folder: str | os.PathLike[str], run: AnalysisRun, info: dict, audit: AuditTrail) -> Path:
    """Rewrite case.trcase (its latest run unchanged, e.g. new case fields or audit events), keeping the
    run index."""
    existing = read_case_folder(folder)
    return save_case(run, case_file_in(folder), info, audit.to_json(), list(existing.history))


@dataclass(frozen=True)
class CaseVerification:
    checks: tuple[tuple[str, Reverification], ...]     # (what: "analysed" / "failed" / "not analysed", check)

    @property
    def ok(self) -> bool:
        return all(c.ok for _, c in self.checks)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in EvidenceStatus}
        for _, c in self.checks:
            out[c.status.value] += 1
        return out


def verify_case_folder(folder: str | os.PathLike[str]) -> CaseVerification:
    """Re-hash every file with a recorded hash in every run of the case (each file once) and compare."""
    summary = read_case_folder(folder)
    files = [case_file_in(summary.folder)] + [summary.folder / str(h.get("file", "")) for h in summary.history
                                              if isinstance(h.get("file"), str)]
    seen: set[tuple[str, str]] = set()
    checks: list[tuple[str, Reverification]] = []
    for case_file in files:
        try:
            run = read_case_payload(case_file).get("run", {})
        except CaseFileError:
            continue                      # a damaged run file: `case show` names it; its evidence is elsewhere too
        if not isinstance(run, dict):
            continue
        entries: list[tuple[str, str, str]] = []
        for item in run.get("images", []) if isinstance(run.get("images"), list) else []:
            ev = item.get("evidence") if isinstance(item, dict) else None
            if isinstance(ev, dict) and isinstance(ev.get("path"), str) and isinstance(ev.get("sha256"), str):
                path, _ = _locate(ev, summary.folder.resolve())
                entries.append(("analysed", path, ev["sha256"]))
        for kind, key in (("failed", "failures"), ("not analysed", "not_analysed")):
            for e in run.get(key, []) if isinstance(run.get(key), list) else []:
                if isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("sha256"), str):
                    path = e["path"]
                    if not os.path.lexists(path) and isinstance(e.get("abs_path"), str):
                        path = e["abs_path"]          # recorded relative to where the scan ran
                    entries.append((kind, path, e["sha256"]))
        for kind, path, sha in entries:
            if (path, sha) in seen:
                continue
            seen.add((path, sha))
            checks.append((kind, reverify(path, sha)))
    return CaseVerification(tuple(checks))


def record_verification(folder: str | os.PathLike[str], result: CaseVerification, examiner: str = "") -> None:
    """Append the re-verification to the case's audit trail (rewrites case.trcase atomically; its run, fields
    and index are kept byte for byte in content, only the audit list grows)."""
    import json

    from engine.atomic_write import write_text_atomic
    from engine.case_file import _content_checksum

    summary = read_case_folder(folder)
    counts = result.counts()
    summary.audit.record(REVERIFICATION, f"{len(result.checks)} file(s) re-hashed: "
                         + ", ".join(f"{v} {k}" for k, v in counts.items() if v), examiner)
    path = case_file_in(folder)
    payload = read_case_payload(path)
    if payload.get("content_sha256") != _content_checksum(payload):
        raise CaseFileError(f"the case file {shown_path(path)} does not match its recorded checksum (edited or "
                            "damaged after it was saved): the re-verification is not recorded in it")
    payload["audit"] = summary.audit.to_json()
    payload["content_sha256"] = _content_checksum(payload)
    write_text_atomic(path, json.dumps(payload, indent=1, ensure_ascii=True, allow_nan=False) + "\n",
                      encoding="ascii")


def load_run(folder: str | os.PathLike[str], number: int):
    """Run `number` (1 = the first) of the case's history, reopened with `load_case` (evidence re-hashed).
    CaseFolderError for a number the case does not have."""
    summary = read_case_folder(folder)
    if not 1 <= number <= len(summary.history):
        raise CaseFolderError(f"the case in {shown_path(summary.folder)} has {len(summary.history)} run(s): "
                              f"there is no run {number}")
    name = str(summary.history[number - 1].get("file", ""))
    path = (Path(folder) / name).resolve()
    if not path.is_relative_to(Path(folder).resolve() / RUNS_FOLDER):    # an edited index must not point elsewhere
        raise CaseFolderError(f"run {number} of the case names {name!r}, outside its {RUNS_FOLDER}/ folder")
    return load_case(path)
