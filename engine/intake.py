"""Evidence intake: the one way the CLI and the GUI read a suspect image.

An evidence file is opened read-only exactly once; its bytes are read into memory, hashed, and decoded
from that same buffer, so the recorded SHA-256 always describes the pixels that were analysed. Nothing
is ever written next to evidence. Every way a file can be unusable ends in an EvidenceError whose
message is one sentence naming the file; Pillow's own exceptions never escape.

The watermark lives in the stored pixel values, so intake changes them as little as it can and records
every change: no EXIF rotation, no alpha compositing, no colour management. The only pixel-changing
steps are conversion to 8-bit RGB and torchvision's Resize(shorter side, bicubic) + CenterCrop, both
recorded in Preprocessing and shown to the examiner.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
import threading
import unicodedata
import warnings
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
from PIL import Image

MAX_PIXELS: int = 64_000_000
"""Largest width×height decoded; anything bigger is refused before decoding (decompression bombs)."""

MAX_FILE_BYTES: int = 1 << 30
"""Largest evidence file read into memory (1 GiB); far above any image of MAX_PIXELS pixels."""

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")

# Only these Pillow decoders are offered untrusted bytes: the formats evidence arrives in. Formats with
# weak signatures (TGA, ...) would otherwise "identify" random bytes, and EPS would run Ghostscript.
_DECODABLE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF", "PPM")
_FORMAT_NAMES_FOR_MESSAGES = "PNG, JPEG, WebP, BMP, TIFF, GIF or PPM"

# Leading bytes of the supported formats, to tell "damaged image" from "not an image" when Pillow
# cannot identify a file.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Above this many pixels the full intermediate of Resize is not materialised (e.g. a 100000×1 strip
# would become 6,400,000×64); only the crop region is resampled instead.
_FULL_RESIZE_PIXEL_LIMIT = 16_000_000

_EXIF_IFD_POINTER = 0x8769
_EXIF_SUMMARY_TAGS: dict[int, str] = {
    270: "ImageDescription",
    271: "Make",
    272: "Model",
    274: "Orientation",
    305: "Software",
    306: "DateTime",
    315: "Artist",
    33432: "Copyright",
}
_EXIF_IFD_SUMMARY_TAGS: dict[int, str] = {
    36867: "DateTimeOriginal",
    36868: "DateTimeDigitized",
    37510: "UserComment",
    42036: "LensModel",
}
_EXIF_VALUE_MAX_CHARS = 200
_EXIF_ORIENTATION_TAG = 274
_ORIENTATION_MEANINGS: dict[int, str] = {
    1: "normal",
    2: "mirrored horizontally",
    3: "rotated 180°",
    4: "mirrored vertically",
    5: "mirrored and rotated 90° anticlockwise",
    6: "rotated 90° clockwise",
    7: "mirrored and rotated 90° clockwise",
    8: "rotated 90° anticlockwise",
}

_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


# ---------------------------------------------------------------------------------------------------
# Errors and text that comes from untrusted places


def escape_invisible(text: str) -> str:
    """Make control, format (e.g. bidi override) and line-separator characters visible as escapes, so
    a file name or EXIF value can neither break a message onto two lines nor disguise itself."""
    out = []
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            out.append(repr(char)[1:-1] if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
        else:
            out.append(char)
    return "".join(out)


def shown_path(path: str | os.PathLike[str]) -> str:
    return f"'{escape_invisible(os.fsdecode(path))}'"


def one_line(text: str, max_chars: int | None = 300) -> str:
    """Any text (Pillow's and the OS's wording, file names, details) as one line of visible characters:
    invisible and control characters escaped, whitespace runs squeezed, cut at `max_chars` (None: never)."""
    line = " ".join(escape_invisible(str(text)).split())
    return line if max_chars is None or len(line) <= max_chars else line[: max_chars - 1] + "…"


class EvidenceError(ValueError):
    """An evidence file that cannot be read or analysed.

    EvidenceError(path, problem): str() is one sentence, "'<path>' <problem>.", with no traceback and
    no line breaks, fit for a CLI line or a GUI dialog (which must still escape it: file names are
    untrusted). `path` is the path as given; `problem` the predicate alone.
    """

    path: str

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = os.fsdecode(path)
        self.problem = one_line(problem, max_chars=600).rstrip(".")
        super().__init__(f"{shown_path(self.path)} {self.problem}.")

    def __reduce__(self):  # keeps it picklable for worker processes despite the two-argument __init__
        return (type(self), (self.path, self.problem))


# ---------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Preprocessing:
    """What was done to the stored pixels to reach the model's input. It changes pixels, so it is
    recorded with every result and shown to the examiner."""

    original_size: tuple[int, int]  # (width, height) as stored
    target_size: int
    resized_to: tuple[int, int] | None  # (w, h) after the shorter side was resized to target_size
    crop_box: tuple[int, int, int, int] | None  # (left, top, right, bottom) within resized_to
    mode_conversion: str | None  # how the stored mode became 8-bit RGB, None if it already was

    def describe(self) -> str:
        steps = []
        if self.mode_conversion:
            steps.append(self.mode_conversion)
        if self.resized_to is not None:
            (w, h), (rw, rh) = self.original_size, self.resized_to
            steps.append(f"resized {w}×{h}→{rw}×{rh} (bicubic)")
        if self.crop_box is not None:
            steps.append(f"centre-cropped to {self.target_size}×{self.target_size}")
        if not steps:
            return f"none (already {self.target_size}×{self.target_size} RGB)"
        return ", ".join(steps)


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value; identity is right
class EvidenceImage:
    path: str
    sha256: str  # of the exact bytes the pixels were decoded from
    size_bytes: int
    format: str  # Pillow's format name: PNG, JPEG, MPO, WEBP, BMP, TIFF, GIF, PPM
    width: int  # as stored (EXIF orientation not applied)
    height: int
    mode: str  # Pillow's mode as stored: RGB, RGBA, P, L, I;16, F, CMYK, ...
    exif: dict[str, str]  # small summary; values are untrusted text (escaped, shortened)
    exif_orientation: int | None  # recorded, NOT applied: the watermark lives in the stored pixels
    frame_count: int
    warnings: tuple[str, ...]
    preprocessing: Preprocessing
    pixels: np.ndarray = field(repr=False)  # float32 (3, T, T) in [-1, 1] from 8-bit values
    md5: str | None = None  # of the same bytes, when asked for (`load_evidence(..., md5=True)`)
    # a JPEG's luma quantization table as stored (64 entries, natural order; `engine.jpeg_quality`), else None
    jpeg_luma_table: tuple[int, ...] | None = None


# ---------------------------------------------------------------------------------------------------
# Paths and hashing


def open_regular_file(path: str | os.PathLike[str]) -> BinaryIO:
    """Open read-only, refusing folders, devices and pipes (O_NONBLOCK: opening a FIFO must not hang)."""
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise EvidenceError(path, "does not exist") from None
    except IsADirectoryError:
        raise EvidenceError(path, "is a folder, not an image file") from None
    except PermissionError:
        if os.path.isdir(path):  # Windows refuses to open folders with this error
            raise EvidenceError(path, "is a folder, not an image file") from None
        raise EvidenceError(path, "cannot be opened: permission denied") from None
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the path
        raise EvidenceError(path, f"cannot be opened ({one_line(error)})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise EvidenceError(path, "is a folder, not an image file")
        raise EvidenceError(path, "is not a regular file (a device, pipe or socket)")
    return os.fdopen(fd, "rb")


def _digests(path: str | os.PathLike[str], md5: bool = False) -> tuple[str, str | None]:
    """(SHA-256, MD5 or None) of a file, read once in chunks, read-only, regular files only."""
    sha = hashlib.sha256()
    second = hashlib.md5(usedforsecurity=False) if md5 else None
    with open_regular_file(path) as file:
        try:
            while chunk := file.read(1 << 20):
                sha.update(chunk)
                if second is not None:
                    second.update(chunk)
        except OSError as error:
            raise EvidenceError(path, f"could not be read ({one_line(error)})") from None
    return sha.hexdigest(), second.hexdigest() if second is not None else None


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, read in chunks, read-only; EvidenceError when it cannot be read."""
    return _digests(path)[0]


@dataclass(frozen=True)
class FileHashes:
    """Hashes of a file as read now; `note` says why a hash is missing (one sentence), else ""."""

    sha256: str | None
    md5: str | None = None
    note: str = ""


def hash_file(path: str | os.PathLike[str], md5: bool = False) -> FileHashes:
    """SHA-256 (and MD5 if asked) of any submitted file, read-only, regular files only (no FIFO hangs).
    Never raises for the file: when it cannot be read, the hashes are None and `note` says why."""
    try:
        sha, second = _digests(path, md5)
    except EvidenceError as error:
        return FileHashes(None, None, f"not hashed: the file {error.problem}")
    return FileHashes(sha, second)


# ---------------------------------------------------------------------------------------------------
# Loading


def _read_evidence_bytes(path: str | os.PathLike[str]) -> bytes:
    with open_regular_file(path) as file:
        size = os.fstat(file.fileno()).st_size
        if size > MAX_FILE_BYTES:
            raise EvidenceError(path, f"is {size:,} bytes, above the {MAX_FILE_BYTES:,}-byte limit for evidence files")
        try:
            data = file.read(MAX_FILE_BYTES + 1)  # bounded even if the file grows while being read
        except OSError as error:
            raise EvidenceError(path, f"could not be read ({one_line(error)})") from None
    if len(data) > MAX_FILE_BYTES:
        raise EvidenceError(path, f"is above the {MAX_FILE_BYTES:,}-byte limit for evidence files")
    if not data:
        raise EvidenceError(path, "is empty (0 bytes)")
    return data


def _not_an_image_problem(data: bytes) -> str:
    """Why Pillow could not identify the bytes, in the examiner's terms."""
    if data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        if width == 0 or height == 0:
            return f"has a zero-size dimension ({width}×{height}) in its PNG header"
    if len(data) > 2 and data[0:1] == b"P" and data[1:2] in b"123456" and data[2:3].isspace():
        return "has a PPM signature but is corrupt: its header cannot be read"
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return f"has a {name} signature but is corrupt: its header cannot be read"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "has a WebP signature but is corrupt: its header cannot be read"
    head = data[:4096]
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered[:1024]:
        return "is an HTML document, not an image"
    if b"\x00" not in head:
        text = head.decode("utf-8", errors="replace")
        unreadable = sum(1 for c in text if c == "\ufffd" or (not c.isprintable() and c not in "\r\n\t"))
        if unreadable <= len(text) // 50:
            return "is a text file, not an image"
    return f"is not an image in a supported format ({_FORMAT_NAMES_FOR_MESSAGES})"


def _decode_problem(error: Exception) -> str:
    if isinstance(error, (OSError, SyntaxError)) and str(error):
        reason = one_line(error)  # Pillow's decoders speak in these; their wording is the useful part
    else:
        reason = one_line(f"{type(error).__name__}: {error}".rstrip(": "))
    if isinstance(error, MemoryError):
        return "could not be decoded: not enough memory"
    if isinstance(error, EOFError) or "truncated" in reason.lower():
        return f"is truncated: the image data ends early (Pillow: {reason})"
    return f"is corrupt: Pillow could not decode it ({reason})"


def _pixel_limit_problem(width: int, height: int) -> str:
    return (
        f"is {width}×{height} = {width * height:,} pixels, above the {MAX_PIXELS:,}-pixel limit "
        "(MAX_PIXELS) that guards against decompression bombs, so it was not decoded"
    )


def _png_chunk_warnings(data: bytes) -> list[str]:
    """Pillow ignores bad CRCs in image data and anything after IEND; an examiner should know."""
    bad_crc: list[str] = []
    position = len(_PNG_SIGNATURE)
    while position + 12 <= len(data):
        length, chunk_type = struct.unpack(">I4s", data[position : position + 8])
        end = position + 12 + length
        if end > len(data):
            break  # truncation is Pillow's to report
        body = data[position + 4 : end - 4]
        (stored_crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(body) & 0xFFFFFFFF != stored_crc:
            bad_crc.append(chunk_type.decode("latin-1"))
        position = end
        if chunk_type == b"IEND":
            break
    found = []
    if bad_crc:
        names = ", ".join(sorted(set(escape_invisible(name) for name in bad_crc)))
        found.append(f"PNG chunk CRC mismatch in {names}: the file was altered or damaged after it was encoded")
    if position < len(data) and data[position - 8 : position - 4] == b"IEND":
        found.append(f"{len(data) - position:,} bytes of extra data after the end of the PNG (IEND)")
    return found


def _stored_bits_per_sample(image: Image.Image, data: bytes) -> int:
    """Pillow decodes 16-bit colour PNG/TIFF straight to 8 bits; read the stored depth to record it."""
    if data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) > 24:
        return data[24]
    tags = getattr(image, "tag_v2", None)
    if tags is not None:
        bits = tags.get(258)
        if isinstance(bits, tuple) and bits:
            return int(max(bits))
        if isinstance(bits, int):
            return bits
    return 8


def _exif_text(value: object) -> str:
    if isinstance(value, bytes):
        for prefix, codec in ((b"ASCII\x00\x00\x00", "ascii"), (b"UNICODE\x00", "utf-16"), (b"\x00" * 8, "utf-8")):
            if value.startswith(prefix):  # UserComment's 8-byte character-code header
                value = value[len(prefix) :]
                break
        else:
            codec = "utf-8"
        text = value.decode(codec, errors="replace")
    else:
        text = str(value)
    text = one_line(text.replace("\x00", " ").strip(), max_chars=_EXIF_VALUE_MAX_CHARS)
    return text


def _exif_summary(image: Image.Image) -> tuple[dict[str, str], int | None, list[str]]:
    found: list[str] = []
    try:
        exif = image.getexif()
        summary = {name: _exif_text(exif[tag]) for tag, name in _EXIF_SUMMARY_TAGS.items() if tag in exif}
        sub_ifd = exif.get_ifd(_EXIF_IFD_POINTER) if _EXIF_IFD_POINTER in exif else {}
        summary.update(
            {name: _exif_text(sub_ifd[tag]) for tag, name in _EXIF_IFD_SUMMARY_TAGS.items() if tag in sub_ifd}
        )
        raw_orientation = exif.get(_EXIF_ORIENTATION_TAG)
    except Exception as error:  # a damaged EXIF block must not cost the pixels
        return {}, None, [f"EXIF metadata could not be read ({one_line(error)})"]
    orientation = None
    if raw_orientation is not None:
        if isinstance(raw_orientation, int) and raw_orientation in _ORIENTATION_MEANINGS:
            orientation = raw_orientation
            if orientation != 1:
                found.append(
                    f"EXIF orientation {orientation} ({_ORIENTATION_MEANINGS[orientation]}) recorded but not "
                    "applied: the pixels were analysed as stored, where the watermark is"
                )
        else:
            found.append(f"EXIF orientation value {_exif_text(raw_orientation)!r} is invalid and was ignored")
    return summary, orientation, found


def _alpha_warning(stored_mode: str, alpha: np.ndarray) -> str:
    translucent = float(np.count_nonzero(alpha < 255)) / alpha.size
    extent = (
        "all pixels are fully opaque"
        if translucent == 0
        else f"{translucent:.1%} of pixels are transparent or translucent"
    )
    return (
        f"{stored_mode} transparency dropped without compositing: the stored colour values were analysed, "
        f"because the watermark is in them ({extent})"
    )


def _sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    # High byte, the same rule Pillow's decoders use for 16-bit colour: 65535→255, 0→0, monotone.
    return (values.astype(np.uint32) >> 8).astype(np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


def _to_rgb8(image: Image.Image, data: bytes) -> tuple[np.ndarray, str | None, list[str]]:
    """Stored pixels as uint8 (H, W, 3), the recorded conversion, and warnings. Alpha is dropped, never
    composited; no colour management; high-bit-depth samples are scaled, never clipped at 255."""
    mode = image.mode
    found: list[str] = []
    bits = _stored_bits_per_sample(image, data) if mode in ("RGB", "RGBA", "LA", "RGBX") else 8
    depth = f" {bits}-bit" if bits > 8 else ""
    depth_note = f"{bits}-bit reduced to 8-bit by the high byte; " if bits > 8 else ""
    if mode.startswith("I;16"):
        rgb = _grey_to_rgb(_sixteen_to_eight(np.asarray(image)))
        conversion = f"{mode}→RGB (16-bit scaled to 8-bit by the high byte, grey replicated)"
    elif mode == "I":
        samples = np.clip(np.asarray(image), 0, 65535)
        rgb = _grey_to_rgb(_sixteen_to_eight(samples))
        conversion = "I→RGB (32-bit integers clipped to 0–65535, scaled to 8-bit by the high byte, grey replicated)"
    elif mode == "F":
        rgb, conversion = _float_to_rgb8(np.asarray(image, dtype=np.float32))
    elif mode == "RGB":
        rgb = np.asarray(image)
        conversion = f"RGB{depth}→8-bit (high byte)" if bits > 8 else None
    elif mode in ("RGBA", "RGBa", "RGBX"):
        stored = np.asarray(image)
        rgb = stored[:, :, :3]
        if mode == "RGBX":
            conversion = f"RGBX{depth}→RGB ({depth_note}padding byte dropped)"
        else:
            conversion = f"{mode}{depth}→RGB ({depth_note}alpha dropped, not composited)"
            found.append(_alpha_warning(mode, stored[:, :, 3]))
    elif mode in ("LA", "La"):
        stored = np.asarray(image)
        rgb = _grey_to_rgb(stored[:, :, 0])
        conversion = f"{mode}{depth}→RGB ({depth_note}grey replicated; alpha dropped, not composited)"
        found.append(_alpha_warning(mode, stored[:, :, 1]))
    elif mode in ("P", "PA"):
        has_transparency = mode == "PA" or "transparency" in image.info or image.palette.mode == "RGBA"
        if has_transparency:
            rgba = np.asarray(image.convert("RGBA"))  # palette colours kept under transparent indices
            rgb = rgba[:, :, :3]
            conversion = f"{mode}→RGB (palette looked up; transparency dropped, not composited)"
            found.append(_alpha_warning(f"{mode} (palette)", rgba[:, :, 3]))
        else:
            rgb = np.asarray(image.convert("RGB"))
            conversion = "P→RGB (palette looked up)"
    elif mode == "L":
        rgb = _grey_to_rgb(np.asarray(image))
        conversion = "L→RGB (grey replicated)"
    elif mode == "1":
        rgb = _grey_to_rgb(np.asarray(image.convert("L")))
        conversion = "1→RGB (1-bit black/white to 0/255)"
    elif mode == "CMYK":
        rgb = np.asarray(image.convert("RGB"))
        conversion = "CMYK→RGB (Pillow's plain formula, no colour management)"
    else:  # YCbCr, LAB, HSV and rarer modes: Pillow's own conversion
        rgb = np.asarray(image.convert("RGB"))
        conversion = f"{mode}→RGB (Pillow's conversion)"
    if "transparency" in image.info and mode not in ("P", "PA"):
        found.append(f"{mode} transparency colour key ignored: the stored colour values were analysed, not composited")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"unexpected pixel layout {rgb.dtype} {rgb.shape} from mode {mode}")
    return np.ascontiguousarray(rgb), conversion, found


def _float_to_rgb8(samples: np.ndarray) -> tuple[np.ndarray, str]:
    """Float samples: a finite maximum ≤ 1 means a [0, 1] image (scaled ×255, clipped to [0, 1]);
    anything larger is taken as [0, 255] and clipped there. NaN becomes 0."""
    finite = samples[np.isfinite(samples)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if high <= 1.0:
        scaled = np.clip(np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0) * 255.0
        rule = f"float samples {low:.4g}…{high:.4g} taken as [0, 1]: clipped to [0, 1], scaled ×255"
    else:
        scaled = np.clip(np.nan_to_num(samples, nan=0.0, posinf=255.0, neginf=0.0), 0.0, 255.0)
        rule = f"float samples {low:.4g}…{high:.4g} taken as [0, 255]: clipped to [0, 255]"
    if finite.size != samples.size:
        rule += f"; {samples.size - finite.size:,} non-finite samples (NaN→0)"
    grey = np.rint(scaled).astype(np.uint8)
    return _grey_to_rgb(grey), f"F→RGB ({rule}, rounded to 8-bit, grey replicated)"


def _resize_and_centre_crop(
    rgb: np.ndarray, target_size: int
) -> tuple[np.ndarray, tuple[int, int] | None, tuple[int, int, int, int] | None, list[str]]:
    """torchvision Resize(target_size, BICUBIC) then CenterCrop(target_size), on the 8-bit RGB image,
    with torchvision's own size and offset arithmetic so the result matches a training pipeline."""
    height, width = rgb.shape[:2]
    if (width, height) == (target_size, target_size):
        return rgb, None, None, []
    found: list[str] = []
    short, long = min(width, height), max(width, height)
    new_long = int(target_size * long / short)
    new_w, new_h = (target_size, new_long) if width <= height else (new_long, target_size)
    top = int(round((new_h - target_size) / 2.0))
    left = int(round((new_w - target_size) / 2.0))
    crop_box = (left, top, left + target_size, top + target_size)
    picture = Image.fromarray(rgb, "RGB")
    if (new_w, new_h) == (width, height):
        cropped = picture.crop(crop_box)  # shorter side already target_size: Resize is the identity
        resized_to = None
    elif new_w * new_h <= _FULL_RESIZE_PIXEL_LIMIT:
        cropped = picture.resize((new_w, new_h), Image.Resampling.BICUBIC).crop(crop_box)
        resized_to = (new_w, new_h)
    else:
        scale_x, scale_y = width / new_w, height / new_h
        source_box = (left * scale_x, top * scale_y, (left + target_size) * scale_x, (top + target_size) * scale_y)
        cropped = picture.resize((target_size, target_size), Image.Resampling.BICUBIC, box=source_box)
        resized_to = (new_w, new_h)
        found.append(
            f"the {new_w}×{new_h} resize was computed only over the centre-crop region to bound memory; "
            "Pillow may then run its two bicubic passes in the other order, so values can differ slightly "
            "from a full resize"
        )
    if short < target_size:
        factor = f"{target_size / short:.3g}×"
        if short * 4 <= target_size:
            found.append(
                f"image is {width}×{height}, far below the model input size {target_size}×{target_size}: "
                f"upscaled {factor}, so the analysed pixels are mostly interpolation"
            )
        else:
            found.append(
                f"image is {width}×{height}, below the model input size {target_size}×{target_size}: "
                f"upscaled {factor} by bicubic interpolation"
            )
    square = (new_w, new_h) == (target_size, target_size)
    return np.asarray(cropped), resized_to, (None if square else crop_box), found


def _frame_count_and_warning(image: Image.Image, format_name: str) -> tuple[int, list[str]]:
    try:
        count = int(getattr(image, "n_frames", 1))
    except Exception as error:  # later frames damaged: the first can still be analysed
        return 1, [f"the number of frames could not be determined ({one_line(error)}); the first frame was analysed"]
    if count <= 1:
        return 1, []
    if format_name == "TIFF":
        kind = f"multi-page TIFF with {count} pages"
    elif format_name == "MPO":
        kind = f"multi-picture JPEG (MPO) with {count} pictures"
    else:
        kind = f"animated {format_name} with {count} frames"
    return count, [f"{kind}: the first frame was analysed"]


_WARNINGS_LOCK = threading.Lock()


def load_evidence(path: str | os.PathLike[str], target_size: int, md5: bool = False) -> EvidenceImage:
    """Read, hash and decode one evidence file into the model's (3, target_size, target_size) input.

    Raises EvidenceError, and only EvidenceError, for anything wrong with the file."""
    if isinstance(target_size, bool) or not isinstance(target_size, int) or target_size < 1:
        raise ValueError(f"target_size must be a positive int, not {target_size!r}")
    data = _read_evidence_bytes(path)
    sha256 = hashlib.sha256(data).hexdigest()
    found: list[str] = []
    # Warnings are recorded rather than printed: DecompressionBombWarning becomes an error, the rest
    # (e.g. damaged EXIF) become the examiner's warnings. catch_warnings swaps process-wide state, so
    # concurrent loads (the GUI's previews beside a run) are serialised by a lock.
    with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with Image.open(io.BytesIO(data), formats=_DECODABLE_FORMATS) as image:
                width, height = image.size
                if width <= 0 or height <= 0:
                    raise EvidenceError(path, f"has a zero-size dimension ({width}×{height})")
                if width * height > MAX_PIXELS or any(
                    issubclass(w.category, Image.DecompressionBombWarning) for w in caught
                ):
                    raise EvidenceError(path, _pixel_limit_problem(width, height))
                format_name = image.format or "unknown"
                stored_mode = image.mode
                frame_count, frame_warnings = _frame_count_and_warning(image, format_name)
                image.seek(0)
                image.load()  # decodes now, so truncation and corruption surface here
                exif, orientation, exif_warnings = _exif_summary(image)
                luma_table = _jpeg_luma_table(image)
                rgb, conversion, conversion_warnings = _to_rgb8(image, data)
            pixels_rgb, resized_to, crop_box, resize_warnings = _resize_and_centre_crop(rgb, target_size)
        except EvidenceError:
            raise
        except Image.DecompressionBombError as error:
            raise EvidenceError(
                path,
                f"declares more pixels than the {MAX_PIXELS:,}-pixel limit (MAX_PIXELS) that guards against "
                f"decompression bombs, so it was not decoded (Pillow: {one_line(error)})",
            ) from None
        except Image.UnidentifiedImageError:
            raise EvidenceError(path, _not_an_image_problem(data)) from None
        except Exception as error:  # Pillow's decoders raise many types on hostile input
            raise EvidenceError(path, _decode_problem(error)) from None
    for record in caught:
        if issubclass(record.category, Image.DecompressionBombWarning):
            raise EvidenceError(path, _pixel_limit_problem(width, height))
    decoder_warnings = sorted({f"Pillow warned while decoding: {one_line(w.message)}" for w in caught})
    if data.startswith(_PNG_SIGNATURE):
        found += _png_chunk_warnings(data)
    found += frame_warnings + exif_warnings + conversion_warnings + resize_warnings + decoder_warnings
    levels = np.ascontiguousarray(pixels_rgb.transpose(2, 0, 1)).astype(np.float32)
    pixels = levels / np.float32(127.5) - np.float32(1.0)  # 0→-1, 255→1 exactly
    return EvidenceImage(
        path=os.fsdecode(path),
        sha256=sha256,
        size_bytes=len(data),
        format=format_name,
        width=width,
        height=height,
        mode=stored_mode,
        exif=exif,
        exif_orientation=orientation,
        frame_count=frame_count,
        warnings=tuple(found),
        preprocessing=Preprocessing(
            original_size=(width, height),
            target_size=target_size,
            resized_to=resized_to,
            crop_box=crop_box,
            mode_conversion=conversion,
        ),
        pixels=pixels,
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest() if md5 else None,
        jpeg_luma_table=luma_table,
    )


def _jpeg_luma_table(image: Image.Image) -> tuple[int, ...] | None:
    """The first (luma) quantization table of a JPEG as Pillow parsed it, when it is a plain 64-entry table."""
    tables = getattr(image, "quantization", None)
    if image.format not in ("JPEG", "MPO") or not isinstance(tables, dict) or 0 not in tables:
        return None
    table = tuple(int(v) for v in tables[0])
    return table if len(table) == 64 and all(1 <= v <= 65535 for v in table) else None
