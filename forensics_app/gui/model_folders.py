"""Model ▸ Add model folder: register a local diffusers folder under a new id and select it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from forensics_app.gui.controls import looks_like_diffusers_folder, unique_model_id
from forensics_app.gui.settings import read_str

if TYPE_CHECKING:
    from forensics_app.gui.main_window import MainWindow


class ModelFolders(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window

    def choose_dialog(self) -> None:
        w = self.window
        folder = QFileDialog.getExistingDirectory(w, "Add a diffusers model folder",
                                                  read_str(w.settings, "ui/model_dir", str(Path.home())))
        if folder:
            w.settings.setValue("ui/model_dir", folder)
            self.add(folder)

    def add(self, folder: str) -> str | None:
        """Register `folder` (once: a folder already registered is selected again); its model id, or None
        with a message."""
        from engine.model_registry import all_model_specs, register_user_model

        w, chooser = self.window, self.window.model_chooser
        if not looks_like_diffusers_folder(folder):
            w.report_error(f"'{folder}' is not a diffusers model folder (no model_index.json or vae/ inside)")
            return None
        existing = {s.id: s for s in all_model_specs()}
        for s in existing.values():
            if s.notes and os.path.abspath(s.notes) == os.path.abspath(folder):
                chooser.populate(s.id, prefer_found=False)
                return s.id
        model_id = unique_model_id(folder, set(existing))
        try:
            register_user_model(model_id, folder)
        except OSError as exc:
            w.report_error(f"could not remember the model folder: {exc}")
            return None
        w.log(f"registered model folder {folder} as {model_id!r}")
        chooser.populate(model_id, prefer_found=False)
        return model_id
