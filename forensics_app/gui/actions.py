"""The main window's actions, menus and toolbar (shortcuts work window-wide, not per widget)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMessageBox, QStyle, QWidget

from forensics_app.gui.settings import read_json, write_json

if TYPE_CHECKING:
    from PySide6.QtCore import QSettings

    from forensics_app.gui.main_window import MainWindow


class RecentMenu(QMenu):
    """File ▸ Open recent: the files and folders added before, filled each time it opens."""

    def __init__(self, title: str, settings: QSettings, open_path: Callable[[str], object], parent=None) -> None:
        super().__init__(title, parent)
        self.settings = settings
        self.open_path = open_path
        self.aboutToShow.connect(self.fill)

    def fill(self) -> None:
        self.clear()
        recent = [p for p in read_json(self.settings, "recent/paths", []) if isinstance(p, str)]
        if not recent:
            self.addAction("(none)").setEnabled(False)
            return
        for p in recent:
            a = self.addAction(p)
            a.setEnabled(os.path.exists(p))
            a.triggered.connect(lambda checked=False, p=p: self.open_path(p))
        self.addSeparator()
        self.addAction("Clear recent", lambda: write_json(self.settings, "recent/paths", []))


def _action(w: MainWindow, text: str, slot, shortcut=None, tip: str = "") -> QAction:
    a = QAction(text, w)
    if shortcut is not None:
        a.setShortcut(QKeySequence(shortcut))
        a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    if tip:
        a.setStatusTip(tip)
        a.setToolTip(tip)
    a.triggered.connect(slot)
    w.addAction(a)
    return a


def install_actions(w: MainWindow) -> None:
    """Create the window's actions as its attributes (`w.run_action`, …) and put them in menus and the
    toolbar."""
    S = QKeySequence.StandardKey
    w.open_action = _action(w, "&Add images…", w.intake.open_files_dialog, "Ctrl+I", "Add image files (Ctrl+I)")
    w.open_folder_action = _action(w, "Add &folder…", w.intake.open_folder_dialog, "Ctrl+Shift+O",
                                   "Add a folder and its subfolders (Ctrl+Shift+O)")
    w.open_case_action = _action(w, "&Open case…", w.cases.open_dialog, S.Open,
                                 "Reopen a saved case: its runs, results and record (Ctrl+O)")
    w.save_case_action = _action(w, "&Save case", w.cases.save, S.Save,
                                 "Keep the results and their record in the case folder (Ctrl+S)")
    w.save_case_as_action = _action(w, "Save case &as…", w.cases.save_as, "Ctrl+Shift+S",
                                    "Save into a new case folder (Ctrl+Shift+S)")
    w.compare_runs_action = _action(w, "Compare runs in case…", w.cases.compare_dialog, tip=(
        "Two runs of the open case side by side: settings and every verdict on the same evidence"))
    w.run_action = _action(w, "&Run", w.run_analysis, "Ctrl+R", "Analyse the listed images (Ctrl+R)")
    w.cancel_action = _action(w, "&Cancel", w.cancel_analysis, "Esc",
                              "Stop after the current iteration; finished images keep their results (Esc)")
    w.report_action = _action(w, "Export &report (PDF)…", w.exports.export_report, "Ctrl+E")
    w.json_action = _action(w, "Export results (&JSON)…", w.exports.export_json, "Ctrl+Shift+E")
    w.batch_png_action = _action(w, "Export batch matrix as PNG…", w.exports.export_batch_png)
    w.batch_csv_action = _action(w, "Export batch matrix as CSV…", w.exports.export_batch_csv)
    w.required_fields_action = _action(w, "Required report fields…", w.exports.choose_required_fields)
    w.quit_action = _action(w, "&Quit", w.request_quit, S.Quit)
    w.add_model_action = _action(w, "Add model folder…", w.model_folders.choose_dialog)
    w.import_keys_action = _action(w, "Import keys…", w.key_files.import_dialog)
    w.export_keys_action = _action(w, "Export keys…", w.key_files.export_dialog)
    w.new_keys_action = _action(w, "New keys…", w.key_files.new_dialog)
    from forensics_app.gui.calibration_dialog import (choose_calibration_file, open_calibration_dialog,
                                                      use_shipped_calibration)
    from forensics_app.gui.model_comparison_dialog import open_model_comparison

    w.calibrate_action = _action(w, "Calibrate on the model…", lambda: open_calibration_dialog(w), tip=(
        "Measure the tests on the model's own clean and watermarked images, with the current settings"))
    w.use_calibration_action = _action(w, "Use calibration file…", lambda: choose_calibration_file(w))
    w.shipped_calibration_action = _action(w, "Use the shipped calibration", lambda: use_shipped_calibration(w))
    w.compare_models_action = _action(w, "Compare models…", lambda: open_model_comparison(w), tip=(
        "Analyse the last run's exhibits under another model and say which model explains each"))
    from forensics_app.gui.executor_setting import choose_executor_dialog

    w.executor_action = _action(w, "Run &on…", lambda: choose_executor_dialog(w), tip=(
        "Analyse on this computer (default) or submit runs to a Ray cluster"))
    w.remove_action = _action(w, "Remove selected", w.remove_selected)
    w.clear_action = _action(w, "Clear list", w.clear_evidence)

    mb = w.menuBar()
    file_menu = mb.addMenu("&File")
    file_menu.addAction(w.open_case_action)
    file_menu.addAction(w.save_case_action)
    file_menu.addAction(w.save_case_as_action)
    file_menu.addAction(w.compare_runs_action)
    file_menu.addSeparator()
    file_menu.addAction(w.open_action)
    file_menu.addAction(w.open_folder_action)
    w.recent_menu = RecentMenu("Open &recent", w.settings, lambda p: w.add_paths([p]), file_menu)
    file_menu.addMenu(w.recent_menu)
    file_menu.addSeparator()
    for a in (w.report_action, w.json_action, w.batch_png_action, w.batch_csv_action, w.required_fields_action):
        file_menu.addAction(a)
    file_menu.addSeparator()
    file_menu.addAction(w.quit_action)
    analysis_menu = mb.addMenu("&Analysis")
    analysis_menu.addAction(w.run_action)
    analysis_menu.addAction(w.cancel_action)
    analysis_menu.addAction(w.executor_action)
    analysis_menu.addSeparator()
    for a in (w.calibrate_action, w.use_calibration_action, w.shipped_calibration_action, w.compare_models_action):
        analysis_menu.addAction(a)
    analysis_menu.addSeparator()
    analysis_menu.addAction(w.remove_action)
    analysis_menu.addAction(w.clear_action)
    model_menu = mb.addMenu("&Model && keys")
    model_menu.addAction(w.add_model_action)
    model_menu.addSeparator()
    model_menu.addAction(w.import_keys_action)
    model_menu.addAction(w.export_keys_action)
    model_menu.addAction(w.new_keys_action)
    view_menu = mb.addMenu("&View")
    view_menu.addAction(w.log_dock.toggleViewAction())
    help_menu = mb.addMenu("&Help")
    help_menu.addAction(_action(w, "What a verdict may claim", lambda: show_claims_help(w)))

    tb = w.addToolBar("Main")
    tb.setObjectName("main_toolbar")
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    st = w.style()
    w.open_action.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_DialogOpenButton))
    w.run_action.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
    w.cancel_action.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_MediaStop))
    w.report_action.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_DialogSaveButton))
    for a in (w.open_action, w.run_action, w.cancel_action, w.report_action):
        tb.addAction(a)


def show_claims_help(parent: QWidget) -> None:
    QMessageBox.information(
        parent, "What a verdict may claim",
        "A positive means the recovered initial noise is consistent with key K under model M at the stated "
        "p-value and false-positive level — not proof of origin: a Tree-Ring pattern can be forged onto "
        "images the key holder never made.\n\nDetection and identification are separate questions: a "
        "watermark can be detected while the evidence cannot tell two keys apart — the conclusion is then "
        "'inconclusive' and names the candidates. Each p-value says which test made it, and whether it is "
        "calibrated on the model's own images; evidence unlike the model's own images (rotated, cropped, "
        "re-encoded) is marked 'outside calibration' and a positive on it is not defended.\n\nA negative is not proof of absence: JPEG, cropping, rotation "
        "and regeneration weaken or remove the ring. Check how well the model explains the evidence "
        "(latent residual, PSNR of D(z0)).")
