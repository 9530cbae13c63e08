"""The main window: evidence list, model / key / method choices, run + cancel with progress, and the
result, comparison and batch views. All analysis is the engine's, in a worker thread."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QEvent, QModelIndex, Qt, QThreadPool, QTimer, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QDialog, QDialogButtonBox, QDockWidget, QFileDialog, QFormLayout, QFrame,
                               QGroupBox, QHBoxLayout, QLabel, QLineEdit, QMainWindow, QMessageBox,
                               QPlainTextEdit, QProgressBar, QPushButton, QScrollArea, QSplitter, QStyle,
                               QTabWidget, QToolButton, QVBoxLayout, QWidget)

from forensics_app.gui.batch_view import BatchView
from forensics_app.gui.comparison_view import ComparisonView
from forensics_app.gui.controls import (DEMO_KEYS, AdvancedSettings, CollapsibleSection, KeyChooser,
                                        ModelChooser, NewKeysDialog, looks_like_diffusers_folder,
                                        unique_model_id)
from forensics_app.gui.evidence_list import (EvidenceModel, EvidenceView, Status, load_preview, summary_of,
                                             thumbnail_from)
from forensics_app.gui.result_view import ResultView
from forensics_app.gui.settings import (AnalysisSettings, open_settings, read_json, read_str,
                                        remember_recent, write_json)
from forensics_app.gui.spectrum_image import pixels_to_rgb8, rgb_qimage
from forensics_app.gui.worker import AnalysisController, RunRequest, RunTracker, format_duration, submit

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif);;All files (*)"


class Banner(QFrame):
    """A non-modal message strip above the views (errors never open a traceback dialog)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 4, 4)
        self.icon = QLabel()
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)      # messages carry untrusted file names
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setAutoRaise(True)
        close.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_TitleBarCloseButton))
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        lay.addWidget(self.icon)
        lay.addWidget(self.label, 1)
        lay.addWidget(close)
        self.hide()

    def show_message(self, text: str, error: bool = True) -> None:
        pix = QStyle.StandardPixmap.SP_MessageBoxWarning if error else QStyle.StandardPixmap.SP_MessageBoxInformation
        self.icon.setPixmap(self.style().standardIcon(pix).pixmap(20, 20))
        self.label.setText(text)
        self.show()


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


class MainWindow(QMainWindow):
    def __init__(self, settings=None) -> None:
        super().__init__()
        self.setWindowTitle("Tree-Ring Forensics")
        self.setObjectName("MainWindow")
        self.settings = settings if settings is not None else open_settings()
        self.controller = AnalysisController(self)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)             # evidence previews
        self.export_pool = QThreadPool(self)
        self.export_pool.setMaxThreadCount(1)      # JSON exports
        self.evidence = EvidenceModel(self)
        self.last_run = None
        self.run_keys = None
        self.tracker: RunTracker | None = None
        self._in_batch: list = []
        self._run_started = 0.0
        self._settings_model_id: str | None = None
        self._device_text = ""
        self._jobs: set = set()
        self._pending_previews: set[str] = set()
        self._run_paths: set[str] = set()
        self._finished_count = 0
        self._deferred_previews: set[str] = set()
        self._dirty: set[str] = set()
        self._batch_key_ids: tuple[str, ...] = ()
        self._batch_fpr: float | None = None
        self._batch_timer = QTimer(self)
        self._batch_timer.setSingleShot(True)
        self._batch_timer.setInterval(300)
        self._build_ui()
        self._build_actions()
        self._connect()
        self._restore()
        self.setAcceptDrops(True)
        self._update_actions()

    # -- construction --------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        # left: choices (scrollable) over the evidence list
        self.model_chooser = ModelChooser()
        self.key_chooser = KeyChooser()
        self.advanced = AdvancedSettings()
        self.advanced_section = CollapsibleSection("Advanced: methods, iterations, FPR …", self.advanced)
        self.settings_summary = QLabel()
        self.settings_summary.setWordWrap(True)
        choices = QWidget()
        cl = QVBoxLayout(choices)
        cl.setContentsMargins(4, 4, 4, 4)
        cl.addWidget(self.model_chooser)
        cl.addWidget(self.key_chooser)
        cl.addWidget(self.settings_summary)
        cl.addWidget(self.advanced_section)
        cl.addStretch(1)
        choices_scroll = QScrollArea()
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
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.banner)
        rl.addWidget(self.tabs, 1)

        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.main_splitter.setObjectName("main_splitter")
        self.main_splitter.addWidget(self.left_splitter)
        self.main_splitter.addWidget(right)
        self.main_splitter.setStretchFactor(0, 0)
        self.main_splitter.setStretchFactor(1, 1)
        self.main_splitter.setSizes([420, 1000])
        self.setCentralWidget(self.main_splitter)

        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("log_dock")
        self.log_dock.setWidget(self.log_view)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)

        sb = self.statusBar()
        self.stage_label = QLabel("Ready")
        self.stage_bar = QProgressBar()
        self.stage_bar.setMaximumWidth(220)
        self.stage_bar.setFormat("%v/%m")
        self.stage_bar.setToolTip("Progress of the current stage (iterations or steps)")
        self.images_bar = QProgressBar()
        self.images_bar.setMaximumWidth(220)
        self.images_bar.setFormat("%v/%m images")
        self.images_bar.setToolTip("Images finished (analysed or failed)")
        self.eta_label = QLabel()
        self.device_label = QLabel()
        sb.addWidget(self.stage_label, 1)
        sb.addPermanentWidget(self.stage_bar)
        sb.addPermanentWidget(self.images_bar)
        sb.addPermanentWidget(self.eta_label)
        sb.addPermanentWidget(self.device_label)
        self.stage_bar.hide()
        self.images_bar.hide()

    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(tip)
        a.triggered.connect(slot)
        self.addAction(a)
        return a

    def _build_actions(self) -> None:
        S = QKeySequence.StandardKey
        self.open_action = self._action("&Open images…", self.open_files, S.Open, "Add image files (Ctrl+O)")
        self.open_folder_action = self._action("Open &folder…", self.open_folder, "Ctrl+Shift+O")
        self.run_action = self._action("&Run", self.run_analysis, "Ctrl+R", "Analyse the listed images (Ctrl+R)")
        self.cancel_action = self._action("&Cancel", self.cancel_analysis, "Esc",
                                          "Stop after the current iteration; finished images keep their results (Esc)")
        self.report_action = self._action("Export &report (PDF)…", self.export_report, "Ctrl+E")
        self.json_action = self._action("Export results (&JSON)…", self.export_json, "Ctrl+Shift+E")
        self.batch_png_action = self._action("Export batch matrix as PNG…", self.export_batch_png)
        self.batch_csv_action = self._action("Export batch matrix as CSV…", self.export_batch_csv)
        self.quit_action = self._action("&Quit", self.close, S.Quit)
        self.add_model_action = self._action("Add model folder…", self.choose_model_folder)
        self.import_keys_action = self._action("Import keys…", self.import_keys)
        self.export_keys_action = self._action("Export keys…", self.export_keys)
        self.new_keys_action = self._action("New keys…", self.new_keys)
        self.remove_action = self._action("Remove selected", self.remove_selected)
        self.clear_action = self._action("Clear list", self.clear_evidence)

        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        file_menu.addAction(self.open_action)
        file_menu.addAction(self.open_folder_action)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        file_menu.addAction(self.report_action)
        file_menu.addAction(self.json_action)
        file_menu.addAction(self.batch_png_action)
        file_menu.addAction(self.batch_csv_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        analysis_menu = mb.addMenu("&Analysis")
        analysis_menu.addAction(self.run_action)
        analysis_menu.addAction(self.cancel_action)
        analysis_menu.addSeparator()
        analysis_menu.addAction(self.remove_action)
        analysis_menu.addAction(self.clear_action)
        model_menu = mb.addMenu("&Model && keys")
        model_menu.addAction(self.add_model_action)
        model_menu.addSeparator()
        model_menu.addAction(self.import_keys_action)
        model_menu.addAction(self.export_keys_action)
        model_menu.addAction(self.new_keys_action)
        view_menu = mb.addMenu("&View")
        view_menu.addAction(self.log_dock.toggleViewAction())
        help_menu = mb.addMenu("&Help")
        help_menu.addAction(self._action("What a verdict may claim", self.show_claims_help))

        tb = self.addToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        st = self.style()
        self.open_action.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_DialogOpenButton))
        self.run_action.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.cancel_action.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_MediaStop))
        self.report_action.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_DialogSaveButton))
        for a in (self.open_action, self.run_action, self.cancel_action, self.report_action):
            tb.addAction(a)

    def _connect(self) -> None:
        c = self.controller
        c.stage.connect(self._on_stage)
        c.model_ready.connect(self._on_model_ready)
        c.config_ready.connect(self._on_config)
        c.progress.connect(self._on_progress)
        c.result.connect(self._on_result)
        c.finished.connect(self._on_finished)
        c.error.connect(lambda msg: self.report_error(msg))
        c.details.connect(lambda text: self.log(text.rstrip(), "details"))
        self.add_button.clicked.connect(self.open_files)
        self.remove_button.clicked.connect(self.remove_selected)
        self.clear_button.clicked.connect(self.clear_evidence)
        self.run_button.clicked.connect(self.run_analysis)
        self.cancel_button.clicked.connect(self.cancel_analysis)
        self.evidence_view.remove_requested.connect(self.remove_selected)
        self.evidence_view.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.model_chooser.changed.connect(self._on_model_changed)
        self.model_chooser.add_folder_requested.connect(self.choose_model_folder)
        self.key_chooser.import_requested.connect(self.import_keys)
        self.key_chooser.export_requested.connect(self.export_keys)
        self.key_chooser.new_requested.connect(self.new_keys)
        self.key_chooser.error.connect(self.report_error)
        self.key_chooser.changed.connect(self._update_actions)
        self.advanced.reset_requested.connect(self.reset_model_defaults)
        for w in self.advanced.findChildren(QWidget):
            for sig in ("toggled", "valueChanged", "currentTextChanged", "textChanged"):
                if hasattr(w, sig) and not isinstance(w, QPushButton):
                    try:
                        getattr(w, sig).connect(self._update_summary)
                    except (RuntimeError, TypeError):
                        pass
        self._batch_timer.timeout.connect(self._refresh_visible)
        self.tabs.currentChanged.connect(self._refresh_visible)
        self.batch_view.export_png_requested.connect(self.export_batch_png)
        self.batch_view.export_csv_requested.connect(self.export_batch_csv)

    def _restore(self) -> None:
        s = self.settings
        # key sets: the bundled demo keys, then those used before
        if DEMO_KEYS.is_file():
            self.key_chooser.add_entry("Demo keys (bundled)", str(DEMO_KEYS), select=False)
        for p in read_json(s, "keys/files", []):
            if isinstance(p, str) and os.path.isfile(p):
                self.key_chooser.add_entry(Path(p).name, p, select=False)
        wanted = read_str(s, "keys/current", str(DEMO_KEYS))
        paths = self.key_chooser.paths()
        idx = paths.index(os.path.abspath(wanted)) if os.path.abspath(wanted) in paths else 0
        if self.key_chooser.combo.count():
            self.key_chooser.combo.setCurrentIndex(idx)
            self.key_chooser._on_changed()
        self.model_chooser.populate(read_str(s, "model/current", "demo") or "demo")
        self.advanced_section.set_expanded(read_str(s, "ui/advanced_open", "false") == "true")
        geometry = s.value("ui/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1440, 900)
            self.resizeDocks([self.log_dock], [130], Qt.Orientation.Vertical)
            self.left_splitter.setSizes([390, 510])
        state = s.value("ui/state")
        if state is not None:
            self.restoreState(state)
        for name, splitter in (("ui/main_splitter", self.main_splitter), ("ui/left_splitter", self.left_splitter)):
            v = s.value(name)
            if v is not None:
                splitter.restoreState(v)
        self.device_label.setText(self._default_device_text())

    def _default_device_text(self) -> str:
        try:
            from engine.device import device_name, pick_device

            want = self.advanced.device.currentText()
            dev = pick_device(want)
            return f"Device: {device_name(dev)}"
        except Exception:  # noqa: BLE001 — e.g. "cuda" requested without a GPU
            return f"Device: {self.advanced.device.currentText()}"

    def save_state(self) -> None:
        s = self.settings
        s.setValue("ui/geometry", self.saveGeometry())
        s.setValue("ui/state", self.saveState())
        s.setValue("ui/main_splitter", self.main_splitter.saveState())
        s.setValue("ui/left_splitter", self.left_splitter.saveState())
        s.setValue("ui/advanced_open", "true" if self.advanced_section.toggle.isChecked() else "false")
        if self.model_chooser.current_id():
            s.setValue("model/current", self.model_chooser.current_id())
        self._store_model_settings()
        if self.key_chooser.current_path():
            s.setValue("keys/current", self.key_chooser.current_path())
        write_json(s, "keys/files", [p for p in self.key_chooser.paths() if os.path.abspath(p) != str(DEMO_KEYS)])
        s.sync()

    # -- logging and errors ---------------------------------------------------------------------------
    def log(self, message: str, level: str = "info") -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        self.log_view.appendPlainText(f"[{stamp}] {level}: {message}")

    def report_error(self, message: str) -> None:
        self.log(message, "error")
        self.banner.show_message(message)
        self.stage_label.setText("Error: " + message[:120])

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
        from engine.intake import EvidenceError, expand_evidence_paths

        expanded = []
        for p in paths:
            p = os.fspath(p)
            try:
                found = expand_evidence_paths([p])
            except EvidenceError as exc:
                self.report_error(str(exc))
                continue
            if os.path.isdir(p) and not found:
                self.log(f"'{p}' contains no image files (PNG, JPEG, WebP, BMP, TIFF, GIF)", "warning")
            remember_recent(self.settings, "recent/paths", os.path.abspath(p))
            expanded.extend(str(f) for f in found)
        new = self.evidence.add(expanded)
        for item in new:
            self._start_preview(item)
        if new:
            self.log(f"added {len(new)} file(s)")
            if not self.evidence_view.currentIndex().isValid():
                self.evidence_view.selectRow(self.evidence.items.index(new[0]))
        self._update_actions()
        return new

    def _start_preview(self, item) -> None:
        """Hash and thumbnail a file on the pool thread, through the engine's intake. Never while a run
        reads evidence: intake records Pillow's warnings with process-wide `warnings.catch_warnings`,
        which two threads must not use at once — previews wait for the run."""
        path = item.path
        if self.controller.running:
            self._deferred_previews.add(path)
            return
        self._pending_previews.add(path)

        def done(info, path=path):
            it = self.evidence.item_for(path)
            if it is None:
                return
            it.sha256 = it.sha256 or info["sha256"]
            it.preview = rgb_qimage(info["rgb"])
            it.thumbnail = thumbnail_from(it.preview)
            it.info = info["info"]
            self.evidence.changed(it)

        def failed(message, path=path):
            it = self.evidence.item_for(path)
            if it is None:
                return
            it.preview_error = message
            if it.status in (Status.QUEUED,):
                self.evidence.set_status(it, Status.FAILED, message)
            self.log(message, "error")
            self._refresh_current()

        job = submit(self.pool, lambda path=path: load_preview(path), done, failed)
        self._jobs.add(job)
        for sig in (job.signals.done, job.signals.failed):
            sig.connect(lambda *_, job=job, path=path: (self._jobs.discard(job), self._pending_previews.discard(path)))

    def _hold_previews(self) -> None:
        """Before a run: drop the previews not started yet (they resume after the run) and let the one
        in progress finish (one file's decode)."""
        self.pool.clear()
        self.pool.waitForDone(10000)
        QApplication.sendPostedEvents()            # deliver finished previews' signals first
        self._deferred_previews |= self._pending_previews
        self._pending_previews.clear()

    def _resume_previews(self) -> None:
        deferred, self._deferred_previews = self._deferred_previews, set()
        for path in deferred:
            item = self.evidence.item_for(path)
            if item is None or item.thumbnail is not None or item.preview_error:
                continue
            if item.analysis is not None:          # the analysed pixels make the thumbnail
                item.preview = rgb_qimage(pixels_to_rgb8(item.analysis.evidence.pixels))
                item.thumbnail = thumbnail_from(item.preview)
                self.evidence.changed(item)
            else:
                self._start_preview(item)

    def open_files(self) -> None:
        start = read_str(self.settings, "ui/last_dir", str(Path.home()))
        files, _ = QFileDialog.getOpenFileNames(self, "Open evidence images", start, IMAGE_FILTER)
        if files:
            self.settings.setValue("ui/last_dir", os.path.dirname(files[0]))
            self.add_paths(files)

    def open_folder(self) -> None:
        start = read_str(self.settings, "ui/last_dir", str(Path.home()))
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of evidence images", start)
        if folder:
            self.settings.setValue("ui/last_dir", folder)
            self.add_paths([folder])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = [p for p in read_json(self.settings, "recent/paths", []) if isinstance(p, str)]
        if not recent:
            a = self.recent_menu.addAction("(none)")
            a.setEnabled(False)
            return
        for p in recent:
            a = self.recent_menu.addAction(p)
            a.setEnabled(os.path.exists(p))
            a.triggered.connect(lambda checked=False, p=p: self.add_paths([p]))
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear recent", lambda: write_json(self.settings, "recent/paths", []))

    def remove_selected(self) -> None:
        if self.controller.running:
            self.report_error("the list cannot change while a run is in progress: cancel it first (Esc)")
            return
        self.evidence.remove_rows(self.evidence_view.selected_rows())
        self._refresh_current()
        self._update_actions()

    def clear_evidence(self) -> None:
        if self.controller.running:
            self.report_error("the list cannot change while a run is in progress: cancel it first (Esc)")
            return
        self.evidence.clear()
        self.last_run = None
        self._refresh_current()
        self._batch_key_ids = ()
        self.batch_view.set_items([], ())
        self._update_actions()

    # -- model, keys, settings -----------------------------------------------------------------------
    def _store_model_settings(self) -> None:
        if self._settings_model_id is None:
            return
        try:
            s = self.advanced.settings()
        except ValueError:
            return
        write_json(self.settings, f"analysis/{self._settings_model_id}", s.to_json())

    def _on_model_changed(self, model_id: str) -> None:
        self._store_model_settings()
        spec = self.model_chooser.current_spec()
        saved = read_json(self.settings, f"analysis/{model_id}", None)
        s = AnalysisSettings.from_json(saved) if saved is not None else AnalysisSettings()
        self.advanced.set_settings(s, spec)
        self._settings_model_id = model_id
        self._update_actions()

    def reset_model_defaults(self) -> None:
        spec = self.model_chooser.current_spec()
        self.advanced.set_settings(AnalysisSettings(), spec)
        self.log(f"method settings reset to the defaults of {spec.id if spec else 'the model'}")

    def set_analysis_settings(self, s: AnalysisSettings) -> None:
        self.advanced.set_settings(s, self.model_chooser.current_spec())
        self._update_summary()

    def choose_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a diffusers model folder",
                                                  read_str(self.settings, "ui/model_dir", str(Path.home())))
        if folder:
            self.settings.setValue("ui/model_dir", folder)
            self.add_model_folder(folder)

    def add_model_folder(self, folder: str) -> str | None:
        from engine.model_registry import all_model_specs, register_user_model

        if not looks_like_diffusers_folder(folder):
            self.report_error(f"'{folder}' is not a diffusers model folder (no model_index.json or vae/ inside)")
            return None
        existing = {s.id: s for s in all_model_specs()}
        for s in existing.values():
            if s.notes and os.path.abspath(s.notes) == os.path.abspath(folder):
                self.model_chooser.populate(s.id, prefer_found=False)
                return s.id
        model_id = unique_model_id(folder, set(existing))
        try:
            register_user_model(model_id, folder)
        except OSError as exc:
            self.report_error(f"could not remember the model folder: {exc}")
            return None
        self.log(f"registered model folder {folder} as {model_id!r}")
        self.model_chooser.populate(model_id, prefer_found=False)
        return model_id

    def _current_latent_shape(self):
        keys = self.key_chooser.current_keys()
        return tuple(keys.keys[0].latent_shape) if keys is not None else (4, 32, 32)

    def import_keys(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Import keys", read_str(self.settings, "ui/keys_dir", str(Path.home())),
            "Key sets (*.json);;Reference tree-ring keys (*.npy);;All files (*)")
        if files:
            self.settings.setValue("ui/keys_dir", os.path.dirname(files[0]))
            self.import_key_files(files)

    def import_key_files(self, files: list[str]) -> None:
        from engine.treering import KeySet, import_reference_npy

        npy = [f for f in files if f.lower().endswith(".npy")]
        for f in files:
            if f in npy:
                continue
            try:
                keys = KeySet.load(f)
            except ValueError as exc:
                self.report_error(str(exc))
                continue
            self.key_chooser.add_entry(keys.name or Path(f).name, f, keys)
            self.log(f"imported {len(keys)} key(s) from {f}")
        if npy:
            try:
                keys = KeySet(tuple(import_reference_npy(f) for f in npy), name="imported .npy keys")
            except ValueError as exc:
                self.report_error(str(exc))
                return
            self.key_chooser.add_entry(f"{len(keys)} imported .npy key(s) (unsaved)", None, keys)
            self.log(f"imported {len(keys)} reference key(s); export them to keep them")

    def export_keys(self) -> None:
        keys = self.key_chooser.current_keys()
        if keys is None:
            self.report_error("no key set to export")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export keys", read_str(self.settings, "ui/keys_dir", ""),
                                              "Key sets (*.json)")
        if path:
            self.save_keys(keys, path)

    def save_keys(self, keys, path: str) -> bool:
        try:
            keys.save(path)
        except (OSError, ValueError) as exc:
            self.report_error(f"could not write {path}: {exc}")
            return False
        self.log(f"wrote {len(keys)} key(s) to {path}")
        self.key_chooser.add_entry(Path(path).name, path, keys)
        return True

    def new_keys(self) -> None:
        dialog = NewKeysDialog(self._current_latent_shape(), self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        try:
            keys = dialog.make_keys()
        except ValueError as exc:
            self.report_error(str(exc))
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the new key set",
                                              read_str(self.settings, "ui/keys_dir", ""), "Key sets (*.json)")
        if path:
            self.save_keys(keys, path)
        else:
            self.key_chooser.add_entry(f"new key set ({len(keys)} keys, unsaved)", None, keys)

    # -- running -------------------------------------------------------------------------------------
    def _update_summary(self, *args) -> None:
        self.settings_summary.setText("Methods: " + self.advanced.summary())

    def _update_actions(self, *args) -> None:
        running = self.controller.running
        loc = self.model_chooser.current_location()
        can_run = (not running and bool(self.evidence.items) and loc is not None and loc.found
                   and self.key_chooser.current_entry() is not None)
        self.run_action.setEnabled(can_run)
        self.run_button.setEnabled(can_run)
        tip = "Analyse the listed images (Ctrl+R)"
        if loc is not None and not loc.found:
            tip = "The selected model is not on this machine (see the hint under the model)"
        elif not self.evidence.items:
            tip = "Add images first (drop them on the window or Ctrl+O)"
        self.run_button.setToolTip(tip)
        self.cancel_action.setEnabled(running)
        self.cancel_button.setEnabled(running)
        for w in (self.model_chooser, self.key_chooser, self.advanced, self.remove_button, self.clear_button):
            w.setEnabled(not running)
        self.report_action.setEnabled(self.last_run is not None and not running)
        self.json_action.setEnabled(self.last_run is not None and not running)
        self._update_summary()

    def run_analysis(self) -> bool:
        """Start a run over every listed file. Returns False (with a message) when it cannot start."""
        if self.controller.running:
            return False
        if not self.evidence.items:
            self.report_error("nothing to analyse: drop images or folders onto the window, or use File ▸ Open")
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
        except ValueError as exc:
            self.report_error(str(exc))
            return False
        self._store_model_settings()
        self._hold_previews()
        self.banner.hide()
        for item in self.evidence.items:
            item.analysis, item.failure = None, None
            self.evidence.set_status(item, Status.QUEUED)
        self.last_run = None
        self.run_keys = keys
        self._in_batch = []
        self.result_view.set_run_context(keys, self._device_text)
        self.comparison_view.set_run_context(keys, self._device_text)
        self._batch_key_ids, self._batch_fpr = keys.ids, s.fpr
        self.batch_view.set_items([], keys.ids, fpr=s.fpr)
        n = len(self.evidence.items)
        self.tracker = RunTracker(n, len(s.methods), s.batch_size)
        self.images_bar.setRange(0, n)
        self.images_bar.setValue(0)
        self.images_bar.show()
        self.stage_bar.setRange(0, 0)
        self.stage_bar.show()
        self.eta_label.setText("")
        self._run_started = time.monotonic()
        paths = [i.path for i in self.evidence.items]
        self._run_paths = set(paths)
        self._finished_count = 0
        self.log(f"run: {n} file(s), model {loc.spec.id}, keys {', '.join(keys.ids)}, "
                 f"{' + '.join(s.methods)}, {s.iterations} it, {s.inversion} {s.steps} steps, FPR {s.fpr:g}")
        self.controller.start(RunRequest(loc.spec.id, keys, paths, s))
        self._update_actions()
        self._refresh_current()
        return True

    def cancel_analysis(self) -> None:
        if not self.controller.running:
            return
        self.controller.cancel()
        self.stage_label.setText("Cancelling after the current iteration …")
        self.log("cancel requested")

    @Slot(str)
    def _on_stage(self, text: str) -> None:
        self.stage_label.setText(text[:1].upper() + text[1:])

    @Slot(str, str)
    def _on_model_ready(self, device: str, dtype: str) -> None:
        self._device_text = device
        self.device_label.setText(f"Device: {device} · {dtype}")
        self.result_view.set_device(device)
        self.comparison_view.set_device(device)

    @Slot(object)
    def _on_config(self, config) -> None:
        self.comparison_view.set_config(config)
        self.result_view.set_config(config)

    @Slot(object)
    def _on_progress(self, ev) -> None:
        if self.tracker is not None:
            self.tracker.on_event(ev)
        if ev.stage == "reading evidence":
            item = self.evidence.item_for(ev.item)
            if item is not None:
                self.evidence.set_status(item, Status.READING)
                self._in_batch.append(item)
        else:
            detail = f"{ev.stage} {ev.step}/{ev.total}"
            for item in self._in_batch:
                if item.status in (Status.READING, Status.RUNNING):
                    self.evidence.set_status(item, Status.RUNNING, detail)
        self.stage_label.setText(f"{ev.stage[:1].upper()}{ev.stage[1:]}: {ev.step}/{ev.total}")
        self.stage_bar.setRange(0, max(1, ev.total))
        self.stage_bar.setValue(ev.step)
        self._update_eta()

    def _update_eta(self) -> None:
        if self.tracker is None:
            return
        eta = self.tracker.eta_seconds()
        elapsed = time.monotonic() - self._run_started
        self.eta_label.setText(f"elapsed {format_duration(elapsed)} · ETA {format_duration(eta)}")

    @Slot(object)
    def _on_result(self, r) -> None:
        from engine.analysis import ImageAnalysis

        path = r.evidence.path if isinstance(r, ImageAnalysis) else r.path
        item = self.evidence.item_for(path)
        if self.tracker is not None:
            self.tracker.on_results(1)
        if item is None:
            return
        if item in self._in_batch:
            self._in_batch.remove(item)
        if isinstance(r, ImageAnalysis):
            item.analysis = r
            item.sha256 = r.evidence.sha256
            self.evidence.set_status(item, Status.DONE, summary_of(r))
            self.evidence.changed(item)
            self.log(f"{item.name}: {summary_of(r)}")
            for w in r.evidence.warnings:
                self.log(f"{item.name}: {w}", "warning")
        else:
            item.failure = r.message
            self.evidence.set_status(item, Status.FAILED, r.message)
            self.log(r.message, "error")
        if item.path in self._run_paths:
            self._finished_count += 1
        self.images_bar.setValue(self._finished_count)
        self._update_eta()
        cur = self._current_item()
        if cur is item:
            self._defer_refresh()
        elif isinstance(r, ImageAnalysis) and (cur is None or cur.analysis is None) and not self._user_selected:
            row = self.evidence.items.index(item)
            QTimer.singleShot(0, lambda: self.evidence_view.selectRow(row))
        self._schedule_batch_refresh()

    def _defer_refresh(self) -> None:
        """Redraw the visible view in a later event-loop pass, so bookkeeping, drawing and painting of a
        result never add up into one long block."""
        self._dirty.update({"result", "comparison"})
        QTimer.singleShot(0, self._refresh_visible)

    _user_selected = False

    @Slot(object)
    def _on_finished(self, run) -> None:
        self.last_run = run
        cancelled = (run is not None and run.cancelled) or self.controller.cancel_requested
        for item in self.evidence.items:
            if item.path not in self._run_paths:
                continue                                   # added during the run: still queued for the next
            if item.status in (Status.QUEUED, Status.READING, Status.RUNNING):
                if cancelled or run is not None:
                    self.evidence.set_status(item, Status.CANCELLED, "not finished before the cancel")
                else:
                    self.evidence.set_status(item, Status.QUEUED, "not analysed: the run stopped (see the log)")
        elapsed = format_duration(time.monotonic() - self._run_started)
        in_run = [i for i in self.evidence.items if i.path in self._run_paths]
        analysed = sum(1 for i in in_run if i.analysis is not None)
        failed = sum(1 for i in in_run if i.status == Status.FAILED)
        if run is None:
            text = "Run stopped before analysing (see the log)" if not cancelled else "Cancelled before the analysis started"
        elif cancelled:
            text = f"Cancelled — {analysed} of {len(in_run)} image(s) finished and kept ({elapsed})"
        else:
            text = f"Done — {analysed} analysed, {failed} failed ({elapsed})"
        self.stage_label.setText(text)
        self.log(text)
        self.stage_bar.hide()
        self.eta_label.setText(f"elapsed {elapsed}")
        if run is not None:
            self._batch_key_ids, self._batch_fpr = run.keys.ids, run.config.fpr
            self._schedule_batch_refresh()
            if run.failures:
                self.banner.show_message(f"{len(run.failures)} file(s) could not be analysed; the others were. "
                                         f"See the list and the log for the reasons.")
        self._update_actions()
        self._defer_refresh()                             # statuses changed ("cancelled")
        self._resume_previews()

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
        self._dirty.update({"result", "comparison"})
        self._refresh_visible()

    def _refresh_visible(self, *args) -> None:
        current = self.tabs.currentWidget()
        item = self._current_item()
        if current is self.result_view and "result" in self._dirty:
            self._dirty.discard("result")
            self.result_view.show_item(item)
        elif current is self.comparison_view and "comparison" in self._dirty:
            self._dirty.discard("comparison")
            self.comparison_view.show_item(item)
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

    # -- exports -------------------------------------------------------------------------------------
    def _background(self, what: str, fn, done_message: str) -> None:
        def done(_):
            self.log(done_message)
            self.stage_label.setText(done_message)

        def failed(message):
            self.report_error(f"{what} failed: {message}")

        job = submit(self.export_pool, fn, done, failed)
        self._jobs.add(job)
        for sig in (job.signals.done, job.signals.failed):
            sig.connect(lambda *_, job=job: self._jobs.discard(job))

    def export_report(self) -> None:
        if self.last_run is None:
            self.report_error("run an analysis first: the report describes a finished run")
            return
        try:
            from forensics_app.report import ReportInfo, write_report
        except ImportError:
            self.report_error("PDF reports are not available in this installation (forensics_app.report is missing)")
            return
        dialog = ReportDialog(self, read_str(self.settings, "report/case_id"), read_str(self.settings, "report/examiner"))
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        self.settings.setValue("report/case_id", dialog.case_id.text())
        self.settings.setValue("report/examiner", dialog.examiner.text())
        path, _ = QFileDialog.getSaveFileName(self, "Export report", read_str(self.settings, "ui/export_dir", ""),
                                              "PDF (*.pdf)")
        if not path:
            return
        self.settings.setValue("ui/export_dir", os.path.dirname(path))
        self.write_report_to(path, dialog.case_id.text(), dialog.examiner.text())

    def write_report_to(self, path: str, case_id: str = "", examiner: str = "") -> bool:
        """The report writer lays out through QTextDocument and may create QPixmaps, so it must run in the
        GUI thread (see forensics_app.report); it is short, so the window shows a busy cursor meanwhile."""
        from PySide6.QtGui import QCursor, QGuiApplication

        from forensics_app.report import ReportInfo, write_report

        self.stage_label.setText(f"Writing the report to {path} …")
        QGuiApplication.setOverrideCursor(QCursor(Qt.CursorShape.WaitCursor))
        try:
            write_report(self.last_run, path, ReportInfo(case_id=case_id, examiner=examiner))
        except (OSError, ValueError) as exc:
            self.report_error(f"the report could not be written: {exc}")
            return False
        except Exception as exc:  # noqa: BLE001 — a sentence in the window, the details in the log
            import traceback

            self.log(traceback.format_exc().rstrip(), "details")
            self.report_error(f"the report could not be written ({type(exc).__name__}): {exc}")
            return False
        finally:
            QGuiApplication.restoreOverrideCursor()
        self.log(f"wrote the report to {path} (and its JSON twin beside it)")
        self.stage_label.setText(f"Report written: {path}")
        return True

    def export_json(self) -> None:
        if self.last_run is None:
            self.report_error("run an analysis first")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export results", read_str(self.settings, "ui/export_dir", ""),
                                              "JSON (*.json)")
        if path:
            self.write_json_to(path)

    def write_json_to(self, path: str) -> None:
        from engine.analysis import run_to_json
        from engine.atomic_write import write_json_atomic

        run = self.last_run
        self._background("the JSON export", lambda: write_json_atomic(path, run_to_json(run), indent=2),
                         f"wrote the results to {path}")

    def export_batch_png(self) -> None:
        if self.batch_view.matrix() is None:
            self.report_error("no batch results to export yet")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export batch matrix", read_str(self.settings, "ui/export_dir", ""),
                                              "PNG (*.png)")
        if path:
            try:
                self.batch_view.export_png(path)
                self.log(f"wrote {path}")
            except (OSError, ValueError) as exc:
                self.report_error(str(exc))

    def export_batch_csv(self) -> None:
        if self.batch_view.matrix() is None:
            self.report_error("no batch results to export yet")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export batch matrix", read_str(self.settings, "ui/export_dir", ""),
                                              "CSV (*.csv)")
        if path:
            try:
                self.batch_view.export_csv(path)
                self.log(f"wrote {path}")
            except (OSError, ValueError) as exc:
                self.report_error(str(exc))

    def show_claims_help(self) -> None:
        QMessageBox.information(
            self, "What a verdict may claim",
            "A positive means the recovered initial noise is consistent with key K under model M at the stated "
            "p-value and false-positive level — not proof of origin: a Tree-Ring pattern can be forged onto "
            "images the key holder never made.\n\nA negative is not proof of absence: JPEG, cropping, rotation "
            "and regeneration weaken or remove the ring. Check how well the model explains the evidence "
            "(latent residual, PSNR of D(z0)).")

    # -- window life -----------------------------------------------------------------------------------
    def changeEvent(self, event) -> None:  # noqa: N802
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.batch_view.refresh()      # its cell shading derives from the palette
        super().changeEvent(event)

    def closeEvent(self, event) -> None:  # noqa: N802
        if self.controller.running:
            self.controller.shutdown()
        self.save_state()
        self.pool.clear()
        self.pool.waitForDone(10000)
        self.export_pool.waitForDone(30000)
        super().closeEvent(event)
