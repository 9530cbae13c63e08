"""Calibration on the model itself: the null distribution of the detection statistic on the model's own
un-watermarked images, the identification statistic on its watermarked images at their own key, and the range
of the recovered noise's statistics — measured with exactly a scan's settings, and bound to them.

A calibration file records, per decoder-inversion method, the settings hash of the pipeline that made it;
with the model's id and weight hashes and the key set's hash. A scan uses a method's calibration only when
all of these match (`applicable`); otherwise that method is "uncalibrated" and the reason is stated.
How the conclusion uses it: `engine.verdicts`; what it can and cannot support: docs/algorithms.md §4.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    from engine.analysis import AnalysisConfig
    from engine.attacks import Attack
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
        altered = d.get("identification_null_altered", {})
        if not isinstance(altered, dict) or len(altered) > 1000:
            raise ValueError("identification_null_altered is not an object of at most 1000 alterations")
        altered = {str(name): values(f"identification_null_altered[{name!r}]", v=v) for name, v in altered.items()}
        return cls(d["method"], d["settings_sha256"], d["settings"], clean, values("identification_null"), cov,
                   d.get("summary", {}), altered)


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


# -- making one ---------------------------------------------------------------------------------------------

class _Analyser:
    """Scores, exclusion statistics and noise statistics of recovered latents, and the conclusions a
    calibration draws on them: what making a calibration and adding to one share."""

    def __init__(self, keys: "KeySet", score_target: str, method: str):
        from engine.noise_statistics import key_region
        from engine.watermarks import independent_key_ids, scheme_for

        self.keys, self.score_target, self.method = keys, score_target, method
        self.scheme = scheme_for(keys)
        self.independent = independent_key_ids(keys)
        self.region = key_region(keys)

    def analyse(self, z: np.ndarray, extra: Sequence[dict] | None = None):
        """(scores, exclusion or None, noise statistics with `extra` — per image, statistics of the evidence
        itself — merged in)."""
        import torch

        from engine.noise_statistics import noise_statistics

        t = torch.from_numpy(np.asarray(z, dtype=np.float32))
        scores = self.scheme.score(t, self.keys, self.score_target)
        excl = self.scheme.exclusion(t, self.keys, self.score_target) if hasattr(self.scheme, "exclusion") else None
        extra = extra or [{}] * len(z)
        noise = [{**noise_statistics(x, self.region).values, **e} for x, e in zip(z, extra)]
        return scores, excl, noise

    def conclusions(self, analysed, fpr: float, calibration: MethodCalibration) -> list:
        from engine.verdicts import Evidence, conclude

        scores, excl, noise = analysed
        return [conclude(Evidence(s, None if excl is None else excl[0][i], 0 if excl is None else excl[1], noise[i],
                                  self.independent), fpr, calibration, self.method) for i, s in enumerate(scores)]

    def tally(self, analysed, fpr: float, calibration: MethodCalibration) -> dict[str, int]:
        """How the calibrated conclusion reads these images: label (key named, or outcome) → count."""
        row: dict[str, int] = {}
        for c in self.conclusions(analysed, fpr, calibration):
            label = c.key if c.outcome == "identified" else c.outcome
            row[label] = row.get(label, 0) + 1
        return row

    def altered_null(self, calibration: MethodCalibration, altered_z_t: Mapping[str, Mapping[str, np.ndarray]],
                     altered_pixel_statistics: Mapping[str, Mapping[str, Sequence[dict]]]
                     ) -> dict[str, tuple[float, ...]]:
        """Per alteration, the exclusion statistic at the true key of the altered watermarked images that a scan
        would ask identification of: inside `calibration`'s coverage and detected at `ALTERED_DETECTION_LEVEL`
        (docs/algorithms.md §4.2)."""
        from engine.altered_calibration import ALTERED_DETECTION_LEVEL
        from engine.verdicts import OUTSIDE_CALIBRATION

        out: dict[str, tuple[float, ...]] = {}
        for label, groups in altered_z_t.items():
            values: list[float] = []
            for key_id, z in groups.items():
                if key_id not in self.keys.ids:
                    raise ValueError(f"altered calibration images for {key_id!r}, which is not in the key set")
                analysed = self.analyse(z, altered_pixel_statistics.get(label, {}).get(key_id))
                if analysed[1] is None:
                    continue
                j = self.keys.ids.index(key_id)
                for i, c in enumerate(self.conclusions(analysed, ALTERED_DETECTION_LEVEL, calibration)):
                    if c.detected and c.calibration != OUTSIDE_CALIBRATION:
                        values.append(float(analysed[1][0][i, j]))
            out[label] = tuple(values)
        return out


def method_calibration(method: str, settings: dict, keys: "KeySet", clean_z_t: np.ndarray,
                       keyed_z_t: Mapping[str, np.ndarray], score_target: str, fpr: float = 0.01,
                       pixel_statistics: Mapping[str, Sequence[dict]] | None = None,
                       altered_z_t: Mapping[str, Mapping[str, np.ndarray]] | None = None,
                       altered_pixel_statistics: Mapping[str, Mapping[str, Sequence[dict]]] | None = None
                       ) -> MethodCalibration:
    """One method's calibration from recovered latents: `clean_z_t` (N, C, h, w) of un-watermarked images and
    `keyed_z_t[key_id]` of images watermarked with that key; `pixel_statistics[group]`: per image, statistics
    of the evidence itself (e.g. `corner_fill`), in the same order. `altered_z_t[label][key_id]`: watermarked
    images under an alteration (`engine.altered_calibration`), with `altered_pixel_statistics[label][key_id]`;
    they add to the identification null only (never to the coverage or the detection null)."""
    analyser = _Analyser(keys, score_target, method)
    pixel_statistics = pixel_statistics or {}
    clean = analyser.analyse(clean_z_t, pixel_statistics.get("clean"))
    clean_t = tuple(float(min(s.p_value for s in row)) for row in clean[0])
    ident: list[float] = []
    all_noise = list(clean[2])
    keyed = {}
    for key_id, z in keyed_z_t.items():
        if key_id not in keys.ids:
            raise ValueError(f"calibration images for {key_id!r}, which is not in the key set")
        keyed[key_id] = analysed = analyser.analyse(z, pixel_statistics.get(key_id))
        all_noise += analysed[2]
        if analysed[1] is not None:
            ident += [float(v) for v in analysed[1][0][:, keys.ids.index(key_id)]]
    coverage = {name: (float(min(n[name] for n in all_noise)), float(max(n[name] for n in all_noise)))
                for name in all_noise[0]} if all_noise else {}
    provisional = MethodCalibration(method, canonical_sha256(settings), settings, clean_t, tuple(ident), coverage)
    provisional = replace(provisional, identification_null_altered=analyser.altered_null(
        provisional, altered_z_t or {}, altered_pixel_statistics or {}))
    # How the calibrated conclusion reads the calibration's own images (in-sample: an optimistic description,
    # the benchmark evaluates on disjoint seeds).
    confusion = {"clean": analyser.tally(clean, fpr, provisional),
                 **{key_id: analyser.tally(analysed, fpr, provisional) for key_id, analysed in keyed.items()}}
    summary = {"clean": len(clean_t), "watermarked": {k: int(len(v)) for k, v in keyed_z_t.items()},
               "in_sample_conclusions_at_fpr": fpr, "in_sample_conclusions": confusion}
    if altered_z_t:
        summary["altered_watermarked"] = {label: sum(len(z) for z in groups.values())
                                          for label, groups in altered_z_t.items()}
    return replace(provisional, summary=summary)


def with_altered_null(calibration: MethodCalibration, keys: "KeySet", score_target: str,
                      keyed_z_t: Mapping[str, np.ndarray], keyed_pixel_statistics: Mapping[str, Sequence[dict]],
                      altered_z_t: Mapping[str, Mapping[str, np.ndarray]],
                      altered_pixel_statistics: Mapping[str, Mapping[str, Sequence[dict]]]) -> MethodCalibration:
    """An existing calibration with the identification null under alteration added, its detection null and
    coverage unchanged. `keyed_z_t`: the calibration's own watermarked images recovered again (their exclusion
    statistics must reproduce its identification null: ValueError otherwise), for the in-sample rows of the
    watermarked groups; the clean row is kept as it was (the clean latents are not needed again)."""
    analyser = _Analyser(keys, score_target, calibration.method)
    keyed = {k: analyser.analyse(z, keyed_pixel_statistics.get(k)) for k, z in keyed_z_t.items()}
    again = [float(v) for k, a in keyed.items() for v in a[1][0][:, keys.ids.index(k)]]
    # recovered again on another machine or thread count, the statistics differ by ~1e-3 (float sums in another
    # order); images that are not the calibration's differ by ~1
    if len(again) != len(calibration.identification_null) or not np.allclose(
            again, calibration.identification_null, atol=0.02, rtol=0):
        raise ValueError(f"the watermarked images recovered again do not reproduce the {calibration.method} "
                         "calibration's identification null: they are not its images, or not with its settings")
    out = replace(calibration, identification_null_altered=analyser.altered_null(
        calibration, altered_z_t, altered_pixel_statistics))
    fpr = float(calibration.summary.get("in_sample_conclusions_at_fpr", 0.01))
    confusion = dict(calibration.summary.get("in_sample_conclusions", {}))
    confusion.update({k: analyser.tally(a, fpr, out) for k, a in keyed.items()})
    summary = {**calibration.summary, "in_sample_conclusions": confusion,
               "altered_watermarked": {label: sum(len(z) for z in groups.values())
                                       for label, groups in altered_z_t.items()}}
    return replace(out, summary=summary)


def calibration_from_latents(model_id: str, weight_sha256: Mapping[str, str], keys: "KeySet",
                             config: "AnalysisConfig", dtype: str, latents: Mapping[str, Mapping[str, np.ndarray]],
                             source: str, pixel_statistics: Mapping[str, Sequence[dict]] | None = None,
                             altered_latents: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]] | None = None,
                             altered_pixel_statistics: Mapping[str, Mapping[str, Sequence[dict]]] | None = None
                             ) -> Calibration:
    """A calibration from recovered latents: latents[method]["clean"] and latents[method][key_id];
    `pixel_statistics[group]` as for `method_calibration`; altered_latents[method][label][key_id] and
    `altered_pixel_statistics[label][key_id]`: the watermarked images under alterations
    (`engine.altered_calibration.recover_altered`)."""
    from engine.analysis import utc_now
    from engine.provenance import software_versions

    methods = {}
    for method, groups in latents.items():
        settings = method_settings(config, method, dtype)
        keyed = {k: v for k, v in groups.items() if k != "clean"}
        methods[method] = method_calibration(method, settings, keys, groups["clean"], keyed, config.score_target,
                                             config.fpr, pixel_statistics, (altered_latents or {}).get(method),
                                             altered_pixel_statistics)
    first = next(iter(latents.values()))
    counts = {name: int(len(z)) for name, z in first.items()}
    return Calibration(model_id=model_id, model_weights_sha256=dict(weight_sha256), keyset_sha256=keyset_sha256(keys),
                       key_ids=keys.ids, methods=methods, counts=counts, source=source, created_utc=utc_now(),
                       software=software_versions())


def with_evidence_coverage(calibration: Calibration, statistics: Sequence[dict]) -> Calibration:
    """The calibration with the range of evidence statistics it lacks added to every method's coverage:
    `statistics` per calibration image (`engine.noise_statistics.evidence_statistics` of all of its images, made
    again from their seeds). Those it already has must come out as they are (ValueError otherwise: the images
    are not the calibration's)."""
    if len(statistics) != sum(calibration.counts.values()):
        raise ValueError(f"{len(statistics)} images for a calibration of {sum(calibration.counts.values())}")
    names = set().union(*(s.keys() for s in statistics))
    ranges = {n: (float(min(s[n] for s in statistics)), float(max(s[n] for s in statistics))) for n in names}
    methods = {}
    for method, m in calibration.methods.items():
        for n in names & set(m.coverage):
            if not np.allclose(m.coverage[n], ranges[n]):
                raise ValueError(f"the images made again give {n} in {ranges[n]}, the calibration "
                                 f"{m.coverage[n]}: they are not its images")
        methods[method] = replace(m, coverage={**m.coverage, **{n: ranges[n] for n in names - set(m.coverage)}})
    return replace(calibration, methods=methods)


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


MIN_CLEAN = 10


def calibrate(model: "LoadedModel", keys: "KeySet", config: "AnalysisConfig", *, clean_count: int = 300,
              per_key_count: int = 100, work_dir=None, seed: int = 100_000, reference_dir=None,
              progress=None, alterations: Sequence["Attack"] = (),
              altered_per_key: int | None = None) -> Calibration:
    """Make a calibration with exactly `config`'s settings: generate `clean_count` un-watermarked and
    `per_key_count` images per key with the model (8-bit PNGs into `work_dir`, with a manifest), or take the
    images of `reference_dir` labelled by its manifest; analyse them; keep the statistics. Every image must be
    analysed (a failure is an error: a calibration with silent gaps would misstate its counts).
    `alterations` (e.g. `engine.altered_calibration.calibration_alterations()`; opt-in, see there): the first
    `altered_per_key` (None: all) watermarked images of each key are also analysed under each, in memory, for the
    identification null under alteration."""
    import tempfile

    from engine.analysis import analyze
    from engine.generation import GenerationConfig, generate_reference_set
    from engine.limits import require_int
    from engine.progress import NULL_PROGRESS

    progress = progress or NULL_PROGRESS
    groups: dict[str, list[str]] = {}
    if reference_dir is not None:
        from engine.intake import scan_evidence_paths
        from engine.provenance import manifest_labels

        found = scan_evidence_paths([reference_dir], recursive=False)
        labels = manifest_labels([str(p) for p in found.files])
        unlabelled = [str(p) for p in found.files if str(p) not in labels]
        if unlabelled:
            raise ValueError(f"{len(unlabelled)} image(s) in {reference_dir} have no entry in its manifest.json "
                             f"(e.g. {Path(unlabelled[0]).name}): a calibration must know which images are clean "
                             "and which key each carries")
        for path, label in labels.items():
            if label is not None and label not in keys.ids:
                raise ValueError(f"{Path(path).name} is labelled with key {label!r}, which is not in the key set")
            groups.setdefault("clean" if label is None else label, []).append(path)
        source = f"reference images in {reference_dir} labelled by its manifest"
    else:
        require_int(clean_count, "the number of clean calibration images (--count)", MIN_CLEAN, 1_000_000)
        require_int(per_key_count, "the number of calibration images per key (--per-key)", 0, 1_000_000)
        work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="calibration_"))
        gen = GenerationConfig(conditioning=config.conditioning)   # `generate`'s defaults
        for label, key, count in [("clean", None, clean_count)] + [(k.id, k, per_key_count) for k in keys.keys]:
            if count:
                made = generate_reference_set(model, key, count, work / label, seed=seed, config=gen,
                                              progress=progress)
                groups[label] = [str(work / label / m.file) for m in made]
        source = (f"generated by {model.spec.id}: {clean_count} clean and {per_key_count} per key, seeds {seed}…"
                  f"{seed + max(clean_count, per_key_count) - 1} (same seeds in every group), {gen.steps} sampling "
                  f"steps, into {work}")
    if len(groups.get("clean", ())) < MIN_CLEAN:
        raise ValueError(f"a calibration needs at least {MIN_CLEAN} clean images (has {len(groups.get('clean', ()))})")
    from engine.altered_calibration import describe_alterations, recover_altered
    from engine.noise_statistics import evidence_statistics
    from engine.pixel_levels import to_uint8

    alterations = tuple(alterations)
    if altered_per_key is not None:
        require_int(altered_per_key, "the number of altered calibration images per key (--altered-per-key)", 0,
                    1_000_000)
    latents: dict[str, dict[str, np.ndarray]] = {m: {} for m in config.methods}
    pixels: dict[str, list[dict]] = {}
    marked_pixels: dict[str, np.ndarray] = {}
    for label, paths in groups.items():
        run = analyze(model, keys, paths, config, progress=progress, calibration=NO_CALIBRATION)
        if run.cancelled:
            from engine.progress import Cancelled

            raise Cancelled()
        if run.failures:
            raise ValueError(f"{len(run.failures)} calibration image(s) could not be analysed, e.g. "
                             f"{run.failures[0].message}")
        for m in config.methods:
            latents[m][label] = np.stack([im.methods[m].z_t for im in run.images])
        pixels[label] = [evidence_statistics(im.evidence.pixels) for im in run.images]
        if alterations and label != "clean":
            chosen = run.images if altered_per_key is None else run.images[:altered_per_key]
            if chosen:   # as analysed, back to 8 bits exactly
                marked_pixels[label] = np.stack([to_uint8(im.evidence.pixels) for im in chosen])
    altered_latents = altered_stats = None
    if alterations and marked_pixels:
        altered_latents, altered_stats = recover_altered(model, config, marked_pixels, alterations, progress)
        per_key = ", ".join(f"{len(v)} {k}" for k, v in marked_pixels.items())
        source += f"; identification also calibrated on {per_key} of them under {describe_alterations(alterations)}"
    return calibration_from_latents(model.spec.id, model.weight_sha256, keys, config,
                                    str(model.dtype).replace("torch.", ""), latents, source, pixels,
                                    altered_latents, altered_stats)
