"""The result of one image: the evidence, the recovered z_T's Fourier magnitude with the key's mask and
rings, every key's ring pattern, |F(z_T) − key| inside the mask, and the verdict — the finding
(numbers) in one box, its interpretation in another."""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFrame, QGroupBox,
                               QHBoxLayout, QHeaderView, QLabel, QScrollArea, QSizePolicy, QStackedWidget,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from forensics_app.scheme_arrays import evidence_view, key_for_view, watermark_channel
from forensics_app.figure_arrays import (INFERNO, VIRIDIS, KeyGeometry, key_difference, key_pattern_log_magnitude,
                                         pixels_to_rgb8, robust_range, spectrum_log_magnitude)
from forensics_app.gui.restored_view import RestoredResultBox
from forensics_app.gui.search_view import SearchResultBox
from forensics_app.gui.spectrum_image import ArrayView

METHOD_ORDER = ("encoder", "gradient-free", "gradient-based")


def verdict_headline(result) -> str:
    """A method result's headline: its conclusion (detection apart from identification, engine.verdicts)."""
    c = getattr(result, "conclusion", None)
    if c is not None:
        return c.headline()
    v = result.verdict
    return f"No watermark detected at FPR {v.fpr:g}" if v.predicted_key is None else "Conclusion not recorded"


def format_p(p: float) -> str:
    return f"{p:.3g}"


def format_memory(peak: int | None, device: str) -> str:
    if peak is None:
        return "n/a on CPU" if device.lower().startswith("cpu") or not device else "n/a"
    return f"{peak / 2**30:.2f} GiB" if peak >= 2**30 else f"{peak / 2**20:.0f} MiB"


def mono_font() -> QFont:
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


class Panel(QWidget):
    """A titled picture with a caption underneath."""

    def __init__(self, title: str, minimum: int = 160, parent: QWidget | None = None, hint: int = 220,
                 colour_bar: bool = True) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(2)
        self.title = QLabel(title)
        f = self.title.font()
        f.setBold(True)
        self.title.setFont(f)
        self.title.setWordWrap(True)
        self.view = ArrayView(minimum=minimum, hint=hint, colour_bar=colour_bar)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        lay.addWidget(self.title)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.caption)


class ResultView(QWidget):
    """Per-image result. `show_item(item)` with an EvidenceItem; `set_run_context(keys, device)` first."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._keys = None
        self._device = ""
        self._item = None
        self.loaded_key_sets = lambda: ()     # the key sets loaded in the window (set by the main window)
        self._target = None                    # the run's score target (AnalysisConfig.score_target)
        self._spectra: dict[int, np.ndarray] = {}
        self._patterns: dict[tuple, np.ndarray] = {}
        self._updating = False

        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        self.header = QLabel()
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.header)

        controls = QHBoxLayout()
        self.method_combo = QComboBox()
        self.channel_combo = QComboBox()
        self.key_combo = QComboBox()
        for combo in (self.method_combo, self.channel_combo, self.key_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.zoom_check = QCheckBox("Zoom to mask")
        self.rings_check = QCheckBox("Mask and rings")
        self.rings_check.setChecked(True)
        for label, w in (("Method:", self.method_combo), ("Channel:", self.channel_combo), ("Key:", self.key_combo)):
            controls.addWidget(QLabel(label))
            controls.addWidget(w)
        controls.addWidget(self.zoom_check)
        controls.addWidget(self.rings_check)
        controls.addStretch(1)
        outer.addLayout(controls)

        self.stack = QStackedWidget()
        outer.addWidget(self.stack, 1)
        self.placeholder = QLabel("Drop images or folders onto the window (or File ▸ Open…), then Run (Ctrl+R).")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.stack.addWidget(self.placeholder)

        page = QWidget()
        self.stack.addWidget(page)
        grid = QVBoxLayout(page)
        grid.setContentsMargins(0, 0, 0, 0)

        # pictures: evidence | |F(z_T)| | every key's pattern (a column) | |F(z_T) − key|
        pictures = QHBoxLayout()
        self.evidence_panel = Panel("Evidence (model input)", minimum=120)
        self.spectrum_panel = Panel("|F(z_T)|, log scale")
        self.diff_panel = Panel("|F(z_T) − key| in the mask")
        self.keys_box = QGroupBox("Keys as scored")
        self.keys_box.setToolTip("Each key's pattern inside its mask, as the engine scores against it, on the "
                                 "same colour scale as |F(z_T)|. Click one to compare it.")
        kb = QVBoxLayout(self.keys_box)
        kb.setContentsMargins(2, 2, 2, 2)
        keys_scroll = QScrollArea()
        keys_scroll.setWidgetResizable(True)
        keys_scroll.setFrameShape(QFrame.Shape.NoFrame)
        keys_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        keys_content = QWidget()
        keys_scroll.setWidget(keys_content)
        self.keys_layout = QVBoxLayout(keys_content)
        self.keys_layout.setContentsMargins(0, 0, 0, 0)
        kb.addWidget(keys_scroll)
        self.keys_box.setMinimumWidth(150)
        self.keys_box.setMaximumWidth(210)
        self.key_panels: list[Panel] = []
        pictures.addWidget(self.evidence_panel, 2)
        pictures.addWidget(self.spectrum_panel, 3)
        pictures.addWidget(self.keys_box, 0)
        pictures.addWidget(self.diff_panel, 3)
        grid.addLayout(pictures, 1)

        verdict = QHBoxLayout()
        self.finding_box = QGroupBox("Finding — measurements")
        fl = QVBoxLayout(self.finding_box)
        self.score_table = QTableWidget(0, 4)
        self.score_table.setHorizontalHeaderLabels(["Key", "L1 distance", "p-value", "analytic p ≤ FPR/K"])
        # a measurement column, not a second verdict: the conclusion may use calibrated tests and differ
        self.score_table.horizontalHeaderItem(3).setToolTip(
            "Whether this key's own analytic p-value is at most FPR / K (Bonferroni over the K keys). A measurement, "
            "not the conclusion: the conclusion below uses the calibrated tests where a calibration applies, and "
            "names a key only when every other key is excluded.")
        self.score_table.verticalHeader().setVisible(False)
        self.score_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.score_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.score_table.setSizeAdjustPolicy(QTableWidget.SizeAdjustPolicy.AdjustToContents)
        self.score_table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        fl.addWidget(self.score_table)
        self.finding_label = QLabel()
        self.finding_label.setFont(mono_font())
        self.finding_label.setWordWrap(True)
        self.finding_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        fl.addWidget(self.finding_label)
        self.quality_label = QLabel()
        self.quality_label.setWordWrap(True)
        self.quality_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        fl.addWidget(self.quality_label)
        fl.addStretch(1)

        self.interpretation_box = QGroupBox("Interpretation — what the finding may and may not claim")
        il = QVBoxLayout(self.interpretation_box)
        self.headline = QLabel()
        hf = self.headline.font()
        hf.setBold(True)
        hf.setPointSizeF(hf.pointSizeF() * 1.35)
        self.headline.setFont(hf)
        self.headline.setWordWrap(True)
        il.addWidget(self.headline)
        self.interpretation_label = QLabel()
        self.interpretation_label.setWordWrap(True)
        f = self.interpretation_label.font()
        f.setItalic(True)
        self.interpretation_label.setFont(f)
        self.interpretation_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        il.addWidget(self.interpretation_label)
        self.caveat_label = QLabel()
        self.caveat_label.setWordWrap(True)
        self.caveat_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        il.addWidget(self.caveat_label)
        il.addStretch(1)
        verdict.addWidget(self.finding_box, 1, Qt.AlignmentFlag.AlignTop)     # side by side from the top
        verdict.addWidget(self.interpretation_box, 1, Qt.AlignmentFlag.AlignTop)
        for box in (self.finding_box, self.interpretation_box):
            box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        # in a scroll area: when the window is too low for a long key list, the finding scrolls instead of being
        # drawn over the score table
        verdict_page = QWidget()
        verdict_page.setLayout(verdict)
        verdict.setContentsMargins(0, 0, 0, 0)
        self.verdict_scroll = QScrollArea()
        self.verdict_scroll.setWidgetResizable(True)
        self.verdict_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.verdict_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.verdict_scroll.setWidget(verdict_page)
        grid.addWidget(self.verdict_scroll, 0)
        self.search_box = SearchResultBox()        # under the exhibit's conclusion, shown when a search ran
        grid.addWidget(self.search_box, 0)
        self.restored_box = RestoredResultBox()    # under it, shown when a restored reading was made
        grid.addWidget(self.restored_box, 0)
        for strip in (self.search_box, self.restored_box):      # an opened strip takes room from the finding
            strip.details_button.toggled.connect(lambda _on: QTimer.singleShot(0, self._fit_verdict))

        self.method_combo.currentIndexChanged.connect(self._on_method_changed)
        self.channel_combo.currentIndexChanged.connect(self._redraw)
        self.key_combo.currentIndexChanged.connect(self._redraw)
        self.zoom_check.toggled.connect(self._redraw)
        self.rings_check.toggled.connect(self._redraw)
        self._set_controls_enabled(False)

    # -- context -----------------------------------------------------------------------------------
    def set_run_context(self, keys, device: str) -> None:
        self._keys, self._device = keys, device
        self._spectra.clear()
        self._patterns.clear()
        for p in self.key_panels:
            p.setParent(None)
            p.deleteLater()
        self.key_panels = []
        tree_ring = keys is not None and getattr(keys, "scheme", "tree-ring") == "tree-ring"
        self.keys_box.setVisible(tree_ring or keys is None)
        if not tree_ring:
            return                  # other schemes: no pattern thumbnails (RingID has up to 2048 keys)
        for k in keys.keys:
            panel = Panel(k.id, minimum=56, hint=90, colour_bar=False)
            panel.caption.setWordWrap(False)
            panel.view.clicked.connect(lambda kid=k.id: self._select_key(kid))
            panel.view.setCursor(Qt.CursorShape.PointingHandCursor)
            self.keys_layout.addWidget(panel, 1)
            self.key_panels.append(panel)

    def set_device(self, device: str) -> None:
        self._device = device

    def set_config(self, config) -> None:
        self._target = getattr(config, "score_target", None)
        self._patterns.clear()

    def _set_controls_enabled(self, on: bool) -> None:
        for w in (self.method_combo, self.channel_combo, self.key_combo, self.zoom_check, self.rings_check):
            w.setEnabled(on)

    # -- showing an item ---------------------------------------------------------------------------
    def show_item(self, item) -> None:
        self._item = item
        if item is None:
            self.header.setText("")
            self.placeholder.setText("Drop images or folders onto the window (or File ▸ Open…), then Run (Ctrl+R).")
            self.stack.setCurrentIndex(0)
            self._set_controls_enabled(False)
            return
        self.header.setText(self._header_html(item))
        if item.analysis is None:
            if item.failure or item.preview_error:
                msg = item.failure or item.preview_error
                self.placeholder.setText(f"This file could not be analysed:\n\n{msg}\n\nThe other files are not affected.")
            elif item.status.value == "cancelled":
                self.placeholder.setText("The run was cancelled before this image finished.")
            elif item.status.value in ("running", "reading"):
                self.placeholder.setText(f"Analysing… {item.detail}")
            else:
                self.placeholder.setText("Not analysed yet: press Run (Ctrl+R).")
            self.stack.setCurrentIndex(0)
            self._set_controls_enabled(False)
            return
        self.stack.setCurrentIndex(1)
        self._set_controls_enabled(True)
        self._updating = True
        previous = self.method_combo.currentText()
        self.method_combo.clear()
        methods = [m for m in METHOD_ORDER if m in item.analysis.methods]
        methods += [m for m in item.analysis.methods if m not in methods]
        self.method_combo.addItems(methods)
        if previous in methods:
            self.method_combo.setCurrentText(previous)
        elif "gradient-free" in methods:
            self.method_combo.setCurrentText("gradient-free")
        self._updating = False
        self._on_method_changed()

    def _header_html(self, item) -> str:
        parts = [f"<b>{html.escape(item.name)}</b>"]
        if item.sha256:
            parts.append(f"SHA-256 <span style='font-family:monospace'>{html.escape(item.sha256)}</span>")
        line2 = []
        if item.info:
            line2.append(html.escape(item.info))
        if item.analysis is not None:
            line2.append("preprocessing: " + html.escape(item.analysis.evidence.preprocessing.describe()))
            if item.analysis.evidence.warnings:
                line2.append("warnings: " + html.escape("; ".join(item.analysis.evidence.warnings)))
        return " · ".join(parts) + ("<br>" + " · ".join(line2) if line2 else "")

    def current_result(self):
        if self._item is None or self._item.analysis is None:
            return None
        return self._item.analysis.methods.get(self.method_combo.currentText())

    def current_key(self):
        if self._keys is None or not self.key_combo.count():
            return None
        try:
            return self._keys[self.key_combo.currentData() or self.key_combo.currentText()]
        except KeyError:
            return None

    def _on_method_changed(self) -> None:
        if self._updating:
            return
        r = self.current_result()
        if r is None:
            return
        self._updating = True
        self.key_combo.clear()
        for s in r.scores:
            self.key_combo.addItem(s.key_id, s.key_id)
        c = r.conclusion
        default = (c.key if c is not None and c.key else None) or r.verdict.nearest_key
        self.key_combo.setCurrentIndex(max(0, self.key_combo.findData(default)))
        key = self.current_key()
        key_channel = watermark_channel(self.view_key(key)[0] or key) if key is not None else None
        c = r.z_t.shape[0]
        prev_channel = self.channel_combo.currentIndex()
        self.channel_combo.clear()
        for ch in range(c):
            self.channel_combo.addItem(f"{ch} (watermark)" if ch == key_channel else str(ch), ch)
        self.channel_combo.setCurrentIndex(key_channel if key_channel is not None else max(0, prev_channel))
        self._updating = False
        self._redraw()

    def _select_key(self, key_id: str) -> None:
        i = self.key_combo.findData(key_id)
        if i >= 0:
            self.key_combo.setCurrentIndex(i)

    def _log_spectrum(self, r) -> np.ndarray:
        cached = self._spectra.get(id(r))
        if cached is None:
            cached = spectrum_log_magnitude(r.z_t)
            self._spectra = {id(r): cached}          # only the one on screen
        return cached

    def _redraw(self) -> None:
        if self._updating:
            return
        r = self.current_result()
        item = self._item
        if r is None or item is None:
            return
        key = self.current_key()
        ch = self.channel_combo.currentData()
        ch = 0 if ch is None else int(ch)
        logmag = self._log_spectrum(r)
        rings = self.rings_check.isChecked()

        self.evidence_panel.view.set_rgb(pixels_to_rgb8(item.analysis.evidence.pixels))
        e = item.analysis.evidence
        self.evidence_panel.caption.setText(
            f"{e.pixels.shape[2]}×{e.pixels.shape[1]} as analysed (stored {e.width}×{e.height} {e.format})")

        if key is not None and getattr(key, "scheme", "tree-ring") != "tree-ring":
            self._redraw_other_scheme(r, key, logmag, ch)
            return
        geometry = KeyGeometry.of(key) if key is not None else None
        crop = geometry.crop() if (geometry is not None and self.zoom_check.isChecked()) else None
        lo, hi = robust_range(logmag[ch])
        self.spectrum_panel.view.set_scalar(logmag[ch], lo, hi, VIRIDIS, "log(1+|F|)", geometry, rings,
                                            dashed=geometry is not None and ch != geometry.channel, crop=crop)
        note = ""
        if geometry is not None and ch != geometry.channel:
            note = f" The key lives on channel {geometry.channel}; its rings are drawn dashed for reference."
        self.spectrum_panel.title.setText(f"|F(z_T)|, log scale — channel {ch} ({r.method})")
        self.spectrum_panel.caption.setText(
            f"log(1 + |fftshift(fft2(z_T))|); colour range {lo:.2f}–{hi:.2f} (1st–99.5th percentile)."
            + (f" Circles: key {key.id}'s mask (radius {key.radius}) and rings." if key is not None and rings else "")
            + note)

        if key is None:
            self.diff_panel.view.clear("no key")
            return
        kch_lo, kch_hi = robust_range(logmag[key.channel])
        diff = key_difference(r.z_t, key, self._target)
        dmax = float(np.nanmax(diff)) if np.isfinite(diff).any() else 1.0
        self.diff_panel.view.set_scalar(diff, 0.0, dmax, INFERNO, "|F − key|", geometry, rings,
                                        crop=geometry.crop())
        self.diff_panel.title.setText(f"|F(z_T) − {key.id}| in the mask (channel {key.channel})")
        self.diff_panel.caption.setText(
            f"Mean over the mask = {np.nanmean(diff):.3f}, the L1 distance to {key.id}. "
            f"Dark = close to the key. Range 0–{dmax:.3g}.")

        scores = {s.key_id: s for s in r.scores}
        for panel, k in zip(self.key_panels, self._keys.keys):
            pattern = self._patterns.get((k.id, self._target))
            if pattern is None:
                pattern = self._patterns[(k.id, self._target)] = key_pattern_log_magnitude(k, self._target)
            klo, khi = robust_range(logmag[k.channel])
            vals = pattern[np.isfinite(pattern)]
            if vals.size:
                klo, khi = min(klo, float(vals.min())), max(khi, float(vals.max()))
            g = KeyGeometry.of(k)
            panel.view.set_scalar(pattern, klo, khi, VIRIDIS, "log(1+|key|)", g, rings, crop=g.crop())
            panel.view.set_selected(k.id == key.id)
            s = scores.get(k.id)
            tag = ""
            if r.conclusion is not None and r.conclusion.key == k.id:
                tag = " — identified"
            elif r.conclusion is not None and r.conclusion.outcome == "inconclusive" and k.id in r.conclusion.candidates:
                tag = " — candidate"
            elif r.verdict.nearest_key == k.id:
                tag = " — nearest"
            panel.title.setText(f"{k.id}{tag}")
            panel.caption.setText(f"L1 {s.l1:.2f} · p {s.p_value:.2g}" if s else "not scored")
            panel.setToolTip(f"{k.id}: L1 {s.l1:.4f}, p = {format_p(s.p_value)}" if s else k.id)
        self._fill_verdict(r)

    def view_key(self, key):
        """(key, "") with what the scheme's evidence view needs, or (None, why not): a reopened case keeps the
        keys' public records only (`key_for_view`)."""
        return key_for_view(key, self.loaded_key_sets())

    def refresh(self) -> None:
        """Redraw the image shown (e.g. a key vault was imported that a reopened case's evidence view needs)."""
        self._redraw()

    def _redraw_other_scheme(self, r, key, logmag, ch: int) -> None:
        """Gaussian Shading, RingID, PRC: the spectrum without ring outlines, and the scheme's own evidence view."""
        self._fill_verdict(r)               # first: the conclusion stands whether or not the view can be drawn
        lo, hi = robust_range(logmag[ch])
        self.spectrum_panel.view.set_scalar(logmag[ch], lo, hi, VIRIDIS, "log(1+|F|)", None, False)
        self.spectrum_panel.title.setText(f"|F(z_T)|, log scale — channel {ch} ({r.method})")
        self.spectrum_panel.caption.setText(f"log(1 + |fftshift(fft2(z_T))|); colour range {lo:.2f}–{hi:.2f}.")
        full, why = self.view_key(key)
        if full is None:
            self.diff_panel.view.clear("key not loaded")
            self.diff_panel.title.setText(f"{key.id}: the scheme's evidence view")
            self.diff_panel.caption.setText(why)
            return
        try:
            view = evidence_view(r.z_t, full)
        except ValueError as exc:
            self.diff_panel.view.clear(str(exc))
            self.diff_panel.caption.setText(str(exc))
        else:
            self.diff_panel.view.set_scalar(view.values, view.low, view.high, INFERNO, view.label, None, False)
            self.diff_panel.title.setText(view.title)
            self.diff_panel.caption.setText(view.caption)

    def _fit_verdict(self) -> None:
        """The finding and interpretation get the height they need, up to half the view (the pictures give way);
        past that they scroll."""
        page = self.verdict_scroll.widget()
        page.adjustSize()
        width = self.verdict_scroll.viewport().width()
        need = page.heightForWidth(width) if page.hasHeightForWidth() else page.sizeHint().height()
        limit = max(200, self.height() // 2)
        strips = sum(b.sizeHint().height() for b in (self.search_box, self.restored_box) if not b.isHidden())
        if strips:              # the strips under it take their share, or the layout would draw them over it
            limit = max(120, limit - strips)
        self.verdict_scroll.setMinimumHeight(min(max(need, 0), limit))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit_verdict()

    def _fill_verdict(self, r) -> None:
        v = r.verdict
        own = any(hasattr(s, "scheme") for s in r.scores)      # another scheme's distance: not a ring L1
        self.score_table.horizontalHeaderItem(1).setText("Distance" if own else "L1 distance")
        self.score_table.setRowCount(len(r.scores))
        rows_shown = min(len(r.scores), 6)
        self.score_table.setFixedHeight(self.score_table.horizontalHeader().sizeHint().height()
                                        + rows_shown * self.score_table.verticalHeader().defaultSectionSize()
                                        + 2 * self.score_table.frameWidth())
        for row, s in enumerate(r.scores):
            cells = [s.key_id, f"{s.l1:.4f}", format_p(s.p_value), "yes" if s.p_value <= v.corrected_threshold else "no"]
            for col, text in enumerate(cells):
                it = QTableWidgetItem(text)
                it.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if s.key_id == v.nearest_key:
                    f = it.font()
                    f.setBold(True)
                    it.setFont(f)
                self.score_table.setItem(row, col, it)
        c = r.conclusion
        self.finding_label.setText(c.finding() if c is not None else v.finding())
        self.quality_label.setText(
            f"Decoder inversion: {r.method}; z0 residual ‖E(D(z0)) − E(x)‖/‖E(x)‖ = {r.z0_residual:.4f}; "
            f"PSNR of D(z0) vs the evidence = {r.pixel_psnr_db:.2f} dB; time {r.decoder_seconds:.2f} s + "
            f"{r.inversion_seconds:.2f} s (decoder + diffusion inversion); peak memory "
            f"{format_memory(r.peak_memory_bytes, self._device)}.")
        exhibit = self._item.analysis.conclusion if self._item is not None else None
        headline = verdict_headline(r)
        if exhibit is not None and exhibit.method and exhibit.method != r.method:
            headline = f"{headline} ({r.method}; the exhibit's conclusion, {exhibit.method}: {exhibit.headline()})"
        self.headline.setText(headline)
        interpretation = c.interpretation() if c is not None else v.interpretation()
        if exhibit is not None and exhibit.disagreements:
            interpretation += (" The decoder inversions disagree — " + "; ".join(exhibit.disagreements)
                               + f" (the default pipeline, {exhibit.method}, decides).")
        self.interpretation_label.setText(interpretation)
        self.search_box.show_search(getattr(self._item.analysis, "realignment", None) if self._item else None,
                                    r.method)
        self.restored_box.show_restoration(self._item.analysis if self._item else None, r.method)
        self._fit_verdict()
        noise = ", ".join(f"{k} {val:.3g}" for k, val in r.noise.items())
        trip = (f" Round trip (regenerated from the recovered z_T): PSNR {r.round_trip_psnr_db:.1f} dB."
                if np.isfinite(r.round_trip_psnr_db) else "")
        self.caveat_label.setText(
            f"Forgery-risk indicators (descriptive, not proof either way): PSNR of D(z0) {r.pixel_psnr_db:.1f} dB, "
            f"latent residual {r.z0_residual:.3f}.{trip} z_T outside the key: {noise}. A large residual or a z_T "
            f"unlike the model's own means degraded, altered or foreign evidence — a negative then weighs less; a "
            f"low residual is not evidence of authenticity (a forgery made by optimising a latent is on the "
            f"autoencoder's manifold too).")
