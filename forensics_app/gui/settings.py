"""Persistent GUI settings (QSettings): window state, recent files, and the saved analysis options (the
engine's `AnalysisOptions`, stored as JSON).

When TREERING_FORENSICS_CONFIG is set (tests, portable installs) the settings are an INI file in that
folder, next to the engine's models.json; otherwise the platform's usual place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = "treering-forensics"
APPLICATION = "treering-forensics"
MAX_RECENT = 10


def open_settings() -> QSettings:
    folder = os.environ.get("TREERING_FORENSICS_CONFIG")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(folder) / "gui.ini"), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def read_json(settings: QSettings, key: str, default):
    raw = settings.value(key)
    if raw is None:
        return default
    try:
        return json.loads(str(raw))
    except ValueError:
        return default


def write_json(settings: QSettings, key: str, value) -> None:
    settings.setValue(key, json.dumps(value))


def read_str(settings: QSettings, key: str, default: str = "") -> str:
    raw = settings.value(key)
    return default if raw is None else str(raw)


def remember_recent(settings: QSettings, key: str, path: str) -> list[str]:
    recent = [p for p in read_json(settings, key, []) if isinstance(p, str) and p != path]
    recent.insert(0, path)
    recent = recent[:MAX_RECENT]
    write_json(settings, key, recent)
    return recent
