"""The result view's strip for a restored reading, under the exhibit's conclusion: "As submitted" and "Restored
(settings)" side by side for the decoder inversion on screen, labelled as a separate, uncalibrated reading;
"Details" opens every number with its test. Compact when closed, so that the window's default size still fits the
result page. Hidden when no restored reading was made."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget


class RestoredResultBox(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setToolTip("Restore-then-invert: a separate reading of the exhibit restored for the degradation you "
                        "stated, with the run's tests and calibration. It never changes the exhibit's conclusion, drawn "
                        "from the image as submitted, and never names a key holder. Restored pixels that do not look "
                        "like the model's own images (a degradation stated wrongly) are reported as such.")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 3, 6, 3)
        lay.setSpacing(1)
        sides = QGridLayout()               # the two readings side by side: titles, then headline and p-value
        sides.setHorizontalSpacing(12)
        sides.setVerticalSpacing(0)
        self.raw_title, self.restored_title = QLabel("As submitted"), QLabel()
        self.raw, self.restored = QLabel(), QLabel()
        for col, (t, body) in enumerate(((self.raw_title, self.raw), (self.restored_title, self.restored))):
            tf = t.font()
            tf.setBold(True)
            t.setFont(tf)
            sides.addWidget(t, 0, col)
            sides.addWidget(body, 1, col)
            sides.setColumnStretch(col, 1)
        self.details_button = QToolButton()
        self.details_button.setText("Details")
        self.details_button.setCheckable(True)
        self.details_button.setToolTip("The restoration's trace, and each number with the test that produced it")
        sides.addWidget(self.details_button, 0, 2, Qt.AlignmentFlag.AlignTop)
        lay.addLayout(sides)
        self.details = QLabel()
        self.details.setVisible(False)
        for w in (self.raw_title, self.restored_title, self.raw, self.restored, self.details):
            w.setWordWrap(True)
            w.setTextFormat(Qt.TextFormat.PlainText)
            w.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.details)
        self.details_button.toggled.connect(self.details.setVisible)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.setVisible(False)

    def show_restoration(self, analysis, method: str) -> None:
        """`analysis`: the `ImageAnalysis` on screen (or None); `method`: the decoder inversion on screen."""
        s = getattr(analysis, "restoration", None)
        if s is None:
            self.setVisible(False)
            return
        from engine.restored_verdict import restored_headline, restored_interpretation   # engine: already loaded

        prior = "diffusion prior, " if s.config.prior == "diffusion" else ""
        self.restored_title.setText(f"Restored ({s.degradation.describe()}; {prior}{s.config.iterations} iterations, "
                                    f"λ = {s.config.weight:g}) — a separate reading, never naming a key holder")
        raw = analysis.methods.get(method) or analysis.methods.get(s.as_submitted.method)
        shown = raw.method if raw is not None else method
        if raw is not None:
            rc = raw.conclusion
            self.raw.setText(f"{rc.headline()} · {shown}: {detection_p_text(rc)}" if rc is not None
                             else f"not analysed · {shown}")
        else:
            self.raw.setText("—")
        gap = " → ".join(f"{g:.2f}" for g in s.prior_gap) or "—"
        trace = (f"Restoration: {s.settings}. Prior gap per iteration (RMS of the restored image against the "
                 f"prior's own image, 8-bit levels): {gap}; restored against submitted: PSNR "
                 f"{'—' if math.isnan(s.change_psnr_db) else f'{s.change_psnr_db:.1f}'} dB. "
                 "The exhibit's conclusion, from the image as submitted, stands.")
        if s.failure:
            self.restored.setText(f"Not made: {s.failure}")
            self.details.setText(trace)
            self.setVisible(True)
            return
        r = s.methods.get(shown) or s.methods[s.conclusion.method]
        c = r.conclusion
        self.restored.setText(f"{restored_headline(c)} · {r.method}: {detection_p_text(c)}")
        self.details.setText(f"{restored_interpretation(c)}\n{trace}\n{c.finding()}")
        self.setVisible(True)


def detection_p_text(c) -> str:
    """The detection p-value and the state of the test that gave it (the raw and restored lines use the same
    test: the run's, calibrated where a calibration applies)."""
    return f"detection p = {'—' if c.detection_p is None else f'{c.detection_p:.3g}'} ({c.calibration})"
