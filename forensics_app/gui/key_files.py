"""Model ▸ Import / Export / New keys: key-set files in and out of the key chooser."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QDialog, QFileDialog

from forensics_app.gui.new_keys_dialog import NewKeysDialog
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
        self.make_new(dialog)

    def make_new(self, dialog: NewKeysDialog, path: str | None = None) -> bool:
        """Make the dialog's keys and write them to `path` (asked for when None). Tree-Ring keys not saved stay
        in the chooser (export them later); a key vault not saved is discarded: its file is the keys' only
        record, and secrets held nowhere else must not be scanned with."""
        try:
            keys = dialog.make_keys()
        except ValueError as exc:
            self.window.report_error(str(exc))
            return False
        if getattr(keys, "schemes", ("tree-ring",)) == ("tree-ring",) and hasattr(keys, "save"):
            self.warn_if_close(keys)
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self.window, "Save the new keys", self._keys_dir(),
                                                  KEY_SET_FILTER)
        if not path:
            if not hasattr(keys, "for_scan"):
                self.chooser.add_entry(f"new key set ({len(keys)} keys, unsaved)", None, keys)
                return True
            self.window.log("the new keys were not saved, so they were discarded (a key vault file is their only "
                            "record)", "warning")
            return False
        if not hasattr(keys, "for_scan"):
            return self.save(keys, path)
        return self.save_vault(keys, path)

    def save_vault(self, vault, path: str) -> bool:
        """Write a key vault (atomically) and select it; the log names its keys by id and hash, never a secret."""
        try:
            vault.save(path)
        except (OSError, ValueError) as exc:
            self.window.report_error(f"could not write {path}: {exc}")
            return False
        keys = vault.for_scan()
        ids = ", ".join(keys.ids[:8]) + (" …" if len(keys) > 8 else "")
        self.window.log(f"wrote {len(keys)} {', '.join(vault.schemes)} key(s) to {path}: {ids}; content sha256 "
                        f"{vault.content_sha256()[:16]}")
        self.chooser.add_entry(Path(path).name, path, keys)
        self.window.record_keys_imported(f"{len(keys)} new key(s) ({ids}) written to {path}")
        return True
