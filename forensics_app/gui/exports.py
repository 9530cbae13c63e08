"""File ▸ Export: the PDF report (with its dialog), results as JSON, the batch matrix as PNG or CSV."""

from __future__ import annotations

import os
import traceback
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QLineEdit, QWidget

from forensics_app.gui.run_session import BackgroundJobs
from forensics_app.gui.settings import read_str

if TYPE_CHECKING:
    from forensics_app.gui.main_window import MainWindow


class ReportDialog(QDialog):
    def __init__(self, parent: QWidget | None = None, case_id: str = "", examiner: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Export report")
        form = QFormLayout(self)
        self.case_id = QLineEdit(case_id)
        self.examiner = QLineEdit(examiner)
        form.addRow("Case ID", self.case_id)
        form.addRow("Examiner", self.examiner)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


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
            from forensics_app.report import ReportInfo, write_report  # noqa: F401 — is it installed?
        except ImportError:
            w.report_error("PDF reports are not available in this installation (forensics_app.report is missing)")
            return
        dialog = ReportDialog(w, read_str(w.settings, "report/case_id"), read_str(w.settings, "report/examiner"))
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        w.settings.setValue("report/case_id", dialog.case_id.text())
        w.settings.setValue("report/examiner", dialog.examiner.text())
        path = self._save_path("Export report", "PDF (*.pdf)")
        if not path:
            return
        w.settings.setValue("ui/export_dir", os.path.dirname(path))
        self.write_report_to(path, dialog.case_id.text(), dialog.examiner.text())

    def write_report_to(self, path: str, case_id: str = "", examiner: str = "") -> bool:
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
            write_report(w.last_run, path, ReportInfo(case_id=case_id, examiner=examiner))
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
                w.log(f"wrote {path}")
            except (OSError, ValueError) as exc:
                w.report_error(str(exc))
