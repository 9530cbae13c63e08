"""Atomic file output: a reader sees either the old file or the complete new one, never a partial file.

Every writer goes through a temporary file in the target's own folder (os.replace is only atomic
within one file system), which is flushed, fsynced and then renamed over the target. On any exception,
KeyboardInterrupt included, the temporary file is removed and the target is left as it was.

Temporary files are created with mode 0o666 and O_EXCL, so the kernel applies the umask exactly as for
a normal new file (mkstemp's 0o600 would need the process-wide umask to be read, which is not
thread-safe). Their names start with "." so folder listings and evidence expansion skip them.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_TEMP_SUFFIX = ".tmp"
_TEMP_NAME_STEM_MAX_CHARS = 100  # keeps ".<name>.<random>.tmp" under the usual 255-byte name limit


def _create_temp_file(target: Path) -> tuple[int, Path]:
    stem = target.name[:_TEMP_NAME_STEM_MAX_CHARS]
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        candidate = target.with_name(f".{stem}.{secrets.token_hex(6)}{_TEMP_SUFFIX}")
        try:
            return os.open(candidate, flags, 0o666), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a unique temporary file next to {target}")


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; not possible on every platform (Windows), so best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # the original exception matters more than a failed clean-up


def _commit(temp: Path, target: Path) -> None:
    os.replace(temp, target)
    _fsync_directory(target.parent)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path (an existing empty file) in the target's folder for a writer that wants a
    file name; it replaces `path` on normal exit and is removed on an exception."""
    target = Path(path)
    fd, temp = _create_temp_file(target)
    os.close(fd)
    try:
        yield temp
        _fsync_path(temp)
        _commit(temp, target)
    except BaseException:
        _remove_quietly(temp)
        raise


@contextmanager
def atomic_output(path: str | os.PathLike[str], mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Yield an open file ("wb", or "w" for text) whose content replaces `path` on normal exit and is
    discarded on an exception."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_output writes a whole new file: mode must be 'wb' or 'w', not {mode!r}")
    if mode == "wb" and encoding is not None:
        raise ValueError("encoding is only meaningful for text mode 'w'")
    target = Path(path)
    fd, temp = _create_temp_file(target)
    try:
        file = os.fdopen(fd, mode, encoding=(encoding or "utf-8") if mode == "w" else None)
    except BaseException:
        os.close(fd)
        _remove_quietly(temp)
        raise
    try:
        with file:
            yield file
            closed_by_writer = file.closed
            if not closed_by_writer:
                file.flush()
                os.fsync(file.fileno())
        if closed_by_writer:
            _fsync_path(temp)
        _commit(temp, target)
    except BaseException:
        _remove_quietly(temp)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_output(path, "wb") as file:
        file.write(data)


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Text written exactly as given: encoded up front (an unencodable character leaves nothing
    behind) and without newline translation, so the bytes are the same on every platform."""
    write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(path: str | os.PathLike[str], obj: Any, **json_kwargs: Any) -> None:
    """json.dumps(obj, **json_kwargs) written atomically; serialised in full before any file is touched. Strict:
    a NaN or infinity raises ValueError instead of writing a bare token (see engine.strict_json)."""
    write_text_atomic(path, json.dumps(obj, **{"allow_nan": False, **json_kwargs}))
