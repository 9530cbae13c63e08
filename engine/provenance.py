"""Provenance: what was analysed, with what, and whether it is still the same.

One place for every fact a record must be able to re-check later:

* evidence hashes and their re-verification, in one status vocabulary (`EvidenceStatus`) used by the scan
  JSON, the report, case files and the window;
* the ground-truth manifest (`manifest.json`, written by `generate`): one reader with one size cap, one
  writer — always a *claim* of whoever made the images, never something this tool verified;
* the tool's version, its git commit when run from a checkout, and the versions of the libraries it ran on;
* SHA-256 of a model's weight files, recorded when the model is loaded and checked again at report time.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

import engine
from engine.intake import EvidenceError, open_regular_file, sha256_file
from engine.strict_json import read_json_object

MANIFEST_NAME = "manifest.json"
MAX_MANIFEST_BYTES = 16 << 20       # a manifest of a million images is ~60 MB; ours are KB: larger is refused


# ---------------------------------------------------------------------------------------------------
# Evidence re-verification


class EvidenceStatus(str, enum.Enum):
    """How an evidence file compares now with the hash recorded when it was analysed."""

    VERIFIED = "verified"       # same bytes
    CHANGED = "changed"         # different bytes: the results describe the earlier content
    MISSING = "missing"         # no file at the path any more
    UNREADABLE = "unreadable"   # there, but cannot be read (permissions, not a regular file, I/O error)

    @property
    def label(self) -> str:
        """How a signed record prints it: the failures in capitals so they cannot be overlooked."""
        return {"verified": "verified", "changed": "HASH MISMATCH", "missing": "FILE MISSING",
                "unreadable": "UNREADABLE"}[self.value]


@dataclass(frozen=True)
class Reverification:
    """An evidence file hashed again (at report time, when a case is reopened, before a run)."""

    path: str
    sha256_recorded: str
    sha256_now: str | None      # None when missing or unreadable
    status: EvidenceStatus
    detail: str                 # one sentence

    @property
    def ok(self) -> bool:
        return self.status is EvidenceStatus.VERIFIED

    def to_json_dict(self) -> dict:
        return {"path": self.path, "sha256_recorded": self.sha256_recorded, "sha256_now": self.sha256_now,
                "status": self.status.value, "detail": self.detail}


def reverify(path: str | os.PathLike[str], sha256_recorded: str) -> Reverification:
    """Hash the file now and compare with the hash recorded when it was analysed."""
    shown = str(path)
    if not os.path.lexists(path):
        return Reverification(shown, sha256_recorded, None, EvidenceStatus.MISSING,
                              "the file no longer exists at this path")
    try:
        now = sha256_file(path)
    except EvidenceError as exc:
        return Reverification(shown, sha256_recorded, None, EvidenceStatus.UNREADABLE, str(exc))
    if now == sha256_recorded:
        return Reverification(shown, sha256_recorded, now, EvidenceStatus.VERIFIED, "identical to the hash at intake")
    return Reverification(shown, sha256_recorded, now, EvidenceStatus.CHANGED,
                          "the file has changed since it was analysed: the results describe the earlier content")


# ---------------------------------------------------------------------------------------------------
# Ground-truth manifests


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, str | None] | None:
    """file name → claimed key id (None = claimed un-watermarked) from folder/manifest.json; None when there is
    no readable manifest. Untrusted input: size-capped, JSON only, entries of any other shape ignored.

    Accepts what `generate` writes ({"images": {"file.png": {"key": "key1" | null, "seed": 3}}}) and the
    older flat forms ({"file.png": {"key": ...}} or {"images": {"file.png": "key1"}})."""
    data = read_json_object(Path(folder) / MANIFEST_NAME, MAX_MANIFEST_BYTES)
    if data is None:
        return None
    images = data.get("images", data)
    if not isinstance(images, dict):
        return None
    out: dict[str, str | None] = {}
    for name, entry in images.items():
        if isinstance(entry, dict) and "key" in entry and (entry["key"] is None or isinstance(entry["key"], str)):
            out[str(name)] = entry["key"]
        elif isinstance(entry, str):
            out[str(name)] = entry
    return out


def manifest_labels(paths: Iterable[str]) -> dict[str, str | None]:
    """Claimed key per evidence path, from the manifest beside each file; paths without an entry are left out.
    The window's batch matrix and the report's both come from here, so they agree on the same folder."""
    manifests: dict[str, dict[str, str | None] | None] = {}
    out: dict[str, str | None] = {}
    for p in paths:
        folder = os.path.dirname(os.path.abspath(p))
        if folder not in manifests:
            manifests[folder] = read_manifest(folder)
        entries = manifests[folder]
        name = os.path.basename(p)
        if entries is not None and name in entries:
            out[p] = entries[name]
    return out


def update_manifest(folder: str | os.PathLike[str], model_id: str, entries: Mapping[str, Mapping]) -> Path:
    """Add `entries` (file name → {"key": id | None, "seed": int}) to folder/manifest.json, atomically; several
    keys may be generated into one folder. A manifest.json this tool cannot read as its own is not replaced:
    OutputRefused."""
    from engine.atomic_write import write_json_atomic

    manifest = own_manifest(folder) or {"model": model_id, "images": {}}
    manifest["images"].update({name: dict(entry) for name, entry in entries.items()})
    path = Path(folder) / MANIFEST_NAME
    write_json_atomic(path, manifest, indent=2)
    return path


def own_manifest(folder: str | os.PathLike[str]) -> dict | None:
    """The manifest.json this tool wrote in `folder` (None if there is none); OutputRefused if a file of that
    name is there but is not one of ours, so that generating into the folder would replace it."""
    from engine.output_paths import OutputRefused

    path = Path(folder) / MANIFEST_NAME
    if os.path.lexists(path):
        try:
            if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_MANIFEST_BYTES:
                raise ValueError("not a plain file of a manifest's size")
            existing = json.loads(path.read_text(encoding="utf-8"))
            if not (isinstance(existing, dict) and isinstance(existing.get("images"), dict)):
                raise ValueError("not a manifest")
        except (OSError, ValueError, RecursionError):
            raise OutputRefused(f"{path} exists and is not a manifest written by this tool: it is not replaced "
                                "(generate into another folder)") from None
        return existing
    return None


# ---------------------------------------------------------------------------------------------------
# The tool and its libraries


def tool_version() -> str:
    return engine.__version__


def git_commit() -> str:
    """The commit of the checkout the tool runs from, with "+ uncommitted changes" when tracked files differ
    from it; "unknown" outside a git checkout of this project (an installed wheel or bundle)."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=10,
                                 stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if not top or (Path(top) / "engine" / "provenance.py").resolve() != Path(__file__).resolve():
        return "unknown"            # not our own checkout (e.g. installed inside some other repository)
    commit = git("rev-parse", "HEAD")
    if not commit or not re.fullmatch(r"[0-9a-f]{40,64}", commit):
        return "unknown"
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit + (" + uncommitted changes" if status else "")


def software_versions() -> dict[str, str]:
    """Versions of the tool and of every library whose numbers could change a result."""
    import diffusers
    import numpy as np
    import scipy
    import torch

    cuda = torch.version.cuda if torch.cuda.is_available() else None
    return {"treering-forensics": tool_version(), "python": platform.python_version(),
            "torch": torch.__version__, "diffusers": diffusers.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "cuda": cuda or "none", "platform": platform.platform()}


# ---------------------------------------------------------------------------------------------------
# Model weights

WEIGHT_COMPONENTS = ("vae", "unet", "text_encoder")


MAX_WEIGHT_FILE_BYTES = 64 << 30      # SD 2.1's UNet is 3.5 GB in fp32; the largest open LDMs stay far below


@lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    # Keyed on (path, size, mtime) so repeated reports do not re-read gigabytes of weights.
    if size > MAX_WEIGHT_FILE_BYTES:
        raise EvidenceError(path, f"is {size:,} bytes, larger than any model weight file this tool reads")
    h = hashlib.sha256()
    with open_regular_file(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weight_files_in(folder: str | os.PathLike[str]) -> list[Path]:
    return sorted(p for sub in WEIGHT_COMPONENTS for p in (Path(folder) / sub).glob("*.safetensors"))


def folder_weight_hashes(folder: str | os.PathLike[str]) -> dict[str, str]:
    """SHA-256 of each weight file of a model folder (relative path → hex). Raises OSError if one cannot be
    read (EvidenceError is an OSError-like ValueError: it is converted)."""
    out = {}
    for p in weight_files_in(folder):
        st = p.stat()
        try:
            out[str(p.relative_to(folder))] = _sha256_cached(str(p), st.st_size, st.st_mtime_ns)
        except EvidenceError as exc:
            raise OSError(str(exc)) from None
    return out


def recheck_weight_hashes(model_path: str, recorded: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """The weight hashes a record should print, and a sentence saying how they were obtained: those recorded
    when the model was loaded, checked against the folder now; for records that have none, hashed now."""
    folder = Path(model_path)
    if recorded:
        recorded = dict(recorded)
        try:
            now = folder_weight_hashes(folder) if folder.is_dir() else None
        except OSError:
            now = None
        if now is None:
            return recorded, ("hashed when the model was loaded for the analysis; the folder could not be "
                              "re-read at report time")
        if now == recorded:
            return recorded, "hashed when the model was loaded for the analysis; the folder still holds them"
        return recorded, ("hashed when the model was loaded for the analysis. WARNING: the model folder now "
                          "holds different weight files")
    if not folder.is_dir():
        return {}, "the model folder no longer exists at the recorded path: weights could not be hashed"
    try:
        out = folder_weight_hashes(folder)
    except OSError as exc:
        return {}, f"a weight file could not be read ({exc})"
    if not out:
        return out, "no .safetensors weight files were found in the recorded model folder"
    return out, "hashed at report time from the recorded model folder"
