"""Which submitted files are evidence: the files a scan analyses, in order, and every other file found under the
submitted paths with why it is not analysed and its hashes — nothing found is silently dropped. Reading one
evidence file is `engine.intake`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.intake import IMAGE_SUFFIXES, EvidenceError, escape_invisible, hash_file, one_line


@dataclass(frozen=True)
class NotAnalysed:
    """A file found under a submitted folder (or submitted itself) that is not analysed, and why. Every
    file found is either analysed or listed as one of these, with its hashes when it can be read."""

    path: str
    reason: str                 # one sentence fragment: "not an image file suffix (.txt)", "hidden file" …
    sha256: str | None = None
    md5: str | None = None
    hash_note: str = ""         # why there is no hash ("not hashed: …"), else ""

    def to_json_dict(self) -> dict:
        d = {"path": self.path, "reason": self.reason, "sha256": self.sha256}
        if self.md5 is not None:
            d["md5"] = self.md5
        if self.hash_note:
            d["hash_note"] = self.hash_note
        return d


@dataclass(frozen=True)
class EvidenceScan:
    """What submitted paths hold: the files to analyse, in order, and every other file found, with why."""

    files: tuple[Path, ...]
    not_analysed: tuple[NotAnalysed, ...]


def _entry_kind(entry: os.DirEntry) -> str:
    """"file", "dir", "dirlink" (a link to a folder: not followed, loops) or "other" (FIFO, device, socket,
    dangling link), without ever opening the entry."""
    try:
        if entry.is_dir(follow_symlinks=False):
            return "dir"
        if entry.is_symlink():
            if os.path.isdir(entry.path):
                return "dirlink"
            return "file" if os.path.isfile(entry.path) else "other"
        return "file" if entry.is_file(follow_symlinks=False) else "other"
    except OSError:
        return "other"


def _other_reason(path: str) -> str:
    if os.path.islink(path) and not os.path.exists(path):
        return "a link to nothing (the file it names does not exist)"
    return "not a regular file (a pipe, device or socket)"


def scan_evidence_paths(paths: Iterable[str | os.PathLike[str]], recursive: bool = True,
                        md5: bool = False) -> EvidenceScan:
    """Files to analyse and files found but not analysed, for the CLI's `scan` and the window's drops.

    A folder contributes its image files (by suffix, sorted by name), walked into subfolders unless
    `recursive` is False; links to folders are not followed (they can loop). Everything else found is
    listed in `not_analysed` with its reason — not an image suffix, hidden (name starting with "."), not a
    regular file, a subfolder not searched — and hashed (SHA-256, MD5 if asked) when it can be read; the
    reason a hash is missing is recorded. An explicit file is analysed whatever its suffix. The same file
    named twice is listed once. A path that does not exist raises EvidenceError."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    skipped: list[NotAnalysed] = []
    seen: set[str] = set()
    taken: set[str] = set()

    def identity(p: str | os.PathLike[str]) -> str:
        return os.path.normcase(os.path.abspath(p))

    def skip(p: str, reason: str, hash_it: bool = True, why_not: str = "") -> None:
        ident = identity(p)
        if ident in seen:
            return
        seen.add(ident)
        if hash_it:
            h = hash_file(p, md5)
            skipped.append(NotAnalysed(p, reason, h.sha256, h.md5, h.note))
        else:
            skipped.append(NotAnalysed(p, reason, None, None, why_not or "not hashed: a folder, not a file"))

    def take(p: Path) -> None:
        ident = identity(p)
        if ident not in taken:       # named explicitly after a folder walk skipped it: analysed after all
            seen.add(ident)
            taken.add(ident)
            files.append(p)

    def walk(folder: Path, top: bool) -> None:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: (e.name.casefold(), e.name))
        except OSError as error:
            if top:
                raise EvidenceError(folder, f"is a folder that cannot be listed ({one_line(error)})") from None
            skip(str(folder), f"a subfolder that cannot be listed ({one_line(error)})", hash_it=False)
            return
        subfolders = []
        for entry in entries:
            path = folder / entry.name
            kind = _entry_kind(entry)
            hidden = entry.name.startswith(".")
            if kind == "dir":
                if hidden:
                    skip(str(path), "a hidden folder (name starts with '.'): not searched", hash_it=False)
                elif not recursive:
                    skip(str(path), "a subfolder: not searched (not recursive)", hash_it=False)
                else:
                    subfolders.append(path)
            elif kind == "dirlink":
                skip(str(path), "a link to a folder: not followed (links can loop)", hash_it=False)
            elif kind == "other":
                skip(str(path), _other_reason(str(path)), hash_it=False,
                     why_not="not hashed: not a regular file, so it is not read (reading a pipe or device can hang)")
            elif hidden:
                skip(str(path), "a hidden file (name starts with '.')")
            elif path.suffix.lower() not in IMAGE_SUFFIXES:
                suffix = escape_invisible(path.suffix) if path.suffix else "none"
                skip(str(path), f"not an image file suffix ({suffix})")
            else:
                take(path)
        for sub in subfolders:          # files of a folder first, then its subfolders, each sorted by name
            walk(sub, top=False)

    for given in paths:
        path = Path(os.fsdecode(given))
        if path.is_dir():
            walk(path, top=True)
        elif os.path.lexists(path):
            take(path)                  # explicit: analysed (or failed with its reason) whatever it is
        else:
            raise EvidenceError(path, "does not exist")
    return EvidenceScan(tuple(files), tuple(s for s in skipped if identity(s.path) not in taken))
