"""The picture widget that shows an RGB image or colour-mapped scalars (spectra, key patterns, difference
maps) with the key's mask and rings drawn on top. The arrays and their images come from the figures module
shared with the report (`forensics_app.figure_arrays`, `forensics_app.figures`).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from forensics_app.figure_arrays import VIRIDIS, KeyGeometry
from forensics_app.figures import lut_qimage, rgb_qimage, scalar_qimage


# -- the widget ---------------------------------------------------------------------------------------

class ArrayView(QWidget):
    """Shows one image (RGB or colour-mapped scalars) scaled to fit, nearest-neighbour, with optional
    mask/ring circles and a colour bar. Hovering shows the value under the cursor; a click emits
    `clicked` (used to pick a key)."""

    clicked = Signal()
    BAR_HEIGHT = 10

    def __init__(self, parent: QWidget | None = None, minimum: int = 96, hint: int = 220,
                 colour_bar: bool = True) -> None:
        super().__init__(parent)
        self._hint = hint
        self._show_bar = colour_bar
        self.setMouseTracking(True)
        self.setMinimumSize(minimum, minimum)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._image: QImage | None = None
        self._values: np.ndarray | None = None
        self._value_label = "value"
        self._crop: tuple[int, int, int, int] | None = None
        self._geometry: KeyGeometry | None = None
        self._rings = True
        self._dashed = False
        self._lut: np.ndarray | None = None
        self._range: tuple[float, float] | None = None
        self._placeholder = ""
        self._selected = False
        self._cache: QPixmap | None = None
        self._cache_key = None

    # -- content --------------------------------------------------------------------------------
    def clear(self, placeholder: str = "") -> None:
        self._image = self._values = self._lut = self._range = self._geometry = self._crop = None
        self._placeholder = placeholder
        self.update()

    def set_rgb(self, rgb: np.ndarray) -> None:
        self._image = rgb_qimage(rgb)
        self._values, self._lut, self._range = rgb, None, None
        self._value_label = "RGB"
        self._crop, self._geometry = None, None
        self.update()

    def set_scalar(self, values: np.ndarray, lo: float, hi: float, lut: np.ndarray = VIRIDIS,
                   value_label: str = "value", geometry: KeyGeometry | None = None, rings: bool = True,
                   dashed: bool = False, crop: tuple[int, int, int, int] | None = None) -> None:
        self._values = np.asarray(values)
        self._image = scalar_qimage(self._values, lo, hi, lut)
        self._lut, self._range, self._value_label = lut, (lo, hi), value_label
        self._geometry, self._rings, self._dashed, self._crop = geometry, rings, dashed, crop
        self.update()

    def set_selected(self, selected: bool) -> None:
        self._selected = selected
        self.update()

    def image(self) -> QImage | None:
        return self._image

    # -- geometry ---------------------------------------------------------------------------------
    def sizeHint(self) -> QSize:
        return QSize(self._hint, self._hint + (self.BAR_HEIGHT + 14 if self._show_bar else 0))

    def _source_rect(self) -> QRectF:
        if self._image is None:
            return QRectF()
        if self._crop is None:
            return QRectF(0, 0, self._image.width(), self._image.height())
        r0, c0, r1, c1 = self._crop
        return QRectF(c0, r0, c1 - c0, r1 - r0)

    def _target_rect(self) -> QRectF:
        src = self._source_rect()
        bar = self.BAR_HEIGHT + 14 if (self._lut is not None and self._show_bar) else 0
        avail_w, avail_h = self.width() - 4, self.height() - 4 - bar
        if src.isEmpty() or avail_w <= 0 or avail_h <= 0:
            return QRectF()
        scale = min(avail_w / src.width(), avail_h / src.height())
        w, h = src.width() * scale, src.height() * scale
        return QRectF((self.width() - w) / 2, 2 + (avail_h - h) / 2, w, h)

    def _to_widget(self, row: float, col: float) -> QPointF:
        src, tgt = self._source_rect(), self._target_rect()
        s = tgt.width() / src.width()
        return QPointF(tgt.left() + (col - src.left()) * s, tgt.top() + (row - src.top()) * s)

    # -- painting ---------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        # Rendered once per content / size / palette into a pixmap; later repaints (scrolling, other
        # widgets' updates) are a blit, which keeps the GUI thread free during a run.
        key = (self.size().width(), self.size().height(), self.devicePixelRatioF(), self.palette().cacheKey())
        if self._cache is None or self._cache_key != key:
            ratio = self.devicePixelRatioF()
            pix = QPixmap(int(self.width() * ratio), int(self.height() * ratio))
            pix.setDevicePixelRatio(ratio)
            pix.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pix)
            self._render(painter)
            painter.end()
            self._cache, self._cache_key = pix, key
        p = QPainter(self)
        p.drawPixmap(0, 0, self._cache)
        p.end()

    def update(self, *args) -> None:  # content changed: drop the cached rendering
        self._cache = None
        super().update(*args)

    def _render(self, p: QPainter) -> None:
        pal = self.palette()
        if self._image is None:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect().adjusted(6, 6, -6, -6), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self._placeholder)
            return
        tgt = self._target_rect()
        # a neutral frame behind the picture so transparent (outside-the-mask) pixels read as "no data"
        p.fillRect(tgt, pal.color(QPalette.ColorRole.AlternateBase))
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        p.drawImage(tgt, self._image, self._source_rect())
        if self._geometry is not None and self._rings:
            self._draw_rings(p, tgt)
        frame = QPen(pal.color(QPalette.ColorRole.Highlight if self._selected else QPalette.ColorRole.Mid))
        frame.setWidth(3 if self._selected else 1)
        p.setPen(frame)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(tgt.adjusted(-1, -1, 0, 0))
        if self._lut is not None and self._range is not None and self._show_bar:
            self._draw_colour_bar(p, tgt)

    def _draw_rings(self, p: QPainter, tgt: QRectF) -> None:
        g = self._geometry
        src = self._source_rect()
        s = tgt.width() / src.width()
        centre = self._to_widget(g.centre[0] + 0.5, g.centre[1] + 0.5)
        p.save()
        p.setClipRect(tgt)
        p.setBrush(Qt.BrushStyle.NoBrush)
        # ring i = {(i−1)² < d² ≤ i²} (pixel centres): its outer boundary is the circle of radius i
        for i in range(1, g.radius + 1):
            outer = i == g.radius
            p.setRenderHint(QPainter.RenderHint.Antialiasing, outer)     # the inner rings are dotted anyway
            for colour, width in ((QColor(0, 0, 0, 200), 3.0 if outer else 2.0),
                                  (QColor(255, 255, 255, 230), 1.5 if outer else 0.8)):
                pen = QPen(colour, width)
                if self._dashed or not outer:
                    pen.setStyle(Qt.PenStyle.DashLine if self._dashed else Qt.PenStyle.DotLine)
                p.setPen(pen)
                p.drawEllipse(centre, i * s, i * s)
        p.restore()

    def _draw_colour_bar(self, p: QPainter, tgt: QRectF) -> None:
        lo, hi = self._range
        bar = QRectF(tgt.left(), tgt.bottom() + 4, tgt.width(), self.BAR_HEIGHT)
        p.drawImage(bar, lut_qimage(self._lut))
        p.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        font = p.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        p.setFont(font)
        text_rect = QRectF(tgt.left(), bar.bottom(), tgt.width(), 14)
        p.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, f"{lo:.3g}")
        p.drawText(text_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, f"{hi:.3g}")

    # -- interaction -----------------------------------------------------------------------------
    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._image is None or self._values is None:
            return
        tgt, src = self._target_rect(), self._source_rect()
        pos = event.position()
        if not tgt.contains(pos):
            QToolTip.hideText()
            return
        s = tgt.width() / src.width()
        col = int(src.left() + (pos.x() - tgt.left()) / s)
        row = int(src.top() + (pos.y() - tgt.top()) / s)
        if not (0 <= row < self._values.shape[0] and 0 <= col < self._values.shape[1]):
            return
        v = self._values[row, col]
        if self._lut is None:
            text = f"row {row}, column {col}: RGB {tuple(int(c) for c in v)}"
        elif np.isfinite(v):
            text = f"row {row}, column {col}: {self._value_label} {float(v):.4g}"
        else:
            text = f"row {row}, column {col}: outside the mask"
        if self._geometry is not None:
            r0, c0 = self._geometry.centre
            d = ((row - r0) ** 2 + (col - c0) ** 2) ** 0.5
            ring = max(1, int(np.ceil(d)))
            if ring <= self._geometry.radius:
                text += f" (ring {ring})"
        QToolTip.showText(event.globalPosition().toPoint(), text, self)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mousePressEvent(event)
