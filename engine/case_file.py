"""Case files: save an analysis session and reopen it later without recomputing.

A case file is one UTF-8 JSON document (``{"format": "treering-forensics/case", "version": 1, ...}``)
holding the complete `AnalysisRun`: model identity, software versions, keys, every setting, each
evidence file's path, SHA-256 and intake metadata, and every method's results, the recovered initial
noise z_T included (base64 of little-endian float32 with its shape), and each score's scheme-specific
statistic and its verdict's wording (`engine.watermarks.records`; keys of schemes other than Tree-Ring as their
public records only, never a secret). Evidence itself is never copied
into it: reopening re-hashes each evidence file where it was (or, if it moved together with the case
file, at the same relative place), reloads its pixels only when the bytes are unchanged, and returns a
warning for every file that changed, is missing or cannot be read.

Non-finite floats (e.g. the naive DDIM inversion residual, NaN) are stored as the strings "NaN",
"Infinity", "-Infinity" so the file stays strict JSON. A checksum of the content detects accidental
edits or damage (it is not a signature: anyone can recompute it). Written atomically.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.analysis import AnalysisConfig, AnalysisRun, ImageAnalysis, ImageFailure, MethodResult, utc_now
from engine.atomic_write import write_text_atomic
from engine.evidence_paths import NotAnalysed
from engine.intake import (EvidenceError, EvidenceImage, Preprocessing, shown_path, load_evidence,
                           sha256_file)
from engine.provenance import EvidenceStatus
from engine.treering_scoring import Verdict
from engine.verdicts import Conclusion
from engine.watermarks.base import keys_from_record
from engine.watermarks.records import score_detail, score_from_detail, verdict_with_wording, verdict_wording

CASE_FORMAT = "treering-forensics/case"
CASE_VERSION = 1
CASE_SUFFIX = ".trcase"
MAX_CASE_BYTES = 4 << 30
MAX_IMAGE_SIZE = 4096        # the largest model input this tool supports (512-pixel latents × 8)


class CaseFileError(ValueError):
    """A case file that cannot be read: not a case file, an unknown version, or damaged. One sentence."""


@dataclass(frozen=True)
class EvidenceCheck:
    """One evidence file as found when the case was reopened."""

    recorded_path: str          # the path stored in the case file (where it was analysed)
    path: str                   # where it was looked for / found now (the path in the rebuilt run)
    sha256_recorded: str
    sha256_now: str | None      # None when missing or unreadable
    status: EvidenceStatus

    @property
    def ok(self) -> bool:
        return self.status is EvidenceStatus.VERIFIED


@dataclass(frozen=True)
class LoadedCase:
    run: AnalysisRun
    info: dict                  # what the saver passed as `info` (case id, examiner, notes, ...)
    warnings: tuple[str, ...]   # one sentence each: changed / missing evidence, moved files, damage
    evidence: tuple[EvidenceCheck, ...]
    saved_utc: str
    saved_by: str               # tool version that wrote the file
    version: int
    path: Path
    audit: tuple[dict, ...] = ()     # the case's audit trail (engine.audit), as saved
    history: tuple[dict, ...] = ()   # the case folder's run history index (engine.case_folder), as saved


# ---------------------------------------------------------------------------------------------------
# Encoding helpers


def _f(v: float | None) -> float | str | None:
    if v is None:
        return None
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def _unf(v: Any, what: str) -> float:
    if isinstance(v, bool):
        raise CaseFileError(f"damaged case file: {what} is not a number")
    if isinstance(v, (int, float)):
        return float(v)
    if v in ("NaN", "Infinity", "-Infinity"):
        return float({"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}[v])
    raise CaseFileError(f"damaged case file: {what} is not a number ({v!r})")


def encode_array(a: np.ndarray) -> dict:
    """float32 array → {"dtype": "<f4", "shape": [...], "base64": ...}."""
    arr = np.ascontiguousarray(np.asarray(a, dtype="<f4"))
    return {"dtype": "<f4", "shape": list(arr.shape), "base64": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode_array(d: Any, what: str = "array") -> np.ndarray:
    if not isinstance(d, dict) or d.get("dtype") != "<f4":
        raise CaseFileError(f"damaged case file: {what} is not a little-endian float32 array")
    shape = d.get("shape")
    if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise CaseFileError(f"damaged case file: {what} has an invalid shape")
    try:
        raw = base64.b64decode(d.get("base64", ""), validate=True)
    except (ValueError, TypeError) as exc:
        raise CaseFileError(f"damaged case file: {what} is not valid base64 ({exc})") from None
    if len(raw) != 4 * math.prod(shape):
        raise CaseFileError(f"damaged case file: {what} holds {len(raw)} bytes, its shape {shape} needs "
                            f"{4 * math.prod(shape)}")
    return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)   # native order, writable copy


def _dataclass_to_json(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _dataclass_to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_dataclass_to_json(v) for v in obj]
    if isinstance(obj, float):
        return _f(obj)
    return obj


def _dataclass_from_json(cls: type, d: Any, what: str) -> Any:
    """Rebuild a (nested) frozen settings dataclass; fields missing from the file take their defaults,
    fields this version does not know are refused."""
    if not isinstance(d, dict):
        raise CaseFileError(f"damaged case file: {what} is not an object")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise CaseFileError(f"case file setting(s) {', '.join(unknown)} in {what} are unknown to this version of "
                            "treering-forensics: it was probably saved by a newer version")
    kwargs = {}
    for name, v in d.items():
        f = fields[name]
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if dataclasses.is_dataclass(default):
            kwargs[name] = _dataclass_from_json(type(default), v, f"{what}.{name}")
        elif isinstance(default, tuple) and isinstance(v, list):
            kwargs[name] = tuple(v)
        elif isinstance(default, float) and v is not None:
            kwargs[name] = _unf(v, f"{what}.{name}")
        else:
            kwargs[name] = v
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise CaseFileError(f"damaged case file: invalid {what} ({exc})") from None


def _content_checksum(payload: dict) -> str:
    body = {k: v for k, v in payload.items() if k != "content_sha256"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


# ---------------------------------------------------------------------------------------------------
# Saving


def _evidence_json(e: EvidenceImage, case_dir: Path) -> dict:
    absolute = os.path.abspath(e.path)
    try:
        relative = os.path.relpath(absolute, case_dir)
    except ValueError:              # another drive (Windows)
        relative = None
    pre = e.preprocessing
    return {"path": e.path, "abs_path": absolute, "relative_to_case": relative, "sha256": e.sha256,
            "size_bytes": e.size_bytes, "format": e.format, "width": e.width, "height": e.height, "mode": e.mode,
            "exif": dict(e.exif), "exif_orientation": e.exif_orientation, "frame_count": e.frame_count,
            "warnings": list(e.warnings),
            "preprocessing": {"original_size": list(pre.original_size), "target_size": pre.target_size,
                              "resized_to": list(pre.resized_to) if pre.resized_to is not None else None,
                              "crop_box": list(pre.crop_box) if pre.crop_box is not None else None,
                              "mode_conversion": pre.mode_conversion},
            "pixels_shape": list(e.pixels.shape), "md5": e.md5}


def _method_json(r: MethodResult) -> dict:
    v = r.verdict
    return {"method": r.method, "z0_residual": _f(r.z0_residual), "pixel_psnr_db": _f(r.pixel_psnr_db),
            "decoder_seconds": _f(r.decoder_seconds), "inversion_seconds": _f(r.inversion_seconds),
            "peak_memory_bytes": r.peak_memory_bytes, "inversion_residual": _f(r.inversion_residual),
            "z_t": encode_array(r.z_t),
            "scores": [{"key_id": s.key_id, "l1": _f(s.l1), "p_value": _f(s.p_value),
                        **({"detail": d} if (d := score_detail(s)) else {})} for s in r.scores],
            "verdict": {"predicted_key": v.predicted_key, "nearest_key": v.nearest_key, "nearest_l1": _f(v.nearest_l1),
                        "nearest_p_value": _f(v.nearest_p_value), "fpr": _f(v.fpr), "keys_tested": v.keys_tested,
                        "corrected_threshold": _f(v.corrected_threshold), **verdict_wording(v)},
            "conclusion": r.conclusion.to_json_dict() if r.conclusion is not None else None,
            "noise_statistics": {k: _f(x) for k, x in r.noise.items()},
            "round_trip_psnr_db": _f(r.round_trip_psnr_db)}


def _failure_json(f: ImageFailure) -> dict:
    return {"path": f.path, "abs_path": os.path.abspath(f.path), "message": f.message, "reason": f.reason,
            "sha256": f.sha256, "md5": f.md5, "hash_note": f.hash_note}


def case_payload(run: AnalysisRun, case_dir: Path, info: dict | None = None, audit: list[dict] | None = None,
                 history: list[dict] | None = None) -> dict:
    """The JSON document `save_case` writes (without touching any file)."""
    import engine

    payload = {
        "format": CASE_FORMAT, "version": CASE_VERSION, "saved_utc": utc_now(),
        "saved_by": f"treering-forensics {engine.__version__}",
        "info": dict(info or {}),
        "run": {
            "model_id": run.model_id, "model_path": run.model_path, "model_kind": run.model_kind,
            "image_size": run.image_size, "latent_shape": list(run.latent_shape), "device": run.device,
            "dtype": run.dtype, "started_utc": run.started_utc, "finished_utc": run.finished_utc,
            "cancelled": run.cancelled, "software": dict(run.software), "notes": list(run.notes),
            "weight_sha256": dict(run.weight_sha256),
            "keys": json.loads(run.keys.to_json()),
            "config": _dataclass_to_json(run.config),
            "images": [{"evidence": _evidence_json(a.evidence, case_dir),
                        "methods": [_method_json(r) for r in a.methods.values()],
                        **({"realignment": _f_tree(a.realignment.to_json_dict())} if a.realignment else {}),
                        **({"restoration": _f_tree(a.restoration.to_json_dict())} if a.restoration else {})}
                       for a in run.images],
            "failures": [_failure_json(f) for f in run.failures],
            "not_analysed": [{**n.to_json_dict(), "abs_path": os.path.abspath(n.path)} for n in run.not_analysed],
        },
        "audit": [dict(e) for e in (audit or [])],
        "history": [dict(h) for h in (history or [])],
    }
    payload["content_sha256"] = _content_checksum(payload)
    return payload


def save_case(run: AnalysisRun, path: str | os.PathLike[str], info: dict | None = None,
              audit: list[dict] | None = None, history: list[dict] | None = None) -> Path:
    """Write the whole run (no evidence copies) to `path` atomically; `info` (JSON-serialisable: case id,
    examiner, notes, ...), `audit` (the case's audit trail, engine.audit) and `history` (a case folder's run
    index) are stored as given and returned by `load_case`."""
    from engine.output_paths import check_not_evidence

    target = check_not_evidence(path, [a.evidence.path for a in run.images] + [f.path for f in run.failures]
                                + [n.path for n in run.not_analysed], "the case file")
    try:
        payload = case_payload(run, target.resolve().parent, info, audit, history)
        text = json.dumps(payload, indent=1, ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the case could not be serialised (is `info` plain JSON data?): {exc}") from exc
    write_text_atomic(target, text + "\n", encoding="ascii")
    return target


# ---------------------------------------------------------------------------------------------------
# Loading


def _get(d: dict, key: str, kind: type | tuple, what: str):
    if not isinstance(d, dict) or key not in d:
        raise CaseFileError(f"damaged case file: {what} has no {key!r}")
    v = d[key]
    if not isinstance(v, kind) or (isinstance(v, bool) and kind in (int, (int, float))):
        raise CaseFileError(f"damaged case file: {what}.{key} has the wrong type")
    return v


def _opt_int(v: Any, what: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise CaseFileError(f"damaged case file: {what} is not an integer")
    return v


def _method_from(d: dict, what: str) -> MethodResult:
    vd = _get(d, "verdict", dict, what)
    verdict = Verdict(predicted_key=vd.get("predicted_key"), nearest_key=_get(vd, "nearest_key", str, what),
                      nearest_l1=_unf(vd.get("nearest_l1"), f"{what} nearest L1"),
                      nearest_p_value=_unf(vd.get("nearest_p_value"), f"{what} nearest p-value"),
                      fpr=_unf(vd.get("fpr"), f"{what} fpr"), keys_tested=_get(vd, "keys_tested", int, what),
                      corrected_threshold=_unf(vd.get("corrected_threshold"), f"{what} threshold"))
    if verdict.predicted_key is not None and not isinstance(verdict.predicted_key, str):
        raise CaseFileError(f"damaged case file: {what} predicted key is not a string")
    verdict = verdict_with_wording(verdict, vd)      # a scheme's own wording; Tree-Ring's and older files: as is
    try:
        scores = tuple(score_from_detail(_get(s, "key_id", str, what), _unf(s.get("l1"), f"{what} L1"),
                                         _unf(s.get("p_value"), f"{what} p-value"), s.get("detail"), f"{what} score")
                       for s in _get(d, "scores", list, what))
    except ValueError as exc:
        if isinstance(exc, CaseFileError):
            raise
        raise CaseFileError(f"damaged case file: {exc}") from None
    conclusion = None
    if d.get("conclusion") is not None:         # cases saved before conclusions existed have none
        try:
            conclusion = Conclusion.from_json_dict(d["conclusion"])
        except ValueError as exc:
            raise CaseFileError(f"damaged case file: {what} conclusion: {exc}") from None
    noise = d.get("noise_statistics") or {}
    if not isinstance(noise, dict):
        raise CaseFileError(f"damaged case file: {what} noise statistics are not an object")
    return MethodResult(
        conclusion=conclusion, noise={str(k): _unf(x, f"{what} noise statistic") for k, x in noise.items()},
        round_trip_psnr_db=_unf(d["round_trip_psnr_db"], f"{what} round trip") if "round_trip_psnr_db" in d
        else math.nan,
        method=_get(d, "method", str, what), z0_residual=_unf(d.get("z0_residual"), f"{what} z0 residual"),
        pixel_psnr_db=_unf(d.get("pixel_psnr_db"), f"{what} PSNR"),
        decoder_seconds=_unf(d.get("decoder_seconds"), f"{what} seconds"),
        inversion_seconds=_unf(d.get("inversion_seconds"), f"{what} seconds"),
        peak_memory_bytes=_opt_int(d.get("peak_memory_bytes"), f"{what} peak memory"),
        z_t=decode_array(d.get("z_t"), f"{what} z_t"), scores=scores, verdict=verdict,
        inversion_residual=_unf(d.get("inversion_residual"), f"{what} inversion residual"))


def _f_tree(v: Any) -> Any:
    """Floats of a JSON tree in the case file's encoding (non-finite as strings)."""
    if isinstance(v, dict):
        return {k: _f_tree(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_f_tree(x) for x in v]
    return _f(v) if isinstance(v, float) else v


def _unf_tree(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _unf_tree(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_unf_tree(x) for x in v]
    return _unf(v, "a number") if v in ("NaN", "Infinity", "-Infinity") else v


def _separate_reading_from(d: Any, what: str, kind: str):
    """An image's separate reading as saved: `kind` "realignment" (the re-alignment search) or "restoration" (the
    restored reading). Cases saved without one, or before it existed: None."""
    if d is None:
        return None
    if kind == "realignment":
        from engine.search_record import ImageSearch as reading
        label = "re-alignment search"
    else:
        from engine.restored_record import ImageRestoration as reading
        label = "restored reading"
    try:
        return reading.from_json_dict(_unf_tree(d))
    except ValueError as exc:
        raise CaseFileError(f"damaged case file: {what} {label}: {exc}") from None


def _tuple_or_none(v: Any, n: int, what: str) -> tuple | None:
    if v is None:
        return None
    if not isinstance(v, list) or len(v) != n or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        raise CaseFileError(f"damaged case file: {what} is not {n} integers")
    return tuple(v)


def _locate(ed: dict, case_dir: Path) -> tuple[str, str | None]:
    """(path to use, note if it was found somewhere other than where it was analysed)."""
    recorded = ed["path"]
    absolute = ed.get("abs_path") if isinstance(ed.get("abs_path"), str) else None
    relative = ed.get("relative_to_case") if isinstance(ed.get("relative_to_case"), str) else None
    candidates = [recorded] + ([absolute] if absolute else [])
    for c in candidates:
        if os.path.lexists(c):
            return c, None
    if relative and not os.path.isabs(relative):
        moved = str(case_dir / relative)
        inside = os.path.realpath(moved).startswith(os.path.realpath(case_dir) + os.sep)
        # Only a file that moved *with* the case (inside its folder) is taken without the examiner's word:
        # a relative path climbing out of the folder could name any file on the machine.
        if inside and os.path.lexists(moved):
            return moved, (f"evidence {shown_path(recorded)} was not at its recorded place; found beside the case "
                           f"file at {shown_path(moved)}")
    return recorded, None


def _evidence_from(ed: dict, case_dir: Path, image_size: int, what: str) -> tuple[EvidenceImage, EvidenceCheck, list[str]]:
    recorded = _get(ed, "path", str, what)
    sha = _get(ed, "sha256", str, what)
    pre = _get(ed, "preprocessing", dict, what)
    shape = _get(ed, "pixels_shape", list, what)
    if shape != [3, image_size, image_size]:      # what intake makes for this model; checked before allocating
        raise CaseFileError(f"damaged case file: {what} has pixel shape {shape!r}, not [3, {image_size}, {image_size}]")
    exif = _get(ed, "exif", dict, what)
    preprocessing = Preprocessing(
        original_size=_tuple_or_none(pre.get("original_size"), 2, f"{what} original size"),
        target_size=_get(pre, "target_size", int, what),
        resized_to=_tuple_or_none(pre.get("resized_to"), 2, f"{what} resize"),
        crop_box=_tuple_or_none(pre.get("crop_box"), 4, f"{what} crop box"),
        mode_conversion=pre.get("mode_conversion"))
    path, note = _locate(ed, case_dir)
    warnings = [note] if note else []
    shown = shown_path(path)
    pixels = None
    now: str | None = None
    status = EvidenceStatus.VERIFIED
    if not os.path.lexists(path):
        status = EvidenceStatus.MISSING
        warnings.append(f"evidence {shown} is missing: its recorded results are shown, but it cannot be re-verified "
                        f"(recorded SHA-256 {sha}) and its pixels are not available")
    else:
        try:
            loaded = load_evidence(path, image_size)
            now = loaded.sha256
            if now == sha:
                if tuple(loaded.pixels.shape) == tuple(shape):
                    pixels = loaded.pixels
                else:
                    warnings.append(f"evidence {shown} is unchanged but now loads as {tuple(loaded.pixels.shape)} "
                                    f"pixels instead of {tuple(shape)}: its pixels are not shown")
                if loaded.preprocessing.describe() != preprocessing.describe():
                    warnings.append(f"evidence {shown}: this version of the tool would preprocess it differently "
                                    f"({loaded.preprocessing.describe()}) from the analysis "
                                    f"({preprocessing.describe()}); the recorded results are shown")
        except EvidenceError as exc:
            try:
                now = sha256_file(path)
            except EvidenceError:
                now = None
            if now is None:
                status = EvidenceStatus.UNREADABLE
                warnings.append(f"evidence {shown} cannot be read now ({exc}): it cannot be re-verified")
            elif now == sha:
                warnings.append(f"evidence {shown} is unchanged but can no longer be decoded ({exc}): its pixels are "
                                "not shown")
        if now is not None and now != sha:
            status = EvidenceStatus.CHANGED
            warnings.append(f"evidence {shown} has CHANGED since it was analysed: SHA-256 now {now}, recorded {sha}; "
                            "the results describe the earlier content and its pixels are not shown")
    if pixels is None:
        pixels = np.zeros(tuple(shape), dtype=np.float32)
    try:
        image = EvidenceImage(
            path=path, sha256=sha, size_bytes=_get(ed, "size_bytes", int, what), format=_get(ed, "format", str, what),
            width=_get(ed, "width", int, what), height=_get(ed, "height", int, what), mode=_get(ed, "mode", str, what),
            exif={str(k): str(v) for k, v in exif.items()},
            exif_orientation=_opt_int(ed.get("exif_orientation"), f"{what} EXIF orientation"),
            frame_count=_get(ed, "frame_count", int, what),
            warnings=tuple(str(w) for w in _get(ed, "warnings", list, what)),
            preprocessing=preprocessing, pixels=pixels,
            md5=ed.get("md5") if isinstance(ed.get("md5"), str) else None)
    except (TypeError, ValueError) as exc:
        raise CaseFileError(f"damaged case file: invalid {what} ({exc})") from None
    return image, EvidenceCheck(recorded, path, sha, now, status), warnings


def read_case_payload(path: str | os.PathLike[str]) -> dict:
    """Parse and check the envelope (format and version) of a case file."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_CASE_BYTES:
            raise CaseFileError(f"{shown_path(p)} is {size:,} bytes, too large for a case file")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CaseFileError(f"case file {shown_path(p)} does not exist") from None
    except IsADirectoryError:
        raise CaseFileError(f"{shown_path(p)} is a folder, not a case file") from None
    except UnicodeDecodeError:
        raise CaseFileError(f"{shown_path(p)} is not a treering-forensics case file (not UTF-8 text)") from None
    except OSError as exc:
        raise CaseFileError(f"case file {shown_path(p)} cannot be read ({exc.strerror or exc})") from None
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CaseFileError(f"{shown_path(p)} is not a treering-forensics case file (not valid JSON: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != CASE_FORMAT:
        raise CaseFileError(f"{shown_path(p)} is not a treering-forensics case file (expected format "
                            f"{CASE_FORMAT!r})")
    version = payload.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise CaseFileError(f"{shown_path(p)}: the case file version {version!r} is not a number")
    if version != CASE_VERSION:
        newer = " (written by a newer treering-forensics: update the tool to open it)" if version > CASE_VERSION else ""
        raise CaseFileError(f"{shown_path(p)}: case file format version {version} is not supported; this version "
                            f"reads version {CASE_VERSION}{newer}")
    return payload


def load_case(path: str | os.PathLike[str]) -> LoadedCase:
    """Reopen a case: the run exactly as saved (no recompute), with each evidence file re-hashed. Raises
    CaseFileError for anything that is not a readable case file of a supported version."""
    p = Path(path)
    payload = read_case_payload(p)
    warnings: list[str] = []
    recorded_sum = payload.get("content_sha256")
    try:
        actual_sum = _content_checksum(payload)
    except ValueError:
        actual_sum = None
    if recorded_sum != actual_sum:
        warnings.append(f"the case file {shown_path(p)} does not match its recorded checksum: it was edited or "
                        "damaged after it was saved")
    rd = _get(payload, "run", dict, "case")
    try:
        keys = keys_from_record(json.dumps(_get(rd, "keys", dict, "run")))    # Tree-Ring, or other schemes' public records
    except (ValueError, KeyError, TypeError) as exc:
        raise CaseFileError(f"damaged case file: the key set cannot be read ({exc})") from None
    config = _dataclass_from_json(AnalysisConfig, _get(rd, "config", dict, "run"), "settings")
    image_size = _get(rd, "image_size", int, "run")
    if not 8 <= image_size <= MAX_IMAGE_SIZE:
        raise CaseFileError(f"damaged case file: image size {image_size} outside 8 … {MAX_IMAGE_SIZE}")
    latent = _get(rd, "latent_shape", list, "run")
    if len(latent) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in latent):
        raise CaseFileError("damaged case file: the latent shape is not 3 integers")
    case_dir = p.resolve().parent
    images: list[ImageAnalysis] = []
    checks: list[EvidenceCheck] = []
    for n, item in enumerate(_get(rd, "images", list, "run"), start=1):
        what = f"image {n}"
        ev, check, w = _evidence_from(_get(item, "evidence", dict, what), case_dir, image_size, what)
        methods: dict[str, MethodResult] = {}
        for md in _get(item, "methods", list, what):
            r = _method_from(md, f"{what} method")
            methods[r.method] = r
        images.append(ImageAnalysis(ev, methods, _separate_reading_from(item.get("realignment"), what, "realignment"),
                                    _separate_reading_from(item.get("restoration"), what, "restoration")))
        checks.append(check)
        warnings += w
    failures = tuple(_failure_from(f) for f in _get(rd, "failures", list, "run"))
    not_analysed = tuple(_not_analysed_from(n) for n in rd.get("not_analysed", []) if isinstance(n, dict)) \
        if isinstance(rd.get("not_analysed"), list) else ()
    software = _get(rd, "software", dict, "run")
    run = AnalysisRun(
        model_id=_get(rd, "model_id", str, "run"), model_path=_get(rd, "model_path", str, "run"),
        model_kind=_get(rd, "model_kind", str, "run"), image_size=image_size, latent_shape=tuple(latent),
        device=_get(rd, "device", str, "run"), dtype=_get(rd, "dtype", str, "run"), keys=keys, config=config,
        images=tuple(images), failures=failures, started_utc=_get(rd, "started_utc", str, "run"),
        finished_utc=_get(rd, "finished_utc", str, "run"), cancelled=bool(_get(rd, "cancelled", bool, "run")),
        software={str(k): str(v) for k, v in software.items()},
        # optional: case files saved before these were recorded lack them
        notes=tuple(str(n) for n in rd.get("notes", []) if isinstance(n, str)) if isinstance(rd.get("notes"), list) else (),
        weight_sha256=({str(k): str(v) for k, v in rd["weight_sha256"].items()}
                       if isinstance(rd.get("weight_sha256"), dict) else {}),
        not_analysed=not_analysed)
    info = payload.get("info") if isinstance(payload.get("info"), dict) else {}
    return LoadedCase(run=run, info=info, warnings=tuple(warnings), evidence=tuple(checks),
                      saved_utc=str(payload.get("saved_utc", "")), saved_by=str(payload.get("saved_by", "")),
                      version=payload["version"], path=p, audit=_dict_list(payload.get("audit")),
                      history=_dict_list(payload.get("history")))


def _opt_str(d: dict, key: str) -> str | None:
    v = d.get(key)
    return v if isinstance(v, str) else None


def _failure_from(f: dict) -> ImageFailure:
    return ImageFailure(_get(f, "path", str, "failure"), _get(f, "message", str, "failure"),
                        _opt_str(f, "reason") or "", _opt_str(f, "sha256"), _opt_str(f, "md5"),
                        _opt_str(f, "hash_note") or "")


def _not_analysed_from(n: dict) -> NotAnalysed:
    return NotAnalysed(_get(n, "path", str, "file not analysed"), _get(n, "reason", str, "file not analysed"),
                       _opt_str(n, "sha256"), _opt_str(n, "md5"), _opt_str(n, "hash_note") or "")


def _dict_list(v: Any) -> tuple[dict, ...]:
    """A list of JSON objects (audit events, history entries) as saved; anything else in it is dropped."""
    return tuple(dict(e) for e in v if isinstance(e, dict)) if isinstance(v, list) else ()
