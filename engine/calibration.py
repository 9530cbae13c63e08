"""Calibration on the model itself: the null distribution of the detection statistic on the model's own
un-watermarked images, the identification statistic on its watermarked images at their own key, and the range
of the recovered noise's statistics — measured with exactly a scan's settings, and bound to them.

A calibration file records, per decoder-inversion method, the settings hash of the pipeline that made it;
with the model's id and weight hashes and the key set's hash. A scan uses a method's calibration only when
all of these match (`applicable`); otherwise that method is "uncalibrated" and the reason is stated.
How the conclusion uses it: `engine.verdicts`; how one is made or amended: `engine.calibration_making`; what it
can and cannot support: docs/algorithms.md §4.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.analysis import AnalysisConfig
    from engine.model_loader import LoadedModel
    from engine.treering import KeySet

CALIBRATION_FORMAT = "treering-forensics/calibration"
CALIBRATION_VERSION = 1
MAX_CALIBRATION_BYTES = 32 << 20
MAX_VALUES = 1_000_000


class CalibrationError(ValueError):
    """A calibration file that cannot be used; the message is one sentence naming the file and the reason."""


def canonical_sha256(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def keyset_sha256(keys: "KeySet") -> str:
    """A hash of the keys' content (ids included), independent of the file they came from."""
    return canonical_sha256([k.to_json_dict() for k in keys.keys])


def method_settings(config: "AnalysisConfig", method: str, dtype: str) -> dict:
    """Everything about a scan that changes one method's recovered z_T and scores (not the level, batch size
    or the other methods)."""
    dec = asdict(config.decoder_config(method))
    dec.pop("iterations") if method == "encoder" else None
    return {"method": method, "decoder": dec, "diffusion": asdict(config.diffusion),
            "conditioning": asdict(config.conditioning), "score_target": config.score_target, "dtype": dtype}


def settings_sha256(config: "AnalysisConfig", method: str, dtype: str) -> str:
    return canonical_sha256(method_settings(config, method, dtype))


@dataclass(frozen=True)
class MethodCalibration:
    method: str
    settings_sha256: str
    settings: dict
    clean_detection: tuple[float, ...]       # min over keys of the per-key p-value, per clean image
    identification_null: tuple[float, ...]   # exclusion statistic at the true key, per watermarked image
    coverage: dict[str, tuple[float, float]]  # noise statistic → [min, max] over every calibration image
    summary: dict = field(default_factory=dict)   # counts and the confusion on the calibration set itself
    # alteration label → the exclusion statistic at the true key of the watermarked images under that alteration
    # that identification would be asked of (engine.altered_calibration); empty in calibrations made without
    identification_null_altered: dict[str, tuple[float, ...]] = field(default_factory=dict)
    # alteration label → the detection statistic of the clean images under that alteration that a scan would
    # conclude on (inside the coverage; engine.altered_calibration); empty in calibrations made without
    detection_null_altered: dict[str, tuple[float, ...]] = field(default_factory=dict)
    # alteration label → {trace statistic: its least value among those images} where every image has more of it
    # than most of the same images unaltered (engine.noise_statistics.ALTERATION_TRACES; one trace per null): the
    # null then applies only to evidence that has at least as much of the trace (engine.verdicts.altered_detection);
    # absent: it applies to all evidence
    detection_null_altered_traces: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def min_supported_p(self) -> float:
        return 1 / (len(self.clean_detection) + 1)

    def identified_share(self) -> float | None:
        """The share of the calibration's watermarked images that its own conclusions named a key for
        (in-sample), or None when the summary does not say."""
        confusion = self.summary.get("in_sample_conclusions") if isinstance(self.summary, dict) else None
        if not isinstance(confusion, dict):
            return None
        rows = [row for truth, row in confusion.items() if truth != "clean" and isinstance(row, dict)]
        total = sum(v for row in rows for v in row.values() if isinstance(v, int))
        named = sum(v for row in rows for label, v in row.items()
                    if isinstance(v, int) and label not in ("inconclusive", "not_detected", "not_analysed"))
        return named / total if total else None

    def to_json_dict(self) -> dict:
        d = {"method": self.method, "settings_sha256": self.settings_sha256, "settings": self.settings,
             "clean_detection": list(self.clean_detection),
             "identification_null": list(self.identification_null),
             "coverage": {k: list(v) for k, v in self.coverage.items()}, "summary": self.summary}
        if self.identification_null_altered:   # absent, not empty, in files made without: their hash is unchanged
            d["identification_null_altered"] = {k: list(v) for k, v in self.identification_null_altered.items()}
        if self.detection_null_altered:
            d["detection_null_altered"] = {k: list(v) for k, v in self.detection_null_altered.items()}
        if self.detection_null_altered_traces:
            d["detection_null_altered_traces"] = {k: dict(v) for k, v in self.detection_null_altered_traces.items()}
        return d

    @classmethod
    def from_json_dict(cls, d) -> "MethodCalibration":
        if not isinstance(d, dict):
            raise ValueError("a method entry is not an object")

        def values(name, *, low=None, high=None, v=None):
            v = d.get(name) if v is None else v
            if not isinstance(v, list) or len(v) > MAX_VALUES:
                raise ValueError(f"{name} is not a list of at most {MAX_VALUES} numbers")
            out = []
            for x in v:
                if isinstance(x, bool) or not isinstance(x, (int, float)) or not np.isfinite(x):
                    raise ValueError(f"{name} holds a value that is not a finite number")
                if (low is not None and x < low) or (high is not None and x > high):
                    raise ValueError(f"{name} holds {x!r}, outside {low}…{high}")
                out.append(float(x))
            return tuple(out)

        coverage = d.get("coverage", {})
        if not isinstance(coverage, dict):
            raise ValueError("coverage is not an object")
        cov = {}
        for name, pair in coverage.items():
            if (not isinstance(pair, list) or len(pair) != 2 or not all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) for x in pair)
                    or pair[0] > pair[1]):
                raise ValueError(f"coverage of {name!r} is not a finite [low, high] pair")
            cov[str(name)] = (float(pair[0]), float(pair[1]))
        for name in ("method", "settings_sha256"):
            if not isinstance(d.get(name), str):
                raise ValueError(f"{name} is missing")
        if not isinstance(d.get("settings"), dict) or not isinstance(d.get("summary", {}), dict):
            raise ValueError("settings or summary is not an object")
        clean = values("clean_detection", low=0.0, high=1.0)
        if not clean:
            raise ValueError("no clean calibration values")
        def by_alteration(name, **bounds):
            v = d.get(name, {})
            if not isinstance(v, dict) or len(v) > 1000:
                raise ValueError(f"{name} is not an object of at most 1000 alterations")
            return {str(label): values(f"{name}[{label!r}]", v=x, **bounds) for label, x in v.items()}

        detection_altered = by_alteration("detection_null_altered", low=0.0, high=1.0)
        traces = d.get("detection_null_altered_traces", {})
        if not isinstance(traces, dict) or not set(traces) <= set(detection_altered):
            raise ValueError("detection_null_altered_traces is not an object over detection_null_altered's labels")
        trace_values = {}
        for label, v in traces.items():
            if not isinstance(v, dict) or not v or not all(
                    isinstance(name, str) and isinstance(x, (int, float)) and not isinstance(x, bool)
                    and np.isfinite(x) for name, x in v.items()):
                raise ValueError(f"detection_null_altered_traces[{label!r}] is not an object of finite numbers")
            trace_values[str(label)] = {name: float(x) for name, x in v.items()}
        return cls(d["method"], d["settings_sha256"], d["settings"], clean, values("identification_null"), cov,
                   d.get("summary", {}), by_alteration("identification_null_altered"), detection_altered,
                   trace_values)


@dataclass(frozen=True)
class Calibration:
    model_id: str
    model_weights_sha256: dict[str, str]
    keyset_sha256: str
    key_ids: tuple[str, ...]
    methods: dict[str, MethodCalibration]
    counts: dict[str, int]                  # "clean" and one per key id
    source: str                             # how the images were made or where they came from
    created_utc: str
    software: dict[str, str]
    path: str = ""                          # where it was read from (not part of the content)

    def content(self) -> dict:
        return {"format": CALIBRATION_FORMAT, "version": CALIBRATION_VERSION, "model": self.model_id,
                "model_weights_sha256": dict(self.model_weights_sha256), "keyset_sha256": self.keyset_sha256,
                "key_ids": list(self.key_ids), "counts": dict(self.counts), "source": self.source,
                "created_utc": self.created_utc, "software": dict(self.software),
                "methods": {m: c.to_json_dict() for m, c in self.methods.items()}}

    @property
    def content_sha256(self) -> str:
        return canonical_sha256(self.content())

    def describe(self) -> str:
        per_key = ", ".join(f"{self.counts.get(k, 0)} {k}" for k in self.key_ids)
        return (f"{Path(self.path).name or 'calibration'} ({self.counts.get('clean', 0)} clean, {per_key}; "
                f"{self.created_utc[:10]})")

    def to_json(self) -> str:
        d = self.content()
        d["content_sha256"] = self.content_sha256
        return json.dumps(d, indent=1)

    def save(self, path) -> None:
        from engine.atomic_write import write_text_atomic

        write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path) -> "Calibration":
        """Read and check a calibration file; CalibrationError (one sentence) for anything unusable."""
        from engine.intake import EvidenceError, open_regular_file

        name = str(path)
        try:
            with open_regular_file(path) as f:
                raw = f.read(MAX_CALIBRATION_BYTES + 1)
        except (EvidenceError, OSError) as exc:
            raise CalibrationError(f"cannot read calibration file {name}: {exc}") from None
        if len(raw) > MAX_CALIBRATION_BYTES:
            raise CalibrationError(f"calibration file {name} is larger than {MAX_CALIBRATION_BYTES >> 20} MiB")

        def refuse_constant(token):
            raise ValueError(f"{token} is not a JSON number")

        try:
            d = json.loads(raw.decode("utf-8"), parse_constant=refuse_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise CalibrationError(f"calibration file {name} is not valid JSON: {str(exc)[:120]}") from None
        try:
            if not isinstance(d, dict) or d.get("format") != CALIBRATION_FORMAT:
                raise ValueError(f"not a calibration file (expected format {CALIBRATION_FORMAT!r})")
            if d.get("version") != CALIBRATION_VERSION:
                raise ValueError(f"calibration version {d.get('version')!r} is not {CALIBRATION_VERSION}")
            methods = d.get("methods")
            if not isinstance(methods, dict) or not methods:
                raise ValueError("no methods")
            counts = d.get("counts")
            if not isinstance(counts, dict) or not all(isinstance(v, int) and v >= 0 for v in counts.values()):
                raise ValueError("counts are not whole numbers")
            weights = d.get("model_weights_sha256")
            if not isinstance(weights, dict) or not all(isinstance(v, str) for v in weights.values()):
                raise ValueError("model_weights_sha256 is not a table of hashes")
            key_ids = d.get("key_ids")
            if not isinstance(key_ids, list) or not all(isinstance(k, str) for k in key_ids):
                raise ValueError("key_ids is not a list of key ids")
            cal = cls(model_id=str(d.get("model")), model_weights_sha256=dict(weights),
                      keyset_sha256=str(d.get("keyset_sha256")), key_ids=tuple(key_ids),
                      methods={str(m): MethodCalibration.from_json_dict(c) for m, c in methods.items()},
                      counts=dict(counts), source=str(d.get("source", "")), created_utc=str(d.get("created_utc", "")),
                      software={str(k): str(v) for k, v in (d.get("software") or {}).items()}, path=name)
        except (ValueError, TypeError) as exc:
            raise CalibrationError(f"calibration file {name} is not usable: {exc}") from None
        if d.get("content_sha256") != cal.content_sha256:
            raise CalibrationError(f"calibration file {name} was changed after it was made (its content hash does "
                                   "not match): refused")
        return cal

    def applicable(self, model: "LoadedModel", keys: "KeySet", config: "AnalysisConfig"
                   ) -> tuple[dict[str, MethodCalibration], dict[str, str]]:
        """The method calibrations that apply to this scan, and for each method that is left uncalibrated,
        why (one phrase)."""
        reasons: dict[str, str] = {}
        whole = None
        if self.model_id != model.spec.id:
            whole = f"the calibration is for model {self.model_id!r}, not {model.spec.id!r}"
        elif model.weight_sha256 and self.model_weights_sha256 and dict(model.weight_sha256) != self.model_weights_sha256:
            whole = "the model's weights differ from those the calibration was made with"
        elif keyset_sha256(keys) != self.keyset_sha256:
            whole = "the key set differs from the one the calibration was made with"
        dtype = str(model.dtype).replace("torch.", "")
        usable = {}
        for method in config.methods:
            if whole:
                reasons[method] = whole
            elif method not in self.methods:
                reasons[method] = f"the calibration has no {method} entry"
            elif self.methods[method].settings_sha256 != settings_sha256(config, method, dtype):
                reasons[method] = "the scan's settings for this method differ from the calibration's"
            else:
                usable[method] = self.methods[method]
        return usable, reasons


def shipped_calibration_path(model_id: str) -> Path | None:
    """The calibration shipped for a bundled model (resources/calibrations/<id>.json), if there is one."""
    from engine.resources import resource_path

    p = resource_path("calibrations", f"{Path(model_id).name}.json")
    return p if p.is_file() else None


@dataclass(frozen=True)
class CalibrationChoice:
    """What a scan uses: per method, the calibration that applies, and for the others why not."""

    calibration: Calibration | None
    usable: dict[str, MethodCalibration] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    origin: str = "none"                  # "file" (asked for), "shipped" (bundled for the model), "none", "off"

    def for_method(self, method: str) -> MethodCalibration | None:
        return self.usable.get(method)

    def status(self, method: str) -> str:
        """One phrase for people: which calibration a method used, or why none."""
        if method in self.usable and self.calibration is not None:
            return f"calibrated with {self.calibration.describe()}"
        if method in self.reasons:
            return f"uncalibrated: {self.reasons[method]}"
        return "uncalibrated: no calibration for this model" if self.origin == "none" else "uncalibrated"

    def identity(self) -> dict | None:
        """What decides the conclusions: the calibration's content hash and the methods it calibrates (None
        when no method is calibrated). Scan records are reused only under the same identity."""
        if self.calibration is None or not self.usable:
            return None
        return {"content_sha256": self.calibration.content_sha256, "methods": sorted(self.usable)}

    def to_json_dict(self) -> dict:
        c = self.calibration
        return {"origin": self.origin, "file": c.path if c else None, "content_sha256": c.content_sha256 if c else None,
                "description": c.describe() if c else None, "methods_calibrated": sorted(self.usable),
                "uncalibrated_reasons": dict(self.reasons)}


NO_CALIBRATION = CalibrationChoice(None)


def choose_calibration(model: "LoadedModel", keys: "KeySet", config: "AnalysisConfig", path=None,
                       use_shipped: bool = True, enabled: bool = True) -> CalibrationChoice:
    """The calibration a scan uses. An explicitly named file must load and apply to every method it has an
    entry for that the scan runs (CalibrationError otherwise: the user asked for it, so a mismatch is an
    error, not a silent fall-back). Without one, the calibration shipped for a bundled model is used where it
    applies, and the reasons where it does not are kept. `enabled` False (`--no-calibration`): none, and
    that is the reason stated."""
    if not enabled:
        return CalibrationChoice(None, {}, {m: "calibration turned off for this scan (--no-calibration)"
                                           for m in config.methods}, "off")
    if path is not None:
        cal = Calibration.load(path)
        usable, reasons = cal.applicable(model, keys, config)
        if not usable:
            why = next(iter(reasons.values()), "it has no entry for the methods run")
            raise CalibrationError(f"calibration file {path} does not apply to this scan: {why}")
        return CalibrationChoice(cal, usable, reasons, "file")
    shipped = shipped_calibration_path(model.spec.id) if use_shipped and model.spec.bundled else None
    if shipped is None:
        return CalibrationChoice(None, {}, {m: "no calibration for this model (make one with `calibrate`)"
                                           for m in config.methods}, "none")
    try:
        cal = Calibration.load(shipped)
    except CalibrationError as exc:
        return CalibrationChoice(None, {}, {m: str(exc) for m in config.methods}, "shipped")
    usable, reasons = cal.applicable(model, keys, config)
    return CalibrationChoice(cal, usable, reasons, "shipped")
