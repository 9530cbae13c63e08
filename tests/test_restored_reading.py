"""The restored reading (engine.restored_verdict, engine.restored_record, `scan --restore`): never `identified`,
the conclusion as submitted unchanged, the scan JSON's "restoration" object, the case file round trip, the report's
section, one usage line for a bad `--restore`; and a JPEG-50 re-encoded watermarked demo sample restored and
analysed. The tiny random model for the record (its numbers are meaningless), the bundled demo model for the sample."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from dataclasses import replace

import numpy as np
import pytest

from engine.restoration import Degradation, RestorationConfig
from engine.restored_record import ImageRestoration, parse_degradation, restore_run
from engine.restored_verdict import restored_conclusion, restored_headline, restored_interpretation
from engine.search_verdict import search_headline
from engine.verdicts import Conclusion

SETTINGS = "JPEG quality 50 (approximate: luma only); 3 data-consistency iterations, λ = 0.1"


def test_an_identified_reading_of_restored_pixels_is_at_most_inconclusive():
    """The rule shared with the re-alignment search (engine.separate_reading): a key that the plain tests would
    name on restored pixels is a candidate only, the tests say they ran on restored pixels, and the calibration
    state is kept as drawn (the restored reading uses the run's calibration and its coverage check)."""
    drawn = Conclusion("identified", "key2", ("key2",), 1e-6, 1e-4, "calibrated", 0.01, "Bonferroni over 3 key(s)",
                       "exclusion test", None, ("drawn note",), "encoder")
    c = restored_conclusion(drawn, SETTINGS)
    assert c.outcome == "inconclusive" and c.key is None and c.candidates == ("key2",)
    assert c.calibration == "calibrated" and c.detection_p == 1e-6 and c.identification_p == 1e-4
    assert c.detection_test == f"on the pixels restored from the exhibit ({SETTINGS}): Bonferroni over 3 key(s)"
    assert c.identification_test.startswith("on the pixels restored from the exhibit (")
    assert c.notes[0] == "drawn note" and any("names no key holder" in n for n in c.notes)
    assert not any("nothing checks" in n for n in c.notes)          # calibrated: the coverage check ran
    assert restored_headline(c) == ("Watermark detected after restoration; key key2 most likely, not identified "
                                    "(restored pixels)")
    assert "No key holder is named" in restored_interpretation(c)
    negative = restored_conclusion(replace(drawn, outcome="not_detected", key=None, candidates=()), SETTINGS)
    assert negative.outcome == "not_detected"
    assert restored_headline(negative) == ("No watermark detected after restoration at FPR 0.01 (calibrated, on "
                                           "restored pixels)")
    # uncalibrated (a model no calibration is drawn for): said, with the missing coverage check in a note
    bare = restored_conclusion(replace(drawn, calibration="uncalibrated"), SETTINGS)
    assert bare.calibration == "uncalibrated" and any("nothing checks" in n for n in bare.notes)
    # restored pixels beyond the calibration's coverage: never "watermark detected", whatever the p-value
    outside = restored_conclusion(replace(drawn, outcome="inconclusive", key=None, calibration="outside calibration"),
                                  SETTINGS)
    assert outside.calibration == "outside calibration"
    assert restored_headline(outside) == ("Inconclusive after restoration: the pixels lie outside what the "
                                          "calibration covers")
    assert "cannot be weighed" in restored_interpretation(outside)
    weak = restored_conclusion(replace(negative, calibration="outside calibration"), SETTINGS)
    assert restored_headline(weak).endswith("but the pixels lie outside what the calibration covers: a weak negative")
    # the search's wording is the same family, unchanged by the shared helper
    assert search_headline(replace(negative, calibration="uncalibrated")) == (
        "No watermark detected after re-alignment at FPR 0.01 (search-corrected)")


@pytest.mark.parametrize("text, kind, value", [("jpeg:50", "jpeg", 50.0), ("blur:1.5", "blur", 1.5),
                                               (" Downscale:0.5 ", "downscale", 0.5), ("jpeg:100", "jpeg", 100.0)])
def test_stated_degradations_parse(text, kind, value):
    d = parse_degradation(text)
    assert (d.kind, d.value) == (kind, value)


@pytest.mark.parametrize("text, message", [
    ("jpeg", "--restore takes KIND:VALUE"), ("gauss:3", "not 'gauss:3'"), ("mask:1", "not 'mask:1'"),
    ("jpeg:abc", "'abc' is not a number"), ("jpeg:0", "at least 1"), ("jpeg:50.5", "whole number"),
    ("blur:0", "above 0"), ("blur:nan", "finite"), ("downscale:1.5", "at most 1"), ("jpeg:inf", "finite")])
def test_bad_degradations_are_one_line(text, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_degradation(text)
    assert "\n" not in str(info.value)


def test_help_defaults_are_the_engines():
    from engine import restoration
    from forensics_app.gui import restore_controls
    from forensics_app import restore_cli

    for prior in restoration.PRIORS:
        defaults = restoration.restoration_config(prior)
        assert defaults.prior == prior
        for module in (restore_cli, restore_controls):
            assert (module.DEFAULT_ITERATIONS[prior], module.DEFAULT_WEIGHT) == (defaults.iterations, defaults.weight)
    assert set(restore_cli.PRIORS) == set(restore_controls.PRIORS) == set(restoration.PRIORS)
    assert restore_controls.DIFFUSION_GRID_STEPS == restoration.DEFAULT_GRID_STEPS == RestorationConfig().grid_steps
    assert RestorationConfig() == restoration.restoration_config()


# -- through the pipeline: scan JSON, case file, report ----------------------------------------------

@pytest.fixture(scope="module")
def restored_run(tiny_ddim_dir):
    """A tiny random model's run over two images, then restored as JPEG 50 (its numbers are meaningless; the record
    is what is tested)."""
    from PIL import Image

    from engine.analysis import AnalysisConfig, analyze
    from engine.diffusion_inversion import DiffusionInversionConfig
    from engine.model_loader import load_model
    from engine.treering import new_random_keys

    model = load_model(str(tiny_ddim_dir), device="cpu")
    keys = new_random_keys(2, latent_shape=model.latent_shape, radius=3, seed=0)
    folder = tiny_ddim_dir.parent / "restore-evidence"
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(2):
        p = folder / f"img{i}.jpg"
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(p, quality=50)
        paths.append(p)
    config = AnalysisConfig.for_model(model, methods=("encoder", "gradient-free"),
                                      diffusion=DiffusionInversionConfig(steps=5))
    config = replace(config, gradient_free=replace(config.gradient_free, iterations=5))
    plain = analyze(model, keys, paths, config)
    return model, keys, plain, restore_run(model, keys, plain, Degradation("jpeg", 50))


def test_restore_run_keeps_the_plain_conclusions_and_records_both(restored_run):
    from engine.analysis import run_to_json

    _, _, plain, run = restored_run
    for a, b in zip(plain.images, run.images):
        assert a.restoration is None and b.restoration is not None
        assert a.conclusion == b.conclusion and a.methods is b.methods
        s = b.restoration
        assert s.as_submitted == a.conclusion and not s.failure and set(s.methods) == {"encoder", "gradient-free"}
        assert s.settings == SETTINGS and len(s.prior_gap) == 3 and all(math.isfinite(g) for g in s.prior_gap)
        assert math.isfinite(s.change_psnr_db)
        for m, r in s.methods.items():
            assert r.conclusion.outcome != "identified" and r.conclusion.key is None
            assert r.conclusion.calibration == "uncalibrated" and r.conclusion.method == m   # tiny model: none
            assert any("nothing checks" in n for n in r.conclusion.notes)
            assert all(math.isfinite(p) and 0 <= p <= 1 for p in r.p_values.values())
            assert set(r.p_values) == set(plain.keys.ids)
        assert s.conclusion.method == "gradient-free"          # the deciding method, as for the plain analysis
    d = run_to_json(run)["images"][0]
    assert d["conclusion"] == run_to_json(plain)["images"][0]["conclusion"]
    r = d["restoration"]
    assert r["degradation"] == {"kind": "jpeg", "value": 50.0, "described": "JPEG quality 50 (approximate: luma only)",
                                "read_from_file": None}
    assert r["settings"] == {"iterations": 3, "weight": 0.1, "prior": "autoencoder", "grid_steps": 50,
                             "described": "3 data-consistency iterations, λ = 0.1"}
    assert r["as_submitted"] == d["conclusion"] and r["failure"] is None
    assert r["conclusion"]["outcome"] in ("not_detected", "inconclusive") and r["conclusion"]["key"] is None
    assert set(r["methods"]) == {"encoder", "gradient-free"}
    assert r["methods"]["gradient-free"]["conclusion"]["detection_test"].startswith(
        "on the pixels restored from the exhibit")
    back = ImageRestoration.from_json_dict(json.loads(json.dumps(r)))
    assert back.conclusion == run.images[0].restoration.conclusion and back.prior_gap == run.images[0].restoration.prior_gap


def test_non_finite_restoration_is_refused_with_one_line(restored_run, monkeypatch):
    import torch

    import engine.restoration as restoration

    model, keys, plain, _ = restored_run
    monkeypatch.setattr(restoration, "restore_traced",
                        lambda m, x, d, c: (torch.full_like(x, float("nan")), np.zeros((x.shape[0], c.iterations))))
    run = restore_run(model, keys, plain, Degradation("blur", 1.0))
    s = run.images[0].restoration
    assert not s.methods and s.conclusion.outcome == "not_analysed"
    assert s.failure == "img0.jpg: the restoration gave non-finite pixels (NaN or infinity), so no restored reading can be made"
    assert run.images[0].conclusion == plain.images[0].conclusion


def test_non_finite_inversion_of_restored_pixels_is_refused_with_one_line(restored_run, monkeypatch):
    """The plain analysis's refusal (a NaN must never read as "no watermark") carries over: the record says so."""
    import engine.analysis as analysis

    model, keys, plain, _ = restored_run
    real = analysis.analyze_batch

    def diverging(model, keys, evidence, config, progress, calibration):
        out = real(model, keys, evidence, config, progress, calibration)
        bad = analysis.EvidenceError(evidence[0].path, "could not be analysed: the encoder inversion gave "
                                     "non-finite values (NaN or infinity)")
        return [analysis.ImageFailure(evidence[0].path, str(bad), bad.problem)] + out[1:]

    monkeypatch.setattr(analysis, "analyze_batch", diverging)
    run = restore_run(model, keys, plain, Degradation("downscale", 0.5), RestorationConfig(iterations=1))
    s = run.images[1].restoration
    assert not s.methods and s.conclusion.outcome == "not_analysed" and len(s.prior_gap) == 1
    assert s.failure.startswith("restored reading: '") and "non-finite values" in s.failure and "\n" not in s.failure
    assert run.images[1].conclusion == plain.images[1].conclusion


def test_case_file_keeps_the_restored_reading(restored_run, tmp_path):
    from engine.case_file import CaseFileError, _content_checksum, load_case, save_case

    _, _, _, run = restored_run
    path = save_case(run, tmp_path / "c.trcase")
    loaded = load_case(path)
    assert not loaded.warnings
    for a, b in zip(run.images, loaded.run.images):
        s, t = a.restoration, b.restoration
        assert t.degradation.kind == s.degradation.kind and t.degradation.value == s.degradation.value
        assert t.config == s.config and t.as_submitted == s.as_submitted and t.prior_gap == s.prior_gap
        assert {m: r.conclusion for m, r in t.methods.items()} == {m: r.conclusion for m, r in s.methods.items()}
        assert t.methods["encoder"].p_values == s.methods["encoder"].p_values
    payload = json.loads(path.read_text())
    payload["run"]["images"][0]["restoration"]["degradation"]["kind"] = "sharpen"
    payload["content_sha256"] = _content_checksum(payload)
    path.write_text(json.dumps(payload))
    with pytest.raises(CaseFileError, match="image 1 restored reading: the degradation must be one of"):
        load_case(path)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler's pdftotext reads the PDF back")
def test_report_shows_raw_and_restored_side_by_side(restored_run, tmp_path):
    from forensics_app.report import write_report

    _, _, plain, run = restored_run
    pdf = write_report(run, tmp_path / "r.pdf")
    text = " ".join(subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], check=True, capture_output=True,
                                   text=True).stdout.split())
    assert text.count("Restored reading — a separate reading beside the conclusion as submitted") == 2
    assert f"Restoration: {SETTINGS}." in text
    assert " ".join(restored_headline(run.images[0].restoration.conclusion).split()) in text
    a = run.images[0]
    assert f"{a.methods['encoder'].conclusion.detection_p:.3g} (uncalibrated)" in text
    assert f"{a.restoration.methods['encoder'].conclusion.detection_p:.3g}" in text
    twin = json.loads(pdf.with_suffix(".json").read_text())
    assert twin["run"]["images"][0]["restoration"]["conclusion"]["key"] is None
    plain_text = subprocess.run(["pdftotext", str(write_report(plain, tmp_path / "plain.pdf")), "-"], check=True,
                                capture_output=True, text=True).stdout
    assert "Restored reading" not in plain_text


# -- the CLI --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--restore", "jpeg:abc"], "--restore 'jpeg:abc': 'abc' is not a number"),
    (["--restore", "sharpen:2"], "--restore takes KIND:VALUE"),
    (["--restore", "blur:auto"], "only a JPEG's quality can be read from the file"),
    (["--restore", "downscale:2"], "the kept share of the side must be above 0 and at most 1"),
    (["--restore", "jpeg:50", "--restore-iterations", "0"], "restoration iterations"),
    (["--restore-weight", "0.2"], "--restore-prior, --restore-iterations and --restore-weight need --restore"),
    (["--restore-prior", "diffusion"], "--restore-prior, --restore-iterations and --restore-weight need --restore"),
    (["--restore", "blur:2", "--restore-prior", "diffusion", "--restore-iterations", "51"],
     "the diffusion prior walks at most its grid's 50 steps, not 51"),
    (["--restore", "blur:2", "--restore-prior", "diffusion", "--model", "demo-flow"],
     "the diffusion prior needs a multi-step (DDIM) model; demo-flow is 'flow'"),
    (["--restore", "jpeg:50", "--records", "REC"], "--restore does not run with --records"),
])
def test_bad_restore_arguments_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    from PIL import Image

    from forensics_app.cli import EXIT_USAGE, main

    img = tmp_path / "a.png"
    Image.new("RGB", (16, 16)).save(img)
    argv = [a.replace("REC", str(tmp_path / "rec")) for a in argv]
    assert main(["scan", str(img), "--quiet", *argv]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "internal error" not in err


def _scan_tiny_restored(tiny_ddim_dir, tmp_path, seed: int, restore_args: list[str]):
    """`scan` of one random image with the tiny model and `restore_args`: (stdout lines, the image's JSON, name)."""
    from PIL import Image

    from engine.treering import new_random_keys
    from forensics_app.cli import main

    keys_file = tmp_path / "keys.json"
    new_random_keys(2, latent_shape=(4, 16, 16), radius=3, seed=0).save(keys_file)
    img = tmp_path / "suspect.png"
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(img)
    out = tmp_path / "scan.json"
    assert main(["scan", str(img), "--model", str(tiny_ddim_dir), "--keys", str(keys_file), "--method", "encoder",
                 "--steps", "5", "--device", "cpu", *restore_args, "--json", str(out)]) == 0
    return img.name, json.loads(out.read_text())["images"][0]


def test_scan_restore_writes_the_restoration_and_prints_it_apart(tiny_ddim_dir, tmp_path, capsys):
    name, d = _scan_tiny_restored(tiny_ddim_dir, tmp_path, 5, ["--restore", "blur:1", "--restore-iterations", "2"])
    lines = capsys.readouterr().out.splitlines()
    r = d["restoration"]
    assert r["degradation"]["kind"] == "blur" and r["settings"]["iterations"] == 2 and len(r["prior_gap_levels"]) == 2
    assert r["as_submitted"] == d["conclusion"] and r["conclusion"]["outcome"] != "identified"
    raw = next(i for i, line in enumerate(lines) if line.startswith(f"{name}: ") and "restored" not in line)
    restored = lines[raw + 1]
    assert restored.startswith(f"{name}: restored reading (separate, names no key holder; Gaussian blur, radius "
                               "1; 2 data-consistency iterations, λ = 0.1): ")
    same_test = d["methods"]["encoder"]["conclusion"]["detection_p"]
    assert "after restoration" in restored and "uncalibrated" in restored
    assert f"as submitted, the same test: p = {same_test:.2g}; encoder)" in restored


def test_scan_restore_with_the_diffusion_prior_records_it(tiny_ddim_dir, tmp_path, capsys):
    from engine.restored_record import ImageRestoration

    _, d = _scan_tiny_restored(tiny_ddim_dir, tmp_path, 6, ["--restore", "downscale:0.5", "--restore-prior",
                                                            "diffusion", "--restore-iterations", "2"])
    restored_line = next(line for line in capsys.readouterr().out.splitlines() if "restored reading" in line)
    assert ("downscaled to 0.5 of the side; diffusion prior: 2 of 50 DDIM steps up from the encoded suspect and back "
            "down, a data-consistency step at each, λ = 0.1)") in restored_line
    r = d["restoration"]
    assert r["settings"]["prior"] == "diffusion" and r["settings"]["grid_steps"] == 50
    assert len(r["prior_gap_levels"]) == 2
    again = ImageRestoration.from_json_dict(r)                  # read back as a case file would
    assert again.config.prior == "diffusion" and again.config.iterations == 2
    older = {**r, "settings": {k: v for k, v in r["settings"].items() if k not in ("prior", "grid_steps")}}
    assert ImageRestoration.from_json_dict(older).config.prior == "autoencoder"   # written before the option


# -- the demo model: a watermarked sample re-encoded as JPEG 50 ---------------------------------------------

def test_demo_jpeg50_sample_is_restored_and_analysed(demo_model, demo_keys, demo_samples, tmp_path):
    """key2_00600.png re-encoded at JPEG quality 50, the demo model, encoder, the model's default settings; restored
    as `jpeg:50`. Structure and finiteness only. Measured (21:25 UTC, CPU): as submitted the per-key p-values were
    key2 1.2e-9, key1 6.4e-8, key3 6.9e-8 (calibrated conclusion: inconclusive, key2/key3/key1); restored, key2
    4.0e-8, key3 8.1e-7, key1 1.4e-6 (inconclusive, key2/key3/key1), prior gap 3.05 → 3.45 → 3.54 levels, 39.2 dB
    from the submitted pixels. One image: no claim either way about whether restoration helps."""
    from PIL import Image

    from engine.analysis import analyze
    from engine.options import AnalysisOptions

    img = tmp_path / "key2_00600_q50.jpg"
    Image.open(demo_samples / "key2_00600.png").convert("RGB").save(img, quality=50)
    plain = analyze(demo_model, demo_keys, [img], AnalysisOptions(methods=("encoder",)).to_config(demo_model))
    run = restore_run(demo_model, demo_keys, plain, parse_degradation("jpeg:50"))
    [a] = run.images
    s = a.restoration
    assert a.conclusion == plain.images[0].conclusion and not s.failure
    r = s.methods["encoder"]
    assert set(r.p_values) == set(demo_keys.ids)
    assert all(math.isfinite(v) for v in (*r.p_values.values(), *r.l1.values(), r.z0_residual, r.pixel_psnr_db,
                                          s.change_psnr_db, *s.prior_gap))
    assert s.conclusion.outcome in ("not_detected", "inconclusive") and s.conclusion.key is None
    assert 25 < s.change_psnr_db < 60          # a restoration, not a different image
    # the restored reading uses the run's (shipped) calibration, as the robustness benchmark's restored rows do
    assert plain.calibration.calibration is not None and r.conclusion.calibration == "calibrated"
    assert r.conclusion.detection_test.startswith("on the pixels restored from the exhibit (JPEG quality 50")
    assert "empirical p-value" in r.conclusion.detection_test


def test_a_wrongly_stated_degradation_is_caught_by_the_coverage_check(demo_model, demo_keys, demo_samples, tmp_path):
    """A clean bundled sample rotated by 10° (black corners) and "restored" as if it were a JPEG: the restoration
    cannot undo a rotation, and the restored pixels lie outside what the shipped calibration covers, so the restored
    reading says so and never reads "watermark detected". Measured (00:20 UTC): encoder, restored detection p =
    0.001 (the calibration's smallest) with corner_fill far beyond the calibration's range: without the coverage
    check this clean image read "watermark detected after restoration"."""
    from PIL import Image

    from engine.analysis import analyze
    from engine.options import AnalysisOptions

    img = tmp_path / "clean_00900_rot10.png"
    Image.open(demo_samples / "clean_00900.png").convert("RGB").rotate(10).save(img)
    plain = analyze(demo_model, demo_keys, [img], AnalysisOptions(methods=("encoder",)).to_config(demo_model))
    [a] = restore_run(demo_model, demo_keys, plain, parse_degradation("jpeg:50")).images
    c = a.restoration.methods["encoder"].conclusion
    assert c.calibration == "outside calibration" and c.key is None
    assert any("corner_fill" in n for n in c.notes)
    assert not restored_headline(c).startswith("Watermark detected")
    assert a.conclusion.calibration == "outside calibration"        # the plain reading says so too
