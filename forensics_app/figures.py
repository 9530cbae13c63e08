"""One figures module for the window and the report: numpy arrays (from `forensics_app.figure_arrays`) →
QImages, and the report's hand-drawn Fourier figure. The same colour map, key target and ring geometry as
the window's views, so a spectrum looks the same on screen and on paper.

QImage and QPainter on a QImage (no QPixmap, no widget) are safe in any thread, so the report may be drawn
in a worker thread of the desktop application as well as headless.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen

from forensics_app.figure_arrays import (VIRIDIS, KeyGeometry, centred_spectrum, colour_mapped, key_target,
                                         lut_indices, pixels_to_rgb8, ring_boundaries)


def rgb_qimage(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 → QImage (a deep copy: the array may be freed afterwards)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def scalar_qimage(values: np.ndarray, lo: float, hi: float, lut: np.ndarray = VIRIDIS) -> QImage:
    """2-D float array → colour-mapped ARGB image; NaN pixels are transparent (the panel shows through)."""
    a = np.asarray(values, dtype=np.float64)
    h, w = a.shape
    rgb = lut[lut_indices(a, lo, hi)]
    argb = np.empty((h, w, 4), dtype=np.uint8)     # QImage ARGB32 is BGRA in memory (little-endian)
    argb[..., 0] = rgb[..., 2]
    argb[..., 1] = rgb[..., 1]
    argb[..., 2] = rgb[..., 0]
    argb[..., 3] = np.where(np.isfinite(a), 255, 0)
    argb = np.ascontiguousarray(argb)
    return QImage(argb.data, w, h, 4 * w, QImage.Format.Format_ARGB32).copy()


def lut_qimage(lut: np.ndarray) -> QImage:
    """The colour map as a 256 × 1 image (colour bars)."""
    return rgb_qimage(lut[None, :, :])


def thumbnail_image(pixels: np.ndarray, min_side: int = 256) -> QImage:
    """The analysed model input (3, T, T) in [-1, 1] as an RGB QImage, enlarged by pixel replication."""
    rgb = pixels_to_rgb8(pixels)
    scale = max(1, math.ceil(min_side / max(rgb.shape[:2])))
    if scale > 1:
        rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
    return rgb_qimage(rgb)


def fourier_figure(results: dict, keys, score_target: str = "reference", width_px: int = 1800,
                   method_titles: dict[str, str] | None = None, font_family: str = "DejaVu Sans") -> QImage:
    """One row per method: (a) log(1+|F(ẑT)|) of the watermark channel with the nearest key's ring
    boundaries, (b) the same around the key's disc, (c) the nearest key's target (as scored) on (b)'s colour
    scale, (d) per-ring median Re F(ẑT) (interquartile bars) against the target's per-ring median real part.
    Medians and quartiles, because ring 1 of the reference mask holds the DC coefficient, which is large
    whenever the latent's mean is not zero and would otherwise dwarf every other ring.
    `results`: method → MethodResult; `keys`: the run's KeySet. Raises KeyError when a result's nearest key
    is not in `keys`."""
    titles = method_titles or {}

    rows = list(results.items())
    panel = int(width_px * 0.205)
    gap = int(width_px * 0.025)
    title_h, bar_h, label_h = 44, 16, 34
    row_h = title_h + panel + 10 + bar_h + label_h + 24
    height = row_h * len(rows) + 10
    img = QImage(width_px, height, QImage.Format.Format_RGB32)
    img.fill(QColor("white"))
    p = QPainter(img)
    try:  # a painter left active on an image that is then destroyed crashes Qt (SIGSEGV): always end it
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        font = QFont(font_family)
        font.setPixelSize(24)
        small = QFont(font_family)
        small.setPixelSize(21)
        bold = QFont(font_family)
        bold.setPixelSize(26)
        bold.setBold(True)

        def heat(x0: float, y0: float, values: np.ndarray, vmin: float, vmax: float, invalid=None) -> float:
            rgb = colour_mapped(values, vmin, vmax, VIRIDIS)
            if invalid is not None:
                rgb[invalid] = (225, 225, 225)
            q = rgb_qimage(rgb)
            p.drawImage(QRectF(x0, y0, panel, panel), q)
            p.setPen(QPen(QColor("#444444"), 1.5))
            p.drawRect(QRectF(x0, y0, panel, panel))
            return panel / values.shape[1]

        def rings_overlay(x0: float, y0: float, cell: float, rings: np.ndarray) -> None:
            segs = [QLineF(x0 + a * cell, y0 + b * cell, x0 + c * cell, y0 + d * cell) for a, b, c, d in ring_boundaries(rings)]
            p.setPen(QPen(QColor(0, 0, 0, 200), 4.5))
            p.drawLines(segs)
            p.setPen(QPen(QColor("white"), 2.0))
            p.drawLines(segs)

        def colourbar(x0: float, y0: float, vmin: float, vmax: float, label: str) -> None:
            p.drawImage(QRectF(x0, y0, panel, bar_h), lut_qimage(VIRIDIS))
            p.setPen(QPen(QColor("#444444"), 1))
            p.drawRect(QRectF(x0, y0, panel, bar_h))
            p.setFont(small)
            p.setPen(QColor("black"))
            p.drawText(QRectF(x0, y0 + bar_h + 2, panel, label_h), Qt.AlignmentFlag.AlignLeft, f"{math.expm1(vmin):.3g}")
            p.drawText(QRectF(x0, y0 + bar_h + 2, panel, label_h), Qt.AlignmentFlag.AlignHCenter, label)
            p.drawText(QRectF(x0, y0 + bar_h + 2, panel, label_h), Qt.AlignmentFlag.AlignRight, f"{math.expm1(vmax):.3g}")

        for n, (method, r) in enumerate(rows):
            top = n * row_h + 6
            key = keys[r.verdict.nearest_key]
            c, size = key.channel, key.latent_shape[1]
            if r.z_t.shape != tuple(key.latent_shape):
                p.setFont(bold)
                p.drawText(QPointF(10, top + 30), f"{method}: z_T shape {r.z_t.shape} does not fit key {key.id}")
                continue
            spec_complex = centred_spectrum(r.z_t[c])
            spec = np.abs(spec_complex)
            logf = np.log1p(spec)
            rings = key.ring_index_map()
            pattern = key_target(key, score_target)    # NaN outside the mask
            row0, col0, row1, col1 = KeyGeometry.of(key).crop(margin=2)
            ys, xs = slice(row0, row1), slice(col0, col1)
            zoom_f, zoom_k, zoom_rings = logf[ys, xs], np.log1p(np.abs(pattern[ys, xs])), rings[ys, xs]
            p.setFont(bold)
            p.setPen(QColor("black"))
            status = (f"watermark: {r.verdict.predicted_key}" if r.verdict.detected else "no watermark detected")
            xd = 3 * (panel + gap) + 70
            title = f"{titles.get(method, method)} — nearest: {key.id}, {status}"
            p.drawText(QPointF(4, top + 30), p.fontMetrics().elidedText(title, Qt.TextElideMode.ElideRight, int(xd - 30)))
            y0 = top + title_h
            xa, xb, xc = 0.0, panel + gap, 2 * (panel + gap)
            # (a) full spectrum
            # colour scales leave out the DC coefficient (the latent's mean: an outlier that would darken the
            # rest); it is shown saturated
            not_dc = np.ones_like(logf, dtype=bool)
            not_dc[size // 2, size // 2] = False
            lo, hi = float(logf[not_dc].min()), float(logf[not_dc].max())
            cell = heat(xa, y0, logf, lo, hi)
            rings_overlay(xa, y0, cell, (rings > 0).astype(int))     # the disc's outline only; rings in (b)
            colourbar(xa, y0 + panel + 10, lo, hi, "|F|")
            # (b), (c) zoom, shared scale
            zoom_ok = not_dc[ys, xs]
            lo2 = float(min(zoom_f[zoom_ok].min(), zoom_k[(zoom_rings > 0) & zoom_ok].min()))
            hi2 = float(max(zoom_f[zoom_ok].max(), zoom_k[(zoom_rings > 0) & zoom_ok].max()))
            cell = heat(xb, y0, zoom_f, lo2, hi2)
            rings_overlay(xb, y0, cell, zoom_rings)
            colourbar(xb, y0 + panel + 10, lo2, hi2, "|F|")
            cell = heat(xc, y0, zoom_k, lo2, hi2, invalid=zoom_rings == 0)
            rings_overlay(xc, y0, cell, zoom_rings)
            colourbar(xc, y0 + panel + 10, lo2, hi2, "|key|")
            p.setFont(small)
            for x, text in ((xa, f"(a) ẑT spectrum, channel {c}"), (xb, "(b) zoom on the key's disc"),
                            (xc, f"(c) {key.id} target, as scored")):
                p.drawText(QRectF(x, y0 + panel + 10 + bar_h + label_h - 8, panel + gap, 30),
                           Qt.AlignmentFlag.AlignLeft, text)
            # (d) per-ring profile
            full_rings = rings
            idx = list(range(1, key.radius + 1))
            re_f = [spec_complex[full_rings == i].real for i in idx]
            key_v = [float(np.median(pattern[full_rings == i].real)) for i in idx]
            means = [float(np.median(v)) for v in re_f]
            mins = [float(np.percentile(v, 25)) for v in re_f]
            maxs = [float(np.percentile(v, 75)) for v in re_f]
            ymin = min(min(mins), min(key_v), 0.0)
            ymax = max(max(maxs), max(key_v), 0.0)
            pad = 0.08 * (ymax - ymin or 1.0)
            ymin, ymax = ymin - pad, ymax + pad
            dw = width_px - xd - 10
            box = QRectF(xd, y0, dw, panel)
            p.setPen(QPen(QColor("#444444"), 1.5))
            p.drawRect(box)

            def X(i: float) -> float:
                return xd + (i - 0.5) / key.radius * dw

            def Y(v: float) -> float:
                return y0 + (ymax - v) / (ymax - ymin) * panel

            p.setPen(QPen(QColor("#999999"), 1, Qt.PenStyle.DashLine))
            p.drawLine(QLineF(xd, Y(0), xd + dw, Y(0)))
            p.setFont(small)
            p.setPen(QColor("black"))
            for v in (ymin + pad, (ymin + ymax) / 2, ymax - pad):
                p.drawText(QRectF(xd - 75, Y(v) - 14, 70, 28), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                           f"{v:.3g}")
            for i in idx:
                p.drawText(QRectF(X(i) - 20, y0 + panel + 2, 40, 26), Qt.AlignmentFlag.AlignHCenter, str(i))
            p.drawText(QRectF(xd, y0 + panel + 26, dw, 28), Qt.AlignmentFlag.AlignHCenter, "ring")
            p.drawText(QRectF(xd, y0 + panel + 10 + bar_h + label_h - 8, dw, 30), Qt.AlignmentFlag.AlignLeft,
                       "(d) Re F per ring: ẑT median, quartiles; key")
            p.setPen(QPen(QColor("#d95f02"), 3))
            pts = [QPointF(X(i), Y(v)) for i, v in zip(idx, key_v)]
            for a_, b_ in zip(pts, pts[1:]):
                p.drawLine(a_, b_)
            p.setBrush(QColor("#d95f02"))
            for pt in pts:
                p.drawRect(QRectF(pt.x() - 6, pt.y() - 6, 12, 12))
            p.setPen(QPen(QColor("#1f4e9c"), 2.5))
            p.setBrush(QColor("#1f4e9c"))
            for i, m, lo_, hi_ in zip(idx, means, mins, maxs):
                x = X(i) + 10
                p.drawLine(QLineF(x, Y(lo_), x, Y(hi_)))
                p.drawLine(QLineF(x - 6, Y(lo_), x + 6, Y(lo_)))
                p.drawLine(QLineF(x - 6, Y(hi_), x + 6, Y(hi_)))
                p.drawEllipse(QPointF(x, Y(m)), 7, 7)
            p.setBrush(Qt.BrushStyle.NoBrush)
            # legend
            # legend above the plot, in the row's title band
            ly = y0 - 14
            p.setFont(small)
            p.setPen(QPen(QColor("#d95f02"), 3))
            p.drawLine(QLineF(xd, ly, xd + 30, ly))
            p.setBrush(QColor("#d95f02"))
            p.drawRect(QRectF(xd + 9, ly - 6, 12, 12))
            p.setPen(QColor("black"))
            label = f"{key.id} (target)"
            p.drawText(QPointF(xd + 38, ly + 8), label)
            lx = xd + 38 + p.fontMetrics().horizontalAdvance(label) + 30
            p.setPen(QPen(QColor("#1f4e9c"), 2.5))
            p.setBrush(QColor("#1f4e9c"))
            p.drawEllipse(QPointF(lx + 8, ly), 7, 7)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(QColor("black"))
            p.drawText(QPointF(lx + 24, ly + 8), "ẑT")
    finally:
        p.end()
    return img
