"""What the main window remembers between sessions: geometry, docks, splitters, the Advanced section,
the model, the key-set files (the bundled demo keys are always listed first), the re-alignment search
option and the restore-before-inverting option (each off unless it was on when the window closed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt

from forensics_app.gui.controls import DEMO_KEYS
from forensics_app.gui.restore_controls import RestoreChoice
from forensics_app.gui.search_controls import SearchChoice
from forensics_app.gui.settings import read_json, read_str, write_json

if TYPE_CHECKING:
    from forensics_app.gui.main_window import MainWindow


def restore_window(w: MainWindow) -> None:
    s = w.settings
    if DEMO_KEYS.is_file():
        w.key_chooser.add_entry("Demo keys (bundled)", str(DEMO_KEYS), select=False)
    for p in read_json(s, "keys/files", []):
        if isinstance(p, str) and os.path.isfile(p):
            w.key_chooser.add_entry(Path(p).name, p, select=False)
    wanted = read_str(s, "keys/current", str(DEMO_KEYS))
    paths = w.key_chooser.paths()
    idx = paths.index(os.path.abspath(wanted)) if os.path.abspath(wanted) in paths else 0
    if w.key_chooser.combo.count():
        w.key_chooser.combo.setCurrentIndex(idx)
        w.key_chooser._on_changed()
    w.model_chooser.populate(read_str(s, "model/current", "demo") or "demo")
    w.advanced_section.set_expanded(read_str(s, "ui/advanced_open", "false") == "true")
    w.advanced.search.set_choice(SearchChoice.from_json(read_json(s, "analysis/search", None)))
    w.advanced.restore.set_choice(RestoreChoice.from_json(read_json(s, "analysis/restore", None)))
    geometry = s.value("ui/geometry")
    if geometry is not None:
        w.restoreGeometry(geometry)
    else:
        w.resize(1440, 900)
        w.resizeDocks([w.log_dock], [130], Qt.Orientation.Vertical)
        w.left_splitter.setSizes([390, 510])
    state = s.value("ui/state")
    if state is not None:
        w.restoreState(state)
    for name, splitter in (("ui/main_splitter", w.main_splitter), ("ui/left_splitter", w.left_splitter)):
        v = s.value(name)
        if v is not None:
            splitter.restoreState(v)


def save_window(w: MainWindow) -> None:
    s = w.settings
    s.setValue("ui/geometry", w.saveGeometry())
    s.setValue("ui/state", w.saveState())
    s.setValue("ui/main_splitter", w.main_splitter.saveState())
    s.setValue("ui/left_splitter", w.left_splitter.saveState())
    s.setValue("ui/advanced_open", "true" if w.advanced_section.toggle.isChecked() else "false")
    if w.model_chooser.current_id():
        s.setValue("model/current", w.model_chooser.current_id())
    w.store_model_settings()
    try:
        search = w.advanced.search.choice()
    except ValueError:         # on with nothing ticked: remembered as off
        search = None
    write_json(s, "analysis/search", None if search is None else search.to_json())
    restore = w.advanced.restore.choice()
    write_json(s, "analysis/restore", None if restore is None else restore.to_json())
    if w.key_chooser.current_path():
        s.setValue("keys/current", w.key_chooser.current_path())
    write_json(s, "keys/files", [p for p in w.key_chooser.paths() if os.path.abspath(p) != str(DEMO_KEYS)])
    s.sync()
