"""`write_report`: re-verifies the evidence and the model's weights, builds the JSON twin and the sections,
and writes the PDF (`forensics_app.report.pdf`) and the twin atomically."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from engine.analysis import AnalysisRun, utc_now
from engine.atomic_write import atomic_path, write_bytes_atomic
from engine.provenance import git_commit, manifest_labels, recheck_weight_hashes, reverify
from forensics_app.report.sections import METHOD_TITLES, ReportInfo, ReportSections
from forensics_app.report.text import visible
from forensics_app.report.twin import report_json, twin_bytes, twin_path


def write_report(run: AnalysisRun, path: str | os.PathLike[str], info: ReportInfo = ReportInfo(),
                 model=None) -> Path:
    """Write the PDF report to `path` and its JSON twin to `path` with the suffix .json; return the PDF's
    path. `model` (the LoadedModel of the run), when given, lets the weight hashes come from its cache.
    Raises OSError when a file cannot be written; then neither file is left behind."""
    pdf = Path(path)
    twin = twin_path(pdf)
    from forensics_app.report import pdf as pdf_writer   # here, so that importing the report package loads no Qt

    pdf_writer.ensure_qt_app()
    generated = utc_now()
    checks = [reverify(a.evidence.path, a.evidence.sha256) for a in run.images]
    weights, weights_note = recheck_weight_hashes(run.model_path, run.weight_sha256)
    commit = git_commit()
    truth = manifest_labels([a.evidence.path for a in run.images])
    twin_data = report_json(run, info, generated, commit, weights, weights_note, checks, pdf.name, truth)
    twin_data_bytes = twin_bytes(twin_data)
    twin_sha = hashlib.sha256(twin_data_bytes).hexdigest()
    rep = ReportSections(run=run, info=info, generated_utc=generated, commit=commit, weights=weights,
                         weights_note=weights_note, checks=checks, truth=truth, json_name=twin.name,
                         json_sha256=twin_sha, figures=pdf_writer.QtFigures(METHOD_TITLES))
    body, resources = rep.build()
    version = run.software.get("treering-forensics", "unknown")
    short = commit[:12] if commit != "unknown" else "unknown"
    header = visible(f"Case {rep.case_label} — Tree-Ring watermark examination report")
    footer = visible(f"treering-forensics {version} (commit {short}) · generated {generated}")
    with atomic_path(pdf) as temp:
        pdf_writer.render_pdf(temp, body, resources, header, footer,
                              title=visible(f"Tree-Ring watermark examination — case {rep.case_label}"),
                              creator=f"treering-forensics {version}", author=visible(info.examiner))
        if temp.stat().st_size == 0:
            raise OSError(f"the PDF {pdf} came out empty")
        write_bytes_atomic(twin, twin_data_bytes)
    return pdf
