"""Where the tool may write: an output is never an input, and never replaces a file the tool did not make.

Every front end checks each output path here before writing: scan JSON, PDF report and its JSON twin, case
files, key files, generated images and their manifest. A path is refused when it resolves (following links)
to a file being analysed, is a folder, or already exists — unless `force` is given *and* the existing file
is recognisably one of this tool's own outputs (a JSON document it wrote, a report PDF whose twin it wrote,
an image listed in the manifest it wrote). Evidence is never overwritten, with or without `force`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from engine.strict_json import read_json_object

OWN_JSON_FORMATS = ("treering-forensics/",)       # key sets, case files, report twins
MAX_OWN_JSON_BYTES = 256 << 20


class OutputRefused(ValueError):
    """One sentence naming the output and why it may not be written."""


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(path))


def _is_own_json(path: Path) -> bool:
    data = read_json_object(path, MAX_OWN_JSON_BYTES)
    if data is None:
        return False
    fmt = data.get("format")
    if isinstance(fmt, str) and fmt.startswith(OWN_JSON_FORMATS):
        return True
    software = data.get("software")                 # a scan JSON (engine.analysis.run_to_json)
    return isinstance(software, dict) and "treering-forensics" in software and "images" in data


def _is_own_report(path: Path) -> bool:
    """A PDF is ours when the JSON twin beside it is ours and names it."""
    twin = path.with_suffix(".json")
    if twin == path or not _is_own_json(twin):
        return False
    data = read_json_object(twin, MAX_OWN_JSON_BYTES) or {}
    report = data.get("report")
    return isinstance(report, dict) and report.get("pdf") == path.name


def _is_own_generated(path: Path) -> bool:
    from engine.provenance import read_manifest

    entries = read_manifest(path.parent)
    return entries is not None and path.name in entries


def is_own_output(path: str | os.PathLike[str]) -> bool:
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".json" or suffix == ".trcase":
        return _is_own_json(p)
    if suffix == ".pdf":
        return _is_own_report(p)
    return _is_own_generated(p)


def check_not_evidence(path: str | os.PathLike[str], evidence: Iterable[str | os.PathLike[str]],
                       what: str = "output") -> Path:
    """The part of `check_output` no confirmation can waive: not a file being analysed, not a folder. (The
    window's save dialogs ask before replacing any other file, which is the examiner's explicit choice.)"""
    p = Path(path)
    real = _real(p)
    if real in {_real(e) for e in evidence}:
        raise OutputRefused(f"{what} {p} is one of the files being analysed: evidence is never overwritten")
    if os.path.isdir(real):
        raise OutputRefused(f"{what} {p} is a folder: give a file name")
    return p


def check_output(path: str | os.PathLike[str], *, evidence: Iterable[str | os.PathLike[str]] = (),
                 force: bool = False, what: str = "output") -> Path:
    """Return `path` if the tool may write there; raise OutputRefused (one sentence) otherwise."""
    p = check_not_evidence(path, evidence, what)
    real = _real(p)
    if os.path.lexists(p) or os.path.exists(real):
        if not force:
            raise OutputRefused(f"{what} {p} already exists: choose another name, or give --force to replace an "
                                f"earlier output of this tool")
        if not is_own_output(real):
            raise OutputRefused(f"{what} {p} already exists and is not an output of this tool: it is not "
                                f"replaced, even with --force")
    parent = Path(real).parent
    if not parent.is_dir():
        raise OutputRefused(f"{what} {p}: the folder {parent} does not exist")
    return p
