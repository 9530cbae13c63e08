"""The JPEG quality read from a file's own luma quantization table (engine.jpeg_quality), the intake keeping the
table, and `--restore jpeg:auto` restoring each JPEG exhibit at its own quality, refusing (one sentence in the
record) a file that is not a JPEG or was resized to the model's size."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from engine.jpeg_quality import estimate_quality, libjpeg_luma_table


def _jpeg_table(quality: int, **save) -> tuple[int, ...]:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
        buf, "JPEG", quality=quality, **save)
    buf.seek(0)
    with Image.open(buf) as im:
        return tuple(im.quantization[0])


@pytest.mark.parametrize("quality", [1, 10, 29, 30, 50, 51, 75, 90, 95, 100])
def test_a_libjpeg_file_names_its_quality_exactly(quality):
    q = estimate_quality(_jpeg_table(quality))
    assert (q.quality, q.exact, q.distance) == (quality, True, 0.0)
    assert "exactly" in q.describe()


def test_every_libjpeg_quality_has_its_own_table():
    tables = [libjpeg_luma_table(q) for q in range(1, 101)]
    assert len(set(tables)) == 100 and all(len(t) == 64 for t in tables)


def test_a_foreign_table_gets_the_nearest_quality_said_to_be_approximate():
    own = [max(1, round(v * 1.07)) for v in libjpeg_luma_table(80)]         # another encoder's scaling
    q = estimate_quality(own)
    assert not q.exact and abs(q.quality - 80) <= 3 and q.distance > 0
    assert "approximate" in q.describe() and "not libjpeg's" in q.describe()


@pytest.mark.parametrize("bad", [(), (16,) * 63, (0,) * 64, (70000,) * 64, (float("nan"),) * 64])
def test_a_malformed_table_is_refused(bad):
    with pytest.raises(ValueError, match="64 entries"):
        estimate_quality(bad)


def test_the_intake_keeps_a_jpegs_luma_table_and_nothing_for_a_png(tmp_path):
    from engine.intake import load_evidence

    pixels = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.jpg", quality=40)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    assert load_evidence(tmp_path / "a.jpg", 32).jpeg_luma_table == libjpeg_luma_table(40)
    assert load_evidence(tmp_path / "a.png", 32).jpeg_luma_table is None


def test_jpeg_auto_restores_each_jpeg_at_its_own_quality_and_refuses_the_rest(demo_model, demo_keys, demo_samples,
                                                                            tmp_path):
    """A demo sample saved at JPEG 40 at the model's size is restored as JPEG 40, read from the file; the same
    image enlarged to 128 px before saving, and a PNG, get a one-sentence refusal, and their plain conclusions
    stand. The record round-trips through JSON."""
    from engine.analysis import analyze
    from engine.options import AnalysisOptions
    from engine.restored_record import JPEG_FROM_FILE, ImageRestoration, parse_degradation, restore_run

    assert parse_degradation("jpeg:auto") is JPEG_FROM_FILE and parse_degradation(" JPEG:Auto ") is JPEG_FROM_FILE
    with pytest.raises(ValueError, match="only a JPEG's quality can be read"):
        parse_degradation("blur:auto")
    image = Image.open(demo_samples / "key2_00600.png").convert("RGB")
    image.save(tmp_path / "k2_q40.jpg", quality=40)
    image.resize((128, 128)).save(tmp_path / "k2_big.jpg", quality=40)
    paths = [tmp_path / "k2_q40.jpg", tmp_path / "k2_big.jpg", demo_samples / "clean_00900.png"]
    plain = analyze(demo_model, demo_keys, paths, AnalysisOptions(methods=("encoder",)).to_config(demo_model))
    run = restore_run(demo_model, demo_keys, plain, JPEG_FROM_FILE)
    read, big, png = (a.restoration for a in run.images)
    assert read.degradation.kind == "jpeg" and read.degradation.value == 40 and not read.failure
    assert read.read_from_file == ("quality 40, read from the file's luma quantization table (libjpeg's, "
                                   "exactly)")
    assert read.settings.startswith("JPEG quality 40 (approximate: luma only) — quality 40, read from the file's")
    assert read.methods["encoder"].conclusion.key is None
    assert big.failure.startswith("k2_big.jpg is stored at 128×128 and was resized or cropped to the model's 64×64")
    assert png.failure.startswith("clean_00900.png is not a JPEG file (PNG)")
    for s in (big, png):
        assert not s.methods and s.conclusion.outcome == "not_analysed" and "\n" not in s.failure
    assert [a.conclusion for a in run.images] == [a.conclusion for a in plain.images]
    for a in run.images:
        back = ImageRestoration.from_json_dict(json.loads(json.dumps(a.restoration.to_json_dict())))
        assert (back.settings, back.failure, back.read_from_file) == (a.restoration.settings, a.restoration.failure,
                                                                      a.restoration.read_from_file)
