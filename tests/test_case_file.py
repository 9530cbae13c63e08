"""Case files: save → reopen gives the same results without recomputing; evidence is re-hashed on reopening."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _png(path: Path, seed: int, size=(40, 48)) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB").save(path)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_ddim_dir):
    from engine.analysis import AnalysisConfig, analyze
    from engine.decoder_inversion import DecoderInversionConfig
    from engine.diffusion_inversion import DiffusionInversionConfig
    from engine.model_loader import load_model
    from engine.treering import new_random_keys

    model = load_model(str(tiny_ddim_dir), device="cpu")
    keys = new_random_keys(3, latent_shape=model.latent_shape, radius=3, seed=4)
    folder = tmp_path_factory.mktemp("case-evidence")
    _png(folder / "a.png", 0)
    _png(folder / "b.png", 1, size=(50, 30))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    config = AnalysisConfig.for_model(model, gradient_free=DecoderInversionConfig("gradient-free", iterations=5),
                                      gradient_based=DecoderInversionConfig("gradient-based", iterations=5),
                                      diffusion=DiffusionInversionConfig(steps=10), fpr=0.001)
    run = analyze(model, keys, [folder / "a.png", folder / "b.png", folder / "broken.png"], config)
    assert len(run.images) == 2 and len(run.failures) == 1
    return run


def _relocated(run, folder: Path):
    """The same run with its evidence copied into `folder` (so a test may change or delete it)."""
    from engine.analysis import ImageAnalysis

    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for a in run.images:
        copy = folder / Path(a.evidence.path).name
        shutil.copyfile(a.evidence.path, copy)
        images.append(ImageAnalysis(replace(a.evidence, path=str(copy)), a.methods))
    return replace(run, images=tuple(images))


def assert_same_results(a, b, same_pixels=True):
    for name in ("model_id", "model_path", "model_kind", "image_size", "latent_shape", "device", "dtype", "keys",
                 "config", "failures", "started_utc", "finished_utc", "cancelled", "software"):
        assert getattr(a, name) == getattr(b, name), name
    assert len(a.images) == len(b.images)
    for x, y in zip(a.images, b.images):
        ex, ey = x.evidence, y.evidence
        for name in ("sha256", "size_bytes", "format", "width", "height", "mode", "exif", "exif_orientation",
                     "frame_count", "warnings", "preprocessing"):
            assert getattr(ex, name) == getattr(ey, name), name
        assert ey.pixels.shape == ex.pixels.shape and ey.pixels.dtype == np.float32
        if same_pixels:
            assert np.array_equal(ex.pixels, ey.pixels)
        assert list(x.methods) == list(y.methods)
        for m in x.methods:
            rx, ry = x.methods[m], y.methods[m]
            assert rx.verdict == ry.verdict and rx.scores == ry.scores
            assert ry.z_t.dtype == np.float32 and np.array_equal(rx.z_t, ry.z_t)
            for name in ("method", "z0_residual", "pixel_psnr_db", "decoder_seconds", "inversion_seconds",
                         "peak_memory_bytes"):
                assert getattr(rx, name) == getattr(ry, name), name
            assert (rx.inversion_residual == ry.inversion_residual
                    or (np.isnan(rx.inversion_residual) and np.isnan(ry.inversion_residual)))


def test_round_trip_gives_the_same_results(tiny_run, tmp_path):
    from engine.case_file import CASE_FORMAT, load_case, save_case

    info = {"case_id": "2024-17", "examiner": "A. Examiner", "notes": "seized laptop, folder /pics"}
    path = save_case(tiny_run, tmp_path / "session.trcase", info)
    data = json.loads(path.read_text())
    assert data["format"] == CASE_FORMAT and data["version"] == 1
    assert "pixels" not in json.dumps(data["run"]["images"][0]["evidence"]).replace("pixels_shape", "")
    z = data["run"]["images"][0]["methods"][0]["z_t"]
    assert z["dtype"] == "<f4" and z["shape"] == list(tiny_run.latent_shape)
    assert list(tmp_path.iterdir()) == [path]                       # no temporary file left
    loaded = load_case(path)
    assert loaded.warnings == ()
    assert loaded.info == info and loaded.version == 1
    assert [c.status for c in loaded.evidence] == ["verified", "verified"]
    assert_same_results(tiny_run, loaded.run)
    assert loaded.run.weight_sha256 == tiny_run.weight_sha256 and len(tiny_run.weight_sha256) == 2
    assert loaded.run.notes == tiny_run.notes
    # nothing was recomputed: a second save is byte-identical apart from the save time
    again = json.loads(Path(save_case(loaded.run, tmp_path / "again.trcase", info)).read_text())
    for d in (data, again):
        d.pop("saved_utc"), d.pop("content_sha256")
    assert again == data


def test_changed_and_missing_evidence_give_warnings(tiny_run, tmp_path):
    from engine.case_file import load_case, save_case

    run = _relocated(tiny_run, tmp_path / "ev")
    path = save_case(run, tmp_path / "s.trcase")
    first, second = (a.evidence.path for a in run.images)
    with open(first, "ab") as f:
        f.write(b"\0")
    os.remove(second)
    loaded = load_case(path)
    assert [c.status for c in loaded.evidence] == ["changed", "missing"]
    assert any("CHANGED" in w and "a.png" in w for w in loaded.warnings)
    assert any("missing" in w and "b.png" in w for w in loaded.warnings)
    assert loaded.evidence[0].sha256_now not in (None, run.images[0].evidence.sha256)
    for a in loaded.run.images:                                    # pixels not reloaded: zeros of the right shape
        assert not a.evidence.pixels.any() and a.evidence.pixels.shape == (3, 32, 32)
    assert_same_results(run, loaded.run, same_pixels=False)        # the recorded results are intact


def test_evidence_moved_together_with_the_case_is_found(tiny_run, tmp_path):
    from engine.case_file import load_case, save_case

    run = _relocated(tiny_run, tmp_path / "old" / "evidence")
    save_case(run, tmp_path / "old" / "s.trcase")
    shutil.move(tmp_path / "old", tmp_path / "new")
    loaded = load_case(tmp_path / "new" / "s.trcase")
    assert [c.status for c in loaded.evidence] == ["verified", "verified"]
    assert all(Path(a.evidence.path).parent == tmp_path / "new" / "evidence" for a in loaded.run.images)
    assert len(loaded.warnings) == 2 and all("found beside the case file" in w for w in loaded.warnings)
    assert_same_results(run, loaded.run)


def test_unknown_version_and_foreign_files_are_refused(tiny_run, tmp_path):
    from engine.case_file import CaseFileError, load_case, save_case

    path = save_case(tiny_run, tmp_path / "s.trcase")
    data = json.loads(path.read_text())
    data["version"] = 2
    (tmp_path / "v2.trcase").write_text(json.dumps(data))
    with pytest.raises(CaseFileError, match="version 2 is not supported.*newer"):
        load_case(tmp_path / "v2.trcase")
    (tmp_path / "keys.json").write_text(tiny_run.keys.to_json())
    with pytest.raises(CaseFileError, match="not a treering-forensics case file"):
        load_case(tmp_path / "keys.json")
    (tmp_path / "cut.trcase").write_text(path.read_text()[:5000])
    with pytest.raises(CaseFileError, match="not valid JSON"):
        load_case(tmp_path / "cut.trcase")
    with pytest.raises(CaseFileError, match="does not exist"):
        load_case(tmp_path / "nothing.trcase")
    data["version"] = 1
    data["run"]["images"][0]["methods"][0]["z_t"]["base64"] = "AAAA"
    (tmp_path / "bad.trcase").write_text(json.dumps(data))
    with pytest.raises(CaseFileError, match="z_t"):
        load_case(tmp_path / "bad.trcase")


def test_edited_case_file_is_flagged(tiny_run, tmp_path):
    from engine.case_file import load_case, save_case

    path = save_case(tiny_run, tmp_path / "s.trcase")
    data = json.loads(path.read_text())
    data["run"]["images"][0]["methods"][0]["verdict"]["nearest_p_value"] = 1e-12
    path.write_text(json.dumps(data))
    loaded = load_case(path)
    assert any("checksum" in w for w in loaded.warnings)


def test_failed_save_leaves_nothing(tiny_run, tmp_path):
    from engine.case_file import save_case

    (tmp_path / "keep.trcase").write_text("earlier")
    with pytest.raises(ValueError, match="serialised"):
        save_case(tiny_run, tmp_path / "keep.trcase", {"not json": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.trcase"]
    assert (tmp_path / "keep.trcase").read_text() == "earlier"


def test_a_relative_path_out_of_the_case_folder_is_not_followed(tiny_run, tmp_path):
    """A case file naming `../../secret` as "beside the case" must not hash or describe a file outside its folder."""
    from engine.case_file import load_case, save_case

    run = _relocated(tiny_run, tmp_path / "evidence")
    case_dir = tmp_path / "cases" / "c1"
    case_dir.mkdir(parents=True)
    path = save_case(run, case_dir / "c.trcase")
    outside = tmp_path / "secret.png"
    shutil.copyfile(run.images[0].evidence.path, outside)
    payload = json.loads(path.read_text())
    ed = payload["run"]["images"][0]["evidence"]
    ed["path"] = ed["abs_path"] = str(tmp_path / "gone.png")            # not where it was analysed
    ed["relative_to_case"] = "../../secret.png"                          # climbs out of the case folder
    path.write_text(json.dumps(payload))
    loaded = load_case(path)
    assert loaded.evidence[0].status == "missing" and loaded.evidence[0].path != str(outside)
    assert not any("beside the case" in w for w in loaded.warnings)


@pytest.mark.parametrize("field, value", [("image_size", 1 << 20), ("pixels_shape", [3, 65536, 65536])])
def test_absurd_sizes_in_a_case_file_are_refused_before_allocating(tiny_run, tmp_path, field, value):
    from engine.case_file import CaseFileError, load_case, save_case

    path = save_case(tiny_run, tmp_path / "c.trcase")
    payload = json.loads(path.read_text())
    if field == "image_size":
        payload["run"]["image_size"] = value
    else:
        payload["run"]["images"][0]["evidence"]["pixels_shape"] = value
    path.write_text(json.dumps(payload))
    with pytest.raises(CaseFileError, match="damaged"):
        load_case(path)
