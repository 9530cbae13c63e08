"""Evidence intake against a generated corpus of hostile files, specific behaviours, and a fuzz run."""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import os
import pickle
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from engine import intake
from engine.evidence_paths import scan_evidence_paths
from engine.intake import (
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    EvidenceError,
    EvidenceImage,
    Preprocessing,
    load_evidence,
    sha256_file,
)
from tests.hostile_corpus import (
    animated_gif,
    encode,
    exif_bytes,
    make_hostile_corpus,
    rgb_image,
    sixteen_bit_png,
)

TARGET = 64

# The corpus is generated once per test session into a private temporary folder; parametrising by
# case needs the list at collection time, so it cannot come from a fixture.
CORPUS_DIR = Path(tempfile.mkdtemp(prefix="hostile-corpus-"))
atexit.register(shutil.rmtree, CORPUS_DIR, ignore_errors=True)
CORPUS = make_hostile_corpus(CORPUS_DIR)


def _listing(directory: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(directory)), p.lstat().st_mode) for p in directory.rglob("*"))


def _fingerprint(path: Path) -> tuple[str, int] | None:
    """Content hash and mtime of a regular file; None for things that must not be read (pipes, folders)."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(status.st_mode):
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest(), status.st_mtime_ns


def assert_valid_image(image: EvidenceImage, path: Path, target: int = TARGET) -> None:
    assert isinstance(image, EvidenceImage)
    assert image.pixels.shape == (3, target, target)
    assert image.pixels.dtype == np.float32
    assert np.isfinite(image.pixels).all()
    assert image.pixels.min() >= -1.0 and image.pixels.max() <= 1.0
    # 8-bit quantised: every value is k/127.5 - 1 for an integer k
    levels = image.pixels * 127.5 + 127.5
    assert np.array_equal(levels, np.round(levels))
    assert image.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert image.size_bytes == path.stat().st_size
    assert image.width >= 1 and image.height >= 1
    assert image.preprocessing.original_size == (image.width, image.height)
    assert image.frame_count >= 1
    assert all(isinstance(k, str) and isinstance(v, str) and "\n" not in v for k, v in image.exif.items())
    assert all(isinstance(w, str) and "\n" not in w for w in image.warnings)
    assert isinstance(image.preprocessing.describe(), str)


# ---------------------------------------------------------------------------------------------------
# The corpus


def test_corpus_is_large_and_covers_both_outcomes():
    assert len(CORPUS) >= 100
    assert sum(case.loads for case in CORPUS) >= 40
    assert sum(not case.loads for case in CORPUS) >= 40
    assert all(case.loads or case.error_substring for case in CORPUS)


@pytest.mark.parametrize(
    "case", CORPUS, ids=[f"{c.category}:{c.filename.encode('unicode_escape').decode()}" for c in CORPUS]
)
def test_corpus_case(case):
    path = CORPUS_DIR / case.filename
    listing_before = _listing(CORPUS_DIR)
    fingerprint_before = _fingerprint(path)

    if case.loads:
        image = load_evidence(path, TARGET)
        assert_valid_image(image, path)
        assert image.path == str(path)
        if case.warning_substring:
            assert any(case.warning_substring in warning for warning in image.warnings), image.warnings
    else:
        with pytest.raises(EvidenceError) as raised:
            load_evidence(path, TARGET)
        message = str(raised.value)
        assert type(raised.value) is EvidenceError
        assert case.error_substring in message
        assert case.filename in message
        assert "\n" not in message and "\r" not in message
        assert "Traceback" not in message
        assert raised.value.path == str(path)

    assert _fingerprint(path) == fingerprint_before, "evidence bytes or mtime changed"
    assert _listing(CORPUS_DIR) == listing_before, "something was written next to the evidence"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# ---------------------------------------------------------------------------------------------------
# Specific behaviours


def test_exact_size_rgb_png_round_trips_bit_exactly(tmp_path):
    original = np.random.default_rng(7).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    path = tmp_path / "exact.png"
    path.write_bytes(encode(Image.fromarray(original, "RGB"), "PNG"))
    image = load_evidence(path, 64)
    assert image.preprocessing == Preprocessing((64, 64), 64, None, None, None)
    assert image.preprocessing.describe() == "none (already 64×64 RGB)"
    assert image.warnings == ()
    assert np.array_equal(image.pixels * 127.5 + 127.5, original.transpose(2, 0, 1).astype(np.float32))
    assert image.pixels[0, 0, 0] == np.float32(original[0, 0, 0]) / np.float32(127.5) - np.float32(1)


def test_non_square_is_resized_on_the_shorter_side_and_centre_cropped(tmp_path):
    picture = rgb_image(640, 480)
    path = tmp_path / "wide.png"
    path.write_bytes(encode(picture, "PNG"))
    image = load_evidence(path, 64)
    pre = image.preprocessing
    assert pre.original_size == (640, 480)
    assert pre.resized_to == (85, 64)  # torchvision: int(64 * 640 / 480)
    assert pre.crop_box == (10, 0, 74, 64)  # torchvision: int(round((85 - 64) / 2.0)) == 10
    assert pre.describe() == "resized 640×480→85×64 (bicubic), centre-cropped to 64×64"
    expected = np.asarray(picture.resize((85, 64), Image.Resampling.BICUBIC).crop((10, 0, 74, 64)))
    assert np.array_equal(image.pixels * 127.5 + 127.5, expected.transpose(2, 0, 1).astype(np.float32))


def test_tall_image_and_larger_target(tmp_path):
    path = tmp_path / "tall.jpg"
    path.write_bytes(encode(rgb_image(480, 640), "JPEG"))
    image = load_evidence(path, 512)
    assert image.pixels.shape == (3, 512, 512)
    assert image.preprocessing.resized_to == (512, 682)
    assert image.preprocessing.crop_box == (0, 85, 512, 597)


def test_shorter_side_already_target_is_cropped_without_resampling(tmp_path):
    picture = rgb_image(100, 64)
    path = tmp_path / "crop_only.png"
    path.write_bytes(encode(picture, "PNG"))
    image = load_evidence(path, 64)
    assert image.preprocessing.resized_to is None
    assert image.preprocessing.crop_box == (18, 0, 82, 64)
    assert image.preprocessing.describe() == "centre-cropped to 64×64"
    expected = np.asarray(picture)[:, 18:82].transpose(2, 0, 1)
    assert np.array_equal(image.pixels * 127.5 + 127.5, expected.astype(np.float32))


def test_exif_orientation_is_recorded_not_applied(tmp_path):
    picture = rgb_image(96, 64)
    rotated = tmp_path / "rotated.png"
    plain = tmp_path / "plain.png"
    rotated.write_bytes(encode(picture, "PNG", exif=exif_bytes({274: 6, 271: "Camera"})))
    plain.write_bytes(encode(picture, "PNG"))
    image = load_evidence(rotated, 64)
    assert image.exif_orientation == 6
    assert image.exif["Orientation"] == "6" and image.exif["Make"] == "Camera"
    assert (image.width, image.height) == (96, 64)
    assert any("orientation 6" in w and "not applied" in w for w in image.warnings)
    assert np.array_equal(image.pixels, load_evidence(plain, 64).pixels)


def test_animated_gif_uses_the_first_frame_and_warns(tmp_path):
    path = tmp_path / "anim.gif"
    path.write_bytes(animated_gif(12, size=(64, 64)))
    image = load_evidence(path, 64)
    assert image.frame_count == 12
    assert "animated GIF with 12 frames: the first frame was analysed" in image.warnings
    with Image.open(path) as gif:
        first = np.asarray(gif.convert("RGB"))
    assert np.array_equal(image.pixels * 127.5 + 127.5, first.transpose(2, 0, 1).astype(np.float32))


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    samples = np.zeros((64, 64), np.uint16)
    samples[0, 0], samples[0, 1], samples[0, 2], samples[0, 3] = 65535, 0, 0x8000, 257 * 100
    path = tmp_path / "deep.png"
    path.write_bytes(encode(Image.fromarray(samples), "PNG"))
    image = load_evidence(path, 64)
    assert image.mode == "I;16"
    assert image.pixels[:, 0, 0].tolist() == [1.0, 1.0, 1.0]
    assert image.pixels[:, 0, 1].tolist() == [-1.0, -1.0, -1.0]
    assert image.pixels[0, 0, 2] * 127.5 + 127.5 == 128
    assert image.pixels[0, 0, 3] * 127.5 + 127.5 == 100
    assert "16-bit" in image.preprocessing.mode_conversion


def test_sixteen_bit_colour_png_records_the_reduction(tmp_path):
    samples = np.zeros((64, 64, 3), np.uint16)
    samples[0, 0] = (65535, 0, 0x1234)
    path = tmp_path / "deep_rgb.png"
    path.write_bytes(sixteen_bit_png(samples, colour_type=2))
    image = load_evidence(path, 64)
    assert (image.pixels[:, 0, 0] * 127.5 + 127.5).tolist() == [255, 0, 0x12]
    assert image.preprocessing.mode_conversion.startswith("RGB 16-bit")


@pytest.mark.parametrize(
    ("values", "expected_levels", "rule"),
    [
        ([0.0, 0.5, 1.0, -0.25], [0, 128, 255, 0], "taken as [0, 1]"),
        ([0.0, 300.0, 127.4, -5.0], [0, 255, 127, 0], "taken as [0, 255]"),
        ([np.nan, np.inf, 2.0, 0.0], [0, 255, 2, 0], "NaN→0"),
    ],
)
def test_float_tiff_rule(tmp_path, values, expected_levels, rule):
    samples = np.zeros((64, 64), np.float32)
    samples[0, :4] = values
    path = tmp_path / "float.tif"
    path.write_bytes(encode(Image.fromarray(samples), "TIFF"))
    image = load_evidence(path, 64)
    assert (image.pixels[0, 0, :4] * 127.5 + 127.5).tolist() == expected_levels
    assert rule in image.preprocessing.mode_conversion


def test_alpha_is_dropped_not_composited(tmp_path):
    colours = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rgba = np.dstack([colours, np.zeros((64, 64), np.uint8)])
    path = tmp_path / "invisible.png"
    path.write_bytes(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    image = load_evidence(path, 64)
    assert np.array_equal(image.pixels * 127.5 + 127.5, colours.transpose(2, 0, 1).astype(np.float32))
    assert "not composited" in image.preprocessing.mode_conversion
    assert any("100.0% of pixels are transparent" in w for w in image.warnings)


def test_palette_transparency_keeps_the_stored_palette_colour(tmp_path):
    palette_image = Image.new("P", (64, 64), 1)
    palette_image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    path = tmp_path / "trns.png"
    path.write_bytes(encode(palette_image, "PNG", transparency=1))
    image = load_evidence(path, 64)
    assert (image.pixels[:, 5, 5] * 127.5 + 127.5).tolist() == [200, 100, 50]


def test_cmyk_is_converted_and_recorded(tmp_path):
    path = tmp_path / "print.jpg"
    path.write_bytes(encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG", quality=100))
    image = load_evidence(path, 64)
    assert image.mode == "CMYK"
    assert image.preprocessing.mode_conversion.startswith("CMYK→RGB")
    red, green, blue = (image.pixels[:, 32, 32] * 127.5 + 127.5).tolist()
    assert red > 240 and green < 15 and blue < 15


def test_exif_strings_are_kept_as_data(tmp_path):
    path = tmp_path / "xss.jpg"
    path.write_bytes(
        encode(rgb_image(64, 64), "JPEG", exif=exif_bytes({271: "<script>alert(1)</script>", 305: "a\nb"}))
    )
    image = load_evidence(path, 64)
    assert image.exif["Make"] == "<script>alert(1)</script>"
    assert image.exif["Software"] == "a\\nb"


def test_pixel_limit_is_checked_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "ordinary.png"
    path.write_bytes(encode(rgb_image(64, 64), "PNG"))
    monkeypatch.setattr(intake, "MAX_PIXELS", 64 * 64 - 1)

    def refuse_to_decode(self, *args, **kwargs):
        raise AssertionError("decoded an image above the pixel limit")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse_to_decode)
    with pytest.raises(EvidenceError, match="4,095-pixel limit"):
        load_evidence(path, 64)


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    path.write_bytes(encode(rgb_image(64, 64), "PNG"))
    monkeypatch.setattr(intake, "MAX_FILE_BYTES", 100)
    with pytest.raises(EvidenceError, match="above the 100-byte limit"):
        load_evidence(path, 64)


def test_decoder_failures_name_the_exception_type(tmp_path, monkeypatch):
    path = tmp_path / "odd.png"
    path.write_bytes(encode(rgb_image(8, 8), "PNG"))

    def explode(self, *args, **kwargs):
        raise KeyError("tile")

    monkeypatch.setattr(ImageFile.ImageFile, "load", explode)
    with pytest.raises(EvidenceError, match=r"is corrupt: Pillow could not decode it \(KeyError: 'tile'\)"):
        load_evidence(path, 64)


def test_max_pixels_is_the_documented_limit():
    assert MAX_PIXELS == 64_000_000
    assert IMAGE_SUFFIXES == (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def test_strip_resize_path_is_close_to_the_full_resize(tmp_path, monkeypatch):
    picture = rgb_image(3000, 40)
    path = tmp_path / "strip.png"
    path.write_bytes(encode(picture, "PNG"))
    full = load_evidence(path, 64)
    monkeypatch.setattr(intake, "_FULL_RESIZE_PIXEL_LIMIT", 1000)
    bounded = load_evidence(path, 64)
    assert bounded.preprocessing == full.preprocessing
    assert any("only over the centre-crop region" in w for w in bounded.warnings)
    assert np.abs(bounded.pixels - full.pixels).max() * 127.5 <= 4


def test_newline_in_file_name_stays_one_line(tmp_path):
    path = tmp_path / "bad\nname\u202e.png"
    path.write_bytes(b"not an image at all")
    with pytest.raises(EvidenceError) as raised:
        load_evidence(path, 64)
    message = str(raised.value)
    assert "\n" not in message and "\u202e" not in message
    assert "bad\\nname\\u202e.png" in message


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(EvidenceError, match="does not exist"):
        load_evidence(tmp_path / "nope.png", 64)
    with pytest.raises(EvidenceError, match="is a folder"):
        load_evidence(tmp_path, 64)


def test_bad_target_size_is_a_programming_error(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(encode(rgb_image(8, 8), "PNG"))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            load_evidence(path, bad)


def test_records_are_frozen_and_error_is_picklable(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(encode(rgb_image(8, 8), "PNG"))
    image = load_evidence(str(path), 64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        image.sha256 = "0" * 64
    with pytest.raises(dataclasses.FrozenInstanceError):
        image.preprocessing.target_size = 1
    error = EvidenceError(path, "is truncated")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.path == str(path)
    assert isinstance(error, ValueError)


def test_verify_evidence_detects_change_and_removal(tmp_path):
    from engine.provenance import reverify

    def verify_evidence(image):
        return reverify(image.path, image.sha256).ok

    path = tmp_path / "evidence.png"
    path.write_bytes(encode(rgb_image(64, 64), "PNG"))
    image = load_evidence(path, 64)
    assert verify_evidence(image)
    assert sha256_file(path) == image.sha256
    with open(path, "ab") as file:
        file.write(b"\x00")
    assert not verify_evidence(image)
    path.unlink()
    assert not verify_evidence(image)


def test_sha256_file_streams_large_files(tmp_path):
    path = tmp_path / "big.bin"
    data = os.urandom(3 * (1 << 20) + 17)
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    with pytest.raises(EvidenceError, match="does not exist"):
        sha256_file(tmp_path / "missing.bin")


def _files(paths):
    return list(scan_evidence_paths(paths, recursive=False).files)


def test_scan_evidence_paths_without_recursion(tmp_path):
    folder = tmp_path / "case"
    folder.mkdir()
    for name in ("b.jpg", "A.png", "c.TIFF", ".hidden.png", "notes.txt", "d.webp"):
        (folder / name).write_bytes(b"x")
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.png").write_bytes(b"x")
    (folder / "dir.png").mkdir()
    notes = folder / "notes.txt"

    expanded = _files([folder, notes, str(folder / "b.jpg")])
    assert [p.name for p in expanded] == ["A.png", "b.jpg", "c.TIFF", "d.webp", "notes.txt"]
    assert all(isinstance(p, Path) for p in expanded)
    # named explicitly after the folder walk skipped it: analysed, and not also listed as not analysed
    listed = scan_evidence_paths([folder, notes], recursive=False).not_analysed
    assert "notes.txt" not in {Path(n.path).name for n in listed} and ".hidden.png" in {Path(n.path).name for n in listed}
    assert [p.name for p in _files(str(folder / "A.png"))] == ["A.png"]
    assert _files([]) == []
    with pytest.raises(EvidenceError, match="does not exist") as raised:
        _files([folder, tmp_path / "missing.png"])
    assert "missing.png" in str(raised.value)


def test_engine_intake_does_not_import_qt():
    code = (
        "import sys, engine.intake, engine.atomic_write\n"
        "sys.exit(any(m.split('.')[0] in ('PySide6', 'shiboken6') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1]).returncode == 0


# ---------------------------------------------------------------------------------------------------
# Fuzz: mutated real files either load as valid evidence or raise EvidenceError, nothing else

SEEDS = {
    "png": encode(rgb_image(24, 16, seed=5), "PNG"),
    "jpeg": encode(rgb_image(24, 16, seed=6), "JPEG", quality=90),
    "gif": animated_gif(3, size=(16, 24)),
    "tiff": encode(rgb_image(16, 12, seed=7), "TIFF", compression="tiff_lzw"),
    "webp": encode(rgb_image(16, 12, seed=8), "WEBP", quality=80),
    "bmp": encode(rgb_image(16, 12, seed=9).convert("P"), "BMP"),
    "png16": sixteen_bit_png(np.arange(16 * 16 * 3, dtype=np.uint16).reshape(16, 16, 3) * 80, colour_type=2),
}

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 32)),
)


def _mutate(data: bytes, mutations) -> bytes:
    buffer = bytearray(data)
    for kind, position, argument in mutations:
        if not buffer:
            break
        index = position % len(buffer)
        if kind == "flip":
            buffer[index] ^= argument
        elif kind == "truncate":
            del buffer[index:]
        elif kind == "insert":
            buffer[index:index] = argument
        else:
            del buffer[index : index + argument]
    return bytes(buffer)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("seed_name", sorted(SEEDS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(mutation, min_size=1, max_size=4))
def test_fuzzed_files_load_or_raise_evidence_error(fuzz_dir, seed_name, mutations):
    path = fuzz_dir / f"fuzzed.{seed_name}"
    path.write_bytes(_mutate(SEEDS[seed_name], mutations))
    try:
        image = load_evidence(path, 32)
    except EvidenceError as error:
        message = str(error)
        assert "\n" not in message and path.name in message
    else:
        assert_valid_image(image, path, target=32)
