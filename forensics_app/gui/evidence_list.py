"""The evidence list: one row per suspect file with its thumbnail, name, SHA-256 prefix and status."""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from enum import Enum

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

THUMBNAIL = 48


class Status(str, Enum):
    QUEUED = "queued"
    READING = "reading"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NOT_ANALYSED = "not analysed"       # found in a dropped folder but not an image (hidden, other suffix …)


@dataclass
class EvidenceItem:
    path: str
    sha256: str | None = None
    preview: QImage | None = None           # larger centre-cropped preview (display only)
    thumbnail: QPixmap | None = None
    info: str = ""                          # size, format, warnings from intake
    status: Status = Status.QUEUED
    detail: str = ""                        # stage while running, the reason when failed, the verdict when done
    analysis: object | None = None          # engine ImageAnalysis
    failure: str | None = None              # engine ImageFailure message (or intake's)
    preview_error: str | None = None        # intake could not read it when it was added
    not_analysed: object | None = None      # engine NotAnalysed: listed, never run, with its reason and hashes

    @property
    def runnable(self) -> bool:
        return self.not_analysed is None

    @property
    def name(self) -> str:
        return os.path.basename(self.path) or self.path


def summary_of(analysis) -> str:
    """One line for the log and tooltips: the exhibit's conclusion and each method's."""
    parts = [analysis.conclusion.headline()]
    for method, r in analysis.methods.items():
        if r.conclusion is not None:
            parts.append(f"{method}: {r.conclusion.headline()} ({r.conclusion.calibration})")
    return "; ".join(parts)


def short_verdict(analysis) -> str:
    """For the status column: the exhibit's conclusion (the default pipeline's), disagreement flagged."""
    from engine.verdicts import OUTSIDE_CALIBRATION

    c = analysis.conclusion
    text = {"identified": f"{c.key} identified", "inconclusive": "inconclusive" + (
        f" ({' or '.join(c.candidates)})" if c.candidates and c.calibration != OUTSIDE_CALIBRATION else ""),
            "not_detected": "no watermark" + (" (altered-like signal)" if c.unaltered_detection_p is not None else ""),
            "not_analysed": "not analysed"}[c.outcome]
    return text + (" — methods disagree" if c.disagreements else "")


class EvidenceModel(QAbstractTableModel):
    COLUMNS = ("File", "SHA-256", "Status")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.items: list[EvidenceItem] = []
        self._by_path: dict[str, EvidenceItem] = {}     # exact path as listed (what the engine echoes back)

    # -- Qt model -------------------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.items)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def status_text(self, item: EvidenceItem) -> str:
        """Short, for the column; `status_tooltip` has everything."""
        if item.status == Status.DONE and item.analysis is not None:
            return f"done: {short_verdict(item.analysis)}"
        if item.detail:
            return f"{item.status.value}: {item.detail}"
        return item.status.value

    def status_tooltip(self, item: EvidenceItem) -> str:
        if item.status == Status.DONE and item.analysis is not None:
            return "done — " + summary_of(item.analysis)
        if item.status == Status.FAILED and (item.failure or item.preview_error):
            return f"failed — {item.failure or item.preview_error}"
        return f"{item.status.value} — {item.detail}" if item.detail else item.status.value

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item = self.items[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return item.name
            if col == 1:
                return item.sha256[:12] if item.sha256 else "…"
            return self.status_text(item)
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            if item.thumbnail is None and (item.preview_error or item.failure):
                from PySide6.QtWidgets import QApplication, QStyle

                return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical)
            return item.thumbnail
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 0:
                tip = f"<b>{html.escape(item.path)}</b>"
                if item.info:
                    tip += f"<br>{html.escape(item.info)}"
                return tip
            if col == 1:
                return item.sha256 or "not hashed yet"
            return f"<p>{html.escape(self.status_tooltip(item))}</p>"
        if role == Qt.ItemDataRole.UserRole:
            return item
        return None

    # -- editing ---------------------------------------------------------------------------------------
    def add(self, paths: list, not_analysed=()) -> list[EvidenceItem]:
        """Rows for `paths` (to analyse) and for `not_analysed` (engine NotAnalysed: shown with their reason,
        never run); a file already listed is not added again."""
        known = {os.path.normcase(os.path.abspath(i.path)) for i in self.items}
        new = []
        for p in paths:
            ident = os.path.normcase(os.path.abspath(p))
            if ident in known:
                continue
            known.add(ident)
            new.append(EvidenceItem(str(p)))
        for n in not_analysed:
            ident = os.path.normcase(os.path.abspath(n.path))
            if ident in known:
                continue
            known.add(ident)
            new.append(EvidenceItem(n.path, sha256=n.sha256, status=Status.NOT_ANALYSED, detail=n.reason,
                                    info=n.hash_note, not_analysed=n))
        if new:
            first = len(self.items)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self.items.extend(new)
            self._by_path.update({i.path: i for i in new})
            self.endInsertRows()
        return new

    def remove_rows(self, rows: list[int]) -> None:
        for row in sorted(set(rows), reverse=True):
            if 0 <= row < len(self.items):
                self.beginRemoveRows(QModelIndex(), row, row)
                self._by_path.pop(self.items[row].path, None)
                del self.items[row]
                self.endRemoveRows()

    def clear(self) -> None:
        self.beginResetModel()
        self.items.clear()
        self._by_path.clear()
        self.endResetModel()

    def row_of(self, path: str) -> int:
        ident = os.path.normcase(os.path.abspath(path))
        for i, item in enumerate(self.items):
            if item.path == path or os.path.normcase(os.path.abspath(item.path)) == ident:
                return i
        return -1

    def item_for(self, path: str) -> EvidenceItem | None:
        item = self._by_path.get(str(path))
        if item is not None:
            return item
        row = self.row_of(path)
        return self.items[row] if row >= 0 else None

    def changed(self, item: EvidenceItem) -> None:
        row = self.items.index(item) if item in self.items else -1
        if row >= 0:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    def set_status(self, item: EvidenceItem, status: Status, detail: str = "") -> None:
        if item.status == status and item.detail == detail:
            return
        item.status, item.detail = status, detail
        row = self.items.index(item)
        self.dataChanged.emit(self.index(row, 2), self.index(row, 2))


class EvidenceView(QTableView):
    """The list widget. Drops are handled by the main window (the whole window is a drop target)."""

    remove_requested = Signal()

    def __init__(self, model: EvidenceModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(THUMBNAIL + 6)
        h = self.horizontalHeader()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.setColumnWidth(0, 170)
        self.setAcceptDrops(False)          # let drops reach the main window

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.remove_requested.emit()
            return
        super().keyPressEvent(event)

    def selected_rows(self) -> list[int]:
        return sorted({i.row() for i in self.selectionModel().selectedRows()})


def thumbnail_from(preview: QImage) -> QPixmap:
    return QPixmap.fromImage(preview.scaled(THUMBNAIL, THUMBNAIL, Qt.AspectRatioMode.KeepAspectRatio,
                                            Qt.TransformationMode.SmoothTransformation))


def reason_only(message: str, path: str) -> str:
    """An intake message without its leading quoted file name (the list's row already names the file)."""
    from engine.intake import shown_path

    prefix = shown_path(path) + " "
    return message[len(prefix):] if message.startswith(prefix) else message


def load_preview(path: str, size: int = 192) -> dict:
    """Pool thread: intake's own reader (hash + decode + centre crop) for the preview; EvidenceError
    (a ValueError) propagates as the readable sentence."""
    from engine.intake import load_evidence

    from forensics_app.figure_arrays import pixels_to_rgb8

    e = load_evidence(path, size)
    # intake's warnings are about the preview size here, not the model's: the run reports the real ones
    info = f"{e.width}×{e.height} {e.format} ({e.mode}), {e.size_bytes:,} bytes"
    return {"path": path, "sha256": e.sha256, "rgb": pixels_to_rgb8(e.pixels), "info": info}
