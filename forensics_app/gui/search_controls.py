"""The "Re-alignment search" option beside the other analysis settings: which families of candidate inverse
transforms to try after the plain analysis, and how many decoy key sets correct the search's p-value
(engine.realignment, docs/algorithms.md §6). No engine import here (it would load torch on the GUI thread):
the worker turns the choice into an `engine.realignment.SearchConfig`."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import QCheckBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QSpinBox, QWidget

FAMILIES = ("rotation", "scale", "crop", "flip")        # engine.realignment.FAMILIES, without importing torch
MAX_DECOYS = 99999
FAMILY_TIPS = {"rotation": "undo a rotation: −45…45° in 5° steps, and 90/180/270° (21 candidates)",
               "scale": "undo a centre crop resized back: shrink to 0.5…0.9 of the side, or enlarge (7)",
               "crop": "undo a crop resized back: sides 0.6…0.95 at a 3×3 grid of positions (up to 63)",
               "flip": "undo a left-right or top-bottom flip (2)"}


@dataclass(frozen=True)
class SearchChoice:
    families: tuple[str, ...]
    decoys: int

    def to_config(self):
        """The engine's `SearchConfig` (call in the worker: it imports torch)."""
        from engine.realignment import SearchConfig

        return SearchConfig(families=self.families, decoys=self.decoys)

    def describe(self) -> str:
        return f"re-alignment search: {', '.join(self.families)}; {self.decoys} decoy key sets"

    def to_json(self) -> dict:
        return {"families": list(self.families), "decoys": self.decoys}

    @classmethod
    def from_json(cls, data) -> "SearchChoice | None":
        """A saved choice; None for anything that is not one (an edited or older settings file: the search stays
        off rather than run with a guessed setting)."""
        if not isinstance(data, dict):
            return None
        families, decoys = data.get("families"), data.get("decoys")
        if (not isinstance(families, list) or not families or not all(f in FAMILIES for f in families)
                or not isinstance(decoys, int) or isinstance(decoys, bool) or not 0 <= decoys <= MAX_DECOYS):
            return None
        return cls(tuple(dict.fromkeys(families)), decoys)


class SearchOptions(QGroupBox):
    """Checkable group: off by default (each candidate is a full inversion of the exhibit)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Re-alignment search (after the analysis)", parent)
        self.setCheckable(True)
        self.setChecked(False)
        self.setToolTip("For rotated, cropped, rescaled or flipped evidence: after the plain analysis, try candidate "
                        "inverse transforms of each exhibit, invert every one, and report the best with a p-value "
                        "corrected for the whole search. A separate test: it never changes the exhibit's "
                        "conclusion and never names a key holder.")
        form = QFormLayout(self)
        row = QHBoxLayout()
        row.setSpacing(6)
        self.family_checks = {f: QCheckBox(f) for f in FAMILIES}
        for f, cb in self.family_checks.items():
            cb.setToolTip(FAMILY_TIPS[f])
            cb.setChecked(f in ("rotation", "crop"))
            row.addWidget(cb)
        row.addStretch(1)
        form.addRow("Undo", row)
        self.decoys = QSpinBox()
        self.decoys.setRange(0, MAX_DECOYS)
        self.decoys.setValue(999)
        self.decoys.setToolTip("Decoy key sets for the max-statistic p-value (exact over the key draw; smallest p "
                               "1/(M+1); costs only scoring). 0: Bonferroni only.")
        form.addRow("Decoy key sets", self.decoys)
        note = QLabel("Every candidate is a full inversion per method and exhibit: slow with many candidates.")
        note.setWordWrap(True)
        form.addRow(note)

    def choice(self) -> SearchChoice | None:
        """None when the search is off; ValueError (one sentence) when it is on with nothing to try."""
        if not self.isChecked():
            return None
        families = tuple(f for f, cb in self.family_checks.items() if cb.isChecked())
        if not families:
            raise ValueError("the re-alignment search is on but no transform family is ticked (Advanced ▸ "
                             "Re-alignment search): tick one, or switch the search off")
        return SearchChoice(families, self.decoys.value())

    def set_choice(self, choice: SearchChoice | None) -> None:
        self.setChecked(choice is not None)
        if choice is not None:
            for f, cb in self.family_checks.items():
                cb.setChecked(f in choice.families)
            self.decoys.setValue(choice.decoys)
