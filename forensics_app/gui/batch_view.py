"""Batch view: which key each image was attributed to. With a manifest.json beside the images (the
`generate` command writes one: file → {"key": id | null}) rows are the true keys and the accuracy is
shown; without one, rows are the images' folders. Exports PNG and CSV."""

from __future__ import annotations

import csv
import io

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from engine.attribution_matrix import BatchMatrix, attribution_matrix
from forensics_app.gui.result_view import METHOD_ORDER

NONE_LABEL = "none"


def predicted(result, mode: str) -> str | None:
    """"nearest": the papers' argmin-L1 classifier; "verdict": the conclusion (the identified key, "inconclusive",
    or none)."""
    if mode == "nearest":
        return result.verdict.nearest_key
    c = result.conclusion
    if c is None:
        return result.verdict.predicted_key
    return c.label


def build_matrix(items, key_ids, method: str, mode: str = "verdict") -> BatchMatrix:
    """The engine's attribution matrix of the analysed items (the same one the report prints)."""
    return attribution_matrix(((item.path, predicted(item.analysis.methods[method], mode)) for item in items
                               if item.analysis is not None and method in item.analysis.methods), key_ids)


def label_text(label: str | None) -> str:
    return NONE_LABEL if label is None else label


def matrix_csv(m: BatchMatrix, method: str, mode: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    corner = "true \\ predicted" if m.has_truth else "folder \\ predicted"
    w.writerow([corner] + [label_text(c) for c in m.col_labels])
    for label, row in zip(m.row_labels, m.counts):
        w.writerow([label_text(label)] + list(row))
    w.writerow([])
    w.writerow(["method", method])
    w.writerow(["prediction", "verdict at the stated FPR (none = no watermark detected)" if mode == "verdict"
                else "nearest key (argmin L1, reference classifier)"])
    w.writerow(["images", m.total])
    if m.accuracy is not None:
        w.writerow(["accuracy", f"{m.accuracy:.6f}"])
    return buf.getvalue()


def render_matrix_png(m: BatchMatrix, title: str, subtitle: str) -> QImage:
    """A self-contained picture of the matrix for reports (a document: fixed light colours)."""
    cell, head = 64, 110
    n_rows, n_cols = len(m.row_labels), len(m.col_labels)
    width = max(head + cell * n_cols + 20, 460)
    height = 104 + cell * n_rows + 40
    img = QImage(width, height, QImage.Format.Format_RGB32)
    img.fill(QColor(255, 255, 255))
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    font = QFont(p.font())
    font.setPointSize(11)
    font.setBold(True)
    p.setFont(font)
    p.setPen(QColor(0, 0, 0))
    p.drawText(QRectF(10, 6, width - 20, 22), Qt.AlignmentFlag.AlignLeft, title)
    font.setBold(False)
    font.setPointSize(9)
    p.setFont(font)
    p.drawText(QRectF(10, 28, width - 20, 34), Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap, subtitle)
    top = 104
    peak = max([max(r) for r in m.counts if r] + [1])
    p.drawText(QRectF(head, top - 40, cell * n_cols, 18), Qt.AlignmentFlag.AlignCenter, "predicted")
    for j, c in enumerate(m.col_labels):
        p.drawText(QRectF(head + j * cell, top - 20, cell, 18), Qt.AlignmentFlag.AlignCenter, label_text(c))
    for i, (r, row) in enumerate(zip(m.row_labels, m.counts)):
        y = top + i * cell
        p.setPen(QColor(0, 0, 0))
        p.drawText(QRectF(4, y, head - 10, cell), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                   ("true " if m.has_truth else "") + label_text(r))
        for j, v in enumerate(row):
            shade = int(255 - 170 * v / peak)
            rect = QRectF(head + j * cell, y, cell, cell)
            p.fillRect(rect, QColor(shade, shade, 255))
            pen = QPen(QColor(60, 60, 60))
            pen.setWidth(2 if (m.has_truth and m.row_labels[i] == m.col_labels[j]) else 1)
            p.setPen(pen)
            p.drawRect(rect)
            p.setPen(QColor(0, 0, 0) if shade > 140 else QColor(255, 255, 255))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(v))
    p.setPen(QColor(0, 0, 0))
    foot = f"{m.total} image(s)"
    if m.accuracy is not None:
        foot += f"; accuracy {m.accuracy:.1%} ({sum(m.counts[i][i] for i in range(len(m.counts)))} correct)"
    p.drawText(QRectF(10, top + n_rows * cell + 8, width - 20, 24), Qt.AlignmentFlag.AlignLeft, foot)
    p.end()
    return img


class BatchView(QWidget):
    export_png_requested = Signal()
    export_csv_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: list = []
        self._key_ids: tuple[str, ...] = ()
        self._fpr: float | None = None
        self._matrix: BatchMatrix | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        controls = QHBoxLayout()
        self.method_combo = QComboBox()
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("Verdict at the FPR", "verdict")
        self.mode_combo.addItem("Nearest key", "nearest")
        self.mode_combo.setItemData(0, "The verdict: a key only if its p-value is below FPR / K, else “none”",
                                    Qt.ItemDataRole.ToolTipRole)
        self.mode_combo.setItemData(1, "The papers' classifier: argmin L1 over the keys, never “none”",
                                    Qt.ItemDataRole.ToolTipRole)
        controls.addWidget(QLabel("Method:"))
        controls.addWidget(self.method_combo)
        controls.addWidget(QLabel("Prediction:"))
        controls.addWidget(self.mode_combo)
        controls.addStretch(1)
        self.png_button = QPushButton("PNG…")
        self.png_button.setToolTip("Export the matrix as a PNG picture")
        self.csv_button = QPushButton("CSV…")
        self.csv_button.setToolTip("Export the matrix as CSV")
        controls.addWidget(QLabel("Export:"))
        controls.addWidget(self.png_button)
        controls.addWidget(self.csv_button)
        lay.addLayout(controls)
        self.explanation = QLabel()
        self.explanation.setWordWrap(True)
        lay.addWidget(self.explanation)
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.horizontalHeader().setDefaultSectionSize(120)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(48)
        self.table.setSizeAdjustPolicy(QTableWidget.SizeAdjustPolicy.AdjustToContents)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        lay.addWidget(self.table, 0, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.accuracy_label = QLabel()
        f = self.accuracy_label.font()
        f.setBold(True)
        f.setPointSizeF(f.pointSizeF() * 1.2)
        self.accuracy_label.setFont(f)
        self.accuracy_label.setWordWrap(True)
        lay.addWidget(self.accuracy_label)
        self.cell_images = QLabel()
        self.cell_images.setObjectName("cell_images")
        self.cell_images.setWordWrap(True)
        self.cell_images.setTextFormat(Qt.TextFormat.PlainText)
        self.cell_images.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.cell_images)
        self.table.cellClicked.connect(self.show_cell)
        lay.addStretch(1)
        self.method_combo.currentIndexChanged.connect(self.refresh)
        self.mode_combo.currentIndexChanged.connect(self.refresh)
        self.png_button.clicked.connect(self.export_png_requested)
        self.csv_button.clicked.connect(self.export_csv_requested)
        self.refresh()

    def set_items(self, items, key_ids, methods=None, fpr: float | None = None) -> None:
        self._items = list(items)
        self._key_ids = tuple(key_ids)
        if fpr is not None:
            self._fpr = fpr
        present = [m for m in METHOD_ORDER if any(i.analysis is not None and m in i.analysis.methods
                                                  for i in self._items)]
        current = self.method_combo.currentText()
        self.method_combo.blockSignals(True)
        self.method_combo.clear()
        self.method_combo.addItems(present)
        if current in present:
            self.method_combo.setCurrentText(current)
        elif "gradient-free" in present:
            self.method_combo.setCurrentText("gradient-free")
        self.method_combo.blockSignals(False)
        self.refresh()

    def method(self) -> str:
        return self.method_combo.currentText()

    def mode(self) -> str:
        return self.mode_combo.currentData()

    def matrix(self) -> BatchMatrix | None:
        return self._matrix

    def refresh(self) -> None:
        method = self.method()
        analysed = [i for i in self._items if i.analysis is not None]
        failed = sum(1 for i in self._items if i.analysis is None and (i.failure or i.preview_error))
        self.png_button.setEnabled(False)
        self.csv_button.setEnabled(False)
        if not method or not analysed:
            self._matrix = None
            self.cell_images.setText("")
            self.table.setRowCount(0)
            self.table.setColumnCount(0)
            self.explanation.setText("No analysed images yet. Run an analysis; with a manifest.json beside the "
                                     "images (as `treering-forensics generate` writes) the true keys are used.")
            self.accuracy_label.setText("")
            return
        m = build_matrix(analysed, self._key_ids, method, self.mode())
        self._matrix = m
        self.cell_images.setText("")
        self.table.setRowCount(len(m.row_labels))
        self.table.setColumnCount(len(m.col_labels))
        self.table.setHorizontalHeaderLabels([f"predicted {label_text(c)}" for c in m.col_labels])
        self.table.setVerticalHeaderLabels([("claimed (unverified) " if m.has_truth else "folder ") + label_text(r)
                                            for r in m.row_labels])
        peak = max([max(r) for r in m.counts if r] + [1])
        for i, row in enumerate(m.counts):
            for j, v in enumerate(row):
                it = QTableWidgetItem(str(v))
                it.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                f = it.font()
                f.setPointSizeF(f.pointSizeF() * 1.3)
                if m.has_truth and m.row_labels[i] == m.col_labels[j]:
                    f.setBold(True)
                it.setFont(f)
                if v:
                    # intensity via the palette's highlight colour, so it reads in light and dark mode
                    c = self.palette().highlight().color()
                    c.setAlphaF(0.15 + 0.6 * v / peak)
                    it.setBackground(c)
                self.table.setItem(i, j, it)
        mode_text = ("the verdict at " + (f"FPR {self._fpr:g}" if self._fpr else "the run's FPR")
                     + " (“none” = no watermark detected)" if self.mode() == "verdict"
                     else "the nearest key by L1 (the papers' classifier, which never says “none”)")
        if m.has_truth:
            text = (f"Rows: the key claimed by manifest.json beside the images — claimed (unverified): whoever "
                    f"made the images says so, this tool did not check it; columns: {mode_text}; method {method}. "
                    "Click a cell to list its images.")
            if m.unlabelled:
                text += f" {m.unlabelled} analysed image(s) have no manifest entry and are not counted."
        else:
            text = (f"No manifest.json beside the images: rows are the images' folders; columns: {mode_text}; "
                    f"method {method}. Click a cell to list its images.")
        if failed:
            text += f" {failed} file(s) could not be analysed and are not counted."
        self.explanation.setText(text)
        if m.accuracy is not None:
            correct = sum(m.counts[i][i] for i in range(len(m.counts)))
            self.accuracy_label.setText(f"Accuracy {m.accuracy:.1%} — {correct} of {m.total} correct")
        else:
            self.accuracy_label.setText(f"{m.total} image(s); no ground truth, so no accuracy")
        self.png_button.setEnabled(True)
        self.csv_button.setEnabled(True)

    def cell_items(self, row: int, col: int) -> list:
        """The analysed items counted in cell (row, col) of the shown matrix, by the same rule as the matrix
        (`engine.attribution_matrix`: manifest claim, or folder, against the prediction)."""
        import os

        from engine.provenance import manifest_labels

        m, method = self._matrix, self.method()
        if m is None or not (0 <= row < len(m.row_labels) and 0 <= col < len(m.col_labels)):
            return []
        analysed = [i for i in self._items if i.analysis is not None and method in i.analysis.methods]
        claims = manifest_labels([i.path for i in analysed])
        out = []
        for item in analysed:
            if m.has_truth:
                if item.path not in claims:
                    continue
                r = claims[item.path]
            else:
                folder = os.path.dirname(os.path.abspath(item.path))
                r = os.path.basename(folder) or folder
            if r == m.row_labels[row] and predicted(item.analysis.methods[method], self.mode()) == m.col_labels[col]:
                out.append(item)
        return out

    def show_cell(self, row: int, col: int) -> None:
        from engine.intake import escape_invisible

        m = self._matrix
        if m is None:
            return
        items = self.cell_items(row, col)
        head = (f"{'claimed (unverified)' if m.has_truth else 'folder'} {label_text(m.row_labels[row])}, "
                f"predicted {label_text(m.col_labels[col])}: {len(items)} image(s)")
        self.cell_images.setText(head + ("\n" + "\n".join(escape_invisible(i.path) for i in items) if items else ""))

    def export_csv(self, path: str) -> None:
        from engine.atomic_write import write_text_atomic

        if self._matrix is None:
            raise ValueError("nothing to export: no analysed images")
        write_text_atomic(path, matrix_csv(self._matrix, self.method(), self.mode()))

    def render_png(self) -> QImage:
        if self._matrix is None:
            raise ValueError("nothing to export: no analysed images")
        m = self._matrix
        title = ("Tree-Ring attribution: true vs predicted key" if m.has_truth
                 else "Tree-Ring attribution per folder")
        mode = ("verdict at FPR " + (f"{self._fpr:g}" if self._fpr else "—")) if self.mode() == "verdict" \
            else "nearest key (argmin L1)"
        return render_matrix_png(m, title, f"decoder inversion: {self.method()}; prediction: {mode}")

    def export_png(self, path: str) -> None:
        img = self.render_png()
        if not img.save(path, "PNG"):
            raise OSError(f"could not write {path}")
