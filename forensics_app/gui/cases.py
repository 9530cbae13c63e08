"""File ▸ Save case / Save case as / Open case: the window's run kept in a case folder (`engine.case_folder`:
CASE/case.trcase plus every run in CASE/runs/), with its audit trail (`engine.audit`), and reopened without
recomputing. A run not yet saved is "unsaved": quitting or starting a new run asks first (Save / Discard /
Cancel)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QMessageBox

from forensics_app.gui.settings import read_str

if TYPE_CHECKING:
    from forensics_app.gui.main_window import MainWindow


def ask_save_discard_cancel(parent, title: str, text: str) -> QMessageBox.StandardButton:
    """The one question the window asks about unsaved results (tests monkeypatch QMessageBox.question)."""
    B = QMessageBox.StandardButton
    return QMessageBox.question(parent, title, text, B.Save | B.Discard | B.Cancel, B.Save)


class CaseFiles(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.folder: Path | None = None        # the open case folder
        self.run_saved = False                  # the window's last_run is in the case's history
        self.info: dict = {}                    # the case's fields (case id, examiner, report fields …)

    # -- state ------------------------------------------------------------------------------------------
    def has_unsaved_results(self) -> bool:
        w = self.window
        return w.last_run is not None and not self.run_saved

    def new_run_finished(self) -> None:
        self.run_saved = False

    def confirm_unsaved(self, doing: str) -> bool:
        """True when it is fine to go on (saved, discarded, or nothing unsaved); False: the examiner cancelled."""
        if not self.has_unsaved_results():
            return True
        answer = ask_save_discard_cancel(
            self.window, "Unsaved results",
            f"The results of the last run are not saved in a case. Save them before {doing}?")
        B = QMessageBox.StandardButton
        if answer == B.Save:
            return self.save()
        return answer == B.Discard

    # -- saving -----------------------------------------------------------------------------------------
    def save(self) -> bool:
        if self.folder is None:
            return self.save_as()
        return self.save_to(self.folder)

    def save_as(self) -> bool:
        w = self.window
        if w.last_run is None:
            w.report_error("nothing to save yet: run an analysis first (a case keeps runs and their record)")
            return False
        start = read_str(w.settings, "ui/case_dir", str(Path.home()))
        folder, _ = QFileDialog.getSaveFileName(w, "Save case as (a new folder)", start, "Case folder (*)")
        if not folder:
            return False
        return self.save_to(folder, new=True)

    def save_to(self, folder, new: bool = False) -> bool:
        from engine.audit import CASE_SAVED
        from engine.case_file import CaseFileError
        from engine.case_folder import append_run, is_case_folder, update_case

        w = self.window
        run = w.last_run
        if run is None:
            w.report_error("nothing to save yet: run an analysis first")
            return False
        folder = Path(folder)
        same = self.folder is not None and os.path.realpath(folder) == os.path.realpath(self.folder)
        if not same and is_case_folder(folder):
            w.report_error(f"{folder} already holds another case: open it (File ▸ Open case) to add runs to it, "
                           "or choose a new folder")
            return False
        self.info = {**self.info, **w.exports.report_fields()}
        w.audit.record(CASE_SAVED, f"saved to {folder}", w.examiner())
        try:
            if self.run_saved and same:
                update_case(folder, run, self.info, w.audit)
            else:
                append_run(folder, run, self.info, w.audit)
        except (OSError, ValueError, CaseFileError) as exc:
            w.report_error(f"the case could not be saved: {exc}")
            return False
        self.folder, self.run_saved = folder, True
        w.settings.setValue("ui/case_dir", str(folder.parent))
        w.log(f"case saved: {folder}")
        w.status.show_text(f"Case saved: {folder}")
        w.update_title()
        return True

    # -- comparing ----------------------------------------------------------------------------------------
    def compare_dialog(self, show: bool = True):
        """Two runs of the open case side by side; returns the dialog (None when there is nothing to compare)."""
        from engine.case_file import CaseFileError
        from engine.case_folder import read_case_folder
        from forensics_app.gui.run_comparison_dialog import RunComparisonDialog

        w = self.window
        if self.folder is None:
            w.report_error("open or save a case first: runs are compared within a case")
            return None
        try:
            history = list(read_case_folder(self.folder).history)
        except (CaseFileError, ValueError, OSError) as exc:
            w.report_error(str(exc))
            return None
        if len(history) < 2:
            w.report_error("the case holds one run: run again (another model or settings) to compare")
            return None
        dialog = RunComparisonDialog(self.folder, history, w)
        if show:
            dialog.exec()
        return dialog

    # -- opening ----------------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        w = self.window
        if not self.confirm_unsaved("opening another case"):
            return
        start = read_str(w.settings, "ui/case_dir", str(Path.home()))
        path, _ = QFileDialog.getOpenFileName(w, "Open case", start, "Case (case.trcase *.trcase)")
        if path:
            self.open(path)

    def open(self, path) -> bool:
        """Open a case folder (or its case.trcase): the latest run as saved, each evidence file re-hashed."""
        from engine.audit import AuditTrail, CASE_OPENED, REVERIFICATION
        from engine.case_file import CaseFileError, load_case
        from engine.case_folder import case_file_in, case_folder_of

        w = self.window
        if w.session.running:
            w.report_error("a run is in progress: cancel it first (Esc)")
            return False
        folder = case_folder_of(path)
        case_file = case_file_in(folder) if folder is not None else Path(path)
        try:
            loaded = load_case(case_file)
        except (CaseFileError, OSError) as exc:
            w.report_error(str(exc))
            return False
        self.folder = folder
        self.info = dict(loaded.info)
        self.run_saved = True
        w.audit = AuditTrail.from_json(loaded.audit)
        w.show_loaded_run(loaded.run)
        counts: dict[str, int] = {}
        for check in loaded.evidence:
            counts[check.status.value] = counts.get(check.status.value, 0) + 1
        w.audit.record(CASE_OPENED, f"opened {case_file} ({len(loaded.history)} run(s) in its history)", w.examiner())
        w.audit.record(REVERIFICATION, f"{len(loaded.evidence)} evidence file(s) re-hashed on opening: "
                       + (", ".join(f"{v} {k}" for k, v in counts.items()) or "none"), w.examiner())
        for warning in loaded.warnings:
            w.log(warning, "warning")
        if loaded.warnings:
            w.banner.show_message(f"{len(loaded.warnings)} warning(s) on opening the case (evidence changed, "
                                  "missing or moved): see the log")
        w.log(f"opened case {case_file}")
        w.settings.setValue("ui/case_dir", str(Path(case_file).parent.parent))
        w.update_title()
        return True
