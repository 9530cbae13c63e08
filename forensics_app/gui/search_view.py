"""The result view's strip for a re-alignment search, under the exhibit's conclusion: the search's own conclusion,
labelled as a separate, search-corrected test, with the winner and the transforms tried; "Details" opens every
transform and number. Two lines when closed, so that the window's default size still fits the result page.
Hidden when no search ran."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

SHOWN_TRANSFORMS = 5          # in the closed strip; "Details" lists them all


class SearchResultBox(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 3, 6, 3)
        lay.setSpacing(1)
        top = QHBoxLayout()
        self.headline = QLabel()
        f = self.headline.font()
        f.setBold(True)
        self.headline.setFont(f)
        self.details_button = QToolButton()
        self.details_button.setText("Details")
        self.details_button.setCheckable(True)
        self.details_button.setToolTip("Every transform tried, and each number with the test that produced it")
        top.addWidget(self.headline, 1)
        top.addWidget(self.details_button, 0, Qt.AlignmentFlag.AlignTop)
        lay.addLayout(top)
        self.summary = QLabel()             # the winner, the corrected p-value, the transforms tried
        self.details = QLabel()             # opened by "Details"
        self.details.setVisible(False)
        for w in (self.headline, self.summary, self.details):
            w.setWordWrap(True)
            w.setTextFormat(Qt.TextFormat.PlainText)
            w.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.summary)
        lay.addWidget(self.details)
        self.details_button.toggled.connect(self.details.setVisible)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.setVisible(False)

    def show_search(self, search, method: str) -> None:
        """`search`: an `engine.search_record.ImageSearch` or None; `method`: the decoder inversion on screen."""
        if search is None:
            self.setVisible(False)
            return
        from engine.search_verdict import search_headline, search_interpretation   # loaded: a search ran

        shown = method if method in search.results else search.conclusion.method
        r, c = search.results[shown], search.conclusions[shown]
        self.headline.setText(f"Re-alignment search (a separate, search-corrected test; {shown}): "
                              f"{search_headline(c)}")
        corrected = f"decoy-key max-statistic, {r.decoys} decoy sets" if r.decoy_p is not None else "Bonferroni"
        names = [t.describe() for t in r.transforms]
        more = f" … {len(names) - SHOWN_TRANSFORMS} more" if len(names) > SHOWN_TRANSFORMS else ""
        candidates = (f"; candidates (not excluded on the winner, uncalibrated): {', '.join(c.candidates) or 'none'}"
                      if c.detected else "")
        self.summary.setText(
            f"Winner: {r.best.describe()}, key {r.key_text}; corrected p = {c.detection_p:.3g} ({corrected})"
            f"{candidates}. Tried ({', '.join(search.families)}): {len(r.transforms)} transforms × "
            f"{len(r.key_ids)} key(s) — {'; '.join(names[:SHOWN_TRANSFORMS])}{more}. The exhibit's conclusion "
            f"above, from the image as submitted, stands.")
        self.details.setText(
            f"{search_interpretation(c)}\nBonferroni p = {r.bonferroni_p:.3g}; decoy p = "
            f"{'not drawn' if r.decoy_p is None else f'{r.decoy_p:.3g}'}; as submitted, min p = {r.identity_p:.3g}.\n"
            f"{c.finding()}\nTransforms tried ({len(names)}): {'; '.join(names)}.")
        self.setVisible(True)
