"""The report's machine-readable twin: the run's results (`engine.analysis.run_to_json`) plus the report's
metadata (case, examiner, report time, re-verification, weight hashes), as strict JSON beside the PDF. Qt's
QPdfWriter cannot embed file attachments, so the twin is a separate file; its SHA-256 is printed in the
PDF, which ties the two. No Qt."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from engine.analysis import AnalysisRun, run_to_json
from engine.provenance import Reverification
from engine.strict_json import finite_or_null

if TYPE_CHECKING:
    from forensics_app.report.sections import ReportInfo

REPORT_FORMAT = "treering-forensics/report"
REPORT_VERSION = 1


def twin_path(pdf_path: str | os.PathLike[str]) -> Path:
    p = Path(pdf_path)
    if p.suffix.lower() == ".json":
        raise ValueError(f"{p.name}: the report is a PDF; its JSON twin is written beside it as <name>.json")
    return p.with_suffix(".json")


def report_json(run: AnalysisRun, info: ReportInfo, generated_utc: str, commit: str, weights: dict[str, str],
                weights_note: str, checks: list[Reverification], pdf_name: str,
                truth: dict[str, str | None] | None = None) -> dict:
    return finite_or_null({
        "format": REPORT_FORMAT, "version": REPORT_VERSION,
        "report": {"case_id": info.case_id, "examiner": info.examiner, "notes": info.notes,
                   "fields": info.fields_json(), "audit": [e.to_json_dict() for e in info.audit],
                   "generated_utc": generated_utc, "pdf": pdf_name,
                   "tool": {"name": "treering-forensics", "version": run.software.get("treering-forensics"),
                            "git_commit": commit}},
        "model_weights": {"sha256": weights, "note": weights_note},
        "reverification": [c.to_json_dict() for c in checks],
        "manifest_labels": truth or {},
        "run": run_to_json(run),
    })


def twin_bytes(data: dict) -> bytes:
    """The twin as written: indented, ASCII, no NaN (the bytes whose SHA-256 the PDF prints)."""
    return (json.dumps(data, indent=2, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")
