"""Calibration files: made by `calibrate` with a scan's exact settings, used by `scan` only when they match,
refused with one line (and nothing written) when they are bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forensics_app.cli import main

FAST = ["--iterations", "3", "--steps", "5", "--quiet"]


def new_keys(path):
    """Two keys for the tiny test model's 4×16×16 latents, written to `path`."""
    assert main(["keys", "new", "--count", "2", "--out", str(path), "--latent-shape", "4,16,16", "--radius", "4",
                 "--seed", "1"]) == 0
    return path


@pytest.fixture(scope="module")
def calibrated(tiny_ddim_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("calibration")
    keys = new_keys(out / "keys.json")
    cal = out / "cal.json"
    assert main(["calibrate", "--model", str(tiny_ddim_dir), "--keys", str(keys), "--method", "encoder",
                 "--count", "12", "--per-key", "3", "--alterations", "--altered-per-key", "2",
                 "--detection-alterations", "--altered-clean", "4", "--out", str(cal),
                 "--images", str(out / "images"), *FAST]) == 0
    assert main(["generate", "--model", str(tiny_ddim_dir), "--keys", str(keys), "--key", "key1", "--count", "2",
                 "--seed", "900", "--out", str(out / "evidence"), "--steps", "5", "--quiet"]) == 0
    return out, keys, cal


def scan(args, tiny_ddim_dir, keys, out_json):
    return main(["scan", *args, "--model", str(tiny_ddim_dir), "--keys", str(keys), "--method", "encoder",
                 "--json", str(out_json), *FAST])


def test_calibrate_writes_a_bound_self_checking_file(calibrated):
    from engine.calibration import Calibration

    out, _, cal_path = calibrated
    cal = Calibration.load(cal_path)
    assert cal.counts == {"clean": 12, "key1": 3, "key2": 3}
    assert set(cal.methods) == {"encoder"}
    m = cal.methods["encoder"]
    assert len(m.clean_detection) == 12 and len(m.identification_null) == 6
    assert m.min_supported_p == pytest.approx(1 / 13)
    assert set(m.coverage) >= {"std", "low_frequency_power"}
    assert len(list((out / "images" / "clean").glob("*.png"))) == 12     # the images are kept where asked
    # identification is also calibrated under every simulated alteration, on the first 2 images of each key; an
    # altered image adds its statistic only where identification would be asked of it (detected, covered)
    from engine.altered_calibration import calibration_alterations, detection_alterations

    labels = [a.label for a in calibration_alterations()]
    assert list(m.identification_null_altered) == labels and "brightness 2" in labels
    assert m.summary["altered_watermarked"] == {label: 4 for label in labels}
    assert all(len(v) <= 4 for v in m.identification_null_altered.values())
    assert "under resizedcrop" in cal.source and "2 key1, 2 key2" in cal.source
    # and detection on the first 4 clean images under each detection alteration, where the calibration covers them
    detection_labels = [a.label for a in detection_alterations()]
    assert list(m.detection_null_altered) == detection_labels and "combo-all 0.2" in detection_labels
    assert m.summary["altered_clean"] == {label: 4 for label in detection_labels}
    assert all(len(v) <= 4 and all(0 <= t <= 1 for t in v) for v in m.detection_null_altered.values())
    assert ("detection also calibrated on 4 of the clean images under rotation+resizedcrop+blur 0.1/0.2/0.3 "
            "(relative strength), combo-all 0.1/0.2/0.3 (relative strength)") in cal.source


def test_scan_uses_a_matching_calibration_and_says_so(calibrated, tiny_ddim_dir, tmp_path):
    out, keys, cal = calibrated
    result = tmp_path / "scan.json"
    assert scan([str(out / "evidence"), "--calibration", str(cal)], tiny_ddim_dir, keys, result) == 0
    data = json.loads(result.read_text())
    assert data["calibration"]["origin"] == "file" and data["calibration"]["methods_calibrated"] == ["encoder"]
    for img in data["images"]:
        c = img["conclusion"]
        assert c == img["methods"]["encoder"]["conclusion"]           # the only method decides
        assert c["calibration"] in ("calibrated", "outside calibration")
        assert c["detection_p"] >= 1 / 13 and c["min_supported_p"] == pytest.approx(1 / 13)
        assert set(c) >= {"outcome", "key", "candidates", "detection_p", "identification_p", "calibration"}
        assert "empirical p-value" in c["detection_test"]
        assert img["methods"]["encoder"]["predicted_key"] in (None, "key1", "key2")   # the paper tables' field stays


def test_without_a_calibration_the_scan_says_uncalibrated(calibrated, tiny_ddim_dir, tmp_path):
    out, keys, _ = calibrated
    result = tmp_path / "scan.json"
    assert scan([str(out / "evidence")], tiny_ddim_dir, keys, result) == 0
    data = json.loads(result.read_text())
    assert data["calibration"]["origin"] == "none"
    assert all(img["conclusion"]["calibration"] == "uncalibrated" for img in data["images"])
    assert "uncalibrated" in data["calibration"]["methods"]["encoder"]


def test_no_calibration_is_stated_as_the_reason_and_excludes_a_file(calibrated, tiny_ddim_dir, tmp_path, capsys):
    out, keys, cal = calibrated
    result = tmp_path / "scan.json"
    assert scan([str(out / "evidence"), "--no-calibration"], tiny_ddim_dir, keys, result) == 0
    data = json.loads(result.read_text())
    assert data["calibration"]["origin"] == "off"
    assert "turned off" in data["calibration"]["uncalibrated_reasons"]["encoder"]
    assert all(img["conclusion"]["outcome"] != "identified" for img in data["images"])   # uncalibrated names no key
    with pytest.raises(SystemExit) as exc:
        scan([str(out / "evidence"), "--no-calibration", "--calibration", str(cal)], tiny_ddim_dir, keys, result)
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err


def _edited(cal: Path, tmp_path: Path, edit) -> Path:
    d = json.loads(cal.read_text())
    edit(d)
    p = tmp_path / "edited.json"
    p.write_text(json.dumps(d))
    return p


@pytest.mark.parametrize("name, make, message", [
    ("edited", lambda cal, tmp: _edited(cal, tmp, lambda d: d["methods"]["encoder"]["clean_detection"].__setitem__(0, 0.5)),
     "changed after it was made"),
    ("nan", lambda cal, tmp: (tmp / "nan.json").write_text(cal.read_text().replace('"clean_detection": [', '"clean_detection": [NaN, ', 1)) and tmp / "nan.json",
     "not valid JSON"),
    ("huge", lambda cal, tmp: _huge(tmp), "larger than"),
    ("not a calibration", lambda cal, tmp: (tmp / "x.json").write_text('{"format": "other"}') and tmp / "x.json",
     "not a calibration file"),
    ("other keys", lambda cal, tmp: cal, "key set differs"),
])
def test_bad_calibration_files_are_one_line_and_change_nothing(calibrated, tiny_ddim_dir, tmp_path, capsys, name,
                                                                make, message):
    out, keys, cal = calibrated
    bad = make(cal, tmp_path)
    if name == "other keys":
        keys = tmp_path / "other_keys.json"
        assert main(["keys", "new", "--count", "2", "--out", str(keys), "--latent-shape", "4,16,16", "--radius",
                     "4", "--seed", "5", "--unchecked"]) == 0
    capsys.readouterr()
    result = tmp_path / "scan.json"
    code = scan([str(out / "evidence"), "--calibration", str(bad)], tiny_ddim_dir, keys, result)
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not result.exists()


def _huge(tmp: Path) -> Path:
    p = tmp / "huge.json"
    with open(p, "wb") as f:
        f.truncate((32 << 20) + 10)
    return p


def test_settings_that_differ_leave_the_method_uncalibrated(calibrated, tiny_ddim_dir, tmp_path, capsys):
    out, keys, cal = calibrated
    capsys.readouterr()
    # the file has no gradient-free entry: asked for explicitly, that is an error
    code = main(["scan", str(out / "evidence"), "--model", str(tiny_ddim_dir), "--keys", str(keys), "--method",
                 "gradient-free", "--calibration", str(cal), *FAST])
    assert code == 2 and "no gradient-free entry" in capsys.readouterr().err
    # other diffusion steps than the calibration's: the encoder's settings hash differs
    code = main(["scan", str(out / "evidence"), "--model", str(tiny_ddim_dir), "--keys", str(keys), "--method",
                 "encoder", "--calibration", str(cal), "--iterations", "3", "--steps", "4", "--quiet"])
    assert code == 2 and "settings for this method differ" in capsys.readouterr().err


def test_keys_new_warns_about_keys_that_cannot_be_told_apart(tmp_path, capsys):
    assert main(["keys", "new", "--count", "3", "--out", str(tmp_path / "k.json"), "--seed", "1"]) == 0
    assert "too close" not in capsys.readouterr().err                    # drawn separable
    from engine.resources import bundled_keys

    demo = json.loads(Path(bundled_keys("demo.json")).read_text())
    from engine.treering import KeySet

    from engine.key_separability import separability
    assert not separability(KeySet.from_json(json.dumps(demo))).ok       # the dec-inv keys are close


def test_scan_with_two_models_says_which_explains_each_exhibit(calibrated, tiny_ddim_dir, tiny_flow_dir, tmp_path):
    out, keys, _ = calibrated
    result = tmp_path / "models.json"
    code = main(["scan", str(out / "evidence"), "--model", str(tiny_ddim_dir), "--model", str(tiny_flow_dir),
                 "--keys", str(keys), "--method", "encoder", "--json", str(result), *FAST])
    assert code == 0
    data = json.loads(result.read_text())
    assert [r["model"] for r in data["models"]] == [str(tiny_ddim_dir), str(tiny_flow_dir)]
    assert len(data["model_comparison"]) == 2
    for c in data["model_comparison"]:
        assert {m["model"] for m in c["models"]} == {str(tiny_ddim_dir), str(tiny_flow_dir)}
        assert c["statement"]
        if sum(m["conclusion"]["outcome"] in ("identified", "inconclusive") for m in c["models"]) == 2:
            assert c["better_model"] is None and "cannot be told apart" in c["statement"]   # different kinds


def test_the_bundled_samples_get_honest_calibrated_conclusions(tmp_path):
    """A default scan of the bundled samples uses the calibration shipped for `demo` and never names a wrong key:
    un-watermarked samples are not detected, watermarked ones are identified as their own key or inconclusive
    with their key among the candidates."""
    from engine.resources import resource_path

    samples = resource_path("samples")
    result = tmp_path / "samples.json"
    assert main(["scan", str(samples), "--json", str(result), "--quiet"]) == 0
    data = json.loads(result.read_text())
    assert data["calibration"]["origin"] == "shipped"
    assert "gradient-free" in data["calibration"]["methods_calibrated"]
    for img in data["images"]:
        name = Path(img["path"]).name
        c = img["conclusion"]
        assert c["calibration"] in ("calibrated", "outside calibration"), name
        if name.startswith("clean"):
            assert c["outcome"] == "not_detected", name
        else:
            truth = name.split("_")[0]
            assert c["outcome"] in ("identified", "inconclusive") and truth in c["candidates"], name
            assert c["key"] in (None, truth), name


def test_the_shipped_calibration_applies_to_default_scans_only():
    from dataclasses import replace

    from engine.calibration import choose_calibration
    from engine.model_loader import load_model
    from engine.options import AnalysisOptions
    from engine.treering import KeySet

    model = load_model("demo", device="cpu")
    keys = KeySet.load(model.spec.default_keys_path)
    config = AnalysisOptions().to_config(model)
    choice = choose_calibration(model, keys, config)
    assert choice.origin == "shipped" and set(choice.usable) == {"encoder", "gradient-free"}
    other = choose_calibration(model, keys, replace(config, diffusion=replace(config.diffusion, steps=20)))
    assert not other.usable and all("settings" in r for r in other.reasons.values())


def test_evidence_coverage_is_added_only_from_the_calibration_s_own_images(calibrated):
    """`with_evidence_coverage` adds the range of a statistic a calibration lacks (here clipped_share, taken
    out first) from its images made again, and refuses images whose other statistics do not reproduce it."""
    from dataclasses import replace

    import numpy as np
    from PIL import Image

    from engine.calibration import Calibration
    from engine.calibration_making import with_evidence_coverage
    from engine.noise_statistics import evidence_statistics

    out, _, cal_path = calibrated
    cal = Calibration.load(cal_path)
    kept = cal.methods["encoder"].coverage
    older = replace(cal, methods={m: replace(c, coverage={k: v for k, v in c.coverage.items() if k != "clipped_share"})
                                  for m, c in cal.methods.items()})
    pixels = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1
              for p in sorted((out / "images").glob("*/*.png"))]
    added = with_evidence_coverage(older, [evidence_statistics(x) for x in pixels])
    assert added.methods["encoder"].coverage == kept
    black = pixels[0].copy()
    black[:, :8, :8] = -1                                  # not one of its images: black corner
    with pytest.raises(ValueError, match="corner_fill|block_artifacts"):    # either statistic gives it away
        with_evidence_coverage(older, [evidence_statistics(x) for x in [black, *pixels[1:]]])


def test_a_bad_altered_count_is_refused_in_one_line_before_any_image_is_made(tiny_ddim_dir, tmp_path, capsys):
    keys = new_keys(tmp_path / "keys.json")
    out = tmp_path / "cal.json"
    assert main(["calibrate", "--model", str(tiny_ddim_dir), "--keys", str(keys), "--method", "encoder",
                 "--count", "12", "--per-key", "1", "--detection-alterations", "--altered-clean", "0",
                 "--out", str(out), "--images", str(tmp_path / "images"), *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("(--altered-clean) must be between 1 and 1000000, not 0") and "Traceback" not in "".join(err)
    assert not out.exists() and not (tmp_path / "images").exists()


def test_calibrate_help_counts_the_detection_alterations_of_the_plan(capsys, monkeypatch):
    from engine.altered_calibration import detection_alterations

    monkeypatch.setenv("COLUMNS", "1000")           # one help entry per line, so the phrase is not wrapped
    with pytest.raises(SystemExit):
        main(["calibrate", "--help"])
    assert f"under {len(detection_alterations())} simulated alterations" in capsys.readouterr().out


@pytest.mark.parametrize("model_id", ["demo", "demo-flow"])
def test_the_shipped_encoder_calibrations_hold_the_whole_detection_plan_gated_as_made(model_id):
    """Each bundled model's encoder entry holds every alteration of the plan, in its order, each null no larger than
    the images it was drawn on (those outside the coverage are left out, all of them for the 9° and 13.5° rotations
    that keep their corners on `demo`), each gated by one trace of `ALTERATION_TRACES` at most: never by a
    candidate such as the blurred spectrum, whose gate let a weakened `demo` watermark be identified as another key
    (docs/algorithms.md §4.4). A null of the plan is missing only where the entry says it was left out and why
    (`demo-flow`: the 9° noise-after-blur null, which cost its watermarks more than it saved; `demo` leaves none out:
    without them it named a key for clean images)."""
    from engine.altered_calibration import LEFT_OUT_SUMMARY_KEY, detection_alterations
    from engine.calibration import Calibration
    from engine.noise_statistics import ALTERATION_TRACES
    from engine.resources import resource_path

    entry = Calibration.load(resource_path("calibrations") / f"{model_id}.json").methods["encoder"]
    left_out = entry.summary.get(LEFT_OUT_SUMMARY_KEY, {})
    assert all(isinstance(why, str) and len(why) > 40 for why in left_out.values())
    assert (model_id == "demo") == (not left_out)
    plan = [a.label for a in detection_alterations()]
    assert list(entry.detection_null_altered) == [label for label in plan if label not in left_out]
    assert set(left_out) <= set(plan)
    drawn = entry.summary["altered_clean"]
    assert all(len(entry.detection_null_altered[label]) <= drawn[label]
               for label in entry.detection_null_altered)   # may be empty
    traces = entry.detection_null_altered_traces
    assert traces and all(len(t) == 1 and set(t) <= set(ALTERATION_TRACES) for t in traces.values())
