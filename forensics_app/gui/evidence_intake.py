"""Adding evidence: files and folders from the dialogs, drops and the recent list, then a preview of
each (hashed and thumbnailed on a background thread, through the engine's intake, so the list shows
what will be analysed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QFileDialog

from forensics_app.gui.evidence_list import Status, load_preview, reason_only, thumbnail_from
from forensics_app.gui.run_session import BackgroundJobs
from forensics_app.gui.settings import read_str, remember_recent
from forensics_app.figure_arrays import pixels_to_rgb8
from forensics_app.figures import rgb_qimage

if TYPE_CHECKING:
    from forensics_app.gui.evidence_list import EvidenceItem, EvidenceModel
    from forensics_app.gui.main_window import MainWindow
    from forensics_app.gui.run_session import RunSession

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif);;All files (*)"


class EvidenceIntake(QObject):
    """File ▸ Open, Open folder, Open recent and drops onto the window all end in `add_paths`."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.evidence = window.evidence
        self.previews = EvidencePreviews(window.evidence, window.session, self)

    def add_paths(self, paths) -> list:
        """Files and folders (a folder adds its images, walking its subfolders; every other file found is
        listed as not analysed, with its reason and hash). Returns the new items."""
        from engine.evidence_paths import scan_evidence_paths
        from engine.intake import EvidenceError, shown_path

        w = self.window
        expanded, skipped = [], []
        for p in paths:
            p = os.fspath(p)
            try:
                found = scan_evidence_paths([p], recursive=True)
            except EvidenceError as exc:
                w.report_error(str(exc))
                continue
            if os.path.isdir(p) and not found.files:
                w.log(f"{shown_path(p)} contains no image files (PNG, JPEG, WebP, BMP, TIFF, GIF)", "warning")
            remember_recent(w.settings, "recent/paths", os.path.abspath(p))
            expanded.extend(str(f) for f in found.files)
            skipped.extend(found.not_analysed)
        new = self.evidence.add(expanded, skipped)
        for item in new:
            if item.runnable:
                self.previews.start(item)
        if new:
            n_skipped = sum(1 for i in new if not i.runnable)
            w.log(f"added {len(new) - n_skipped} file(s)"
                  + (f"; {n_skipped} other file(s) found are listed as not analysed, with the reason" if n_skipped
                     else ""))
            if not w.evidence_view.currentIndex().isValid():
                w.evidence_view.selectRow(self.evidence.items.index(new[0]))
        return new

    def open_files_dialog(self) -> None:
        s = self.window.settings
        files, _ = QFileDialog.getOpenFileNames(self.window, "Open evidence images",
                                                read_str(s, "ui/last_dir", str(Path.home())), IMAGE_FILTER)
        if files:
            s.setValue("ui/last_dir", os.path.dirname(files[0]))
            self.window.add_paths(files)

    def open_folder_dialog(self) -> None:
        s = self.window.settings
        folder = QFileDialog.getExistingDirectory(self.window, "Open a folder of evidence images",
                                                  read_str(s, "ui/last_dir", str(Path.home())))
        if folder:
            s.setValue("ui/last_dir", folder)
            self.window.add_paths([folder])


class EvidencePreviews(QObject):
    """Never while a run reads evidence: intake records Pillow's warnings with process-wide
    `warnings.catch_warnings`, which two threads must not use at once — previews wait for the run."""

    failed = Signal(str)                  # intake's one-sentence reason, after the item was marked

    def __init__(self, evidence: EvidenceModel, session: RunSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.evidence = evidence
        self.session = session
        self.jobs = BackgroundJobs(self)
        self._pending: set[str] = set()
        self._deferred: set[str] = set()

    def start(self, item: EvidenceItem) -> None:
        path = item.path
        if self.session.running:
            self._deferred.add(path)
            return
        self._pending.add(path)

        def done(info, path=path):
            self._pending.discard(path)
            it = self.evidence.item_for(path)
            if it is None:
                return
            it.sha256 = it.sha256 or info["sha256"]
            it.preview = rgb_qimage(info["rgb"])
            it.thumbnail = thumbnail_from(it.preview)
            it.info = info["info"]
            self.evidence.changed(it)

        def failed(message, path=path):
            self._pending.discard(path)
            it = self.evidence.item_for(path)
            if it is None:
                return
            it.preview_error = message
            if it.status in (Status.QUEUED,):
                self.evidence.set_status(it, Status.FAILED, reason_only(message, path))
            self.failed.emit(message)

        self.jobs.submit(lambda: load_preview(path), done, failed)

    def hold(self) -> None:
        """Before a run: drop the previews not started yet (they resume after the run) and let the one
        in progress finish (one file's decode)."""
        self.jobs.drop_waiting()
        self.jobs.wait(10000)
        QApplication.sendPostedEvents()            # deliver finished previews' outcomes first
        self._deferred |= self._pending
        self._pending.clear()

    def resume(self) -> None:
        deferred, self._deferred = self._deferred, set()
        for path in deferred:
            item = self.evidence.item_for(path)
            if item is None or item.thumbnail is not None or item.preview_error:
                continue
            if item.analysis is not None:          # the analysed pixels make the thumbnail
                item.preview = rgb_qimage(pixels_to_rgb8(item.analysis.evidence.pixels))
                item.thumbnail = thumbnail_from(item.preview)
                self.evidence.changed(item)
            else:
                self.start(item)

    def shutdown(self) -> None:
        self.jobs.drop_waiting()
        self.jobs.wait(10000)
