"""The examination report: a paginated A4 PDF and its machine-readable JSON twin.

`write_report(run, "case.pdf", ReportInfo(case_id=..., examiner=...))` writes

* ``case.pdf`` — what an examiner signs: case and examiner, UTC timestamps, tool version and git commit,
  software and device, the model and the SHA-256 of its weight files, the keys and every setting, and per
  evidence item its SHA-256 at intake *and re-verified now* (a changed or missing file is printed as
  HASH MISMATCH / FILE MISSING in red), the preprocessing, an EXIF summary, a thumbnail of the analysed
  pixels, the encoder / gradient-free / gradient-based comparison, every key's L1 distance and p-value,
  the verdict at the stated false-positive level (the finding, in numbers, printed apart from its
  interpretation), a Fourier figure of the recovered z_T against the nearest key, the window's batch
  matrices (`engine.attribution_matrix`), failures, and the limitations of what a verdict may claim
  (docs/algorithms.md §4). Every page carries the case id and "page n of N".
* ``case.json`` — the same results (`engine.analysis.run_to_json`) plus the report's metadata (case,
  examiner, report time, re-verification, weight hashes). Qt's QPdfWriter cannot embed file attachments
  in a PDF, so the twin is a separate file beside it; its SHA-256 is printed in the PDF, which ties the two.

Everything that came from evidence or from a user (file names, paths, EXIF text, prompts, case fields,
key descriptions, manifest labels) is shown as text: invisible and control characters are made visible
as escapes, then ``html.escape`` is applied before it enters the HTML that QTextDocument lays out.

The package: `sections` (what the report says, as HTML; no Qt), `text` (escaping and number formatting; no
Qt), `twin` (the JSON twin; no Qt), `page` (page geometry and fonts), `pdf` (layout and writing with Qt; the
only Qt module here), `writer` (`write_report`, which ties them together). Importing the package does not
import Qt; writing a report does.

Both files are written atomically: on any failure neither the PDF nor a temporary file is left behind.
Works headless and in a QThread worker of the desktop application (see `forensics_app.report.pdf`).
"""

from forensics_app.report.sections import ReportInfo, suggested_report_name
from forensics_app.report.twin import report_json, twin_path
from forensics_app.report.writer import write_report

__all__ = ["ReportInfo", "report_json", "suggested_report_name", "twin_path", "write_report"]
