"""Model ▸ Import / Export / New keys: key-set files in and out of the key chooser."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QDialog, QFileDialog

from forensics_app.gui.controls import NewKeysDialog
from forensics_app.gui.settings import read_str

if TYPE_CHECKING:
    from forensics_app.gui.main_window import MainWindow

KEY_SET_FILTER = "Key sets (*.json)"


class KeyFiles(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.chooser = window.key_chooser

    def _keys_dir(self, default: str = "") -> str:
        return read_str(self.window.settings, "ui/keys_dir", default)

    def import_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self.window, "Import keys", self._keys_dir(str(Path.home())),
            f"{KEY_SET_FILTER};;Reference tree-ring keys (*.npy);;All files (*)")
        if files:
            self.window.settings.setValue("ui/keys_dir", os.path.dirname(files[0]))
            self.import_files(files)

    def import_files(self, files: list[str]) -> None:
        from engine.key_vault import load_keys_for_scan
        from engine.treering import KeySet, import_reference_npy

        w = self.window
        npy = [f for f in files if f.lower().endswith(".npy")]
        for f in files:
            if f in npy:
                continue
            try:
                keys = load_keys_for_scan(f)       # a Tree-Ring key file or a key vault of any schemes
            except ValueError as exc:
                w.report_error(str(exc))
                continue
            self.chooser.add_entry(keys.name or Path(f).name, f, keys)
            w.log(f"imported {len(keys)} key(s) from {f}")
            self.warn_if_close(keys)
            w.record_keys_imported(f"{len(keys)} key(s) ({', '.join(keys.ids)}) from {f}")
        if npy:
            try:
                keys = KeySet(tuple(import_reference_npy(f) for f in npy), name="imported .npy keys")
            except ValueError as exc:
                w.report_error(str(exc))
                return
            self.chooser.add_entry(f"{len(keys)} imported .npy key(s) (unsaved)", None, keys)
            self.warn_if_close(keys)
            w.record_keys_imported(f"{len(keys)} reference key(s) from {', '.join(npy)}")
            w.log(f"imported {len(keys)} reference key(s); export them to keep them")

    def warn_if_close(self, keys) -> None:
        """Keys too close to be told apart after inversion (a stated simulation) get a warning in the log."""
        from engine.key_separability import separability

        for line in separability(keys).warnings():
            self.window.log(f"warning: {line}", "warning")

    def export_dialog(self) -> None:
        keys = self.chooser.current_keys()
        if keys is None:
            self.window.report_error("no key set to export")
            return
        path, _ = QFileDialog.getSaveFileName(self.window, "Export keys", self._keys_dir(), KEY_SET_FILTER)
        if path:
            self.save(keys, path)

    def save(self, keys, path: str) -> bool:
        if not hasattr(keys, "save"):           # keys read from a key vault: the vault file is the record
            self.window.report_error("keys of a key vault are exported by copying the vault file (it holds "
                                     "their secrets and provenance)")
            return False
        try:
            keys.save(path)
        except (OSError, ValueError) as exc:
            self.window.report_error(f"could not write {path}: {exc}")
            return False
        self.window.log(f"wrote {len(keys)} key(s) to {path}")
        self.chooser.add_entry(Path(path).name, path, keys)
        return True

    def _current_latent_shape(self):
        keys = self.chooser.current_keys()
        return tuple(keys.keys[0].latent_shape) if keys is not None else (4, 32, 32)

    def new_dialog(self) -> None:
        dialog = NewKeysDialog(self._current_latent_shape(), self.window)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        try:
            keys = dialog.make_keys()
        except ValueError as exc:
            self.window.report_error(str(exc))
            return
        self.warn_if_close(keys)
        path, _ = QFileDialog.getSaveFileName(self.window, "Save the new key set", self._keys_dir(), KEY_SET_FILTER)
        if path:
            self.save(keys, path)
        else:
            self.chooser.add_entry(f"new key set ({len(keys)} keys, unsaved)", None, keys)
