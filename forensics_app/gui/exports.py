"""File ▸ Export: the PDF report (with its dialog), results as JSON, the batch matrix as PNG or CSV."""

from __future__ import annotations

import os
import traceback
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QLabel, QLineEdit,
                               QPlainTextEdit, QVBoxLayout, QWidget)

from forensics_app.gui.run_session import BackgroundJobs
from forensics_app.gui.settings import read_json, read_str, write_json

# The report's fields, as forensics_app.report.ReportInfo names them (kept here too: importing the report
# package at start-up is not needed for the dialog); multi-line ones are edited in a text box.
REPORT_FIELDS = (("agency", "Agency / laboratory"), ("case_id", "Case number"), ("exhibits", "Exhibit numbers"),
                 ("received_from", "Received from"), ("received_date", "Date received"), ("examiner", "Examiner"),
                 ("technical_reviewer", "Technical reviewer"), ("report_version", "Report version"),
                 ("amendments", "Amendment history"), ("notes", "Notes"))
MULTILINE = ("amendments", "notes")
DEFAULT_REQUIRED = ("case_id", "examiner")
REQUIRED_KEY = "report/required_fields"


def required_fields(settings) -> tuple[str, ...]:
    names = {n for n, _ in REPORT_FIELDS}
    saved = read_json(settings, REQUIRED_KEY, list(DEFAULT_REQUIRED))
    return tuple(n for n in saved if isinstance(n, str) and n in names) if isinstance(saved, list) else DEFAULT_REQUIRED

if TYPE_CHECKING:
    from forensics_app.gui.main_window import MainWindow


class ReportDialog(QDialog):
    """The fields an examiner files with the report. OK is refused while a required field (File ▸ Required
    report fields…) is blank; the message names them."""

    def __init__(self, parent: QWidget | None = None, case_id: str = "", examiner: str = "",
                 values: dict | None = None, required: tuple[str, ...] = DEFAULT_REQUIRED) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export report")
        self.required = tuple(required)
        values = {"case_id": case_id, "examiner": examiner, "report_version": "1", **(values or {})}
        form = QFormLayout(self)
        self.editors: dict[str, QLineEdit | QPlainTextEdit] = {}
        for name, title in REPORT_FIELDS:
            if name in MULTILINE:
                editor = QPlainTextEdit(str(values.get(name, "")))
                editor.setFixedHeight(54)
            else:
                editor = QLineEdit(str(values.get(name, "")))
            editor.setObjectName(name)
            self.editors[name] = editor
            form.addRow(title + (" *" if name in self.required else ""), editor)
        self.case_id, self.examiner = self.editors["case_id"], self.editors["examiner"]
        self.message = QLabel("* required")
        self.message.setWordWrap(True)
        form.addRow(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> dict[str, str]:
        return {n: (e.toPlainText() if isinstance(e, QPlainTextEdit) else e.text()) for n, e in self.editors.items()}

    def missing(self) -> list[str]:
        titles = dict(REPORT_FIELDS)
        v = self.values()
        return [titles[n] for n in self.required if not v.get(n, "").strip()]

    def accept(self) -> None:
        missing = self.missing()
        if missing:
            self.message.setText("Required, still blank: " + ", ".join(missing))
            self.message.setStyleSheet("color: #a40000; font-weight: bold;")
            self.editors[next(n for n in self.required if not self.values()[n].strip())].setFocus()
            return
        super().accept()


class RequiredFieldsDialog(QDialog):
    """Which report fields the report dialog refuses to leave blank (saved in the window's settings)."""

    def __init__(self, parent: QWidget | None, required: tuple[str, ...]) -> None:
        super().__init__(parent)
        self.setWindowTitle("Required report fields")
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("The report dialog refuses to export while these are blank:"))
        self.boxes: dict[str, QCheckBox] = {}
        for name, title in REPORT_FIELDS:
            box = QCheckBox(title)
            box.setChecked(name in required)
            self.boxes[name] = box
            lay.addWidget(box)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def chosen(self) -> tuple[str, ...]:
        return tuple(n for n, b in self.boxes.items() if b.isChecked())


class Exports(QObject):
    """Exports of the window's last run and batch view; messages go to the window's log and banner."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.jobs = BackgroundJobs(self)          # JSON exports, one at a time

    def _save_path(self, title: str, file_filter: str) -> str:
        s = self.window.settings
        path, _ = QFileDialog.getSaveFileName(self.window, title, read_str(s, "ui/export_dir", ""), file_filter)
        return path

    def _refused(self, *paths: str) -> bool:
        """Evidence is never an export's target, whatever the save dialog was told (engine.output_paths)."""
        from engine.output_paths import OutputRefused, check_not_evidence

        run = self.window.last_run
        evidence = [a.evidence.path for a in run.images] + [f.path for f in run.failures] if run else []
        evidence += [item.path for item in self.window.evidence.items]      # listed, analysed or not
        try:
            for p in paths:
                check_not_evidence(p, evidence, "the export")
        except OutputRefused as exc:
            self.window.report_error(str(exc))
            return True
        return False

    def _background(self, what: str, fn, done_message: str) -> None:
        w = self.window

        def done(_):
            w.log(done_message)
            w.status.show_text(done_message)

        self.jobs.submit(fn, done, lambda message: w.report_error(f"{what} failed: {message}"))

    def export_report(self) -> None:
        w = self.window
        if w.last_run is None:
            w.report_error("run an analysis first: the report describes a finished run")
            return
        try:
            from forensics_app.report import ReportInfo, suggested_report_name  # is it installed?
        except ImportError:
            w.report_error("PDF reports are not available in this installation (forensics_app.report is missing)")
            return
        dialog = ReportDialog(w, values=self.report_fields(), required=required_fields(w.settings))
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        values = dialog.values()
        self.store_report_fields(values)
        name = suggested_report_name(ReportInfo(**values))
        s = w.settings
        path, _ = QFileDialog.getSaveFileName(w, "Export report", os.path.join(read_str(s, "ui/export_dir", ""), name),
                                              "PDF (*.pdf)")
        if not path:
            return
        w.settings.setValue("ui/export_dir", os.path.dirname(path))
        self.write_report_to(path, fields=values)

    def report_fields(self) -> dict[str, str]:
        """The report fields as last entered (window settings), over the open case's."""
        w = self.window
        out = {n: str(w.cases.info.get(n, "")) for n, _ in REPORT_FIELDS if w.cases.info.get(n) is not None}
        for n, _ in REPORT_FIELDS:
            v = read_str(w.settings, f"report/{n}")
            if v:
                out[n] = v
        return out

    def store_report_fields(self, values: dict[str, str]) -> None:
        for n, v in values.items():
            self.window.settings.setValue(f"report/{n}", v)
        self.window.cases.info.update(values)

    def choose_required_fields(self) -> None:
        w = self.window
        dialog = RequiredFieldsDialog(w, required_fields(w.settings))
        if dialog.exec() == QDialog.DialogCode.Accepted:
            write_json(w.settings, REQUIRED_KEY, list(dialog.chosen()))

    def write_report_to(self, path: str, case_id: str = "", examiner: str = "", fields: dict | None = None) -> bool:
        """The report writer lays out through QTextDocument and may create QPixmaps, so it must run in the
        GUI thread (see forensics_app.report); it is short, so the window shows a busy cursor meanwhile."""
        from PySide6.QtGui import QCursor, QGuiApplication

        from forensics_app.report import ReportInfo, write_report

        w = self.window
        from pathlib import Path

        if Path(path).suffix.lower() == ".json":
            w.report_error(f"{path}: the report is a PDF; its JSON twin is written beside it")
            return False
        if self._refused(path, str(Path(path).with_suffix(".json"))):
            return False
        w.status.show_text(f"Writing the report to {path} …")
        QGuiApplication.setOverrideCursor(QCursor(Qt.CursorShape.WaitCursor))
        try:
            values = dict(fields or {})
            values.setdefault("case_id", case_id)
            values.setdefault("examiner", examiner)
            w.record_export(f"report {path} (and its JSON twin)")
            write_report(w.last_run, path, ReportInfo(**values, audit=w.audit.events))
        except (OSError, ValueError) as exc:
            w.report_error(f"the report could not be written: {exc}")
            return False
        except Exception as exc:  # noqa: BLE001 — a sentence in the window, the details in the log
            w.log(traceback.format_exc().rstrip(), "details")
            w.report_error(f"the report could not be written ({type(exc).__name__}): {exc}")
            return False
        finally:
            QGuiApplication.restoreOverrideCursor()
        w.log(f"wrote the report to {path} (and its JSON twin beside it)")
        w.status.show_text(f"Report written: {path}")
        return True

    def export_json(self) -> None:
        if self.window.last_run is None:
            self.window.report_error("run an analysis first")
            return
        path = self._save_path("Export results", "JSON (*.json)")
        if path:
            self.write_json_to(path)

    def write_json_to(self, path: str) -> None:
        from engine.analysis import run_to_json
        from engine.atomic_write import write_json_atomic

        if self._refused(path):
            return
        run = self.window.last_run
        self.window.record_export(f"results as JSON {path}")
        self._background("the JSON export", lambda: write_json_atomic(path, run_to_json(run), indent=2),
                         f"wrote the results to {path}")

    def export_batch_png(self) -> None:
        self._export_batch("PNG (*.png)", self.window.batch_view.export_png)

    def export_batch_csv(self) -> None:
        self._export_batch("CSV (*.csv)", self.window.batch_view.export_csv)

    def _export_batch(self, file_filter: str, write) -> None:
        w = self.window
        if w.batch_view.matrix() is None:
            w.report_error("no batch results to export yet")
            return
        path = self._save_path("Export batch matrix", file_filter)
        if path and not self._refused(path):
            try:
                write(path)
                w.record_export(f"batch matrix {path}")
                w.log(f"wrote {path}")
            except (OSError, ValueError) as exc:
                w.report_error(str(exc))
