"""The "Restore before inverting" option beside the other analysis settings: the degradation the examiner states
(JPEG quality, blur radius or downscale share), the prior (the model's autoencoder or its diffusion denoiser) and
the restoration's iterations and weight; after the plain
analysis each exhibit is restored and analysed again as a separate reading (engine.restored_record,
docs/algorithms.md §6). No engine import here (it would load torch on the GUI thread): the worker turns the choice
into an `engine.restoration.Degradation` and `RestorationConfig`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QSpinBox, QWidget

# per kind: the label, the value's range, decimals, step and default (engine.restoration.Degradation's limits;
# engine.restored_record.parse_degradation refuses the rest)
KINDS = {"jpeg": ("JPEG, quality", 1.0, 100.0, 0, 1.0, 50.0),
         # no value: each JPEG file's quality is read from its own quantization table (`--restore jpeg:auto`)
         "jpeg-file": ("JPEG, quality read from each file", 0.0, 0.0, 0, 0.0, 0.0),
         "blur": ("Gaussian blur, radius (px)", 0.1, 100.0, 1, 0.1, 1.0),
         "downscale": ("Downscaled, kept share of the side", 0.05, 1.0, 2, 0.05, 0.5)}
MAX_ITERATIONS = 1000
DIFFUSION_GRID_STEPS = 50                         # engine.restoration.DEFAULT_GRID_STEPS
MIN_WEIGHT, MAX_WEIGHT = 0.001, 1000.0            # the window's range for λ
# engine.restoration's defaults (tests/test_restored_reading.py checks they agree)
DEFAULT_ITERATIONS, DEFAULT_WEIGHT = {"autoencoder": 3, "diffusion": 10}, 0.1
PRIORS = {"autoencoder": "The model's autoencoder", "diffusion": "The model's diffusion denoiser (DDIM models)"}


@dataclass(frozen=True)
class RestoreChoice:
    kind: str
    value: float
    iterations: int = DEFAULT_ITERATIONS["autoencoder"]
    weight: float = DEFAULT_WEIGHT
    prior: str = "autoencoder"

    def to_engine(self):
        """(Degradation, RestorationConfig) for `engine.restored_record.restore_run` (call in the worker)."""
        from engine.restoration import restoration_config
        from engine.restored_record import parse_degradation

        stated = "jpeg:auto" if self.kind == "jpeg-file" else f"{self.kind}:{self.value:g}"
        return parse_degradation(stated), restoration_config(self.prior, self.iterations, self.weight)

    def degradation_text(self) -> str:
        return "jpeg, quality read from each file" if self.kind == "jpeg-file" else f"{self.kind} {self.value:g}"

    def describe(self) -> str:
        prior = "diffusion prior, " if self.prior == "diffusion" else ""     # the autoencoder's: as before
        return (f"restore before inverting: {self.degradation_text()}; {prior}{self.iterations} iterations, "
                f"λ = {self.weight:g}")

    def to_json(self) -> dict:
        return {"kind": self.kind, "value": self.value, "iterations": self.iterations, "weight": self.weight,
                "prior": self.prior}

    @classmethod
    def from_json(cls, data) -> "RestoreChoice | None":
        """A saved choice; None for anything that is not one (an edited or older settings file: the option stays
        off rather than run with a guessed setting)."""
        if not isinstance(data, dict) or data.get("kind") not in KINDS:
            return None
        _, low, high, decimals, _, _ = KINDS[data["kind"]]
        value, iterations, weight = data.get("value"), data.get("iterations"), data.get("weight")
        prior = data.get("prior", "autoencoder")     # saved before the diffusion prior existed
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or not low <= value <= high or (decimals == 0 and value != round(value))
                or isinstance(iterations, bool) or not isinstance(iterations, int)
                or not 1 <= iterations <= MAX_ITERATIONS
                or isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight)
                or not MIN_WEIGHT <= weight <= MAX_WEIGHT or prior not in PRIORS
                or (prior == "diffusion" and iterations > DIFFUSION_GRID_STEPS)):
            return None
        return cls(data["kind"], float(value), iterations, float(weight), prior)


class RestoreOptions(QGroupBox):
    """Checkable group: off by default (a second full analysis of every exhibit)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Restore before inverting (a separate reading)", parent)
        self.setCheckable(True)
        self.setChecked(False)
        self.setToolTip("For re-encoded, blurred or downscaled evidence: after the plain analysis, estimate the clean "
                        "image for the degradation you state (the model's autoencoder or its diffusion denoiser as "
                        "the prior), analyse it with "
                        "the same settings and keys, and show it beside the result as submitted. It never changes the "
                        "exhibit's conclusion and never names a key holder.")
        form = QFormLayout(self)
        row = QHBoxLayout()
        self.kind = QComboBox()
        for k, (label, *_rest) in KINDS.items():
            self.kind.addItem(label, k)
        self.value = QDoubleSpinBox()
        row.addWidget(self.kind, 1)
        row.addWidget(self.value)
        form.addRow("Degradation", row)
        self.prior = QComboBox()
        for k, label in PRIORS.items():
            self.prior.addItem(label, k)
        self.prior.setToolTip("The autoencoder: a few decode–encode round trips (fast). The diffusion denoiser: the "
                              "suspect walked part-way up the model's DDIM grid and back down, the observed image "
                              "imposed at each step (slower; multi-step models only)")
        form.addRow("Prior", self.prior)
        self.iterations = QSpinBox()
        self.iterations.setRange(1, MAX_ITERATIONS)
        self.iterations.setValue(DEFAULT_ITERATIONS["autoencoder"])
        self.iterations.setToolTip("Data-consistency iterations (each one decodes and encodes the image once; with "
                                   f"the diffusion prior, the steps of its {DIFFUSION_GRID_STEPS}-step grid walked)")
        form.addRow("Iterations", self.iterations)
        self.weight = QDoubleSpinBox()
        self.weight.setDecimals(3)
        self.weight.setRange(MIN_WEIGHT, MAX_WEIGHT)
        self.weight.setSingleStep(0.05)
        self.weight.setValue(DEFAULT_WEIGHT)
        self.weight.setToolTip("λ: trust in the prior's image against the observed one")
        form.addRow("Weight λ", self.weight)
        note = QLabel("State the degradation you know or suspect (a JPEG's quality can be read from the file's own "
                      "tables): the tool does not guess it from the pixels. The restored pixels are read with the "
                      "run's calibration, whose coverage check flags a degradation stated wrongly; no key holder is "
                      "named.")
        note.setWordWrap(True)
        form.addRow(note)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self._kind_changed()
        self.prior.currentIndexChanged.connect(self._prior_changed)

    def _prior_changed(self, _index: int = 0) -> None:
        prior = self.prior.currentData()
        self.iterations.setMaximum(DIFFUSION_GRID_STEPS if prior == "diffusion" else MAX_ITERATIONS)
        self.iterations.setValue(DEFAULT_ITERATIONS[prior])

    def _kind_changed(self, _index: int = 0) -> None:
        _, low, high, decimals, step, default = KINDS[self.kind.currentData()]
        self.value.setDecimals(decimals)
        self.value.setRange(low, high)
        self.value.setSingleStep(step)
        self.value.setValue(default)
        self.value.setEnabled(high > low)          # nothing to state when the quality is read from the file

    def choice(self) -> RestoreChoice | None:
        """None when the option is off."""
        if not self.isChecked():
            return None
        return RestoreChoice(self.kind.currentData(), round(self.value.value(), self.value.decimals()),
                             self.iterations.value(), round(self.weight.value(), 3), self.prior.currentData())

    def set_choice(self, choice: RestoreChoice | None) -> None:
        self.setChecked(choice is not None)
        if choice is not None:
            self.kind.setCurrentIndex(max(0, self.kind.findData(choice.kind)))
            self._kind_changed()
            self.value.setValue(choice.value)
            self.prior.setCurrentIndex(max(0, self.prior.findData(choice.prior)))
            self._prior_changed()
            self.iterations.setValue(choice.iterations)
            self.weight.setValue(choice.weight)
