"""The result view's box for a re-alignment search: its conclusion beside the exhibit's, labelled as a separate,
search-corrected test, with the transforms tried and the winner. Hidden when no search ran."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QLabel, QVBoxLayout, QWidget

SHOWN_TRANSFORMS = 8          # the rest are in the tooltip


class SearchResultBox(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Re-alignment search — a separate, search-corrected test", parent)
        lay = QVBoxLayout(self)
        self.headline = QLabel()
        f = self.headline.font()
        f.setBold(True)
        f.setPointSizeF(f.pointSizeF() * 1.15)
        self.headline.setFont(f)
        self.details = QLabel()
        self.transforms = QLabel()
        self.interpretation = QLabel()
        fi = self.interpretation.font()
        fi.setItalic(True)
        self.interpretation.setFont(fi)
        for w in (self.headline, self.details, self.transforms, self.interpretation):
            w.setWordWrap(True)
            w.setTextFormat(Qt.TextFormat.PlainText)
            w.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            lay.addWidget(w)
        lay.addStretch(1)
        self.setVisible(False)

    def show_search(self, search, method: str) -> None:
        """`search`: an `engine.search_record.ImageSearch` or None; `method`: the decoder inversion on screen."""
        if search is None:
            self.setVisible(False)
            return
        from engine.search_verdict import search_headline, search_interpretation   # loaded: a search ran

        shown = method if method in search.results else search.conclusion.method
        r, c = search.results[shown], search.conclusions[shown]
        self.headline.setText(search_headline(c) + f" ({shown})")
        decoy = (f"decoy-key max-statistic p = {r.decoy_p:.3g} ({r.decoys} decoy key sets), " if r.decoy_p is not None
                 else "no decoys drawn, ")
        self.details.setText(
            f"Families: {', '.join(search.families)} · {len(r.transforms)} candidate transforms × {len(r.key_ids)} "
            f"key(s) = {r.tests} tests.\nWinner: {r.best.describe()} with key {r.best_key}.\n"
            f"Corrected: {decoy}Bonferroni p = {r.bonferroni_p:.3g}; as submitted, min p = {r.identity_p:.3g}.\n"
            f"{c.finding()}\nThe exhibit's conclusion (left) is from the image as submitted; the search does not "
            f"change it.")
        names = [t.describe() for t in r.transforms]
        more = f" … and {len(names) - SHOWN_TRANSFORMS} more" if len(names) > SHOWN_TRANSFORMS else ""
        self.transforms.setText(f"Transforms tried: {'; '.join(names[:SHOWN_TRANSFORMS])}{more}.")
        self.transforms.setToolTip("\n".join(names))
        self.interpretation.setText(search_interpretation(c))
        self.setVisible(True)
