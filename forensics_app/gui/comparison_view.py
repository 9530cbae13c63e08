"""The three decoder-inversion methods side by side for one image: how self-consistent the recovered
latent is, how well D(z0) reproduces the evidence, what it cost, and what each method's z_T says."""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from forensics_app.gui.result_view import METHOD_ORDER, Panel, format_memory, format_p, verdict_headline
from forensics_app.figure_arrays import VIRIDIS, KeyGeometry, robust_range, spectrum_log_magnitude
from forensics_app.scheme_arrays import key_for_view, watermark_channel

NOT_RUN = "not run"


class ComparisonView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._keys = None
        self._device = ""
        self._configs: dict[str, str] = {}
        self._item = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.header = QLabel("Select an analysed image to compare the decoder-inversion methods.")
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.header)

        splitter = QSplitter(Qt.Orientation.Vertical)
        lay.addWidget(splitter, 1)
        pics = QWidget()
        pl = QHBoxLayout(pics)
        pl.setContentsMargins(0, 0, 0, 0)
        self.panels: dict[str, Panel] = {}
        for m in METHOD_ORDER:
            p = Panel(m, minimum=140)
            self.panels[m] = p
            pl.addWidget(p, 1)
        splitter.addWidget(pics)

        self.table = QTableWidget(0, len(METHOD_ORDER))
        self.table.setHorizontalHeaderLabels(list(METHOD_ORDER))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setWordWrap(True)
        splitter.addWidget(self.table)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        self.note = QLabel()
        self.note.setWordWrap(True)
        lay.addWidget(self.note)

    def set_run_context(self, keys, device: str) -> None:
        self._keys, self._device = keys, device
        self._configs = {}

    def set_device(self, device: str) -> None:
        self._device = device

    def set_config(self, config) -> None:
        """Labels of the decoder-inversion settings actually used (AnalysisConfig)."""
        self._configs = {m: config.decoder_config(m).label() for m in config.methods}
        self._diffusion = config.diffusion.label()

    def show_item(self, item) -> None:
        self._item = item
        if item is None or item.analysis is None:
            self.header.setText(
                f"<b>{html.escape(item.name)}</b>: not analysed." if item is not None else
                "Select an analysed image to compare the decoder-inversion methods.")
            self.table.setRowCount(0)
            for p in self.panels.values():
                p.view.clear("no result")
                p.caption.setText("")
            return
        a = item.analysis
        self.header.setText(f"<b>{html.escape(item.name)}</b> — the decoder-inversion methods on the same "
                            f"evidence, each followed by the same diffusion inversion.")
        self._fill_panels(a)
        self._fill_table(a)
        missing = [m for m in METHOD_ORDER if m not in a.methods]
        self.note.setText(
            (f"Not run: {', '.join(missing)} — tick them under Advanced ▸ Decoder inversion and run again. "
             if missing else "")
            + "Peak memory is measured on GPUs only. Times are per image (a batch's time divided by its size).")

    def _fill_panels(self, a) -> None:
        key_for = {}
        for m, r in a.methods.items():
            key_for[m] = (r.conclusion.key if r.conclusion is not None else None) or r.verdict.nearest_key
        # one colour scale for all three, so their spectra compare
        spectra = {m: spectrum_log_magnitude(r.z_t) for m, r in a.methods.items()}
        for m in METHOD_ORDER:
            p = self.panels[m]
            r = a.methods.get(m)
            if r is None:
                p.view.clear(NOT_RUN)
                p.title.setText(m)
                p.caption.setText("")
                continue
            key = self._keys[key_for[m]] if self._keys is not None else None
            # a reopened case holds public key records: RingID's ring channel is read from the rebuilt key
            ch = (watermark_channel(key_for_view(key)[0] or key) or 0) if key is not None else 0
            allv = np.concatenate([s[ch].ravel() for s in spectra.values()])
            lo, hi = robust_range(allv)
            g = KeyGeometry.of(key) if key is not None and key.scheme == "tree-ring" else None
            p.view.set_scalar(spectra[m][ch], lo, hi, VIRIDIS, "log(1+|F|)", g, True,
                              crop=g.crop() if g is not None else None)
            p.title.setText(f"{m}: |F(z_T)| around the mask, channel {ch}")
            p.caption.setText(f"{verdict_headline(r)}. Rings of {key.id if key else '—'}.")

    def _fill_table(self, a) -> None:
        rows: list[tuple[str, dict[str, str]]] = []

        def row(label: str, fn) -> None:
            rows.append((label, {m: (fn(r) if r is not None else NOT_RUN)
                                 for m, r in ((m, a.methods.get(m)) for m in METHOD_ORDER)}))

        row("Settings", lambda r: self._configs.get(r.method, r.method))
        row("z0 residual ‖E(D(z0)) − E(x)‖ / ‖E(x)‖", lambda r: f"{r.z0_residual:.4f}")
        row("PSNR of D(z0) vs evidence", lambda r: f"{r.pixel_psnr_db:.2f} dB")
        row("Runtime: decoder inversion", lambda r: f"{r.decoder_seconds:.2f} s")
        row("Runtime: diffusion inversion", lambda r: f"{r.inversion_seconds:.2f} s")
        row("Runtime: total", lambda r: f"{r.seconds:.2f} s")
        row("Peak memory", lambda r: format_memory(r.peak_memory_bytes, self._device))
        key_ids = []
        for r in a.methods.values():
            key_ids = [s.key_id for s in r.scores]
            break
        for kid in key_ids:
            row(f"L1 distance to {kid}", lambda r, kid=kid: _score(r, kid, "l1"))
        for kid in key_ids:
            row(f"p-value for {kid}", lambda r, kid=kid: _score(r, kid, "p"))
        row("Nearest key (argmin L1)", lambda r: r.verdict.nearest_key)
        row("Threshold (FPR / K)", lambda r: f"{r.verdict.corrected_threshold:.3g} = {r.verdict.fpr:g} / "
                                              f"{r.verdict.keys_tested}")
        row("Detection p", lambda r: format_p(r.conclusion.detection_p) if r.conclusion and r.conclusion.detection_p
            is not None else "—")
        row("Calibration", lambda r: r.conclusion.calibration if r.conclusion else "—")
        row("Runner-up excluded at p", lambda r: format_p(r.conclusion.identification_p) if r.conclusion
            and r.conclusion.identification_p is not None else "—")
        row("Verdict", lambda r: verdict_headline(r))
        self.table.setRowCount(len(rows))
        self.table.setVerticalHeaderLabels([label for label, _ in rows])
        for i, (label, values) in enumerate(rows):
            for j, m in enumerate(METHOD_ORDER):
                it = QTableWidgetItem(values[m])
                it.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if label == "Verdict":
                    f = it.font()
                    f.setBold(True)
                    it.setFont(f)
                self.table.setItem(i, j, it)

    def cell(self, label: str, method: str) -> str:
        """The text in the row `label`, column `method` (tests and accessibility)."""
        for i in range(self.table.rowCount()):
            if self.table.verticalHeaderItem(i).text() == label:
                return self.table.item(i, METHOD_ORDER.index(method)).text()
        raise KeyError(label)


def _score(r, kid: str, what: str) -> str:
    for s in r.scores:
        if s.key_id == kid:
            return f"{s.l1:.4f}" if what == "l1" else format_p(s.p_value)
    return "—"
