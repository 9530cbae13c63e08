"""Persistent GUI settings (QSettings) and the analysis settings the window edits.

When TREERING_FORENSICS_CONFIG is set (tests, portable installs) the settings are an INI file in that
folder, next to the engine's models.json; otherwise the platform's usual place.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
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


@dataclass(frozen=True)
class AnalysisSettings:
    """What the "Advanced" section edits; `to_config` turns it into the engine's AnalysisConfig exactly
    as the CLI's `scan` options do (same defaults, same mapping), so GUI and CLI results agree."""

    methods: tuple[str, ...] = ("encoder", "gradient-free")
    iterations: int = 100
    lr: float | None = None              # None → the model's step for its optimiser, else the paper's
    optimizer: str | None = None         # None → the model's gradient-free optimiser
    schedule: str | None = None          # None → as lr
    precision: str = "auto"             # auto → the engine's fastest for the device (fp16 on CUDA)
    inversion: str | None = None         # None → per model (naive DDIM, backward Euler for flows)
    steps: int | None = None             # None → the model's default
    grid: str = "diffusers"
    prompt: str = ""
    guidance: float = 1.0
    fpr: float = 0.01
    score_target: str = "effective"      # the CLI's --score-target
    batch_size: int = 8
    device: str = "auto"
    dtype: str = "fp32"

    def to_json(self) -> dict:
        d = asdict(self)
        d["methods"] = list(self.methods)
        return d

    @classmethod
    def from_json(cls, data) -> "AnalysisSettings":
        if not isinstance(data, dict):
            return cls()
        names = {f.name for f in fields(cls)}
        clean = {k: v for k, v in data.items() if k in names}
        if "methods" in clean:
            clean["methods"] = tuple(str(m) for m in clean["methods"] or ())
        if "schedule" not in data and clean.get("optimizer") == "adam" and clean.get("lr") is None:
            # Saved before models carried their own optimiser (no "schedule" key then): "adam" was the
            # fixed default, not a choice, so the model's default applies.
            clean["optimizer"] = None
        try:
            return replace(cls(), **clean)
        except (TypeError, ValueError):
            return cls()

    def to_config(self, model):
        """AnalysisConfig for a loaded model; ValueError (one sentence) for an impossible combination."""
        from engine.analysis import AnalysisConfig, gradient_free_config
        from engine.decoder_inversion import DecoderInversionConfig
        from engine.denoiser import Conditioning

        base = AnalysisConfig.for_model(model)
        diffusion = replace(base.diffusion, **{k: v for k, v in dict(
            method=self.inversion, steps=self.steps, grid=self.grid).items() if v is not None})
        return replace(
            base, methods=tuple(self.methods), fpr=self.fpr, score_target=self.score_target, batch_size=self.batch_size, diffusion=diffusion,
            conditioning=Conditioning(self.prompt, self.guidance),
            gradient_free=gradient_free_config(model, iterations=self.iterations, optimizer=self.optimizer,
                                               lr=self.lr, schedule=self.schedule, precision=self.precision),
            gradient_based=DecoderInversionConfig("gradient-based", iterations=self.iterations))


def model_defaults(spec) -> dict:
    """The per-model part of the settings: diffusion inversion, steps and guidance from the model spec."""
    return {"inversion": "backward-euler" if spec.kind == "flow" else "naive",
            "steps": spec.default_steps, "guidance": spec.default_guidance}
