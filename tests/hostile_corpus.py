"""A corpus of hostile and unusual evidence files, generated at test time (no committed binaries).

make_hostile_corpus(directory) writes every file into `directory` and returns one CorpusCase per file
saying whether engine.intake.load_evidence must load it or refuse it, and what the outcome must say.
Everything is deterministic (fixed seeds), so a failing case names the same bytes on every run.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class CorpusCase:
    filename: str
    loads: bool
    error_substring: str | None = None  # must appear in the EvidenceError message when loads is False
    warning_substring: str | None = None  # must appear in one of the warnings when loads is True
    category: str = ""


# ---------------------------------------------------------------------------------------------------
# Pixel sources and encoders


def _rgb(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A gradient with noise: every channel varies, so a wrong crop, flip or channel order shows."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 // max(width - 1, 1), ys * 255 // max(height - 1, 1), (xs + ys) % 256], axis=2)
    noise = rng.integers(-20, 21, size=(height, width, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def rgb_image(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(_rgb(width, height, seed), "RGB")


def encode(image: Image.Image, image_format: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def png_chunk(chunk_type: bytes, body: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(chunk_type + body) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(body)) + chunk_type + body + struct.pack(">I", crc)


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes, extra: bytes = b"") -> bytes:
    """A PNG written by hand, for what Pillow will not write (16-bit colour, lying headers)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", header)
        + extra
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def sixteen_bit_png(samples: np.ndarray, colour_type: int) -> bytes:
    """samples: uint16 (H, W, C) for colour type 0/2/4/6."""
    height, width = samples.shape[:2]
    big_endian = samples.astype(">u2")
    rows = b"".join(b"\x00" + big_endian[y].tobytes() for y in range(height))
    return raw_png(width, height, 16, colour_type, rows)


def bmp_header_only(width: int, height: int, pixel_bytes: bytes = b"\x00" * 64) -> bytes:
    dib = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixel_bytes), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + len(pixel_bytes), 0, 0, 54) + dib + pixel_bytes


def tiff_grey(width: int, height: int, pixel_bytes: bytes = b"\x00" * 16) -> bytes:
    """A minimal little-endian 8-bit grey TIFF with whatever dimensions it is told to declare."""
    tags = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, None),
        (277, 3, 1),
        (278, 4, max(height, 1)),
        (279, 4, len(pixel_bytes)),
    ]
    data_offset = 8 + 2 + 12 * len(tags) + 4
    out = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(tags))
    for tag, field_type, value in tags:
        value = data_offset if value is None else value
        packed = struct.pack("<HH", value, 0) if field_type == 3 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, field_type, 1) + packed
    return out + struct.pack("<I", 0) + pixel_bytes


def gif_header_only(width: int, height: int) -> bytes:
    screen = struct.pack("<HHBBB", width, height, 0, 0, 0)
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return b"GIF89a" + screen + descriptor + b"\x02\x02\x44\x01\x00;"


def jpeg_with_declared_size(width: int, height: int) -> bytes:
    data = bytearray(encode(rgb_image(16, 16), "JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_vp8x_header(width: int, height: int) -> bytes:
    body = bytes(4) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def exif_bytes(tags: dict[int, object], exif_ifd: dict[int, object] | None = None) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    if exif_ifd:
        sub = exif.get_ifd(0x8769)
        sub.update(exif_ifd)
    return exif.tobytes()


def animated_gif(frame_count: int, size: tuple[int, int] = (48, 40)) -> bytes:
    frames = [rgb_image(*size, seed=i).convert("P") for i in range(frame_count)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def cut(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


# ---------------------------------------------------------------------------------------------------
# The corpus


def make_hostile_corpus(directory: str | os.PathLike[str]) -> list[CorpusCase]:
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    cases: list[CorpusCase] = []

    def add(
        filename: str, data: bytes | Callable[[Path], None], loads: bool, expect: str | None = None, category: str = ""
    ) -> None:
        target = root / filename
        target.parent.mkdir(parents=True, exist_ok=True)  # "<b>x</b>.png" lives in a folder "<b>x<"
        if callable(data):
            data(target)
        else:
            target.write_bytes(data)
        cases.append(
            CorpusCase(
                filename=filename,
                loads=loads,
                error_substring=None if loads else expect,
                warning_substring=expect if loads else None,
                category=category,
            )
        )

    def good(filename: str, data: bytes, warning: str | None = None, category: str = "valid") -> None:
        add(filename, data, True, warning, category)

    def bad(filename: str, data: bytes | Callable[[Path], None], message: str, category: str) -> None:
        add(filename, data, False, message, category)

    # -- ordinary images in every supported format, several sizes -----------------------------------
    for width, height in [(64, 64), (640, 480), (480, 640), (65, 64), (63, 64), (2, 3), (7, 5), (31, 200), (512, 512)]:
        good(
            f"rgb_{width}x{height}.png",
            encode(rgb_image(width, height, seed=width), "PNG"),
            "below the model input size" if min(width, height) < 64 else None,
            category="png",
        )
    good("rgb_1x1.png", encode(rgb_image(1, 1), "PNG"), "far below the model input size", category="tiny")
    good("jpeg_q95_64.jpg", encode(rgb_image(64, 64), "JPEG", quality=95), category="jpeg")
    good("jpeg_q75_640x480.jpeg", encode(rgb_image(640, 480), "JPEG", quality=75), category="jpeg")
    good("jpeg_progressive.jpg", encode(rgb_image(100, 100), "JPEG", progressive=True), category="jpeg")
    good("jpeg_444_333x77.jpg", encode(rgb_image(333, 77), "JPEG", subsampling=0), category="jpeg")
    good("jpeg_1x1.jpg", encode(rgb_image(1, 1), "JPEG"), "far below", category="tiny")
    good("jpeg_grey.jpg", encode(rgb_image(80, 64).convert("L"), "JPEG"), category="jpeg")
    good("jpeg_cmyk_64.jpg", encode(rgb_image(64, 64).convert("CMYK"), "JPEG"), category="cmyk")
    good("jpeg_cmyk_120x80.jpg", encode(rgb_image(120, 80).convert("CMYK"), "JPEG"), category="cmyk")
    good("webp_lossy.webp", encode(rgb_image(96, 64), "WEBP", quality=80), category="webp")
    good("webp_lossless.webp", encode(rgb_image(64, 64), "WEBP", lossless=True), category="webp")
    rgba = Image.fromarray(np.dstack([_rgb(64, 64), np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))]), "RGBA")
    good("webp_rgba.webp", encode(rgba, "WEBP", lossless=True), "transparency dropped", category="alpha")
    webp_frames = [rgb_image(40, 40, seed=i) for i in range(3)]
    good(
        "webp_animated.webp",
        encode(webp_frames[0], "WEBP", save_all=True, append_images=webp_frames[1:], duration=40),
        "animated WEBP with 3 frames",
        category="animated",
    )
    good("webp_1x1.webp", encode(rgb_image(1, 1), "WEBP", lossless=True), "far below", category="tiny")
    good("bmp_rgb.bmp", encode(rgb_image(64, 64), "BMP"), category="bmp")
    good("bmp_palette.bmp", encode(rgb_image(50, 70).convert("P"), "BMP"), category="palette")
    good("bmp_grey.bmp", encode(rgb_image(64, 64).convert("L"), "BMP"), category="bmp")
    good("bmp_1bit.bmp", encode(rgb_image(64, 64).convert("1"), "BMP"), category="1-bit")
    good("bmp_32bit.bmp", encode(rgba, "BMP"), category="bmp")  # Pillow reads 32-bit BMP back as RGB
    good("tiff_rgb.tif", encode(rgb_image(64, 48), "TIFF"), category="tiff")
    good("tiff_lzw.tiff", encode(rgb_image(70, 64), "TIFF", compression="tiff_lzw"), category="tiff")
    good("tiff_cmyk.tif", encode(rgb_image(64, 64).convert("CMYK"), "TIFF"), category="cmyk")
    good("tiff_rgba.tif", encode(rgba, "TIFF"), "transparency dropped", category="alpha")
    good("tiff_grey.tif", encode(rgb_image(64, 64).convert("L"), "TIFF"), category="tiff")
    good("tiff_1bit.tif", encode(rgb_image(64, 64).convert("1"), "TIFF"), category="1-bit")
    ramp16 = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    good("tiff_16bit_grey.tif", encode(Image.fromarray(ramp16), "TIFF"), category="16-bit")
    float_unit = np.random.default_rng(3).random((64, 64), dtype=np.float32)
    good("tiff_float_unit.tif", encode(Image.fromarray(float_unit), "TIFF"), category="float")
    float_wide = (np.random.default_rng(4).random((64, 64), dtype=np.float32) * 600 - 100).astype(np.float32)
    good("tiff_float_wide.tif", encode(Image.fromarray(float_wide), "TIFF"), category="float")
    float_odd = float_unit.copy()
    float_odd[0, :8] = [np.nan, np.inf, -np.inf, np.nan, -5, 7, 0.5, 1]
    good("tiff_float_nan_inf.tif", encode(Image.fromarray(float_odd), "TIFF"), category="float")
    pages = [rgb_image(64, 64, seed=i) for i in range(4)]
    good(
        "tiff_multipage.tif",
        encode(pages[0], "TIFF", save_all=True, append_images=pages[1:]),
        "multi-page TIFF with 4 pages",
        category="animated",
    )
    good("gif_static.gif", encode(rgb_image(64, 64).convert("P"), "GIF"), category="gif")
    transparent_gif = rgb_image(64, 64).convert("P")
    good(
        "gif_transparent.gif",
        encode(transparent_gif, "GIF", transparency=0),
        "transparency dropped",
        category="palette",
    )
    good(
        "gif_animated_12.gif",
        animated_gif(12),
        "animated GIF with 12 frames: the first frame was analysed",
        category="animated",
    )
    good("gif_grey.gif", encode(rgb_image(64, 64).convert("L"), "GIF"), category="gif")
    good("gif_1x1.gif", encode(rgb_image(1, 1).convert("P"), "GIF"), "far below", category="tiny")
    good("gif_300x20.gif", encode(rgb_image(300, 20).convert("P"), "GIF"), "below the model input size", category="gif")
    good("ppm_rgb.ppm", encode(rgb_image(64, 64), "PPM"), category="ppm")

    # -- PNG modes ---------------------------------------------------------------------------------
    good("png_rgba_gradient_alpha.png", encode(rgba, "PNG"), "are transparent or translucent", category="alpha")
    opaque = Image.fromarray(np.dstack([_rgb(64, 64), np.full((64, 64), 255, np.uint8)]), "RGBA")
    good("png_rgba_opaque.png", encode(opaque, "PNG"), "fully opaque", category="alpha")
    invisible = Image.fromarray(np.dstack([_rgb(64, 64), np.zeros((64, 64), np.uint8)]), "RGBA")
    good("png_rgba_fully_transparent.png", encode(invisible, "PNG"), "100.0% of pixels", category="alpha")
    good("png_grey.png", encode(rgb_image(64, 64).convert("L"), "PNG"), category="grey")
    good(
        "png_grey_alpha.png",
        encode(rgb_image(64, 64).convert("LA"), "PNG"),
        "LA transparency dropped",
        category="alpha",
    )
    good("png_palette.png", encode(rgb_image(90, 64).convert("P"), "PNG"), category="palette")
    good(
        "png_palette_trns.png",
        encode(transparent_gif, "PNG", transparency=0),
        "transparency dropped",
        category="palette",
    )
    good("png_palette_2bit.png", encode(rgb_image(64, 64).convert("P", colors=4), "PNG", bits=2), category="palette")
    good("png_1bit.png", encode(rgb_image(64, 64).convert("1"), "PNG"), category="1-bit")
    good("png_16bit_grey.png", encode(Image.fromarray(ramp16), "PNG"), category="16-bit")
    good("png_16bit_grey_odd_size.png", encode(Image.fromarray(ramp16[:37, :50]), "PNG"), category="16-bit")
    ramp16_rgb = np.dstack([ramp16, ramp16[::-1], np.full_like(ramp16, 65535)])
    good("png_16bit_rgb.png", sixteen_bit_png(ramp16_rgb, colour_type=2), category="16-bit")
    good(
        "png_16bit_rgba.png",
        sixteen_bit_png(np.dstack([ramp16_rgb, ramp16]), colour_type=6),
        "transparency dropped",
        category="16-bit",
    )
    good(
        "png_16bit_grey_alpha.png",
        sixteen_bit_png(np.dstack([ramp16, ramp16]), colour_type=4),
        "transparency dropped",
        category="16-bit",
    )
    good(
        "png_grey_trns_key.png",
        encode(rgb_image(64, 64).convert("L"), "PNG", transparency=7),
        "colour key ignored",
        category="alpha",
    )
    good(
        "png_rgb_trns_key.png",
        encode(rgb_image(64, 64), "PNG", transparency=(1, 2, 3)),
        "colour key ignored",
        category="alpha",
    )
    apng_frames = [rgb_image(64, 64, seed=i) for i in range(5)]
    good(
        "png_animated.png",
        encode(apng_frames[0], "PNG", save_all=True, append_images=apng_frames[1:], duration=40),
        "animated PNG with 5 frames",
        category="animated",
    )
    plain_png = encode(rgb_image(64, 64), "PNG")
    good(
        "png_trailing_data.png",
        plain_png + b"<?php system($_GET['c']); ?>" * 4,
        "after the end of the PNG",
        category="png",
    )
    idat = plain_png.find(b"IDAT")
    (idat_length,) = struct.unpack(">I", plain_png[idat - 4 : idat])
    crc_at = idat + 4 + idat_length
    good(
        "png_bad_idat_crc.png",
        plain_png[:crc_at] + bytes(b ^ 0xFF for b in plain_png[crc_at : crc_at + 4]) + plain_png[crc_at + 4 :],
        "CRC mismatch in IDAT",
        category="crc",
    )

    # -- EXIF -------------------------------------------------------------------------------------
    for orientation in range(1, 9):
        good(
            f"exif_orientation_{orientation}.jpg",
            encode(rgb_image(96, 64), "JPEG", exif=exif_bytes({274: orientation})),
            None if orientation == 1 else f"EXIF orientation {orientation}",
            category="exif",
        )
    script_exif = exif_bytes(
        {
            271: "<script>alert('make')</script>",
            272: '<img src=x onerror="alert(1)">',
            305: "<b>bold</b> & \u202eevil",
            270: "line one\nline two\x00\x07",
        },
        {37510: b"ASCII\x00\x00\x00<iframe src=javascript:alert(1)>"},
    )
    good("exif_html_script.jpg", encode(rgb_image(64, 64), "JPEG", exif=script_exif), category="exif")
    good(
        "exif_huge_value.jpg", encode(rgb_image(64, 64), "JPEG", exif=exif_bytes({270: "A" * 60_000})), category="exif"
    )
    good(
        "exif_bad_orientation.jpg",
        encode(rgb_image(64, 64), "JPEG", exif=exif_bytes({274: 99})),
        "invalid",
        category="exif",
    )
    good(
        "exif_in_png.png",
        encode(rgb_image(64, 64), "PNG", exif=exif_bytes({274: 6, 271: "PNG camera"})),
        "EXIF orientation 6",
        category="exif",
    )
    good(
        "exif_in_webp.webp",
        encode(rgb_image(64, 64), "WEBP", exif=exif_bytes({274: 8})),
        "EXIF orientation 8",
        category="exif",
    )
    good(
        "exif_garbage.jpg",
        encode(rgb_image(64, 64), "JPEG", exif=b"Exif\x00\x00" + bytes(range(256)) * 3),
        category="exif",
    )

    # -- valid images under the wrong name ---------------------------------------------------------
    good("png_named.jpg", plain_png, category="wrong-extension")
    good("jpeg_named.png", encode(rgb_image(64, 64), "JPEG"), category="wrong-extension")
    good("gif_named.webp", encode(rgb_image(64, 64).convert("P"), "GIF"), category="wrong-extension")
    good("bmp_named.tif", encode(rgb_image(64, 64), "BMP"), category="wrong-extension")
    good("no_extension", plain_png, category="wrong-extension")
    good("png_named.txt", plain_png, category="wrong-extension")
    good("UPPER_CASE.PNG", plain_png, category="wrong-extension")
    good("double.png.jpg", plain_png, category="wrong-extension")

    # -- hostile names -----------------------------------------------------------------------------
    good("evidence with spaces.png", plain_png, category="name")
    good("évidence_証拠_🖼.png", plain_png, category="name")
    good("<b>x</b>.png", plain_png, category="name")  # the '/' makes it a path: the HTML tag survives whole
    good("<i>tag</i>&amp;.jpg", encode(rgb_image(64, 64), "JPEG"), category="name")
    good("-rf --no-preserve-root.png", plain_png, category="name")
    good("quote'double\"semi;amp&.png", plain_png, category="name")
    good("n" * 200 + ".png", plain_png, category="name")
    bad("<script>alert(1)</script>.jpg", b"<html><body>not a photo</body></html>", "not an image", category="name")
    bad("évidence cassée 壊れた.png", cut(plain_png, 0.5), "truncated", category="name")

    # -- tiny, huge and degenerate shapes ----------------------------------------------------------
    good(
        "strip_100000x1.png",
        encode(rgb_image(100_000, 1), "PNG"),
        "computed only over the centre-crop region",
        category="shape",
    )
    good("strip_1x100000.png", encode(rgb_image(1, 100_000), "PNG"), "far below", category="shape")
    good("strip_3x2000.jpg", encode(rgb_image(3, 2000), "JPEG"), "far below", category="shape")
    bad("png_zero_width.png", raw_png(0, 4, 8, 2, b""), "zero-size", category="zero-size")
    bad("png_zero_height.png", raw_png(4, 0, 8, 2, b""), "zero-size", category="zero-size")
    bad("bmp_zero_width.bmp", bmp_header_only(0, 5), "corrupt", category="zero-size")
    bad("tiff_zero_width.tif", tiff_grey(0, 5), "corrupt", category="zero-size")
    bad("jpeg_zero_height.jpg", jpeg_with_declared_size(16, 0), "corrupt", category="zero-size")

    # -- decompression bombs: tiny files declaring enormous images ---------------------------------
    bad("bomb_png_100000x100000.png", raw_png(100_000, 100_000, 8, 2, b"\x00"), "pixel", category="bomb")
    bad("bomb_png_just_over_limit.png", raw_png(8001, 8000, 8, 2, b"\x00"), "64,000,000-pixel limit", category="bomb")
    bad(
        "bomb_png_pillow_warning_zone.png",
        raw_png(10_000, 9_000, 8, 2, b"\x00"),
        "64,000,000-pixel limit",
        category="bomb",
    )
    bad("bomb_png_zlib.png", raw_png(10_000, 10_000, 8, 0, bytes(10_000 * 10_001)), "pixel", category="bomb")
    bad("bomb_jpeg.jpg", jpeg_with_declared_size(65_500, 65_500), "pixel", category="bomb")
    bad("bomb_gif.gif", gif_header_only(65_535, 65_535), "pixel", category="bomb")
    bad("bomb_gif_9000.gif", gif_header_only(9_000, 9_000), "pixel", category="bomb")
    bad("bomb_bmp.bmp", bmp_header_only(30_000, 30_000), "pixel", category="bomb")
    bad("bomb_tiff.tif", tiff_grey(20_000, 20_000), "pixel", category="bomb")
    bad("bomb_webp.webp", webp_vp8x_header(16_383, 16_383), "pixel", category="bomb")
    bad("bomb_ppm.ppm", b"P6\n100000 100000\n255\n" + bytes(30), "pixel", category="bomb")
    bad("bomb_ppm_just_over.ppm", b"P6\n8001 8000\n255\n" + bytes(30), "pixel", category="bomb")

    # -- empty files -------------------------------------------------------------------------------
    for suffix in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".gif", ""):
        bad(f"empty{suffix or '_no_extension'}", b"", "empty (0 bytes)", category="empty")

    # -- not images at all -------------------------------------------------------------------------
    bad(
        "text.png",
        b"This is a plain text file pretending to be a PNG.\n" * 20,
        "text file, not an image",
        category="not-image",
    )
    bad(
        "page.jpg",
        b"<!DOCTYPE html>\n<html><head><title>x</title></head><body><img src=x></body></html>\n",
        "HTML document, not an image",
        category="not-image",
    )
    bad(
        "page_upper.webp", b"\n\n  <HTML><BODY>hello</BODY></HTML>", "HTML document, not an image", category="not-image"
    )
    bad("data.tif", b'{"looks": "like json", "n": [1, 2, 3]}', "text file, not an image", category="not-image")
    bad("table.bmp", b"a,b,c\n1,2,3\n" * 50, "text file, not an image", category="not-image")
    bad(
        "vector.png",
        b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>',
        "not an image",
        category="not-image",
    )
    bad("script.gif", b"#!/bin/sh\nrm -rf / --no-preserve-root\n", "text file, not an image", category="not-image")
    bad("utf16_text.png", "UTF-16 text with a BOM".encode("utf-16"), "not an image", category="not-image")
    bad("icon_named.png", encode(rgb_image(16, 16), "ICO"), "not an image in a supported format", category="not-image")
    bad("targa_named.bmp", encode(rgb_image(16, 16), "TGA"), "not an image in a supported format", category="not-image")
    bad(
        "pdf_named.jpg",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n" + bytes(range(256)),
        "not an image",
        category="not-image",
    )
    bad("zip_named.png", b"PK\x03\x04" + bytes(range(256)) * 4, "not an image", category="not-image")
    rng = np.random.default_rng(2024)
    for index, (size, suffix) in enumerate(
        [(1, ".png"), (17, ".jpg"), (1000, ".webp"), (4096, ".gif"), (50_000, ".tif"), (3000, ".bmp")]
    ):
        noise = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        bad(f"random_{index}{suffix}", b"\x00\xfe" + noise, "not an image", category="random")
    bad("nul_bytes.png", bytes(5000), "not an image", category="random")

    # -- truncated ---------------------------------------------------------------------------------
    big_png = encode(rgb_image(200, 150), "PNG")
    big_jpeg = encode(rgb_image(200, 150), "JPEG", quality=90)
    for fraction in (0.1, 0.5, 0.9, 0.99):
        bad(f"png_cut_{int(fraction * 100)}.png", cut(big_png, fraction), "truncated", category="truncated")
    for fraction in (0.25, 0.5, 0.75):
        bad(f"jpeg_cut_{int(fraction * 100)}.jpg", cut(big_jpeg, fraction), "truncated", category="truncated")
    bad(
        "gif_cut_half.gif", cut(encode(rgb_image(200, 150).convert("P"), "GIF"), 0.5), "truncated", category="truncated"
    )
    bad("bmp_cut_half.bmp", cut(encode(rgb_image(200, 150), "BMP"), 0.5), "truncated", category="truncated")
    bad("tiff_cut_half.tif", cut(encode(rgb_image(200, 150), "TIFF"), 0.5), "truncated", category="truncated")
    bad("webp_cut_half.webp", cut(encode(rgb_image(200, 150), "WEBP"), 0.5), "corrupt", category="truncated")
    bad("png_signature_only.png", PNG_SIGNATURE, "PNG signature but is corrupt", category="truncated")
    bad("jpeg_soi_only.jpg", b"\xff\xd8\xff\xe0", "JPEG signature but is corrupt", category="truncated")
    bad("gif_header_only.gif", b"GIF89a", "GIF signature but is corrupt", category="truncated")

    # -- corrupt -----------------------------------------------------------------------------------
    bad(
        "png_bad_ihdr_crc.png",
        plain_png[:29] + b"\x00\x00\x00\x00" + plain_png[33:],
        "PNG signature but is corrupt",
        category="crc",
    )
    garbage_idat = (
        raw_png(64, 64, 8, 2, b"")[:33] + png_chunk(b"IDAT", b"\x78\x9c" + bytes(range(200))) + png_chunk(b"IEND", b"")
    )
    bad("png_garbage_idat.png", garbage_idat, "corrupt", category="corrupt")
    bad(
        "png_bad_colour_type.png", raw_png(8, 8, 8, 5, bytes(8 * 9)), "PNG signature but is corrupt", category="corrupt"
    )
    bad("png_bad_bit_depth.png", raw_png(8, 8, 3, 0, bytes(8 * 9)), "PNG signature but is corrupt", category="corrupt")
    looping_tiff = bytearray(tiff_grey(4, 4, bytes(16)))
    looping_tiff[10 + 12 * 9 : 14 + 12 * 9] = struct.pack("<I", 8)  # "next IFD" points back at itself
    good("tiff_ifd_loop.tif", bytes(looping_tiff), "far below", category="corrupt")
    bad(
        "tiff_bad_ifd_offset.tif", b"II*\x00" + struct.pack("<I", 0x7FFFFFF0) + bytes(64), "corrupt", category="corrupt"
    )
    bad(
        "webp_garbage.webp",
        b"RIFF" + struct.pack("<I", 200) + b"WEBPVP8 " + struct.pack("<I", 188) + bytes(range(188)),
        "corrupt",
        category="corrupt",
    )
    bad(
        "bmp_bad_bit_count.bmp",
        b"BM"
        + struct.pack("<IHHI", 100, 0, 0, 54)
        + struct.pack("<IiiHHIIiiII", 40, 8, 8, 1, 7, 0, 0, 0, 0, 0, 0)
        + bytes(46),
        "corrupt",
        category="corrupt",
    )

    # -- things that are not regular files ---------------------------------------------------------
    bad("folder.png", lambda target: target.mkdir(), "is a folder", category="not-a-file")
    good(
        "link_to_image.png",
        plain_png if not hasattr(os, "symlink") else _symlink_to(root, "rgb_64x64.png"),
        category="not-a-file",
    )
    if hasattr(os, "symlink"):
        bad(
            "dangling_link.png",
            lambda target: target.symlink_to(root / "no_such_target.png"),
            "does not exist",
            category="not-a-file",
        )
    if hasattr(os, "mkfifo"):
        bad("named_pipe.png", lambda target: os.mkfifo(target), "not a regular file", category="not-a-file")
    return cases


def _symlink_to(root: Path, existing_name: str) -> Callable[[Path], None]:
    def make(target: Path) -> None:
        target.symlink_to(root / existing_name)

    return make
