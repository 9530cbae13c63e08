"""The examination report: a paginated A4 PDF and its machine-readable JSON twin.

`write_report(run, "case.pdf", ReportInfo(case_id=..., examiner=...))` writes

* ``case.pdf`` — what an examiner signs: case and examiner, UTC timestamps, tool version and git commit,
  software and device, the model and the SHA-256 of its weight files, the keys and every setting, and per
  evidence item its SHA-256 at intake *and re-verified now* (a changed or missing file is printed as
  HASH MISMATCH / FILE MISSING in red), the preprocessing, an EXIF summary, a thumbnail of the analysed
  pixels, the encoder / gradient-free / gradient-based comparison, every key's L1 distance and p-value,
  the verdict at the stated false-positive level (the finding, in numbers, printed apart from its
  interpretation), a Fourier figure of the recovered z_T against the nearest key, a confusion matrix for
  batches, failures, and the limitations of what a verdict may claim (ALGORITHMS.md §4). Every page
  carries the case id and "page n of N".
* ``case.json`` — the same results (`engine.analysis.run_to_json`) plus the report's metadata (case,
  examiner, report time, re-verification, weight hashes). Qt's QPdfWriter cannot embed file attachments
  in a PDF, so the twin is a separate file beside it; its SHA-256 is printed in the PDF, which ties the two.

Everything that came from evidence or from a user (file names, paths, EXIF text, prompts, case fields,
key descriptions, manifest labels) is shown as text: invisible and control characters are made visible
as escapes, then ``html.escape`` is applied before it enters the HTML that QTextDocument lays out.

Both files are written atomically: on any failure neither the PDF nor a temporary file is left behind.
Works headless (a QApplication on the "offscreen" platform is created when there is none). No widget
and no QPixmap is used (figures and thumbnails are QImages drawn by a custom text-object handler), so
it may run in a QThread worker of the desktop application as well as in its GUI thread. The PDF is
PDF/A-1b with its fonts embedded; ligatures are off so that words copy and search as typed.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from engine.analysis import AnalysisRun, ImageAnalysis, MethodResult, run_to_json, utc_now
from engine.atomic_write import atomic_path, write_bytes_atomic
from engine.provenance import Reverification, git_commit, manifest_labels, recheck_weight_hashes, reverify
from engine.attribution_matrix import ConfusionMatrix
from engine.treering import KeySet, TreeRingKey, mask_centre

REPORT_FORMAT = "treering-forensics/report"
REPORT_VERSION = 1

RESOLUTION_DPI = 300                  # QPdfWriter device units; text stays vector, figures are raster
CSS_PX_PER_MM = 96 / 25.4             # QTextDocument lengths (margins, image sizes) are 96-dpi pixels
PAGE_MARGINS_MM = dict(left=18.0, right=18.0, top=22.0, bottom=20.0)
BODY_WIDTH_MM = 210.0 - PAGE_MARGINS_MM["left"] - PAGE_MARGINS_MM["right"]
FONT = "DejaVu Sans"
MONO = "DejaVu Sans Mono"
LITERATURE_LEVELS = ((1e-2, "Tree-Ring (Wen et al. 2023), dec-inv (Hong et al. 2024): TPR at 1% FPR"),
                     (1e-3, "WAVES benchmark: 0.1% FPR"),
                     (1e-6, "Gaussian Shading: 1e-6 FPR"))
METHOD_TITLES = {"encoder": "Encoder E(x)", "gradient-free": "Gradient-free inversion",
                 "gradient-based": "Gradient-based inversion"}

_qt_app = None  # the QGuiApplication this module created, kept alive for the process


@dataclass(frozen=True)
class ReportInfo:
    case_id: str = ""
    examiner: str = ""
    notes: str = ""


# ---------------------------------------------------------------------------------------------------
# Text helpers: everything untrusted goes through esc()


def _visible(text: Any) -> str:
    """Control, format (bidi overrides), separator and surrogate characters as visible escapes."""
    out = []
    for ch in str(text):
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}" if ord(ch) < 0x10000
                       else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return "".join(out)


def esc(text: Any) -> str:
    return html.escape(_visible(text), quote=True)


def esc_multiline(text: str) -> str:
    return "<br>".join(esc(line) for line in str(text).splitlines())


def _num(v: float | None, fmt: str = ".4g") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return format(v, fmt)


def _bytes(n: int | None, cpu: bool) -> str:
    if n is None:
        return "n/a (CPU)" if cpu else "n/a"
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _verdict_cell(r: MethodResult) -> str:
    if r.verdict.detected:
        return f'<span class="hit">watermark: {esc(r.verdict.predicted_key)}</span>'
    return "no watermark detected"


def _verdict_text(r: MethodResult) -> str:
    return f"watermark: {r.verdict.predicted_key}" if r.verdict.detected else "no watermark detected"


def _json_safe(obj: Any) -> Any:
    """Strict JSON: non-finite floats become null (their meaning is in the PDF and the run's fields)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------------------------------
# Figures (numpy → QImage; QPainter on a QImage is fine in any thread)

_VIRIDIS = np.array([(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
                     (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37)], dtype=np.float64)


def _colormap(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """(H, W) → (H, W, 3) uint8 viridis."""
    t = np.clip((values - vmin) / (vmax - vmin if vmax > vmin else 1.0), 0, 1) * (len(_VIRIDIS) - 1)
    i = np.minimum(np.floor(t).astype(int), len(_VIRIDIS) - 2)
    f = (t - i)[..., None]
    return np.round(_VIRIDIS[i] * (1 - f) + _VIRIDIS[i + 1] * f).astype(np.uint8)


def _qimage_rgb(rgb: np.ndarray):
    from PySide6.QtGui import QImage

    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def thumbnail_image(pixels: np.ndarray, min_side: int = 256):
    """The analysed model input (3, T, T) in [-1, 1] as an RGB QImage, enlarged by pixel replication."""
    rgb = np.clip(np.round((np.transpose(pixels, (1, 2, 0)) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    scale = max(1, math.ceil(min_side / max(rgb.shape[:2])))
    if scale > 1:
        rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
    return _qimage_rgb(rgb)


def _ring_boundaries(rings: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Pixel-edge segments (x0, y0, x1, y1) in cell units between cells of different ring number."""
    segs = []
    h, w = rings.shape
    for y in range(h):
        for x in range(w):
            r = rings[y, x]
            if x + 1 < w and rings[y, x + 1] != r and (r or rings[y, x + 1]):
                segs.append((x + 1, y, x + 1, y + 1))
            if y + 1 < h and rings[y + 1, x] != r and (r or rings[y + 1, x]):
                segs.append((x, y + 1, x + 1, y + 1))
            if r:  # the disc's outer edge at the border of the window
                if x == 0:
                    segs.append((0, y, 0, y + 1))
                if x == w - 1:
                    segs.append((w, y, w, y + 1))
                if y == 0:
                    segs.append((x, 0, x + 1, 0))
                if y == h - 1:
                    segs.append((x, h, x + 1, h))
    return segs


def key_target_2d(key: TreeRingKey, score_target: str = "reference") -> np.ndarray:
    """The complex target the scores compare with, on the key's channel (H, W); 0 outside the mask."""
    out = np.zeros(key.latent_shape[1:], dtype=np.complex64)
    out[key.mask_2d()] = key.masked_target(score_target).numpy()
    return out


def fourier_figure(results: dict[str, MethodResult], keys: KeySet, score_target: str = "reference",
                   width_px: int = 1800):
    """One row per method: (a) log(1+|F(ẑT)|) of the watermark channel with the nearest key's ring
    boundaries, (b) the same around the key's disc, (c) the nearest key's target (as scored) on (b)'s colour
    scale, (d) per-ring median Re F(ẑT) (interquartile bars) against the target's per-ring median real part.
    Medians and quartiles, because ring 1 of the reference mask holds the DC coefficient, which is large
    whenever the latent's mean is not zero and would otherwise dwarf every other ring."""
    from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen

    rows = list(results.items())
    panel = int(width_px * 0.205)
    gap = int(width_px * 0.025)
    title_h, bar_h, label_h = 44, 16, 34
    row_h = title_h + panel + 10 + bar_h + label_h + 24
    height = row_h * len(rows) + 10
    img = QImage(width_px, height, QImage.Format.Format_RGB32)
    img.fill(QColor("white"))
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    font = QFont(FONT)
    font.setPixelSize(24)
    small = QFont(FONT)
    small.setPixelSize(21)
    bold = QFont(FONT)
    bold.setPixelSize(26)
    bold.setBold(True)

    def heat(x0: float, y0: float, values: np.ndarray, vmin: float, vmax: float, invalid=None) -> float:
        rgb = _colormap(values, vmin, vmax)
        if invalid is not None:
            rgb[invalid] = (225, 225, 225)
        q = _qimage_rgb(rgb)
        p.drawImage(QRectF(x0, y0, panel, panel), q)
        p.setPen(QPen(QColor("#444444"), 1.5))
        p.drawRect(QRectF(x0, y0, panel, panel))
        return panel / values.shape[1]

    def rings_overlay(x0: float, y0: float, cell: float, rings: np.ndarray) -> None:
        segs = [QLineF(x0 + a * cell, y0 + b * cell, x0 + c * cell, y0 + d * cell) for a, b, c, d in _ring_boundaries(rings)]
        p.setPen(QPen(QColor(0, 0, 0, 200), 4.5))
        p.drawLines(segs)
        p.setPen(QPen(QColor("white"), 2.0))
        p.drawLines(segs)

    def colourbar(x0: float, y0: float, vmin: float, vmax: float, label: str) -> None:
        ramp = _colormap(np.linspace(vmin, vmax, 256)[None, :].repeat(2, 0), vmin, vmax)
        p.drawImage(QRectF(x0, y0, panel, bar_h), _qimage_rgb(ramp))
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
        spec_complex = np.fft.fftshift(np.fft.fft2(r.z_t[c].astype(np.float64)))   # = engine.treering.fft_latent
        spec = np.abs(spec_complex)
        logf = np.log1p(spec)
        rings = key.ring_index_map()
        pattern = key_target_2d(key, score_target)
        r0, c0 = mask_centre(size, key.centre)
        half = key.radius + 2
        ys = slice(max(0, r0 - half), min(size, r0 + half + 1))
        xs = slice(max(0, c0 - half), min(size, c0 + half + 1))
        zoom_f, zoom_k, zoom_rings = logf[ys, xs], np.log1p(np.abs(pattern[ys, xs])), rings[ys, xs]
        p.setFont(bold)
        p.setPen(QColor("black"))
        status = (f"watermark: {r.verdict.predicted_key}" if r.verdict.detected else "no watermark detected")
        xd = 3 * (panel + gap) + 70
        title = f"{METHOD_TITLES.get(method, method)} — nearest: {key.id}, {status}"
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
    p.end()
    return img


# ---------------------------------------------------------------------------------------------------
# The HTML body


_CSS = f"""
body {{ font-family: '{FONT}'; font-size: 9pt; }}
h1 {{ font-size: 16pt; margin-bottom: 4px; }}
h2 {{ font-size: 12.5pt; margin-top: 16px; margin-bottom: 6px; color: #1b2a49; }}
h3 {{ font-size: 10.5pt; margin-top: 12px; margin-bottom: 4px; color: #1b2a49; }}
p {{ margin-top: 3px; margin-bottom: 3px; }}
th {{ background-color: #e4e9f1; font-weight: bold; text-align: left; }}
.mono {{ font-family: '{MONO}'; font-size: 7.5pt; }}
.small {{ font-size: 7.5pt; }}
.alert {{ color: #c00000; font-weight: bold; }}
.ok {{ color: #1d6b2c; }}
.hit {{ font-weight: bold; }}
.interp {{ font-style: italic; }}
.muted {{ color: #555555; }}
"""

_TABLE = 'width="100%" border="1" cellspacing="0" cellpadding="3" style="border-collapse: collapse; border-color: #9aa3b0;"'


def _kv_table(rows: Iterable[tuple[str, str]], label_width: int = 24) -> str:
    body = "".join(f'<tr><th width="{label_width}%">{k}</th><td>{v}</td></tr>' for k, v in rows)
    return f"<table {_TABLE}>{body}</table>"


def _grid(header: list[str], rows: list[list[str]], widths: list[int] | None = None, cls: str = "") -> str:
    ws = widths or [0] * len(header)
    head = "".join((f'<th width="{w}%">' if w else "<th>") + f"{h}</th>" for h, w in zip(header, ws))
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    c = f' class="{cls}"' if cls else ""
    return f"<table {_TABLE}{c}><thead><tr>{head}</tr></thead>{body}</table>"


def _key_description(k: TreeRingKey) -> str:
    if k.pattern == "values":
        detail = "ring values " + ", ".join(f"{v:g}" for v in k.ring_values)
    elif k.pattern in ("ring", "rand"):
        detail = f"seed {k.seed}"
    elif k.pattern == "spectrum":
        detail = f"{len(k.masked_spectrum)} explicit coefficients"
    else:
        detail = "all zero"
    return detail


@dataclass
class _Report:
    run: AnalysisRun
    info: ReportInfo
    generated_utc: str
    commit: str
    weights: dict[str, str]
    weights_note: str
    checks: list[Reverification]
    truth: dict[str, str | None]
    json_name: str
    json_sha256: str

    @property
    def score_target(self) -> str:
        return str(getattr(self.run.config, "score_target", "reference"))

    @property
    def cpu(self) -> bool:
        return self.run.device.upper().startswith("CPU")

    @property
    def case_label(self) -> str:
        return self.info.case_id or "(no case id given)"

    def build(self) -> tuple[str, dict[str, Any]]:
        """HTML and its image resources (name → QImage)."""
        self.resources: dict[str, Any] = {}
        self._sec = 7 if len(self.run.images) >= 2 else 6     # failures; limitations and integrity follow
        parts = [self._front(), self._summary(), self._notes(), self._environment(), self._model(), self._keys(), self._settings()]
        for n, a in enumerate(self.run.images, start=1):
            parts.append(self._exhibit(n, a))
        if len(self.run.images) >= 2:
            parts.append(self._batch())
        parts += [self._failures(), self._limitations(), self._signoff()]
        return f"<html><body>{''.join(parts)}</body></html>", self.resources

    # -- sections ---------------------------------------------------------------------------------
    def _front(self) -> str:
        run, info = self.run, self.info
        status = ('<span class="alert">CANCELLED — the results below are partial: only the evidence that '
                  'finished before the cancel is reported</span>' if run.cancelled else "complete")
        mismatches = [c for c in self.checks if not c.ok]
        integrity = (f'<span class="alert">{len(mismatches)} of {len(self.checks)} evidence file(s) FAILED '
                     f're-verification (see the exhibits)</span>' if mismatches
                     else f'<span class="ok">all {len(self.checks)} evidence file(s) re-verified: SHA-256 unchanged</span>'
                     if self.checks else "no evidence was analysed")
        rows = [("Case", f"<b>{esc(self.case_label)}</b>"),
                ("Examiner", esc(info.examiner) if info.examiner else '<span class="muted">(not given)</span>'),
                ("Report generated (UTC)", esc(self.generated_utc)),
                ("Analysis started (UTC)", esc(run.started_utc)),
                ("Analysis finished (UTC)", esc(run.finished_utc)),
                ("Analysis status", status),
                ("Evidence", f"{len(run.images)} analysed, {len(run.failures)} could not be analysed"),
                ("Evidence integrity at export", integrity),
                ("Question examined", "Is the initial noise z<sub>T</sub> recovered from each evidence image, under "
                 f"model {esc(run.model_id)}, consistent with one of the {len(run.keys)} Tree-Ring key(s) tested?"),
                ("Machine-readable twin", f'{esc(self.json_name)}<br><span class="mono">SHA-256 '
                 f'{esc(self.json_sha256)}</span>')]
        out = ("<h1>Tree-Ring watermark examination report</h1>"
               '<p class="muted">Recovery of the initial noise of a latent diffusion model from suspect images '
               "and test for Tree-Ring watermark keys (treering-forensics).</p>" + _kv_table(rows, 27))
        return out

    def _notes(self) -> str:
        if not self.info.notes.strip():
            return ""
        return f"<h3>Examiner's notes</h3><p>{esc_multiline(self.info.notes)}</p>"

    def _summary(self) -> str:
        run = self.run
        methods = list(run.config.methods)
        k = len(run.keys)
        out = ["<h2>1. Summary of findings</h2>",
               f"<p>Verdicts at a family-wise false-positive level of <b>{run.config.fpr:g}</b> over "
               f"K = {k} key(s): a key is reported only if its p-value is below {run.config.fpr:g} / {k} = "
               f"{run.config.fpr / k:.3g} (Bonferroni). The nearest key (smallest L1) is always shown; it is "
               "the reference classifier's answer, which has no \u201cno watermark\u201d outcome. A positive is "
               "evidence of consistency with a key, not proof of origin; a negative is not proof of absence "
               f"(section {self._sec + 1}).</p>"]
        if not run.images:
            out.append("<p><b>No evidence item was analysed.</b></p>")
            return "".join(out)
        header = ["#", "Evidence file", "Integrity"] + [
            f'{esc(METHOD_TITLES.get(m, m))}<br><span class="small">verdict; nearest key, p</span>' for m in methods]
        rows = []
        for n, (a, chk) in enumerate(zip(run.images, self.checks), start=1):
            integ = '<span class="ok">verified</span>' if chk.ok else f'<span class="alert">{esc(chk.status.label)}</span>'
            cells = [str(n), esc(Path(a.evidence.path).name), integ]
            for m in methods:
                r = a.methods.get(m)
                cells.append(f"{_verdict_cell(r)}<br><span class=\"small\">{esc(r.verdict.nearest_key)}, "
                             f"p = {_num(r.verdict.nearest_p_value, '.3g')}</span>" if r else "not run")
            rows.append(cells)
        w = [4, 23, 12] + [int(61 / len(methods))] * len(methods)
        out.append(_grid(header, rows, w))
        return "".join(out)

    def _environment(self) -> str:
        sw = self.run.software
        rows = [("Tool", esc(f"treering-forensics {sw.get('treering-forensics', 'unknown')}")),
                ("Python", esc(sw.get("python", "unknown"))), ("PyTorch", esc(sw.get("torch", "unknown"))),
                ("diffusers", esc(sw.get("diffusers", "unknown"))), ("NumPy / SciPy",
                                                                      esc(f"{sw.get('numpy', '?')} / {sw.get('scipy', '?')}")),
                ("CUDA", esc(sw.get("cuda", "unknown"))), ("Device", esc(self.run.device)),
                ("Precision", esc(self.run.dtype))]
        pairs = "".join(f'<tr><th width="14%">{a[0]}</th><td width="36%">{a[1]}</td>'
                        f'<th width="14%">{b[0]}</th><td width="36%">{b[1]}</td></tr>' for a, b in zip(rows[::2], rows[1::2]))
        wide = "".join(f'<tr><th>{k}</th><td colspan="3">{v}</td></tr>' for k, v in (
            ("Git commit", f'<span class="mono">{esc(self.commit)}</span>'),
            ("Platform", esc(sw.get("platform", "unknown")))))
        return ("<h2>2. Examination environment</h2><p>The software that produced the results (recorded at "
                "analysis time; the git commit is that of the tool producing this report).</p>"
                f"<table {_TABLE}>{pairs}{wide}</table>")

    def _model(self) -> str:
        run = self.run
        rows = [("Model", esc(run.model_id)), ("Kind", esc("DDIM (multi-step)" if run.model_kind == "ddim"
                                                         else "one-step rectified flow" if run.model_kind == "flow"
                                                         else run.model_kind)),
                ("Folder", esc(run.model_path)), ("Image size", f"{run.image_size}×{run.image_size} pixels"),
                ("Latent shape (C, h, w)", esc(", ".join(str(v) for v in run.latent_shape)))]
        out = "<h2>3. Model</h2>" + _kv_table(rows)
        out += f"<p>SHA-256 of the weight files ({esc(self.weights_note)}):</p>"
        if self.weights:
            out += _grid(["Weight file", "SHA-256"],
                         [[f'<span class="small">{esc(p)}</span>', f'<span class="mono">{esc(h)}</span>']
                          for p, h in self.weights.items()], [36, 64])
        else:
            out += '<p class="alert">No weight file hash is available.</p>'
        return out

    def _keys(self) -> str:
        keys = self.run.keys
        rows = [[esc(k.id), esc(k.scheme), esc(k.pattern), str(k.channel), str(k.radius), esc(k.centre),
                 esc(_key_description(k)) + (f'<br><span class="small muted">{esc(k.description)}</span>'
                                            if k.description else "")] for k in keys.keys]
        name = f" ({esc(keys.name)})" if keys.name else ""
        return (f"<h2>4. Keys tested</h2><p>K = {len(keys)} key(s){name}.</p>"
                + _grid(["Key", "Scheme", "Pattern", "Ch.", "r", "Centre", "Definition"], rows,
                        [11, 11, 9, 5, 5, 11, 48]))

    def _settings(self) -> str:
        cfg = self.run.config
        rows = []
        for m in cfg.methods:
            dc = cfg.decoder_config(m)
            note = ""
            if m == "gradient-free" and (dc.optimizer, dc.effective_lr, dc.schedule) != ("adam", 0.01, "scheduled"):
                # A reader comparing with the papers must see that this is not their setting.
                note = ("; differs from the papers' (Adam, lr 0.01, warm-up + cosine): a model may carry its own "
                        "measured default, see the model card")
            rows.append((esc(METHOD_TITLES.get(m, m)), esc(dc.label() + note)))
        d = cfg.diffusion
        inv = d.label() if self.run.model_kind != "flow" else f"{d.method} (one-step flow)"
        if d.method == "backward-euler":
            inv += (f"; fixed point: {d.exact_iterations} it/step (flow: {d.flow_iterations}), lr {d.exact_lr:g}, "
                    f"warm-up {d.exact_warmup}, tolerance {d.exact_tolerance:g}")
        rows.append(("Diffusion inversion", esc(inv)))
        cond = cfg.conditioning
        prompt = f"\u201c{esc(cond.prompt)}\u201d" if cond.prompt else "empty prompt (the prompt is unknown)"
        extra = f", class label {cond.class_label}" if cond.class_label is not None else ""
        rows.append(("Conditioning", f"{prompt}, guidance {cond.guidance:g}{esc(extra)}"))
        rows.append(("False-positive level",
                     f"{cfg.fpr:g} family-wise; per-key threshold {cfg.fpr:g} / {len(self.run.keys)} = "
                     f"{cfg.fpr / len(self.run.keys):.3g}"))
        rows.append(("Scores compared with", esc(self.score_target) + (
            " — what injection leaves in a real latent (the inverse FFT keeps the real part, which blends each "
            "masked coefficient with its mirror); the papers' code compares with the key as written (\u201creference\u201d)"
            if self.score_target == "effective" else
            " — the key as written, as the papers' code does" if self.score_target == "reference" else "")))
        rows.append(("Batch size", str(cfg.batch_size)))
        return ("<h2>5. Method settings</h2><p>Each evidence image is brought to the model's input size (recorded "
                "per exhibit), decoder inversion recovers the clean latent z<sub>0</sub> by each method below, "
                "diffusion inversion takes it to the initial noise z<sub>T</sub>, and the Fourier spectrum of "
                "z<sub>T</sub> is compared with every key (ALGORITHMS.md §1–3).</p>" + _kv_table(rows))

    def _exhibit(self, n: int, a: ImageAnalysis) -> str:
        e = a.evidence
        chk = self.checks[n - 1]
        if chk.ok:
            verified = f'<span class="ok">verified at report time: unchanged</span>'
        else:
            now = (f'<br>now: <span class="mono">{esc(chk.sha256_now)}</span>' if chk.sha256_now else "")
            verified = f'<span class="alert">{esc(chk.status.label)}</span>: {esc(chk.detail)}{now}'
        rows = [("File name", f"<b>{esc(Path(e.path).name)}</b>"), ("Path", esc(e.path)),
                ("Size", f"{e.size_bytes:,} bytes"),
                ("SHA-256 at intake", f'<span class="mono">{esc(e.sha256)}</span>'),
                ("SHA-256 re-verified", verified),
                ("Format", esc(f"{e.format}, mode {e.mode}, {e.width}×{e.height} pixels as stored"
                               + (f", {e.frame_count} frames" if e.frame_count > 1 else ""))),
                ("Preprocessing", esc(e.preprocessing.describe())),
                ("EXIF orientation", esc(f"{e.exif_orientation} (recorded, not applied)") if e.exif_orientation
                 else "none")]
        truth = self.truth.get(e.path, "∅")
        if truth != "∅":
            rows.append(("Manifest claims", esc(f"{truth}" if truth else "un-watermarked")
                         + ' <span class="small muted">(manifest.json beside the image; not verified)</span>'))
        out = [f'<h2 style="page-break-before: always;">Exhibit {n} of {len(self.run.images)}: {esc(Path(e.path).name)}</h2>',
               _kv_table(rows, 22)]
        # thumbnail and EXIF side by side
        thumb_name = f"thumb:{n}"
        have_pixels = bool(np.any(e.pixels)) or chk.ok
        exif_rows = "".join(f"<tr><th width=\"32%\">{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in e.exif.items())
        exif = (f"<table {_TABLE}>{exif_rows}</table>" if exif_rows else "<p>No EXIF metadata.</p>")
        warn = ("".join(f"<li>{esc(w)}</li>" for w in e.warnings))
        warn_html = f"<p><b>Intake warnings</b></p><ul>{warn}</ul>" if warn else "<p>No intake warnings.</p>"
        side = 42
        if have_pixels:
            self.resources[thumb_name] = thumbnail_image(e.pixels)
            t = int(side * CSS_PX_PER_MM)
            thumb = (f'<img src="{thumb_name}" width="{t}" height="{t}"><br><span class="small">Analysed model input '
                     f"({e.pixels.shape[-1]}×{e.pixels.shape[-2]} px, after preprocessing)</span>")
        else:
            thumb = '<p class="alert">Pixels unavailable (file changed or missing)</p>'
        out.append('<h3>Image and metadata</h3>'
                   f'<table width="100%" cellspacing="0" cellpadding="0" border="0"><tr>'
                   f'<td width="{int((side + 4) * CSS_PX_PER_MM)}" valign="top">{thumb}</td><td valign="top" style="padding-left: 8px;">'
                   f"<p><b>EXIF summary</b> <span class=\"small muted\">(untrusted text, printed as found)</span></p>"
                   f"{exif}{warn_html}</td></tr></table>")
        out.append(self._method_tables(n, a))
        return "".join(out)

    def _method_tables(self, n: int, a: ImageAnalysis) -> str:
        run = self.run
        methods = [m for m in run.config.methods if m in a.methods]
        out = ["<h3>Decoder inversion methods compared</h3>"]
        rows = []
        for m in methods:
            r = a.methods[m]
            rows.append([esc(METHOD_TITLES.get(m, m)), _num(r.z0_residual, ".3f"), _num(r.pixel_psnr_db, ".2f"),
                         f"{r.seconds:.2f}<br><span class=\"small\">({r.decoder_seconds:.2f} + {r.inversion_seconds:.2f})</span>",
                         _bytes(r.peak_memory_bytes, self.cpu), esc(r.verdict.nearest_key),
                         _num(r.verdict.nearest_l1, ".4g"), _num(r.verdict.nearest_p_value, ".3g"), _verdict_cell(r)])
        out.append(_grid(["Method", "Resid.", "PSNR dB", "Time s", "Peak mem.", "Nearest", "L1", "p-value",
                          "Verdict"], rows, [15, 8, 8, 11, 11, 10, 9, 10, 18]))
        out.append('<p class="small muted">Resid. = z<sub>0</sub> residual ‖E(D(z<sub>0</sub>)) − E(x)‖ / ‖E(x)‖; PSNR of '
                   "D(z<sub>0</sub>) against the analysed input. Both say how well the recovered latent explains the "
                   "image: a poor fit (large residual, low PSNR) means a degraded or out-of-model image, on which a "
                   "negative says little. Time per image: total (decoder inversion + diffusion inversion). Peak "
                   "memory is measured on GPUs only. Nearest, L1, p-value: the key with the smallest L1 distance.</p>")
        out.append("<h3>Scores for every key</h3>")
        header = ["Key"] + [f"{esc(METHOD_TITLES.get(m, m))}<br>L1 / p-value" for m in methods]
        rows = []
        for k in run.keys.ids:
            cells = [esc(k)]
            for m in methods:
                r = a.methods[m]
                s = next((s for s in r.scores if s.key_id == k), None)
                txt = f"{_num(s.l1, '.4g')} / {_num(s.p_value, '.3g')}" if s else "n/a"
                cells.append(f"<b>{txt}</b>" if s and r.verdict.nearest_key == k else txt)
            rows.append(cells)
        out.append(_grid(header, rows))
        out.append('<p class="small muted">Bold: the nearest key (smallest L1). Lower L1 = closer to the key; the '
                   "p-value is the reference's non-central χ² test (small ⇒ closer than chance), uncalibrated.</p>")
        out.append("<h3>Finding and interpretation</h3>")
        for m in methods:
            r = a.methods[m]
            adj = min(1.0, r.verdict.nearest_p_value * r.verdict.keys_tested)
            out.append(f"<p><b>{esc(METHOD_TITLES.get(m, m))}: {esc(_verdict_text(r))}</b></p>"
                       f'<p>Finding: <span class="mono">{esc(r.verdict.finding())}</span>; Bonferroni-adjusted p = '
                       f"{_num(adj, '.3g')}</p>"
                       f'<p class="interp">Interpretation: {esc(r.verdict.interpretation())}</p>')
        fig = f"fig:{n}"
        try:
            self.resources[fig] = fourier_figure({m: a.methods[m] for m in methods}, run.keys, self.score_target)
        except (KeyError, ValueError) as exc:
            out.append(f'<p class="alert">The Fourier figure could not be drawn: {esc(exc)}</p>')
            return "".join(out)
        img = self.resources[fig]
        w = BODY_WIDTH_MM * CSS_PX_PER_MM
        h = w * img.height() / img.width()
        out.append(f'<h3>Fourier figure</h3><p><img src="{fig}" width="{int(w)}" height="{int(h)}"></p>'
                   f'<p class="small">Figure {n}. Per method: (a) log(1+|F(ẑ<sub>T</sub>)|) of the watermark channel '
                   "(full centred spectrum) with the outline of the nearest key's disc (white); (b) the same around "
                   "the disc, with the key's ring boundaries; (c) the nearest key's target as scored, |key|, on the colour scale of (b) "
                   "(grey: outside the mask); the colour scales leave out the DC coefficient (the latent's mean, shown "
                   "saturated when it is larger); (d) the real part of F(ẑ<sub>T</sub>) per ring (dot: median, bar: "
                   "25th–75th percentile) against the key's (median) value per ring. A watermarked z<sub>T</sub> shows (b) resembling (c) and "
                   "the dots following the key's line.</p>")
        return "".join(out)

    def _batch(self) -> str:
        run = self.run
        ids = list(run.keys.ids)
        out = ['<h2 style="page-break-before: always;">6. Batch results</h2>']
        labelled = [a for a in run.images if a.evidence.path in self.truth]
        usable = [a for a in labelled if self.truth[a.evidence.path] is None or self.truth[a.evidence.path] in ids]
        if usable:
            out.append(f"<p>Ground truth: {len(usable)} of {len(run.images)} image(s) carry a label in a "
                       "manifest.json beside them (a claim by whoever made the images; not verified by this "
                       "tool). Rows: claimed key; columns: verdict; bold: agreement. \u201cnone\u201d = un-watermarked / "
                       "no watermark detected.</p>")
            if len(run.images) > len(labelled):
                out.append(f"<p>{len(run.images) - len(labelled)} image(s) without a label are not counted in the "
                           "matrices.</p>")
            if len(labelled) > len(usable):
                out.append(f"<p>{len(labelled) - len(usable)} labelled image(s) name a key outside the key set "
                           "and are left out.</p>")
        else:
            out.append("<p>No ground truth (no manifest.json with labels beside the images): counts of verdicts "
                       "per key.</p>")
        for m in run.config.methods:
            res = [(a, a.methods[m]) for a in run.images if m in a.methods]
            if not res:
                continue
            out.append(f"<h3>{esc(METHOD_TITLES.get(m, m))}</h3>")
            if usable:
                pairs = [(self.truth[a.evidence.path], a.methods[m].verdict.predicted_key) for a in usable
                         if m in a.methods]
                cm = ConfusionMatrix.from_pairs(pairs, ids)
                labels = ["none" if lab is None else esc(lab) for lab in cm.labels]
                rows = [[f"<b>{labels[i]}</b>"] + [f"<b>{v}</b>" if i == j else str(v) for j, v in enumerate(row)]
                        for i, row in enumerate(cm.counts)]
                out.append(_grid(["claimed \\ verdict"] + labels, rows))
                watermarked = [(a, t) for a in usable for t in [self.truth[a.evidence.path]] if t is not None
                               and m in a.methods]
                nearest_ok = sum(1 for a, t in watermarked if a.methods[m].verdict.nearest_key == t)
                out.append(f"<p>Verdict accuracy {cm.correct}/{cm.total} = {_num(cm.accuracy, '.1%')}. Reference "
                           f"classifier (nearest key by L1, no \u201cnone\u201d outcome, as dec-inv Table 2 counts "
                           f"it): {nearest_ok}/{len(watermarked)} watermarked image(s) assigned their claimed key.</p>")
            else:
                counts = {k: 0 for k in ids}
                nearest = {k: 0 for k in ids}
                none = 0
                for _, r in res:
                    if r.verdict.predicted_key is None:
                        none += 1
                    else:
                        counts[r.verdict.predicted_key] = counts.get(r.verdict.predicted_key, 0) + 1
                    nearest[r.verdict.nearest_key] = nearest.get(r.verdict.nearest_key, 0) + 1
                rows = [["verdict"] + [str(counts[k]) for k in ids] + [str(none)],
                        ["nearest key (L1)"] + [str(nearest[k]) for k in ids] + ["—"]]
                out.append(_grid([""] + [esc(k) for k in ids] + ["none"], rows))
        return "".join(out)

    def _failures(self) -> str:
        sec = self._sec
        if not self.run.failures:
            return f"<h2>{sec}. Evidence that could not be analysed</h2><p>None.</p>"
        rows = [[esc(f.path), esc(f.message)] for f in self.run.failures]
        return (f"<h2>{sec}. Evidence that could not be analysed</h2>"
                + _grid(["File", "Reason"], rows, [40, 60]))

    def _limitations(self) -> str:
        run = self.run
        k = len(run.keys)
        fpr = run.config.fpr
        sec = self._sec + 1
        levels = "".join(
            f"<tr><td>{lvl:g}</td><td>{esc(src)}</td><td>{lvl / k:.3g}</td>"
            f"<td>{'<b>this report</b>' if math.isclose(lvl, fpr) else ''}</td></tr>" for lvl, src in LITERATURE_LEVELS)
        if not any(math.isclose(lvl, fpr) for lvl, _ in LITERATURE_LEVELS):
            levels = (f"<tr><td><b>{fpr:g}</b></td><td><b>used in this report</b></td><td>{fpr / k:.3g}</td>"
                      f"<td><b>this report</b></td></tr>") + levels
        return f"""
<h2 style="page-break-before: always;">{sec}. Limitations and interpretation</h2>
<p><b>What a match shows.</b> A positive verdict means that the initial noise recovered from the image under model
{esc(run.model_id)} sits closer to key K's Fourier pattern than chance would explain, at the stated p-value and
false-positive level. It is <b>not proof of origin</b>: published forgery attacks place a Tree-Ring pattern on images
the key holder never made — <i>imprinting</i> (optimising an image, with a proxy model, until its inverted noise carries
the pattern taken from one watermarked image) and <i>averaging</i> (estimating a content-agnostic key from many
watermarked images and adding it to others). A match is also conditional on the model: the same image inverted with
another model gives another z<sub>T</sub>.</p>
<p><b>What a non-match shows.</b> A negative verdict is <b>not proof of absence</b>. JPEG compression, cropping and
resizing, rotation, noise, blur and regeneration (re-encoding through a diffusion model) weaken or remove the ring, and
an image made by another model, another sampler or with a different prompt inverts to a noise that need not match
even if it was watermarked. The z<sub>0</sub> residual and the PSNR of D(z<sub>0</sub>) in each exhibit indicate how
degraded or out-of-model the evidence is: a poor fit weakens any negative. Rotation misaligns the rings entirely.</p>
<p><b>What the p-value is.</b> It is the public reference code's test: the masked Fourier coefficients of
ẑ<sub>T</sub> (real and imaginary parts, n = 2|mask|) are scaled by their own standard deviation and compared with
a non-central χ² distribution (df = n, non-centrality Σ key²/σ²); small values mean closer to the key than chance. It
is <b>uncalibrated</b>: its false-positive rate on un-watermarked images of this model has not been measured here, and
the papers' experiments use an empirical threshold instead. With K = {k} key(s) tested, each key's p-value is compared
with {fpr:g} / {k} = {fpr / k:.3g} (Bonferroni), which bounds the chance of any false match at {fpr:g} only if each
p-value is valid. The nearest key is the reference classifier's answer (smallest L1) and exists for every image,
watermarked or not.</p>
<p><b>Operating point.</b> This report uses a family-wise false-positive level of <b>{fpr:g}</b>. Operating points in
the literature:</p>
<table {_TABLE}><thead><tr><th width="14%">Level</th><th width="56%">Where it is used</th><th width="16%">Per-key threshold
(K = {k})</th><th width="14%"></th></tr></thead>{levels}</table>
<p><b>Preprocessing.</b> Images not at the model's size were resized (bicubic) and centre-cropped as recorded per
exhibit; that changes pixel values and may weaken a watermark. Alpha was dropped without compositing and EXIF
orientation recorded but not applied, because the watermark lives in the stored pixels.</p>
<p><b>Reproducibility.</b> All settings, software versions, the model's weight hashes and the evidence hashes are
listed, so the analysis can be repeated; the JSON twin holds the same numbers in machine-readable form. Timing and
memory figures describe this run on this device and vary between runs.</p>
"""

    def _signoff(self) -> str:
        sec = self._sec + 2
        return (f"<h2>{sec}. Integrity of this report</h2>"
                f"<p>The results in this report are also written, in machine-readable form, to "
                f"<b>{esc(self.json_name)}</b> beside this PDF (PDF file attachments are not supported by the PDF "
                f'writer used). SHA-256 of that file: <span class="mono">{esc(self.json_sha256)}</span>.</p>'
                f"<p>Evidence files were re-hashed when this report was generated ({esc(self.generated_utc)}); "
                "the result is stated per exhibit.</p>"
                "<p><br>Examiner signature: ______________________________ &nbsp;&nbsp; Date: ________________</p>")


# ---------------------------------------------------------------------------------------------------
# Qt: application, pagination, header and footer


def ensure_qt_app():
    """The running QGuiApplication, or a new QApplication on the offscreen platform (headless CLI)."""
    global _qt_app
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtGui import QGuiApplication

    app = QCoreApplication.instance()
    if app is None:
        argv = [sys.argv[0] if sys.argv and sys.argv[0] else "treering-forensics"]
        if not os.environ.get("QT_QPA_PLATFORM"):
            argv += ["-platform", "offscreen"]
        try:    # a QApplication, so that widgets made later in the same process (tests, GUI) still work
            from PySide6.QtWidgets import QApplication as App
        except ImportError:
            App = QGuiApplication
        _qt_app = app = App(argv)
    elif not isinstance(app, QGuiApplication):
        raise RuntimeError("a QCoreApplication is running: the PDF report needs a QGuiApplication (fonts, images)")
    return app


def _image_handler(images: dict[str, Any]):
    """Draws <img> objects straight from QImages: no QPixmap (safe outside the GUI thread), and the PDF gets
    the image at its full resolution, losslessly."""
    from PySide6.QtCore import QSizeF
    from PySide6.QtGui import QPyTextObject

    class ImageHandler(QPyTextObject):
        def intrinsicSize(self, doc, pos, fmt):
            f = fmt.toImageFormat()
            img = images.get(f.name())
            w, h = f.width(), f.height()
            if img is not None and (w <= 0 or h <= 0):
                w, h = float(img.width()), float(img.height())
            # lengths in the document are 96-dpi pixels; the layout works in device units
            scale = doc.documentLayout().paintDevice().logicalDpiY() / 96.0 if doc.documentLayout().paintDevice() else 1.0
            return QSizeF(w * scale, h * scale)

        def drawObject(self, painter, rect, doc, pos, fmt):
            img = images.get(fmt.toImageFormat().name())
            if img is not None:
                painter.drawImage(rect, img)

    return ImageHandler()


def _keep_headings_with_next(doc, page_height: float, bottom_margin: float, rounds: int = 8) -> int:
    """QTextDocument has no "keep with next": a heading that ends a page while the block it introduces
    starts (or, if short, ends) on the next one gets a page break before it.

    Each pass measures a complete layout and moves the first such heading after every hard page break (the
    layout after a hard break only shifts by whole pages when something before it moves, so those are
    independent), then lays the document out again. Returns how many headings were moved."""
    from PySide6.QtGui import QTextCursor, QTextFormat

    always = QTextFormat.PageBreakFlag.PageBreak_AlwaysBefore
    layout = doc.documentLayout()

    def page_of(y: float) -> int:                  # a y in the bottom margin belongs to the next page
        return int((y + bottom_margin) // page_height)

    moved = 0
    for _ in range(rounds):
        fixes = []
        segment_fixed = False
        block = doc.begin()
        while block.isValid():
            nxt = block.next()
            fmt = block.blockFormat()
            if fmt.pageBreakPolicy() & always:
                segment_fixed = False
            if not segment_fixed and fmt.headingLevel() > 0 and nxt.isValid() and not (fmt.pageBreakPolicy() & always):
                here, there = layout.blockBoundingRect(block), layout.blockBoundingRect(nxt)
                page_here = page_of(here.top())
                split = page_of(there.bottom()) > page_here and there.height() < page_height / 3
                if page_of(there.top()) > page_here or split:
                    fixes.append(block)
                    segment_fixed = True
            block = nxt
        if not fixes:
            break
        for block in fixes:
            fmt = block.blockFormat()
            fmt.setPageBreakPolicy(fmt.pageBreakPolicy() | always)
            QTextCursor(block).setBlockFormat(fmt)
        doc.markContentsDirty(0, doc.characterCount())   # lay everything out again before measuring
        layout.documentSize()
        moved += len(fixes)
    return moved


def _render_pdf(path: Path, body_html: str, resources: dict[str, Any], header_left: str, footer_left: str,
                title: str, creator: str, author: str = "") -> int:
    """Lay out the HTML on A4 pages and paint them with a header and "page n of N" on every page."""
    from PySide6.QtCore import QMarginsF, QRectF, QSizeF, Qt, QUrl
    from PySide6.QtGui import (QColor, QFont, QFontMetricsF, QPageLayout, QPagedPaintDevice, QPageSize, QPainter,
                               QPdfWriter, QPen, QTextDocument, QTextFormat, QTextOption)

    writer = QPdfWriter(str(path))
    writer.setResolution(RESOLUTION_DPI)
    writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
    writer.setPageMargins(QMarginsF(0, 0, 0, 0), QPageLayout.Unit.Millimeter)
    writer.setTitle(title)
    writer.setCreator(creator)
    writer.setAuthor(author)
    writer.setPdfVersion(QPagedPaintDevice.PdfVersion.PdfVersion_A1b)   # PDF/A-1b: archival, fonts embedded
    dev_per_mm = RESOLUTION_DPI / 25.4
    painter = QPainter()
    if not painter.begin(writer):
        raise OSError(f"cannot write the PDF {path}")
    ok = False
    try:
        painter.setRenderHint(QPainter.RenderHint.LosslessImageRendering)   # figures and thumbnails: no JPEG
        page = writer.pageLayout().fullRectPixels(RESOLUTION_DPI)
        pw, ph = float(page.width()), float(page.height())
        doc = QTextDocument()
        doc.documentLayout().setPaintDevice(writer)
        font = QFont(FONT)
        font.setPointSizeF(9)
        font.setStyleStrategy(QFont.StyleStrategy.PreferNoShaping)   # no "ﬁ" ligatures: text must copy and search as typed
        doc.setDefaultFont(font)
        doc.setDefaultStyleSheet(_CSS)
        opt = QTextOption()
        opt.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)   # long paths and hashes never overflow
        doc.setDefaultTextOption(opt)
        handler = _image_handler(resources)
        doc.documentLayout().registerHandler(QTextFormat.ObjectTypes.ImageObject, handler)
        for name, image in resources.items():
            doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(name), image)
        doc.setHtml(body_html)
        doc.setPageSize(QSizeF(pw, ph))
        fmt = doc.rootFrame().frameFormat()
        fmt.setLeftMargin(PAGE_MARGINS_MM["left"] * CSS_PX_PER_MM)
        fmt.setRightMargin(PAGE_MARGINS_MM["right"] * CSS_PX_PER_MM)
        fmt.setTopMargin(PAGE_MARGINS_MM["top"] * CSS_PX_PER_MM)
        fmt.setBottomMargin(PAGE_MARGINS_MM["bottom"] * CSS_PX_PER_MM)
        doc.rootFrame().setFrameFormat(fmt)
        _keep_headings_with_next(doc, ph, PAGE_MARGINS_MM["bottom"] * dev_per_mm)
        pages = doc.pageCount()
        hfont = QFont(FONT)
        hfont.setPointSizeF(8)
        hfont.setStyleStrategy(QFont.StyleStrategy.PreferNoShaping)
        fm = QFontMetricsF(hfont, writer)
        left, right = PAGE_MARGINS_MM["left"] * dev_per_mm, pw - PAGE_MARGINS_MM["right"] * dev_per_mm
        for i in range(pages):
            if i and not writer.newPage():
                raise OSError(f"cannot add a page to the PDF {path}")
            painter.save()
            painter.translate(0, -i * ph)
            doc.drawContents(painter, QRectF(0, i * ph, pw, ph))
            painter.restore()
            painter.setFont(hfont)
            painter.setPen(QColor("#333333"))
            page_text = f"page {i + 1} of {pages}"
            pt_w = fm.horizontalAdvance(page_text)
            hy = 11 * dev_per_mm
            head = fm.elidedText(header_left, Qt.TextElideMode.ElideRight, right - left - pt_w - 8 * dev_per_mm)
            painter.drawText(QRectF(left, hy, right - left, fm.height() * 1.2), Qt.AlignmentFlag.AlignLeft, head)
            painter.drawText(QRectF(left, hy, right - left, fm.height() * 1.2), Qt.AlignmentFlag.AlignRight, page_text)
            painter.setPen(QPen(QColor("#9aa3b0"), 0.25 * dev_per_mm))
            painter.drawLine(int(left), int(hy + fm.height() * 1.35), int(right), int(hy + fm.height() * 1.35))
            fy = ph - 13 * dev_per_mm
            painter.drawLine(int(left), int(fy), int(right), int(fy))
            painter.setPen(QColor("#333333"))
            init = "Examiner's initials: ______"
            iw = fm.horizontalAdvance(init)
            foot = fm.elidedText(footer_left, Qt.TextElideMode.ElideRight, right - left - iw - 8 * dev_per_mm)
            painter.drawText(QRectF(left, fy + 1.5 * dev_per_mm, right - left, fm.height() * 1.2),
                             Qt.AlignmentFlag.AlignLeft, foot)
            painter.drawText(QRectF(left, fy + 1.5 * dev_per_mm, right - left, fm.height() * 1.2),
                             Qt.AlignmentFlag.AlignRight, init)
        ok = True
    finally:
        ended = painter.end()
    if ok and not ended:
        raise OSError(f"the PDF {path} could not be completed")
    return pages


# ---------------------------------------------------------------------------------------------------
# The entry point


def twin_path(pdf_path: str | os.PathLike[str]) -> Path:
    p = Path(pdf_path)
    if p.suffix.lower() == ".json":
        raise ValueError(f"{p.name}: the report is a PDF; its JSON twin is written beside it as <name>.json")
    return p.with_suffix(".json")


def report_json(run: AnalysisRun, info: ReportInfo, generated_utc: str, commit: str, weights: dict[str, str],
                weights_note: str, checks: list[Reverification], pdf_name: str,
                truth: dict[str, str | None] | None = None) -> dict:
    return _json_safe({
        "format": REPORT_FORMAT, "version": REPORT_VERSION,
        "report": {"case_id": info.case_id, "examiner": info.examiner, "notes": info.notes,
                   "generated_utc": generated_utc, "pdf": pdf_name,
                   "tool": {"name": "treering-forensics", "version": run.software.get("treering-forensics"),
                            "git_commit": commit}},
        "model_weights": {"sha256": weights, "note": weights_note},
        "reverification": [c.to_json_dict() for c in checks],
        "manifest_labels": truth or {},
        "run": run_to_json(run),
    })


def write_report(run: AnalysisRun, path: str | os.PathLike[str], info: ReportInfo = ReportInfo(),
                 model=None) -> Path:
    """Write the PDF report to `path` and its JSON twin to `path` with the suffix .json; return the PDF's
    path. `model` (the LoadedModel of the run), when given, lets the weight hashes come from its cache.
    Raises OSError when a file cannot be written; then neither file is left behind."""
    pdf = Path(path)
    twin = twin_path(pdf)
    ensure_qt_app()
    generated = utc_now()
    checks = [reverify(a.evidence.path, a.evidence.sha256) for a in run.images]
    weights, weights_note = recheck_weight_hashes(run.model_path, run.weight_sha256)
    commit = git_commit()
    truth = manifest_labels([a.evidence.path for a in run.images])
    twin_data = report_json(run, info, generated, commit, weights, weights_note, checks, pdf.name, truth)
    twin_bytes = (json.dumps(twin_data, indent=2, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")
    twin_sha = hashlib.sha256(twin_bytes).hexdigest()
    rep = _Report(run=run, info=info, generated_utc=generated, commit=commit, weights=weights,
                  weights_note=weights_note, checks=checks, truth=truth, json_name=twin.name, json_sha256=twin_sha)
    body, resources = rep.build()
    version = run.software.get("treering-forensics", "unknown")
    short = commit[:12] if commit != "unknown" else "unknown"
    header = _visible(f"Case {rep.case_label} — Tree-Ring watermark examination report")
    footer = _visible(f"treering-forensics {version} (commit {short}) · generated {generated}")
    with atomic_path(pdf) as temp:
        _render_pdf(temp, body, resources, header, footer,
                    title=_visible(f"Tree-Ring watermark examination — case {rep.case_label}"),
                    creator=f"treering-forensics {version}", author=_visible(info.examiner))
        if temp.stat().st_size == 0:
            raise OSError(f"the PDF {pdf} came out empty")
        write_bytes_atomic(twin, twin_bytes)
    return pdf
