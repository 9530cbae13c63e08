"""Model & keys ▸ New keys…: a scheme, its parameters (the table `keys new --scheme …` uses,
`engine.key_parameters`), the latent shape, a seed and the key vault's provenance. The dialog never shows a
key's secret: it makes keys, the caller writes them to a file and names them by id and hash."""

from __future__ import annotations

from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QSpinBox,
                               QWidget)

from engine.key_parameters import KEY_OPTIONS, KeyParameter, key_options


class ParameterField:
    """One parameter of the table: a spin box for integers (its lowest value reads "auto" when the default is
    derived from the latent), a line edit for numbers (empty = the default)."""

    def __init__(self, p: KeyParameter) -> None:
        self.parameter = p
        auto = f"auto ({p.derived})" if p.default is None else ""
        if p.kind is int:
            self.widget = QSpinBox()
            self.widget.setRange(int(p.low) - (1 if p.default is None else 0), int(p.high))
            if p.default is None:
                self.widget.setSpecialValueText(auto)
                self.widget.setValue(self.widget.minimum())
            else:
                self.widget.setValue(int(p.default))
        else:
            self.widget = QLineEdit()
            self.widget.setPlaceholderText(auto or f"{p.default:g}")
            self.widget.setValidator(QDoubleValidator(p.low, p.high, 12))
        self.widget.setToolTip(f"{p.help} ({p.flag} in `keys new`)")

    def value(self):
        p = self.parameter
        if p.kind is int:
            v = self.widget.value()
            return None if p.default is None and v == self.widget.minimum() else v
        text = self.widget.text().strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{p.label}: {text!r} is not a number") from None


class NewKeysDialog(QDialog):
    def __init__(self, latent_shape=(4, 32, 32), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New keys")
        self.setMinimumWidth(480)
        form = QFormLayout(self)
        self.scheme = QComboBox()
        for options in KEY_OPTIONS.values():
            self.scheme.addItem(options.title, options.scheme)
        self.scheme.setToolTip("Tree-Ring keys are written as a key set; the other schemes as a key vault "
                               "(their secrets are in that file only)")
        self.count = QSpinBox()
        self.channels = QSpinBox()
        self.channels.setRange(1, 64)
        self.channels.setValue(int(latent_shape[0]))
        self.size = QSpinBox()
        self.size.setRange(4, 512)
        self.size.setValue(int(latent_shape[1]))
        self.seed = QLineEdit()
        self.seed.setPlaceholderText("random")
        self.seed.setToolTip("A whole number makes the same keys again (tests, benchmarks); empty: the operating "
                             "system's random generator")
        self.prefix = QLineEdit()
        self.provenance = QLineEdit()
        self.provenance.setPlaceholderText("who made the keys, for what")
        self.provenance.setToolTip("Free text kept in the key vault with its creation time")
        form.addRow("Scheme", self.scheme)
        form.addRow("Number of keys", self.count)
        form.addRow("Latent channels", self.channels)
        form.addRow("Latent size (square)", self.size)
        self.fields: dict[str, list[ParameterField]] = {}
        for options in KEY_OPTIONS.values():        # every scheme's rows; only the chosen scheme's are shown
            self.fields[options.scheme] = [ParameterField(p) for p in options.parameters]
            for f in self.fields[options.scheme]:
                form.addRow(f.parameter.label, f.widget)
        self.form = form
        form.addRow("Seed", self.seed)
        form.addRow("Id prefix", self.prefix)
        form.addRow("Provenance", self.provenance)
        note = QLabel("The latent shape must match the model (the demo models: 4 × 32 × 32). The keys' secrets "
                      "are written to the file only; the window names keys by id and hash.")
        note.setWordWrap(True)
        form.addRow(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.scheme.currentIndexChanged.connect(self._on_scheme)
        self._on_scheme()

    def current_scheme(self) -> str:
        return self.scheme.currentData()

    def select_scheme(self, scheme: str) -> None:
        self.scheme.setCurrentIndex(self.scheme.findData(scheme))

    def _on_scheme(self) -> None:
        options = key_options(self.current_scheme())
        for scheme, fields in self.fields.items():
            for f in fields:
                self.form.setRowVisible(f.widget, scheme == options.scheme)
        self.count.setRange(1, options.max_count)
        self.count.setValue(options.default_count)
        self.prefix.setPlaceholderText(options.prefix)
        self.provenance.setEnabled(options.scheme != "tree-ring")

    def latent_shape(self) -> tuple[int, int, int]:
        return self.channels.value(), self.size.value(), self.size.value()

    def field(self, name: str):
        """The current scheme's widget for parameter `name` (a spin box or a line edit)."""
        return next(f.widget for f in self.fields[self.current_scheme()] if f.parameter.name == name)

    def values(self) -> dict:
        return {f.parameter.name: f.value() for f in self.fields[self.current_scheme()]}

    def seed_value(self) -> int | None:
        text = self.seed.text().strip()
        if not text:
            return None
        try:
            seed = int(text)
        except ValueError:
            raise ValueError(f"the seed {text!r} is not a whole number") from None
        if not 0 <= seed < 2**63:
            raise ValueError("the seed must be between 0 and 2^63 − 1")
        return seed

    def make_keys(self):
        """The new keys (a Tree-Ring `KeySet`, or a `KeyVault` for the other schemes); ValueError with one
        sentence when the parameters cannot make them."""
        from engine.key_parameters import default_provenance, make_keys
        from engine.key_vault import KeyVault

        scheme, shape, seed = self.current_scheme(), self.latent_shape(), self.seed_value()
        args = dict(values=self.values(), seed=seed, prefix=self.prefix.text().strip() or None)
        if scheme == "tree-ring":
            # drawn so that every key can be told apart from the others after inversion (a stated simulation);
            # when that is impossible at this size they are drawn anyway and the window warns about close pairs
            try:
                # 2000 draws (the CLI: 20000) keep the window responsive when the size allows no separable set
                return make_keys(scheme, self.count.value(), shape, separable=True, attempts=2000, **args)
            except ValueError:
                return make_keys(scheme, self.count.value(), shape, **args)
        keys = make_keys(scheme, self.count.value(), shape, **args).keys
        note = self.provenance.text().strip() or default_provenance(scheme, len(keys), shape, seed,
                                                                    "the treering-forensics window")
        return KeyVault(tuple(keys), provenance=note)
