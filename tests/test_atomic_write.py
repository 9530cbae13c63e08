"""Atomic writes: the target holds either its old content or the complete new content, and no
temporary file survives a failure."""

from __future__ import annotations

import json
import os
import stat
import sys
import threading

import pytest

from engine.atomic_write import (
    atomic_output,
    atomic_path,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


def _names(directory) -> list[str]:
    return sorted(os.listdir(directory))


class Unserialisable:
    pass


def test_write_bytes_creates_and_replaces(tmp_path):
    target = tmp_path / "out.bin"
    write_bytes_atomic(target, b"first")
    assert target.read_bytes() == b"first"
    write_bytes_atomic(str(target), b"\x00second\xff")
    assert target.read_bytes() == b"\x00second\xff"
    assert _names(tmp_path) == ["out.bin"]


def test_write_text_is_exact_bytes(tmp_path):
    target = tmp_path / "report.txt"
    write_text_atomic(target, "line 1\nligne 2 — é\n")
    assert target.read_bytes() == "line 1\nligne 2 — é\n".encode()
    write_text_atomic(target, "ü", encoding="latin-1")
    assert target.read_bytes() == b"\xfc"


def test_write_json_round_trips(tmp_path):
    target = tmp_path / "result.json"
    payload = {"score": 0.5, "names": ["a", "<b>"], "nested": {"ok": True}}
    write_json_atomic(target, payload, indent=2, sort_keys=True)
    assert json.loads(target.read_text()) == payload
    assert target.read_text() == json.dumps(payload, indent=2, sort_keys=True)


def test_unserialisable_json_leaves_old_file_untouched(tmp_path):
    target = tmp_path / "result.json"
    target.write_text('{"old": true}')
    with pytest.raises(TypeError):
        write_json_atomic(target, {"new": Unserialisable()})
    assert target.read_text() == '{"old": true}'
    assert _names(tmp_path) == ["result.json"]


def test_unencodable_text_leaves_nothing(tmp_path):
    target = tmp_path / "ascii.txt"
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(target, "snowman ☃", encoding="ascii")
    assert _names(tmp_path) == []


@pytest.mark.parametrize("error_type", [RuntimeError, KeyboardInterrupt])
def test_exception_inside_atomic_output_discards_partial_content(tmp_path, error_type):
    target = tmp_path / "report.pdf"
    target.write_bytes(b"old report")
    with pytest.raises(error_type):
        with atomic_output(target) as file:
            file.write(b"half of a new rep")
            file.flush()
            assert _names(tmp_path) != ["report.pdf"]  # the temporary file exists meanwhile
            raise error_type("interrupted")
    assert target.read_bytes() == b"old report"
    assert _names(tmp_path) == ["report.pdf"]


def test_atomic_output_text_mode_and_commit(tmp_path):
    target = tmp_path / "log.txt"
    with atomic_output(target, "w", encoding="utf-8") as file:
        file.write("première ")
        file.write("ligne")
        assert not target.exists()  # nothing visible until the block ends
    assert target.read_text(encoding="utf-8") == "première ligne"
    assert _names(tmp_path) == ["log.txt"]


def test_atomic_output_tolerates_a_writer_that_closes_the_file(tmp_path):
    target = tmp_path / "closed.bin"
    with atomic_output(target) as file:
        file.write(b"done")
        file.close()
    assert target.read_bytes() == b"done"


def test_atomic_output_refuses_append_and_read_modes(tmp_path):
    for mode in ("ab", "a", "r+b", "rb"):
        with pytest.raises(ValueError):
            with atomic_output(tmp_path / "x", mode):
                pass
    assert _names(tmp_path) == []


def test_atomic_path_commits_on_success(tmp_path):
    target = tmp_path / "report.pdf"
    target.write_bytes(b"old")
    with atomic_path(target) as temp:
        assert temp.parent == tmp_path
        assert temp != target and temp.name.startswith(".")
        temp.write_bytes(b"%PDF-1.7 new")  # e.g. a PDF library given a file name
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"%PDF-1.7 new"
    assert _names(tmp_path) == ["report.pdf"]


@pytest.mark.parametrize("error_type", [ValueError, KeyboardInterrupt])
def test_atomic_path_removes_temp_on_failure(tmp_path, error_type):
    target = tmp_path / "report.pdf"
    target.write_bytes(b"old")
    with pytest.raises(error_type):
        with atomic_path(target) as temp:
            temp.write_bytes(b"partial")
            raise error_type("writer failed")
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["report.pdf"]


def test_atomic_path_when_writer_removed_the_temp_file(tmp_path):
    target = tmp_path / "gone.pdf"
    with pytest.raises(FileNotFoundError):
        with atomic_path(target) as temp:
            temp.unlink()
    assert _names(tmp_path) == []


def test_missing_directory_raises_and_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_bytes_atomic(tmp_path / "no" / "such" / "dir.bin", b"x")
    assert _names(tmp_path) == []


def test_very_long_target_name(tmp_path):
    target = tmp_path / ("r" * 240 + ".json")
    write_json_atomic(target, [1, 2])
    assert json.loads(target.read_text()) == [1, 2]
    assert _names(tmp_path) == [target.name]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_new_files_get_normal_permissions(tmp_path):
    old_umask = os.umask(0o027)
    try:
        write_bytes_atomic(tmp_path / "a.bin", b"x")
        with atomic_path(tmp_path / "b.bin") as temp:
            temp.write_bytes(b"y")
        with atomic_output(tmp_path / "c.txt", "w") as file:
            file.write("z")
    finally:
        os.umask(old_umask)
    for name in ("a.bin", "b.bin", "c.txt"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o666 & ~0o027


def test_concurrent_writers_leave_one_complete_version(tmp_path):
    target = tmp_path / "shared.json"
    payloads = [{"writer": i, "data": "x" * 50_000} for i in range(8)]
    threads = [threading.Thread(target=write_json_atomic, args=(target, p)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert json.loads(target.read_text()) in payloads
    assert _names(tmp_path) == ["shared.json"]
