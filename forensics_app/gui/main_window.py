"""The main window: layout and wiring of the evidence list, the model / key / method choices, run +
cancel with progress, and the result, comparison and batch views. A run is `RunSession`'s, in a worker
thread; nothing here imports torch, so the window comes up before the engine has loaded."""

from __future__ import annotations


from PySide6.QtCore import QEvent, QModelIndex, Qt, QTimer, Slot
from PySide6.QtWidgets import (QFrame, QGroupBox, QHBoxLayout, QLabel, QMainWindow, QPushButton, QScrollArea,
                               QSplitter, QTabWidget, QVBoxLayout, QWidget)

from forensics_app.gui.actions import install_actions
from forensics_app.gui.banner import Banner
from forensics_app.gui.batch_view import BatchView
from forensics_app.gui.cases import CaseFiles
from forensics_app.gui.comparison_view import ComparisonView
from forensics_app.gui.controls import AdvancedSettings, CollapsibleSection, KeyChooser, ModelChooser
from forensics_app.gui.evidence_intake import EvidenceIntake
from forensics_app.gui.evidence_list import EvidenceModel, EvidenceView, summary_of
from forensics_app.gui.exports import Exports
from forensics_app.gui.key_files import KeyFiles
from forensics_app.gui.log_panel import LogPanel
from forensics_app.gui.model_folders import ModelFolders
from forensics_app.gui.result_view import ResultView
from forensics_app.gui.results_context import ResultsContext, context_text
from forensics_app.gui.run_progress import format_duration
from forensics_app.gui.run_session import RunRequest, RunSession, warm_up_engine
from engine.options import AnalysisOptions
from forensics_app.gui.settings import open_settings, read_json, write_json
from forensics_app.gui.status_bar import RunStatusBar
from forensics_app.gui.window_state import restore_window, save_window
from forensics_app.gui.wheel_guard import guard_wheel
from engine.audit import EXPORT, KEYS_IMPORTED, RUN, SETTINGS, AuditTrail, run_detail, settings_changes

LIST_LOCKED = "the list cannot change while a run is in progress: cancel it first (Esc)"


class MainWindow(QMainWindow):
    def __init__(self, settings=None) -> None:
        super().__init__()
        self.setWindowTitle("Tree-Ring Forensics")
        self.setObjectName("MainWindow")
        self.settings = settings if settings is not None else open_settings()
        self.evidence = EvidenceModel(self)
        self.session = RunSession(self.evidence, self)
        self.last_run = None
        self.calibration_path: str | None = None     # None: the calibration shipped for a bundled model
        self.audit = AuditTrail()                    # this case's record; saved with it (File ▸ Save case)
        self._audit_settings: dict | None = None     # the settings as last recorded in the audit trail
        self._settings_model_id: str | None = None
        self._device_text = ""
        self._user_selected = False
        self._dirty: set[str] = set()
        self._batch_key_ids: tuple[str, ...] = ()
        self._batch_fpr: float | None = None
        self._startup_jobs: list | None = []         # None once the window has been shown
        self._batch_timer = QTimer(self)
        self._batch_timer.setSingleShot(True)
        self._batch_timer.setInterval(300)
        self._build_ui()
        self.intake = EvidenceIntake(self)
        self.previews = self.intake.previews
        self.exports = Exports(self)
        self.key_files = KeyFiles(self)
        self.model_folders = ModelFolders(self)
        self.cases = CaseFiles(self)
        install_actions(self)
        self._connect()
        self._restore()
        self.setAcceptDrops(True)
        guard_wheel(self)
        self._update_actions()

    # -- construction --------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        # left: choices (scrollable) over the evidence list
        self.model_chooser = ModelChooser()
        self.key_chooser = KeyChooser()
        self.key_chooser.load_in_background = self._submit_after_show
        self.advanced = AdvancedSettings()
        self.advanced_section = CollapsibleSection("Advanced: methods, iterations, FPR …", self.advanced)
        self.settings_summary = QLabel()
        self.settings_summary.setWordWrap(True)
        choices = QWidget()
        cl = QVBoxLayout(choices)
        cl.setContentsMargins(4, 4, 4, 4)
        for w in (self.model_chooser, self.key_chooser, self.settings_summary, self.advanced_section):
            cl.addWidget(w)
        cl.addStretch(1)
        choices_scroll = self.choices_scroll = QScrollArea()
        choices_scroll.setWidgetResizable(True)
        choices_scroll.setWidget(choices)
        choices_scroll.setFrameShape(QFrame.Shape.NoFrame)
        choices_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        evidence_box = QGroupBox("Evidence — drop images or folders here")
        el = QVBoxLayout(evidence_box)
        self.evidence_view = EvidenceView(self.evidence)
        el.addWidget(self.evidence_view, 1)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add…")
        self.remove_button = QPushButton("Remove")
        self.clear_button = QPushButton("Clear")
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        for b in (self.add_button, self.remove_button, self.clear_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        el.addLayout(row)

        self.left_splitter = QSplitter(Qt.Orientation.Vertical)
        self.left_splitter.setObjectName("left_splitter")
        self.left_splitter.addWidget(choices_scroll)
        self.left_splitter.addWidget(evidence_box)
        self.left_splitter.setStretchFactor(0, 2)
        self.left_splitter.setStretchFactor(1, 3)

        # right: banner + tabs
        self.banner = Banner()
        self.tabs = QTabWidget()
        self.result_view = ResultView()
        self.comparison_view = ComparisonView()
        self.batch_view = BatchView()
        self.tabs.addTab(self.result_view, "Result")
        self.tabs.addTab(self.comparison_view, "Comparison")
        self.tabs.addTab(self.batch_view, "Batch")
        from forensics_app.gui.what_if_panel import WhatIfPanel

        self.what_if_panel = WhatIfPanel()
        self.tabs.addTab(self.what_if_panel, "What-if")
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.banner)
        self.results_context = ResultsContext()
        rl.addWidget(self.results_context)
        rl.addWidget(self.tabs, 1)

        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.main_splitter.setObjectName("main_splitter")
        self.main_splitter.addWidget(self.left_splitter)
        self.main_splitter.addWidget(right)
        self.main_splitter.setStretchFactor(0, 0)
        self.main_splitter.setStretchFactor(1, 1)
        self.main_splitter.setSizes([420, 1000])
        self.setCentralWidget(self.main_splitter)

        self.log_dock = LogPanel(self)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.status = RunStatusBar(self)
        self.setStatusBar(self.status)

    def _connect(self) -> None:
        s = self.session
        s.model_ready.connect(self._on_model_ready)
        s.config_ready.connect(self._on_config)
        s.progress.connect(self._on_progress)
        s.result.connect(self._on_result)
        s.finished.connect(self._on_finished)
        s.error.connect(self.report_error)
        s.details.connect(lambda text: self.log(text.rstrip(), "details"))
        self.previews.failed.connect(self._on_preview_failed)
        self.add_button.clicked.connect(self.intake.open_files_dialog)
        self.remove_button.clicked.connect(self.remove_selected)
        self.clear_button.clicked.connect(self.clear_evidence)
        self.run_button.clicked.connect(self.run_analysis)
        self.cancel_button.clicked.connect(self.cancel_analysis)
        self.evidence_view.remove_requested.connect(self.remove_selected)
        self.evidence_view.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.model_chooser.changed.connect(self._on_model_changed)
        self.model_chooser.add_folder_requested.connect(self.model_folders.choose_dialog)
        self.key_chooser.import_requested.connect(self.key_files.import_dialog)
        self.key_chooser.export_requested.connect(self.key_files.export_dialog)
        self.key_chooser.new_requested.connect(self.key_files.new_dialog)
        self.key_chooser.error.connect(self.report_error)
        self.key_chooser.changed.connect(self._update_actions)
        self.result_view.loaded_key_sets = self.key_chooser.loaded_key_sets     # reopened cases' evidence views
        self.key_chooser.changed.connect(self.result_view.refresh)
        self.advanced.reset_requested.connect(self.reset_model_defaults)
        self.advanced_section.toggle.toggled.connect(self._on_advanced_toggled)
        for w in self.advanced.findChildren(QWidget):
            for sig in ("toggled", "valueChanged", "currentTextChanged", "textChanged"):
                if hasattr(w, sig) and not isinstance(w, QPushButton):
                    try:
                        getattr(w, sig).connect(self._update_summary)
                    except (RuntimeError, TypeError):
                        pass
        self._batch_timer.timeout.connect(self._refresh_visible)
        self.tabs.currentChanged.connect(self._refresh_visible)
        self.batch_view.export_png_requested.connect(self.exports.export_batch_png)
        self.batch_view.export_csv_requested.connect(self.exports.export_batch_csv)

    def _restore(self) -> None:
        restore_window(self)
        # which device "auto" means needs torch: shown once the worker has imported it
        self.status.show_device(f"Device: {self.advanced.device.currentText()}")
        device = self.advanced.device.currentText()
        self._submit_after_show(lambda: warm_up_engine(device), self._on_device_known, lambda message: None)

    def _submit_after_show(self, fn, on_done, on_failed) -> None:
        """Start-up's background work (reading the key set, importing the engine: seconds of torch) waits
        until the window is on screen, so that it does not compete with showing it."""
        if self._startup_jobs is None:
            self.session.jobs.submit(fn, on_done, on_failed)
        else:
            self._startup_jobs.append((fn, on_done, on_failed))

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self._startup_jobs is not None:
            QTimer.singleShot(0, self._start_startup_jobs)

    def _start_startup_jobs(self) -> None:
        jobs, self._startup_jobs = self._startup_jobs or [], None
        for job in jobs:
            self.session.jobs.submit(*job)

    def _on_device_known(self, name: str) -> None:
        if not self._device_text:                  # a run's model_ready is the better answer
            self.status.show_device(f"Device: {name}")

    def save_state(self) -> None:
        save_window(self)

    # -- logging and errors ---------------------------------------------------------------------------
    def log(self, message: str, level: str = "info") -> None:
        self.log_dock.log(message, level)

    def report_error(self, message: str) -> None:
        self.log(message, "error")
        self.banner.show_message(message)
        self.status.show_text("Error: " + message[:120])

    # -- evidence ------------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)
        else:
            event.ignore()

    def add_paths(self, paths) -> list:
        """Files and folders (a folder adds its images, not recursively). Returns the new items."""
        new = self.intake.add_paths(paths)
        self._update_actions()
        return new

    def _on_preview_failed(self, message: str) -> None:
        self.log(message, "error")
        self._refresh_current()

    def remove_selected(self) -> None:
        if self.session.running:
            self.report_error(LIST_LOCKED)
            return
        self.evidence.remove_rows(self.evidence_view.selected_rows())
        self._refresh_current()
        self._update_actions()

    def clear_evidence(self) -> None:
        if self.session.running:
            self.report_error(LIST_LOCKED)
            return
        if not self.cases.confirm_unsaved("clearing the list"):
            return
        self.evidence.clear()
        self.last_run = None
        self._refresh_current()
        self._batch_key_ids = ()
        self.batch_view.set_items([], ())
        self._update_actions()
        self.update_results_context()

    # -- model and settings --------------------------------------------------------------------------
    def store_model_settings(self) -> None:
        if self._settings_model_id is None:
            return
        try:
            s = self.advanced.settings()
        except ValueError:
            return
        write_json(self.settings, f"analysis/{self._settings_model_id}", s.to_json())

    def _on_advanced_toggled(self, on: bool) -> None:
        """Opening the Advanced panel scrolls it into view (it opens below the fold of the choices)."""
        if on:
            QTimer.singleShot(0, lambda: self.choices_scroll.ensureWidgetVisible(self.advanced_section, 0, 0))

    def _on_model_changed(self, model_id: str) -> None:
        self.store_model_settings()
        spec = self.model_chooser.current_spec()
        saved = read_json(self.settings, f"analysis/{model_id}", None)
        s = AnalysisOptions.from_json(saved) if saved is not None else AnalysisOptions()
        self.advanced.set_settings(s, spec)
        self._settings_model_id = model_id
        self._update_actions()
        self.update_results_context()

    def reset_model_defaults(self) -> None:
        spec = self.model_chooser.current_spec()
        self.advanced.set_settings(AnalysisOptions(), spec)
        self.log(f"method settings reset to the defaults of {spec.id if spec else 'the model'}")

    def set_analysis_settings(self, s: AnalysisOptions) -> None:
        self.advanced.set_settings(s, self.model_chooser.current_spec())
        self._update_summary()

    # -- running -------------------------------------------------------------------------------------
    def _update_summary(self, *args) -> None:
        self.settings_summary.setText("Methods: " + self.advanced.summary())

    def _update_actions(self, *args) -> None:
        running = self.session.running
        loc = self.model_chooser.current_location()
        runnable = any(i.runnable for i in self.evidence.items)
        can_run = (not running and runnable and loc is not None and loc.found
                   and self.key_chooser.current_entry() is not None)
        self.run_action.setEnabled(can_run)
        self.run_button.setEnabled(can_run)
        tip = "Analyse the listed images (Ctrl+R)"
        if loc is not None and not loc.found:
            tip = "The selected model is not on this machine (see the hint under the model)"
        elif not self.evidence.items:
            tip = "Add images first (drop them on the window, or Ctrl+I)"
        self.run_button.setToolTip(tip)
        self.cancel_action.setEnabled(running)
        self.cancel_button.setEnabled(running)
        for w in (self.model_chooser, self.key_chooser, self.advanced, self.remove_button, self.clear_button):
            w.setEnabled(not running)
        self.report_action.setEnabled(self.last_run is not None and not running)
        self.save_case_action.setEnabled(self.last_run is not None and not running)
        self.save_case_as_action.setEnabled(self.last_run is not None and not running)
        self.open_case_action.setEnabled(not running)
        self.json_action.setEnabled(self.last_run is not None and not running)
        self.compare_models_action.setEnabled(self.last_run is not None and not running)
        self._update_summary()

    def run_analysis(self) -> bool:
        """Start a run over every listed file. Returns False (with a message) when it cannot start."""
        if self.session.running:
            return False
        if not any(i.runnable for i in self.evidence.items):
            self.report_error("nothing to analyse: drop images or folders onto the window, or use File ▸ Add images")
            return False
        loc = self.model_chooser.current_location()
        if loc is None or not loc.found:
            self.report_error(loc.explain_missing() if loc is not None else "choose a model")
            return False
        keys = self.key_chooser.current_keys()
        if keys is None:
            self.report_error("choose or import a key set")
            return False
        try:
            s = self.advanced.settings()
            search = self.advanced.search.choice()
            restore = self.advanced.restore.choice()
            if restore is not None and restore.prior == "diffusion":
                from engine.model_kinds import require_grid      # light: no torch

                require_grid(loc.spec.kind, loc.spec.id, "the diffusion prior")
        except ValueError as exc:
            self.report_error(str(exc))
            return False
        if not self.cases.confirm_unsaved("a new run replaces them"):
            return False
        self.store_model_settings()
        self._record_settings(s)
        self.previews.hold()
        self.banner.hide()
        self.last_run = None
        self.result_view.set_run_context(keys, self._device_text)
        self.comparison_view.set_run_context(keys, self._device_text)
        self._batch_key_ids, self._batch_fpr = keys.ids, s.fpr
        self.batch_view.set_items([], keys.ids, fpr=s.fpr)
        paths = [i.path for i in self.evidence.items if i.runnable]
        skipped = tuple(i.not_analysed for i in self.evidence.items if not i.runnable)
        self.status.run_started(len(paths))
        self.log(f"run: {len(paths)} file(s), model {loc.spec.id}, keys {', '.join(keys.ids)}, "
                 f"{' + '.join(s.methods)}, {s.iterations} it, {s.inversion} {s.steps} steps, FPR {s.fpr:g}"
                 + (f"; {search.describe()}" if search is not None else "")
                 + (f"; {restore.describe()}" if restore is not None else ""))
        self.results_context.running = context_text(loc.spec.id, keys, s.methods, s.fpr, s.iterations,
                                                    f"{s.inversion} {s.steps} steps")
        from forensics_app.gui.executor_setting import ray_address

        self.session.start(RunRequest(loc.spec.id, keys, paths, s, skipped, ray_address(self.settings),
                                      self.calibration_path, search, restore))
        self.update_results_context()
        self._update_actions()
        self._refresh_current()
        return True

    def cancel_analysis(self) -> None:
        if not self.session.running:
            return
        self.session.cancel()
        self.status.show_text("Cancelling after the current iteration …")
        self.log("cancel requested")

    @Slot(str, str)
    def _on_model_ready(self, device: str, dtype: str) -> None:
        self._device_text = device
        self.status.show_device(f"Device: {device} · {dtype}")
        self.result_view.set_device(device)
        self.comparison_view.set_device(device)

    @Slot(object)
    def _on_config(self, config) -> None:
        self.comparison_view.set_config(config)
        self.result_view.set_config(config)

    @Slot(object)
    def _on_progress(self, ev) -> None:
        self.status.show_event(ev)
        self.status.show_timing(self.session.timing_text())

    @Slot(object)
    def _on_result(self, r) -> None:
        from engine.analysis import ImageAnalysis          # loaded by now: the worker imported it

        analysed = isinstance(r, ImageAnalysis)
        item = self.evidence.item_for(r.evidence.path if analysed else r.path)
        self.status.images_finished(self.session.finished_count)
        self.status.show_timing(self.session.timing_text())
        if item is None:
            return
        if analysed:
            self.log(f"{item.name}: {summary_of(r)}")
            for w in r.evidence.warnings:
                self.log(f"{item.name}: {w}", "warning")
        else:
            self.log(r.message, "error")
        cur = self._current_item()
        if cur is item:
            self._defer_refresh()
        elif analysed and (cur is None or cur.analysis is None) and not self._user_selected:
            row = self.evidence.items.index(item)
            QTimer.singleShot(0, lambda: self.evidence_view.selectRow(row))
        self._schedule_batch_refresh()

    @Slot(object)
    def _on_finished(self, run) -> None:
        self.last_run = run
        self.results_context.running = None
        if run is not None:
            self.cases.new_run_finished()
            self.audit.record(RUN, run_detail(run), self.examiner())
        self.update_results_context()
        text = self.session.summary(run)
        self.status.run_finished(text, format_duration(self.session.elapsed()))
        self.log(text)
        if run is not None:
            self._batch_key_ids, self._batch_fpr = run.keys.ids, run.config.fpr
            self._schedule_batch_refresh()
            for note in run.notes:                        # e.g. a GPU fall-back, a re-alignment search not run
                self.log(note, "warning")
            if run.failures:
                self.banner.show_message(f"{len(run.failures)} file(s) could not be analysed; the others were. "
                                         f"See the list and the log for the reasons.")
        self._update_actions()
        self._defer_refresh()                             # statuses changed ("cancelled")
        self.previews.resume()

    # -- case, audit trail, what the results are ------------------------------------------------------------
    def examiner(self) -> str:
        from forensics_app.gui.settings import read_str

        return read_str(self.settings, "report/examiner") or str(self.cases.info.get("examiner", ""))

    def record(self, action: str, detail: str) -> None:
        """One event in the case's audit trail (saved with the case)."""
        self.audit.record(action, detail, self.examiner())

    def _record_settings(self, s: AnalysisOptions) -> None:
        now = s.to_json()
        changes = settings_changes(self._audit_settings, now) if self._audit_settings is not None else ""
        if changes:
            self.record(SETTINGS, changes)
        self._audit_settings = now

    def record_keys_imported(self, detail: str) -> None:
        self.record(KEYS_IMPORTED, detail)

    def record_export(self, detail: str) -> None:
        self.record(EXPORT, detail)

    def update_title(self) -> None:
        folder = self.cases.folder
        self.setWindowTitle(f"Tree-Ring Forensics — case {folder.name}" if folder is not None else "Tree-Ring Forensics")

    def update_results_context(self) -> None:
        self.results_context.refresh(self.last_run, self.model_chooser)

    def show_loaded_run(self, run) -> None:
        """A run reopened from a case: its evidence, results, failures and files not analysed, as saved."""
        from forensics_app.gui.evidence_list import Status, reason_only, thumbnail_from
        from forensics_app.figure_arrays import pixels_to_rgb8
        from forensics_app.figures import rgb_qimage
        import numpy as np

        self.evidence.clear()
        paths = [a.evidence.path for a in run.images] + [f.path for f in run.failures]
        self.evidence.add(paths, run.not_analysed)
        for a in run.images:
            item = self.evidence.item_for(a.evidence.path)
            item.analysis, item.sha256 = a, a.evidence.sha256
            item.info = f"{a.evidence.width}×{a.evidence.height} {a.evidence.format} ({a.evidence.mode}), " \
                        f"{a.evidence.size_bytes:,} bytes"
            if np.any(a.evidence.pixels):
                item.preview = rgb_qimage(pixels_to_rgb8(a.evidence.pixels))
                item.thumbnail = thumbnail_from(item.preview)
            self.evidence.set_status(item, Status.DONE, summary_of(a))
        for f in run.failures:
            item = self.evidence.item_for(f.path)
            item.failure, item.sha256 = f.message, f.sha256
            self.evidence.set_status(item, Status.FAILED, f.reason or reason_only(f.message, f.path))
        self.last_run = run
        self.result_view.set_run_context(run.keys, run.device)
        self.comparison_view.set_run_context(run.keys, run.device)
        self.result_view.set_config(run.config)
        self.comparison_view.set_config(run.config)
        self._batch_key_ids, self._batch_fpr = run.keys.ids, run.config.fpr
        self._schedule_batch_refresh()
        if run.images:
            self.evidence_view.selectRow(self.evidence.items.index(self.evidence.item_for(run.images[0].evidence.path)))
        self._refresh_current()
        self._update_actions()
        self.update_results_context()

    # -- selection and views ---------------------------------------------------------------------------
    def _current_item(self):
        idx = self.evidence_view.currentIndex()
        return self.evidence.items[idx.row()] if idx.isValid() and idx.row() < len(self.evidence.items) else None

    def _on_current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        if self.evidence_view.hasFocus():
            self._user_selected = True
        self._refresh_current()

    def _refresh_current(self) -> None:
        """Show the current item in the visible view now; the hidden ones catch up when shown (keeps the
        GUI thread's work per result small during a run)."""
        self._dirty.update({"result", "comparison", "what_if"})
        self._refresh_visible()

    def _defer_refresh(self) -> None:
        """Redraw the visible view in a later event-loop pass, so bookkeeping, drawing and painting of a
        result never add up into one long block."""
        self._dirty.update({"result", "comparison", "what_if"})
        QTimer.singleShot(0, self._refresh_visible)

    def _refresh_visible(self, *args) -> None:
        current = self.tabs.currentWidget()
        item = self._current_item()
        if current is self.result_view and "result" in self._dirty:
            self._dirty.discard("result")
            self.result_view.show_item(item)
        elif current is self.comparison_view and "comparison" in self._dirty:
            self._dirty.discard("comparison")
            self.comparison_view.show_item(item)
        elif current is self.what_if_panel and "what_if" in self._dirty:
            self._dirty.discard("what_if")
            self.what_if_panel.set_exhibit(item.analysis if item is not None else None, self.last_run)
        elif current is self.batch_view and "batch" in self._dirty:
            self._dirty.discard("batch")
            self.batch_view.set_items(self.evidence.items, self._batch_key_ids, fpr=self._batch_fpr)

    def _schedule_batch_refresh(self) -> None:
        self._dirty.add("batch")
        if not self._batch_timer.isActive():
            self._batch_timer.start()

    def select_item(self, path: str) -> None:
        row = self.evidence.row_of(path)
        if row >= 0:
            self.evidence_view.selectRow(row)
            self._refresh_current()

    # -- window life -----------------------------------------------------------------------------------
    def changeEvent(self, event) -> None:  # noqa: N802
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.batch_view.refresh()      # its cell shading derives from the palette
        super().changeEvent(event)

    def request_quit(self) -> None:
        """File ▸ Quit: asks about unsaved results first (Save / Discard / Cancel)."""
        if self.cases.confirm_unsaved("quitting"):
            self._quit_confirmed = True
            self.close()

    def closeEvent(self, event) -> None:  # noqa: N802
        # The window manager's close button asks too; a programmatic close() after request_quit does not ask
        # again (and tests closing windows are not asked).
        if event.spontaneous() and not getattr(self, "_quit_confirmed", False):
            if not self.cases.confirm_unsaved("closing the window"):
                event.ignore()
                return
        self.session.shutdown()
        self.save_state()
        self.previews.shutdown()
        self.exports.jobs.wait(30000)
        super().closeEvent(event)
