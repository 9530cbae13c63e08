"""The left-hand controls: model chooser, key-set chooser, and the collapsible "Advanced" settings."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout,
                               QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSizePolicy, QSpinBox,
                               QToolButton, QVBoxLayout, QWidget)

from engine.model_kinds import model_kind
from engine.resources import bundled_keys
from engine.options import AnalysisOptions, model_defaults
from forensics_app.gui.restore_controls import RestoreOptions
from forensics_app.gui.search_controls import SearchOptions

DEMO_KEYS = bundled_keys("demo.json")


# -- model chooser -----------------------------------------------------------------------------------

class ModelChooser(QGroupBox):
    changed = Signal(str)               # model id
    add_folder_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Model", parent)
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.combo = QComboBox()
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(18)
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.refresh_button = QToolButton()
        self.refresh_button.setText("⟳")
        self.refresh_button.setToolTip("Look for the models again (e.g. after copying one to this machine)")
        row.addWidget(self.combo, 1)
        row.addWidget(self.refresh_button)
        lay.addLayout(row)
        self.add_button = QPushButton("Add model folder…")
        self.add_button.setToolTip("Register any local diffusers folder (model_index.json, vae/, unet/, scheduler/)")
        lay.addWidget(self.add_button)
        self.hint = QLabel()
        self.hint.setTextFormat(Qt.TextFormat.PlainText)
        self.hint.setWordWrap(True)
        self.hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.hint)
        self._locations: dict[str, object] = {}
        self.combo.currentIndexChanged.connect(self._on_changed)
        self.refresh_button.clicked.connect(lambda: self.populate(self.current_id(), prefer_found=False))
        self.add_button.clicked.connect(self.add_folder_requested)

    def populate(self, select: str | None = None, prefer_found: bool = True) -> None:
        """List the models with found / not found. Preselect `select` — at start-up only if it is on this
        machine (else the demo model), on a refresh even if it is not."""
        from engine.model_registry import all_model_specs, locate

        self.combo.blockSignals(True)
        self.combo.clear()
        self._locations.clear()
        for spec in all_model_specs():
            try:
                loc = locate(spec)
            except Exception:  # noqa: BLE001 — a broken registry entry must not break the window
                continue
            self._locations[spec.id] = loc
            status = "found" if loc.found else "not found"
            self.combo.addItem(f"{spec.title} — {status}", spec.id)
            tip = str(loc.path) if loc.found else loc.explain_missing()
            self.combo.setItemData(self.combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        found = [i for i, loc in self._locations.items() if loc.found]
        choice = select if select in self._locations and (self._locations[select].found or not prefer_found) else None
        if choice is None:
            choice = next((m for m in ("demo", "demo-flow") if m in found), None)
        if choice is None:
            choice = found[0] if found else (select if select in self._locations else next(iter(self._locations), None))
        if choice is not None:
            self.combo.setCurrentIndex(self.combo.findData(choice))
        self.combo.blockSignals(False)
        self._on_changed()

    def current_id(self) -> str | None:
        return self.combo.currentData()

    def current_location(self):
        return self._locations.get(self.current_id())

    def current_spec(self):
        loc = self.current_location()
        return loc.spec if loc is not None else None

    def select(self, model_id: str) -> None:
        i = self.combo.findData(model_id)
        if i >= 0:
            self.combo.setCurrentIndex(i)

    def _on_changed(self) -> None:
        loc = self.current_location()
        if loc is None:
            self.hint.setText("")
            return
        if loc.found:
            self.hint.setText(f"Found ({model_kind(loc.spec.kind).title}): {loc.path}")
        else:
            self.hint.setText(loc.explain_missing())
        self.hint.setToolTip(self.hint.text())
        self.changed.emit(loc.spec.id)


def unique_model_id(folder: str, taken: set[str]) -> str:
    base = Path(folder).name or "model"
    mid, n = base, 2
    while mid in taken:
        mid, n = f"{base}-{n}", n + 1
    return mid


def looks_like_diffusers_folder(folder: str) -> bool:
    p = Path(folder)
    return (p / "model_index.json").is_file() or (p / "vae").is_dir()


# -- key-set chooser ---------------------------------------------------------------------------------

class KeyChooser(QGroupBox):
    changed = Signal()
    import_requested = Signal()
    export_requested = Signal()
    new_requested = Signal()
    error = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Key set", parent)
        lay = QVBoxLayout(self)
        self.combo = QComboBox()
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(18)
        lay.addWidget(self.combo)
        row = QHBoxLayout()
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip("A key-set JSON, or .npy keys saved by the reference tree-ring package")
        self.export_button = QPushButton("Export…")
        self.new_button = QPushButton("New…")
        for b in (self.import_button, self.export_button, self.new_button):
            row.addWidget(b)
        lay.addLayout(row)
        self.info = QLabel()
        self.info.setTextFormat(Qt.TextFormat.PlainText)
        self.info.setWordWrap(True)
        lay.addWidget(self.info)
        self._entries: list[dict] = []      # {"label", "path" (or None), "keys" (KeySet or None)}
        # submit(fn, on_done, on_failed) off the GUI thread: reading a key set imports torch, which must not
        # hold up the window; without it the chooser reads key sets when they are selected
        self.load_in_background = None
        self.combo.currentIndexChanged.connect(self._on_changed)
        self.import_button.clicked.connect(self.import_requested)
        self.export_button.clicked.connect(self.export_requested)
        self.new_button.clicked.connect(self.new_requested)

    def add_entry(self, label: str, path: str | None, keys=None, select: bool = True) -> None:
        norm = os.path.abspath(path) if path else None
        for i, e in enumerate(self._entries):
            if norm is not None and e["path"] == norm:
                if keys is not None:
                    e["keys"] = keys
                if select:
                    self.combo.setCurrentIndex(i)
                    self._on_changed()
                return
        self._entries.append({"label": label, "path": norm, "keys": keys})
        self.combo.addItem(label)
        tip = norm or "in memory (export it to keep it)"
        self.combo.setItemData(self.combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        if select:
            self.combo.setCurrentIndex(self.combo.count() - 1)

    def current_entry(self) -> dict | None:
        i = self.combo.currentIndex()
        return self._entries[i] if 0 <= i < len(self._entries) else None

    def current_path(self) -> str | None:
        e = self.current_entry()
        return e["path"] if e else None

    def paths(self) -> list[str]:
        return [e["path"] for e in self._entries if e["path"]]

    def loaded_key_sets(self) -> list:
        """Every key set the chooser has read (a reopened case's evidence views look up its keys here)."""
        return [e["keys"] for e in self._entries if e["keys"] is not None]

    def current_keys(self):
        """The selected key set (a Tree-Ring key file or a key vault of any schemes), loaded on first use; None
        (and an `error`) if it cannot be read."""
        from engine.key_vault import load_keys_for_scan

        e = self.current_entry()
        if e is None:
            return None
        if e["keys"] is None and e["path"]:
            try:
                e["keys"] = load_keys_for_scan(e["path"])
            except ValueError as exc:
                self.error.emit(str(exc))
                return None
        return e["keys"]

    def _on_changed(self) -> None:
        e = self.current_entry()
        if e is not None and e["keys"] is None and e["path"] and self.load_in_background is not None:
            self.info.setText("reading the key set …")
            path = e["path"]
            self.load_in_background(lambda: _read_key_set(path), lambda keys: self._read(path, keys),
                                    lambda message: self._read(path, None, message))
            self.changed.emit()
            return
        self._show_info()
        self.changed.emit()

    def _read(self, path: str, keys, message: str = "") -> None:
        entry = next((e for e in self._entries if e["path"] == path), None)
        if entry is None:
            return                                  # removed meanwhile
        if entry["keys"] is None:                   # else `current_keys` read it meanwhile (a run started)
            entry["keys"] = keys
        if entry is not self.current_entry():
            return
        if entry["keys"] is None:
            self.error.emit(message)
            self.info.setText("no usable key set selected")
        else:
            self._show_info()

    def _show_info(self) -> None:
        keys = self.current_keys()
        if keys is None:
            self.info.setText("no usable key set selected")
        else:
            shapes = {tuple(k.latent_shape) for k in keys.keys}
            shape = ", ".join("×".join(str(v) for v in s) for s in sorted(shapes))
            if getattr(keys, "scheme", "tree-ring") != "tree-ring":
                schemes = ", ".join(getattr(keys, "schemes", (keys.scheme,)))
                ids = ", ".join(keys.ids[:8]) + (" …" if len(keys) > 8 else "")
                self.info.setText(f"{len(keys)} key(s) of {schemes}: {ids} · latents {shape}")
                return
            radii = ", ".join(sorted({str(k.radius) for k in keys.keys}))
            chans = ", ".join(sorted({str(k.channel) for k in keys.keys}))
            self.info.setText(f"{len(keys)} key(s): {', '.join(keys.ids)} · latents {shape} · radius {radii} · "
                              f"channel {chans}")


def _read_key_set(path: str):
    from engine.key_vault import load_keys_for_scan

    return load_keys_for_scan(path)


# -- advanced settings -----------------------------------------------------------------------------

class CollapsibleSection(QWidget):
    def __init__(self, title: str, body: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.toggle = QToolButton()
        self.toggle.setText(title)
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAutoRaise(True)
        self.body = body
        body.setVisible(False)
        lay.addWidget(self.toggle)
        lay.addWidget(body)
        self.toggle.toggled.connect(self.set_expanded)

    def set_expanded(self, on: bool) -> None:
        self.toggle.blockSignals(True)
        self.toggle.setChecked(on)
        self.toggle.blockSignals(False)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.body.setVisible(on)

    def expanded(self) -> bool:
        return self.body.isVisible() or self.toggle.isChecked()


class AdvancedSettings(QWidget):
    """Method settings. Defaults are the papers' / the CLI's; diffusion settings default per model."""

    reset_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)

        dec = QGroupBox("Decoder inversion (x → z0)")
        f = QFormLayout(dec)
        mbox = QVBoxLayout()
        mbox.setSpacing(2)
        self.method_checks = {m: QCheckBox(m) for m in ("encoder", "gradient-free", "gradient-based")}
        tips = {"encoder": "z0 = E(x): the cheap baseline",
                "gradient-free": "Hong et al. 2024: iterate on E(D(z)) − E(x), no autograd (fast, little memory)",
                "gradient-based": "Adam on ‖D(z) − x‖² through the decoder (slow, memory-hungry baseline)"}
        for m, cb in self.method_checks.items():
            cb.setToolTip(tips[m])
            mbox.addWidget(cb)
        self.all_button = QToolButton()
        self.all_button.setText("All three")
        self.all_button.clicked.connect(lambda: [cb.setChecked(True) for cb in self.method_checks.values()])
        mbox.addWidget(self.all_button)
        f.addRow("Methods", mbox)
        self.iterations = QSpinBox()
        self.iterations.setRange(1, 100000)
        self.iterations.setToolTip("Iterations of the gradient-free and gradient-based methods (papers: 100)")
        f.addRow("Iterations", self.iterations)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(0.0, 10.0)
        self.lr.setSingleStep(0.001)
        self.lr.setSpecialValueText("model default")
        self.lr.setToolTip("Gradient-free step size (0 = the model's for its optimiser, else the paper's: 0.01 "
                           "Adam, 0.001 forward step / KM); the gradient-based baseline keeps its 0.1")
        f.addRow("Learning rate", self.lr)
        self.optimizer = QComboBox()
        self.optimizer.addItem("model default", None)
        for name in ("adam", "forward-step", "inertial-km"):
            self.optimizer.addItem(name, name)
        self.optimizer.setToolTip("The papers use Adam; a model may carry another optimiser measured to work "
                                  "better on it (the bundled demo models: see their model cards)")
        f.addRow("Gradient-free optimiser", self.optimizer)
        self.schedule = QComboBox()
        self.schedule.addItem("model default", None)
        self.schedule.addItem("warm-up + cosine", "scheduled")
        self.schedule.addItem("fixed", "fixed")
        f.addRow("Step schedule", self.schedule)
        self.precision = QComboBox()
        self.precision.addItems(["auto", "fp32", "fp16"])
        self.precision.setToolTip("Gradient-free network precision (auto: fp16 on a CUDA GPU, fp32 elsewhere); "
                                  "gradient-based is always fp32")
        f.addRow("Precision", self.precision)
        lay.addWidget(dec)

        dif = QGroupBox("Diffusion inversion (z0 → z_T) — defaults per model")
        g = QFormLayout(dif)
        self.inversion = QComboBox()
        self.inversion.addItem("naive DDIM", "naive")
        self.inversion.addItem("backward Euler (exact)", "backward-euler")
        g.addRow("Method", self.inversion)
        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        g.addRow("Steps", self.steps)
        self.grid = QComboBox()
        self.grid.addItem("diffusers", "diffusers")
        self.grid.addItem("reference (papers' code)", "reference")
        g.addRow("Timestep grid", self.grid)
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("unknown → empty prompt")
        g.addRow("Prompt (if known)", self.prompt)
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 50.0)
        self.guidance.setSingleStep(0.5)
        g.addRow("Guidance", self.guidance)
        lay.addWidget(dif)

        det = QGroupBox("Detection and performance")
        h = QFormLayout(det)
        self.fpr = QComboBox()
        self.fpr.setEditable(True)
        self.fpr.addItems(["0.01", "0.001", "1e-06"])
        self.fpr.setValidator(QDoubleValidator(1e-12, 0.5, 12))
        self.fpr.setToolTip("Family-wise false-positive level, Bonferroni-corrected over the keys tested. "
                            "Literature: 1% (Tree-Ring, dec-inv), 0.1% (WAVES), 1e-6 (Gaussian Shading)")
        h.addRow("False-positive level", self.fpr)
        self.score_target = QComboBox()
        self.score_target.addItem("effective key (what injection leaves)", "effective")
        self.score_target.addItem("key as written (the papers' scoring)", "reference")
        self.score_target.setToolTip("Compare the recovered spectrum with what injecting the key leaves in a real "
                                     "latent (default), or with the key as written, as the reference code does")
        h.addRow("Score against", self.score_target)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 256)
        h.addRow("Batch size", self.batch_size)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda", "mps"])
        h.addRow("Device", self.device)
        self.dtype = QComboBox()
        self.dtype.addItems(["fp32", "fp16"])
        h.addRow("Weights", self.dtype)
        lay.addWidget(det)
        self.search = SearchOptions()           # run after the analysis; its choice is not an AnalysisOptions
        lay.addWidget(self.search)
        self.restore = RestoreOptions()         # likewise after the analysis: a separate, restored reading
        lay.addWidget(self.restore)
        self.reset_button = QPushButton("Reset to this model's defaults")
        self.reset_button.clicked.connect(self.reset_requested)
        lay.addWidget(self.reset_button)
        self.set_settings(AnalysisOptions())

    def set_settings(self, s: AnalysisOptions, spec=None) -> None:
        defaults = model_defaults(spec) if spec is not None else {}
        for m, cb in self.method_checks.items():
            cb.setChecked(m in s.methods)
        self.iterations.setValue(int(s.iterations))
        self.lr.setValue(float(s.lr) if s.lr else 0.0)
        self.optimizer.setCurrentIndex(max(0, self.optimizer.findData(s.optimizer)))
        self.schedule.setCurrentIndex(max(0, self.schedule.findData(s.schedule)))
        if spec is not None:
            self.optimizer.setItemText(0, f"model default ({spec.gradient_free_optimizer})")
        self.precision.setCurrentText(s.precision)
        inversion = s.inversion or defaults.get("inversion", "naive")
        self.inversion.setCurrentIndex(max(0, self.inversion.findData(inversion)))
        self.steps.setValue(int(s.steps or defaults.get("steps", 50)))
        self.grid.setCurrentIndex(max(0, self.grid.findData(s.grid)))
        self.prompt.setText(s.prompt)
        self.guidance.setValue(float(s.guidance))
        self.fpr.setCurrentText(f"{s.fpr:g}")
        self.score_target.setCurrentIndex(max(0, self.score_target.findData(s.score_target)))
        self.batch_size.setValue(int(s.batch_size))
        self.device.setCurrentText(s.device)
        self.dtype.setCurrentText(s.dtype)

    def settings(self) -> AnalysisOptions:
        """The edited settings; ValueError with a readable sentence when they cannot run."""
        methods = tuple(m for m, cb in self.method_checks.items() if cb.isChecked())
        if not methods:
            raise ValueError("choose at least one decoder-inversion method (Advanced ▸ Decoder inversion)")
        try:
            fpr = float(self.fpr.currentText())
        except ValueError:
            raise ValueError(f"the false-positive level {self.fpr.currentText()!r} is not a number") from None
        if not 0 < fpr < 1:
            raise ValueError("the false-positive level must be between 0 and 1")
        return AnalysisOptions(
            methods=methods, iterations=self.iterations.value(), lr=self.lr.value() or None,
            optimizer=self.optimizer.currentData(), schedule=self.schedule.currentData(),
            precision=self.precision.currentText(),
            inversion=self.inversion.currentData(), steps=self.steps.value(), grid=self.grid.currentData(),
            prompt=self.prompt.text(), guidance=self.guidance.value(), fpr=fpr,
            score_target=self.score_target.currentData(),
            batch_size=self.batch_size.value(), device=self.device.currentText(), dtype=self.dtype.currentText())

    def summary(self) -> str:
        try:
            s = self.settings()
        except ValueError as exc:
            return str(exc)
        try:
            search = self.search.choice()
        except ValueError:
            search = None
        return (f"{' + '.join(s.methods)}, {s.iterations} it · {s.inversion} {s.steps} steps · FPR {s.fpr:g}"
                + (f" · search: {', '.join(search.families)}" if search is not None else "")
                + (f" · restore: {restore.degradation_text()}"
                   + (", diffusion prior" if restore.prior == "diffusion" else "")
                   if (restore := self.restore.choice()) else ""))
