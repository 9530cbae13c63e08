"""How the report is laid out and written: QTextDocument lays the sections' HTML out on A4 pages and
QPdfWriter paints them with a header and "page n of N" on every page; figures and thumbnails come from
`forensics_app.figures`. The only module of the report that imports Qt.

No widget and no QPixmap is used (figures and thumbnails are QImages drawn by a custom text-object handler),
so the report may be written in a QThread worker of the desktop application as well as in its GUI thread,
and headless (a QApplication on the "offscreen" platform is created when there is none). The PDF is
PDF/A-1b with its fonts embedded; ligatures are off so that words copy and search as typed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QMarginsF, QRectF, QSizeF, Qt, QUrl
from PySide6.QtGui import (QColor, QFont, QFontMetricsF, QGuiApplication, QImage, QPageLayout, QPagedPaintDevice,
                           QPageSize, QPainter, QPdfWriter, QPen, QPyTextObject, QTextCursor, QTextDocument,
                           QTextFormat, QTextOption)

from forensics_app.figures import fourier_figure, thumbnail_image
from forensics_app.report.page import CSS_PX_PER_MM, FONT, MONO, PAGE_MARGINS_MM

RESOLUTION_DPI = 300                  # QPdfWriter device units; text stays vector, figures are raster

_qt_app = None  # the QGuiApplication this module created, kept alive for the process


CSS = f"""
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


def ensure_qt_app():
    """The running QGuiApplication, or a new QApplication on the offscreen platform (headless CLI)."""
    global _qt_app
    app = QCoreApplication.instance()
    if app is None:
        argv = [sys.argv[0] if sys.argv and sys.argv[0] else "treering-forensics"]
        if not os.environ.get("QT_QPA_PLATFORM"):
            argv += ["-platform", "offscreen"]
        try:    # a QApplication, so that widgets made later in the same process (tests, GUI) still work
            from PySide6.QtWidgets import QApplication as App
        except ImportError:    # PySide6 without QtWidgets: fonts and images need only a QGuiApplication
            App = QGuiApplication
        _qt_app = app = App(argv)
    elif not isinstance(app, QGuiApplication):
        raise RuntimeError("a QCoreApplication is running: the PDF report needs a QGuiApplication (fonts, images)")
    return app


def _image_handler(images: dict[str, Any]):
    """Draws <img> objects straight from QImages: no QPixmap (safe outside the GUI thread), and the PDF gets
    the image at its full resolution, losslessly."""
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
                # a tall line (a figure) that does not fit is pushed to the next page inside its block, whose
                # top stays on this one: where the block's first line ends counts
                lines = nxt.layout()
                first = lines.lineAt(0) if lines is not None and lines.lineCount() else None
                pushed = first is not None and page_of(there.top() + first.y() + first.height() - 1) > page_here
                if page_of(there.top()) > page_here or split or pushed:
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


def render_pdf(path: Path, body_html: str, resources: dict[str, Any], header_left: str, footer_left: str,
                title: str, creator: str, author: str = "") -> int:
    """Lay out the HTML on A4 pages and paint them with a header and "page n of N" on every page."""

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
        doc.setDefaultStyleSheet(CSS)
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


class QtFigures:
    """The sections' figures as QImages, drawn by the figures module shared with the window."""

    def __init__(self, method_titles: dict[str, str]) -> None:
        self._titles = method_titles

    def thumbnail(self, pixels: np.ndarray) -> QImage:
        return thumbnail_image(pixels)

    def fourier(self, results: dict, keys, score_target: str, width_px: int = 1800) -> QImage:
        return fourier_figure(results, keys, score_target, width_px, method_titles=self._titles, font_family=FONT)
