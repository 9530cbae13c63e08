"""The robustness study's verdict columns: the tool's own conclusion per image, counted per row. Known answers on
hand-made conclusions, rows written before the columns existed, and a real run on the demo model whose counts
must equal what `analyze` concludes on the same images written as PNGs, with the same (shipped) calibration."""

from __future__ import annotations

import pytest

from engine.robustness import Row, rows_markdown
from engine.robustness_verdicts import verdict_counts
from engine.verdicts import Conclusion


def _c(outcome, key=None, calibration="calibrated"):
    return Conclusion(outcome, key, (key,) if key else (), 0.001, None, calibration, 0.01)


def test_verdict_counts_known_answer():
    clean = [_c("inconclusive"), _c("inconclusive", calibration="outside calibration"), _c("not_detected"),
             _c("not_detected", calibration="outside calibration")]
    marked = [_c("identified", "k1"), _c("identified", "k2"), _c("inconclusive"),
              _c("inconclusive", calibration="outside calibration"), _c("not_analysed")]
    truths = [None] * 4 + ["k1", "k1", "k2", "k2", "k3"]
    got = verdict_counts(clean + marked, truths)
    assert got == {"verdict_null_flagged": 1, "verdict_null_outside": 2, "verdict_detected": 3 / 5,
                   "verdict_identified": 1 / 5, "verdict_wrong_key": 1}
    with pytest.raises(ValueError, match="2 conclusions for 1 images"):
        verdict_counts(clean[:2], [None])


def test_rows_written_before_the_verdict_columns_still_read():
    old = {"attack": "jpeg", "strength": 0.5, "parameter": "50 quality", "method": "encoder", "variant": "plain",
           "positives": 12, "negatives": 12, "auc": 1.0, "tpr_at_1pct": 1.0, "tpr_at_01pct": 1.0,
           "identification": 1.0, "attributed": 1.0, "null_fpr": 1 / 12, "null_flagged": 1, "nominal_fpr": 0.01,
           "settings": "", "attributed_bonferroni": None, "null_flagged_bonferroni": None, "retired_field": 3}
    row = Row.from_json_dict(old)
    assert row.verdict_detected is None and row.calibration == "" and row.key == ("jpeg", 0.5, "encoder", "plain")
    new = Row.from_json_dict({**old, "verdict_null_flagged": 0, "verdict_null_outside": 2, "verdict_detected": 0.5,
                              "verdict_identified": 0.25, "verdict_wrong_key": 1, "calibration": "shipped: x"})
    assert Row.from_json_dict(new.to_json_dict()) == new
    md = "\n".join(rows_markdown([row, new]))
    assert "not measured" in md and "null-control FPR (analytic, nominal)" in md
    assert "0/12 = 0.000 [0.000, 0.265]" in md          # Clopper–Pearson 95 % upper bound of 0/12
    assert "2/12 = 0.167" in md and "1/12 (≤ 0.339)" in md
    with pytest.raises(ValueError, match="incomplete"):
        Row.from_json_dict({"attack": "jpeg"})


@pytest.mark.slow
def test_verdict_columns_equal_what_analyze_concludes(demo_model, demo_keys, tmp_path):
    from PIL import Image

    from engine.analysis import AnalysisConfig, analyze
    from engine.attacks import Attack
    from engine.realignment import SearchConfig
    from engine.robustness import StudyConfig, generate_references, run_study
    from engine.robustness_verdicts import study_calibration

    config = AnalysisConfig.for_model(demo_model, methods=("encoder",))   # the scan's settings: 50 steps
    choice = study_calibration(demo_model, demo_keys, config)
    assert "encoder" in choice.usable and choice.origin == "shipped"      # the shipped demo calibration applies
    refs = generate_references(demo_model, demo_keys, per_key=2, clean=3)
    truths = [r.key_id for r in refs]
    rotation = 10 / 45                                                     # 10°
    study = StudyConfig(attacks=("rotation",), strengths=(rotation,), variants=("plain",))
    rows = run_study(demo_model, demo_keys, refs, config, study)
    assert [(r.attack, r.variant) for r in rows] == [("none", "plain"), ("rotation", "plain")]
    for r in rows:
        assert r.positives == 6 and r.negatives == 3
        assert 0 <= r.verdict_null_flagged + r.verdict_null_outside <= r.negatives
        assert 0 <= r.verdict_identified <= r.verdict_detected <= 1
        assert 0 <= r.verdict_wrong_key <= r.positives * (1 - r.verdict_identified) + 1e-9
        assert r.calibration.startswith("shipped: ") and choice.calibration.content_sha256[:12] in r.calibration
    rotated = rows[1]
    # a rotated clean image's black corners lie outside what the calibration covers: never a defended positive
    assert rotated.verdict_null_outside == 3 and rotated.verdict_null_flagged == 0

    # the known answer: the scan on the same images (as PNGs, through the intake) with the same calibration
    for row, attack in ((rows[0], None), (rotated, Attack("rotation", rotation))):
        folder = tmp_path / row.attack
        folder.mkdir()
        paths = {}
        for i, r in enumerate(refs):
            pixels = r.pixels if attack is None else Attack(attack.name, attack.strength, seed=r.seed).apply(r.pixels)
            path = folder / f"{i:02d}.png"
            Image.fromarray(pixels).save(path)
            paths[str(path)] = truths[i]
        run = analyze(demo_model, demo_keys, list(paths), config, calibration=choice)
        assert not run.failures and len(run.images) == len(refs)
        conclusions = [im.methods["encoder"].conclusion for im in run.images]
        expected = verdict_counts(conclusions, [paths[im.evidence.path] for im in run.images])
        assert {k: getattr(row, k) for k in expected} == pytest.approx(expected)
    # unaltered demo images, encoder, shipped calibration: detected, and some keys named (22 % of 300 in
    # benchmarks/results/verdicts/), so the identified path is exercised
    assert rows[0].verdict_detected >= 5 / 6 and rows[0].verdict_identified > 0

    # a resumed study skips what it has: only the rotation row is measured again, to the same numbers
    again = run_study(demo_model, demo_keys, refs, config, study, skip={rows[0].key}, calibration=choice)
    assert again == [rotated]
    assert run_study(demo_model, demo_keys, refs, config, study, skip={r.key for r in rows}) == []


def test_latent_reader_marks_non_finite_latents_and_merges_pixel_statistics(demo_keys):
    import numpy as np

    from engine.latent_evidence import LatentReader
    from engine.verdicts import conclude

    reader = LatentReader(demo_keys, "effective")
    z = np.random.default_rng(0).standard_normal((3, 4, 32, 32)).astype(np.float32)
    z[1, 0, 0, 0] = np.nan
    evidence, finite = reader.read(z, [{"corner_fill": 0.1}, {"corner_fill": 0.2}, {"corner_fill": 0.3}])
    assert finite.tolist() == [True, False, True]
    assert evidence[0].noise["corner_fill"] == 0.1 and len(evidence[0].noise) > 1   # z_T's own statistics too
    assert evidence[1].noise == {}                   # nothing computed from a NaN latent: never concluded on
    assert evidence[2].detection_statistic == min(s.p_value for s in evidence[2].scores)
    assert evidence[0].exclusion is not None and len(evidence[0].exclusion) == len(demo_keys)
    assert conclude(evidence[0], 0.01).detection_p is not None
    with pytest.raises(ValueError, match="2 evidence statistics for 3 latents"):
        reader.read(z, [{}, {}])
