"""The robustness study: its metrics on known answers, and the `robustness` command end to end on the demo
model with tiny counts (a table with the null-control column and a plot)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from engine.attacks import ATTACKS, Attack, apply_attacks
from engine.rates import auc, mcnemar, tpr_at_fpr, wilson


def test_auc_and_tpr_known_answers():
    assert auc([3, 4], [1, 2]) == 1.0 and auc([1], [1]) == 0.5 and auc([1, 3], [2]) == 0.5
    neg = np.arange(100, dtype=float)           # 0 … 99
    # 1 % of 100 negatives: strictly fewer than 1 false positive → threshold 99, the 0-FP point
    assert tpr_at_fpr([99.5, 98.0], neg, 0.01) == 0.5
    # 5 %: up to 4 false positives → threshold 95
    assert tpr_at_fpr([95.5, 94.0, 96.0], neg, 0.05) == pytest.approx(2 / 3)
    lo, hi = wilson(5, 10)
    assert lo < 0.5 < hi and hi - lo < 0.7


def test_mcnemar_counts_the_discordant_items_and_gives_the_exact_p():
    a = np.array([True] * 22 + [False] * 3 + [True] * 100)
    b = np.array([False] * 22 + [True] * 3 + [True] * 100)
    only_a, only_b, p = mcnemar(a, b)
    assert (only_a, only_b) == (22, 3)
    assert p == pytest.approx(2 * (1 + 25 + 300 + 2300) / 2 ** 25)      # 2 P(X ≤ 3), X ~ Bin(25, ½)
    assert mcnemar(a, a) == (0, 0, 1.0) and mcnemar(b, a)[:2] == (3, 22)


def test_downscale_attack_and_combinations_are_seeded():
    rng = np.random.default_rng(0)
    img = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    small = Attack("downscale", 1.0).apply(img)
    assert small.shape == img.shape and ATTACKS["downscale"].parameter(1.0) == 0.25
    combo = (Attack("rotation", 0.3, seed=1), Attack("jpeg", 0.5, seed=1), Attack("resizedcrop", 0.4, seed=2))
    np.testing.assert_array_equal(apply_attacks(img, combo), apply_attacks(img, combo))
    assert not np.array_equal(apply_attacks(img, combo), img)


def test_named_combinations_apply_their_parts_in_order_at_one_strength():
    from engine.attacks import combination_parts, combined, describe_parameters

    img = (np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)
    parts = combined("downscale+jpeg", 0.5, seed=7)
    assert [(a.name, a.strength, a.seed) for a in parts] == [("downscale", 0.5, 7), ("jpeg", 0.5, 8)]
    assert describe_parameters(parts) == "downscale 0.625 share of the side + jpeg 50 quality"
    assert describe_parameters(combined("jpeg", 0.5)) == "50 quality"         # a single attack, as before
    np.testing.assert_array_equal(apply_attacks(img, parts),
                                  Attack("jpeg", 0.5, 8).apply(Attack("downscale", 0.5, 7).apply(img)))
    assert combination_parts("combo-deg") == ("blur", "noise", "jpeg")
    assert len(combination_parts("combo-geo")) == 3 and combination_parts("blur+noise") == ("blur", "noise")
    assert combination_parts("blur") == ("blur",)
    for bad, message in (("jpeg+sharpen", "unknown attack 'sharpen' in 'jpeg+sharpen'"),
                         ("combo-weird", "unknown combination 'combo-weird'"), ("jpeg+jpeg", "names an attack twice")):
        with pytest.raises(ValueError, match=re.escape(message)):
            combination_parts(bad)


def test_a_combination_may_pin_one_part_at_its_own_strength():
    from engine.attacks import combination_parts, combined, describe_parameters

    parts = combined("rotation+resizedcrop+blur@0.05", 0.2, seed=3)
    assert [(a.name, a.strength, a.seed) for a in parts] == [("rotation", 0.2, 3), ("resizedcrop", 0.2, 4),
                                                             ("blur", 0.05, 5)]
    assert describe_parameters(parts) == "rotation 9 degrees + resizedcrop 0.9 area kept + blur 1 radius"
    assert combination_parts("rotation+blur@0.05") == ("rotation", "blur")
    for bad, message in (("rotation+blur@x", "a pinned strength is a number in [0, 1]"),
                         ("rotation+blur@1.5", "the strength of blur"), ("blur@0.1+blur", "names an attack twice")):
        with pytest.raises(ValueError, match=re.escape(message)):
            combined(bad, 0.2)


def test_a_combination_searches_the_families_of_its_parts():
    from engine.robustness import StudyConfig

    study = StudyConfig(attacks=("rotation+jpeg", "resizedcrop+rotation", "combo-deg"))
    assert study.families_for("rotation+jpeg") == ("rotation",)
    assert study.families_for("resizedcrop+rotation") == ("crop", "rotation")
    assert study.families_for("combo-deg") == () and study.families_for("none") == ()
    with pytest.raises(ValueError, match="unknown attack 'sharpen'"):
        StudyConfig(attacks=("blur+sharpen",))


@pytest.mark.slow
def test_robustness_command_writes_table_json_and_plot(tmp_path):
    from forensics_app.cli import main

    out = tmp_path / "study"
    code = main(["robustness", "--model", "demo", "--per-key", "1", "--clean", "2", "--attacks", "blur",
                 "--strengths", "0.1", "--variants", "plain,restored", "--steps", "5", "--no-calibration",
                 "--out", str(out)])
    assert code == 0
    data = json.loads((out / "robustness.json").read_text())
    rows = [(r["attack"], r["variant"]) for r in data["rows"]]
    assert rows == [("none", "plain"), ("blur", "plain"), ("blur", "restored")]
    for r in data["rows"]:
        assert r["positives"] == 3 and r["negatives"] == 2 and 0 <= r["null_fpr"] <= 1
        assert 0 <= r["auc"] <= 1 and 0 <= r["identification"] <= 1
        # the tool's conclusion, uncalibrated as asked, and the row says so
        assert 0 <= r["verdict_null_flagged"] + r["verdict_null_outside"] <= 2 and 0 <= r["verdict_detected"] <= 1
        assert r["verdict_null_outside"] == 0 and r["calibration"].startswith("off: uncalibrated: calibration turned off")
    md = (out / "robustness.md").read_text()
    assert "null-control FPR" in md and "zero-false-positive point" in md and "Gaussian blur, radius 2" in md
    assert "clean flagged (defended false positives)" in md
    assert (out / "robustness.png").read_bytes()[:4] == b"\x89PNG"
    # an earlier result is not replaced without --force
    assert main(["robustness", "--model", "demo", "--out", str(out), "--per-key", "1", "--clean", "1"]) == 2


def test_robustness_command_measures_a_combination(tmp_path):
    from forensics_app.cli import main

    out = tmp_path / "study"
    assert main(["robustness", "--model", "demo", "--per-key", "1", "--clean", "1", "--attacks", "downscale+jpeg",
                 "--strengths", "0.5", "--variants", "plain,restored", "--steps", "5", "--no-calibration",
                 "--out", str(out)]) == 0
    rows = json.loads((out / "robustness.json").read_text())["rows"]
    # no restoration is defined for a combination, so only its plain row is measured
    assert [(r["attack"], r["variant"]) for r in rows] == [("none", "plain"), ("downscale+jpeg", "plain")]
    assert rows[1]["parameter"] == "downscale 0.625 share of the side + jpeg 50 quality"
    assert "downscale+jpeg" in (out / "robustness.md").read_text()


def test_robustness_restores_with_the_diffusion_prior_where_the_model_has_one(tmp_path, capsys):
    from forensics_app.cli import main

    out = tmp_path / "study"
    assert main(["robustness", "--model", "demo", "--per-key", "1", "--clean", "1", "--attacks", "blur",
                 "--strengths", "0.1", "--variants", "restored", "--restore-prior", "diffusion",
                 "--restore-iterations", "2", "--steps", "5", "--no-calibration", "--out", str(out)]) == 0
    [row] = [r for r in json.loads((out / "robustness.json").read_text())["rows"] if r["variant"] == "restored"]
    assert row["settings"] == ("Gaussian blur, radius 2; diffusion prior: 2 of 50 DDIM steps up from the encoded "
                               "suspect and back down, a data-consistency step at each, λ = 0.1")
    capsys.readouterr()
    assert main(["robustness", "--model", "demo-flow", "--variants", "restored", "--restore-prior", "diffusion",
                 "--out", str(tmp_path / "flow")]) == 2
    err = capsys.readouterr().err
    assert "the diffusion prior needs a multi-step (DDIM) model; demo-flow is 'flow'" in err and err.count("\n") == 1
    assert not (tmp_path / "flow").exists()


def test_regeneration_noise_is_not_the_references_own_initial_noise(monkeypatch):
    """An adversary does not know the z_T an image was generated from: the study's regeneration must not re-noise a
    reference with its own generation draw (same torch seed and shape gave the identical noise before)."""
    import torch

    import engine.regeneration as regeneration
    from engine.generation import initial_noise
    from engine.model_loader import load_model
    from engine.robustness import ReferenceImage, StudyConfig, regeneration_seed, run_study
    from engine.options import AnalysisOptions
    from engine.treering import KeySet
    from engine.resources import resource_path

    model = load_model("demo", device="cpu")
    keys = KeySet.load(resource_path("keys") / "demo.json")
    seeds = [300_000, 310_000]
    assert regeneration_seed(seeds[0]) == regeneration_seed(seeds[0]) != seeds[0]
    used = []

    def recording(model, pixels, strength, seed=0, steps=50):
        used.append(seed)
        return pixels

    monkeypatch.setattr(regeneration, "regenerate", recording)
    refs = [ReferenceImage(np.zeros((*[model.image_size] * 2, 3), np.uint8), None, s) for s in seeds]
    config = AnalysisOptions(methods=("encoder",), steps=2).to_config(model)
    run_study(model, keys, refs, config, StudyConfig(attacks=("regeneration",), strengths=(0.1,), variants=("plain",)),
              include_baseline=False)
    assert used == [regeneration_seed(s) for s in seeds]
    for s, u in zip(seeds, used):
        drawn = torch.randn(model.latent_shape, generator=torch.Generator().manual_seed(u))
        assert not torch.allclose(drawn, initial_noise(model, [s])[0])


def test_regeneration_by_the_demo_model_is_seeded_and_weakens_with_strength():
    from engine.model_loader import load_model
    from engine.regeneration import regenerate
    from engine.intake import load_evidence
    from engine.resources import resource_path

    model = load_model("demo", device="cpu")
    e = load_evidence(resource_path("samples") / "key1_00500.png", model.image_size)
    img = np.round((e.pixels.transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)[None]
    light, light_again = regenerate(model, img, 0.1, seed=3, steps=10), regenerate(model, img, 0.1, seed=3, steps=10)
    heavy = regenerate(model, img, 0.8, seed=3, steps=10)
    np.testing.assert_array_equal(light, light_again)
    diff = lambda a: np.abs(a.astype(int) - img.astype(int)).mean()
    assert 0 < diff(light) < diff(heavy)
    with pytest.raises(ValueError, match="strength"):
        regenerate(model, img, 0.0)
