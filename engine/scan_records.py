"""Per-image scan records: the resumable store behind `scan --records DIR` and the Ray executor.

Every finished image (analysed or failed) becomes one JSON object on one line of `DIR/records.jsonl`,
written with a single `write` on a file opened for appending and then fsynced, so a crash leaves either
the whole line or a torn last line, which the reader skips (and counts). A record carries the image's
SHA-256 and the *settings hash*: SHA-256 of everything that decides an image's numbers (tool version,
model id and weight hashes, weight precision, key set, every analysis setting except the batch size,
MD5 on or off). A rerun with the same settings skips every image whose (SHA-256, settings hash) already
has an analysis record; failures are recorded too (nothing is dropped silently) but are tried again.

A record holds the same numbers a case file holds (the case file's encoding: z_T as base64 float32,
non-finite floats as strings), so a run assembled from records gives the same scan JSON, report and case
as the run that made them. Pixels are not stored: `result_of_record(..., load_pixels=True)` decodes the
file again and uses them only when its SHA-256 still matches.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from engine.analysis import (AnalysisConfig, AnalysisRun, ImageAnalysis, ImageFailure, _config_json, utc_now)
from engine.case_file import (CaseFileError, _failure_from, _failure_json, _method_from, _method_json,
                              _tuple_or_none)
from engine.evidence_paths import NotAnalysed
from engine.intake import EvidenceError, EvidenceImage, Preprocessing, load_evidence, shown_path
from engine.treering import KeySet

RECORD_FORMAT = "treering-forensics/scan-record"
RECORD_VERSION = 1
RECORDS_FILE = "records.jsonl"
SETTINGS_FOLDER = "settings"


@dataclass(frozen=True)
class RunMeta:
    """What an assembled run says about the model and settings (the fields of `AnalysisRun` that do not
    come from the images)."""

    model_id: str
    model_path: str
    model_kind: str
    image_size: int
    latent_shape: tuple[int, int, int]
    device: str
    dtype: str
    keys: KeySet
    config: AnalysisConfig
    weight_sha256: dict
    md5: bool = False
    calibration: dict | None = None     # which calibration the conclusions used (`CalibrationChoice.identity`)

    @classmethod
    def of(cls, model, keys: KeySet, config: AnalysisConfig, md5: bool = False, calibration=None) -> "RunMeta":
        from engine.device import device_name

        return cls(model.spec.id, str(model.path), model.kind, model.image_size, tuple(model.latent_shape),
                   device_name(model.device), str(model.dtype).replace("torch.", ""), keys, config,
                   dict(model.weight_sha256), md5, None if calibration is None else calibration.identity())

    def settings(self) -> dict:
        """Everything that decides an image's numbers, as plain JSON. The batch size is left out: an image's
        numbers do not depend on the batch it ran in (beyond float rounding), and a resumed scan may use
        another; the device is left out because a cluster mixes machines (its name is in each record). The
        calibration is in: a record's conclusions were drawn with it, so another calibration (or none) must not
        reuse them."""
        import engine

        config = _config_json(self.config)
        config.pop("batch_size", None)
        return {"tool_version": engine.__version__, "model_id": self.model_id,
                "model_weights_sha256": dict(sorted(self.weight_sha256.items())), "dtype": self.dtype,
                "keys": json.loads(self.keys.to_json()), "config": config, "md5": self.md5,
                "calibration": self.calibration}

    def settings_hash(self) -> str:
        canonical = json.dumps(self.settings(), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                               allow_nan=True)
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()


# ---------------------------------------------------------------------------------------------------
# One record


def _evidence_json(e: EvidenceImage) -> dict:
    pre = e.preprocessing
    return {"path": e.path, "sha256": e.sha256, "md5": e.md5, "size_bytes": e.size_bytes, "format": e.format,
            "width": e.width, "height": e.height, "mode": e.mode, "exif": dict(e.exif),
            "exif_orientation": e.exif_orientation, "frame_count": e.frame_count, "warnings": list(e.warnings),
            "preprocessing": {"original_size": list(pre.original_size), "target_size": pre.target_size,
                              "resized_to": list(pre.resized_to) if pre.resized_to is not None else None,
                              "crop_box": list(pre.crop_box) if pre.crop_box is not None else None,
                              "mode_conversion": pre.mode_conversion},
            "pixels_shape": list(e.pixels.shape)}


def record_of(result: ImageAnalysis | ImageFailure, settings_hash: str, device: str, worker: str = "") -> dict:
    """The record of one finished image (plain JSON: strict, non-finite floats as strings)."""
    common = {"format": RECORD_FORMAT, "version": RECORD_VERSION, "settings_sha256": settings_hash,
              "utc": utc_now(), "device": device, "worker": worker or socket.gethostname()}
    if isinstance(result, ImageAnalysis):
        return {**common, "kind": "analysis", "sha256": result.evidence.sha256, "path": result.evidence.path,
                "evidence": _evidence_json(result.evidence),
                "methods": [_method_json(r) for r in result.methods.values()]}
    return {**common, "kind": "failure", "sha256": result.sha256, "path": result.path,
            "failure": _failure_json(result)}


def _evidence_from(d: dict, path: str, load_pixels: bool) -> EvidenceImage:
    pre = d["preprocessing"]
    shape = tuple(d["pixels_shape"])
    pixels = None
    if load_pixels:
        try:
            loaded = load_evidence(path, int(pre["target_size"]))
            if loaded.sha256 == d["sha256"]:
                pixels = loaded.pixels
        except EvidenceError:
            pass
    if pixels is None:      # not asked for, or the file changed or went: blank, never another file's pixels
        pixels = np.zeros(shape, dtype=np.float32)
    preprocessing = Preprocessing(
        original_size=_tuple_or_none(pre["original_size"], 2, "original size"), target_size=int(pre["target_size"]),
        resized_to=_tuple_or_none(pre["resized_to"], 2, "resize"), crop_box=_tuple_or_none(pre["crop_box"], 4, "crop"),
        mode_conversion=pre["mode_conversion"])
    return EvidenceImage(path=path, sha256=d["sha256"], size_bytes=int(d["size_bytes"]), format=d["format"],
                         width=int(d["width"]), height=int(d["height"]), mode=d["mode"],
                         exif={str(k): str(v) for k, v in d["exif"].items()},
                         exif_orientation=d["exif_orientation"], frame_count=int(d["frame_count"]),
                         warnings=tuple(d["warnings"]), preprocessing=preprocessing, pixels=pixels, md5=d.get("md5"))


def result_of_record(record: dict, path: str | None = None,
                     load_pixels: bool = False) -> ImageAnalysis | ImageFailure:
    """The analysis or failure a record holds. `path`: where the file is now (a resumed scan may reach the
    same bytes by another name); `load_pixels`: decode the file for the evidence view (else blank)."""
    try:
        if record["kind"] == "analysis":
            methods = {}
            for md in record["methods"]:
                r = _method_from(md, "record method")
                methods[r.method] = r
            return ImageAnalysis(_evidence_from(record["evidence"], path or record["path"], load_pixels), methods)
        failure = _failure_from(record["failure"])
        return replace(failure, path=path) if path else failure
    except (KeyError, TypeError, ValueError, CaseFileError) as exc:
        raise ValueError(f"a scan record for {shown_path(record.get('path', '?'))} is damaged ({exc})") from None


# ---------------------------------------------------------------------------------------------------
# The store


class RecordStore:
    """`DIR/records.jsonl` (append-only) and `DIR/settings/<hash>.json` (what each settings hash means)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"--records {shown_path(self.folder)}: not a folder")
        self.path = self.folder / RECORDS_FILE
        self.torn_lines = 0

    def prepare(self, meta: RunMeta) -> str:
        """Create the folder, write what the settings hash stands for, return the hash."""
        self.folder.mkdir(parents=True, exist_ok=True)
        h = meta.settings_hash()
        described = self.folder / SETTINGS_FOLDER / f"{h}.json"
        if not described.exists():
            from engine.atomic_write import write_json_atomic

            described.parent.mkdir(exist_ok=True)
            write_json_atomic(described, meta.settings(), indent=1, sort_keys=True)
        return h

    def append(self, record: dict) -> None:
        """One record, one `write` of one line to a file opened for appending, then fsync: readers never
        see half a record except a torn last line after a crash, which `records()` skips."""
        line = (json.dumps(record, ensure_ascii=True, allow_nan=False, separators=(",", ":")) + "\n").encode("ascii")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"{self.path}: short write ({written} of {len(line)} bytes)")
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> Iterator[dict]:
        self.torn_lines = 0
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            for raw in f:
                try:
                    record = json.loads(raw)
                except ValueError:
                    self.torn_lines += 1       # a crash mid-line (only the last can be) or damage
                    continue
                if isinstance(record, dict) and record.get("format") == RECORD_FORMAT:
                    yield record

    def done(self, settings_hash: str) -> dict[str, dict]:
        """SHA-256 → the latest analysis record made with these settings."""
        return {r["sha256"]: r for r in self.records()
                if r.get("kind") == "analysis" and r.get("settings_sha256") == settings_hash
                and isinstance(r.get("sha256"), str)}


def devices_of(records: Iterable[dict]) -> set[str]:
    return {r["device"] for r in records if isinstance(r.get("device"), str) and r["device"]}


def split_done(paths: Iterable[str], done: dict[str, dict]) -> tuple[list[str], dict[str, dict]]:
    """(paths still to analyse, path → earlier record) by each file's SHA-256 now. A file that cannot be
    hashed is left to the analysis, which reports it."""
    from engine.intake import hash_file

    todo, reused = [], {}
    for p in paths:
        sha = hash_file(p).sha256 if done else None
        if sha is not None and sha in done:
            reused[p] = done[sha]
        else:
            todo.append(p)
    return todo, reused


def assemble_run(meta: RunMeta, paths: Iterable[str], results: dict[str, ImageAnalysis | ImageFailure], *,
                 started_utc: str, cancelled: bool, software: dict, notes: Iterable[str] = (),
                 not_analysed: Iterable[NotAnalysed] = (), device: str | None = None, calibration=None) -> AnalysisRun:
    """The `AnalysisRun` of a scan from its per-path results, in the order the paths were given (what
    `engine.analysis.analyze` gives); paths with no result (a cancel) are left out. `device`: where the images
    were analysed (a resumed or distributed run names every device its records come from)."""
    images, failures = [], []
    for p in paths:
        r = results.get(p)
        if r is None:
            continue
        (images if isinstance(r, ImageAnalysis) else failures).append(r)
    return AnalysisRun(
        model_id=meta.model_id, model_path=meta.model_path, model_kind=meta.model_kind, image_size=meta.image_size,
        latent_shape=meta.latent_shape, device=device or meta.device, dtype=meta.dtype, keys=meta.keys,
        config=meta.config, images=tuple(images), failures=tuple(failures), started_utc=started_utc,
        finished_utc=utc_now(), cancelled=cancelled, software=dict(software), notes=tuple(notes),
        weight_sha256=dict(meta.weight_sha256), not_analysed=tuple(not_analysed),
        **({"calibration": calibration} if calibration is not None else {}))
