"""Detection apart from identification (engine.verdicts) on latents with known answers, no model needed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from engine.calibration import MethodCalibration
from engine.key_separability import new_separable_keys, separability
from engine.noise_statistics import key_region, noise_statistics
from engine.treering import KeySet, TreeRingKey, dec_inv_keys, inject
from engine.treering_scoring import exclusion_p_values, exclusion_statistics, score_keys
from engine.verdicts import Conclusion, Evidence, conclude, empirical_p, image_conclusion

SHAPE = (4, 32, 32)


def latents(n: int, seed: int) -> torch.Tensor:
    return torch.randn((n, *SHAPE), generator=torch.Generator().manual_seed(seed))


def recovered(keys: KeySet, key_id: str, n: int, seed: int, gain: float = 0.6, noise: float = 0.8) -> torch.Tensor:
    """Watermarked noise as an inversion returns it: the ring attenuated by `gain`, plus fresh noise."""
    clean = latents(n, seed)
    marked = inject(clean, keys[key_id])
    return gain * marked + noise * latents(n, seed + 1)


def conclusions(z: torch.Tensor, keys: KeySet, fpr: float = 0.01, calibration=None) -> list[Conclusion]:
    scores = score_keys(z, keys)
    excl, df = exclusion_statistics(z, keys)
    region = key_region(keys)
    return [conclude(Evidence(scores[i], excl[i], df, noise_statistics(z[i].numpy(), region).values), fpr,
                     calibration, "gradient-free") for i in range(len(z))]


@pytest.fixture(scope="module")
def separable() -> KeySet:
    return new_separable_keys(3, SHAPE, seed=7)


def synthetic_calibration(keys: KeySet, per_key: int = 150) -> MethodCalibration:
    """A calibration from synthetic clean and recovered latents (disjoint seeds from the tests'), as
    `engine.calibration_making` builds one from a model's images: clean detection statistics, and the exclusion
    statistic of each watermarked latent at its own key."""
    clean = latents(400, 1000)
    clean_t = tuple(float(min(s.p_value for s in row)) for row in score_keys(clean, keys))
    ident = []
    for j, key_id in enumerate(keys.ids):
        excl, _ = exclusion_statistics(recovered(keys, key_id, per_key, 2000 + 10 * j), keys)
        ident += [float(v) for v in excl[:, j]]
    return MethodCalibration("gradient-free", "x", {}, clean_t, tuple(ident), {})


def test_empirical_p_is_r_plus_one_over_n_plus_one():
    null = np.array([0.1, 0.2, 0.3, 0.4])
    assert empirical_p(null, 0.05, larger_is_extreme=False) == pytest.approx(1 / 5)
    assert empirical_p(null, 0.25, larger_is_extreme=False) == pytest.approx(3 / 5)
    assert empirical_p(null, 0.35, larger_is_extreme=True) == pytest.approx(2 / 5)


def test_clean_noise_is_not_detected_at_the_stated_level(separable):
    cs = conclusions(latents(200, 1), separable)
    positives = sum(c.detected for c in cs)
    assert positives <= 5                         # 1 % of 200 is 2; the test is conservative on Gaussian noise
    assert all(c.outcome in ("not_detected", "identified", "inconclusive") for c in cs)
    assert all("Bonferroni" in c.detection_test and c.calibration == "uncalibrated" for c in cs)


def test_separable_keys_are_identified_and_never_attributed_to_another_key(separable):
    calibration = synthetic_calibration(separable)
    for key_id in separable.ids:
        cs = conclusions(recovered(separable, key_id, 60, 11), separable, calibration=calibration)
        assert all(c.detected for c in cs)
        identified = [c for c in cs if c.outcome == "identified"]
        assert len(identified) >= 45, key_id
        assert all(c.key == key_id for c in identified)
        # the calibrated exclusion test drops the true key at its level by chance, never as a rule
        assert sum(key_id not in c.candidates for c in cs) <= 3, key_id
    # a key is excluded at a tenth of the level, and the finding states both levels
    c = identified[0]
    assert c.identification_level == pytest.approx(0.001) and c.fpr == 0.01
    assert "Levels: detection 0.01; identification 0.001" in c.finding()
    assert Conclusion.from_json_dict(c.to_json_dict()) == c


def test_without_a_calibration_the_analytic_test_ranks_the_keys_but_names_none(separable):
    """The analytic exclusion test is not valid on real inversions (docs/algorithms.md §4.2): uncalibrated, a
    single remaining key is reported as the most likely, inconclusive, with the reason and the way out."""
    cs = conclusions(recovered(separable, "key2", 40, 11), separable)
    assert all(c.outcome == "inconclusive" and c.key is None for c in cs)
    single = [c for c in cs if len(c.candidates) == 1]
    assert len(single) >= 30 and all(c.candidates == ("key2",) for c in single)
    c = single[0]
    assert c.headline() == "Watermark detected; key key2 most likely, not identified (uncalibrated)"
    assert "calibrat" in c.interpretation() and any("calibrating on the model" in n for n in c.notes)
    assert "names none" in c.identification_test


def test_keys_that_cannot_be_told_apart_give_inconclusive_with_both_candidates():
    base = TreeRingKey("a", pattern="values", radius=6, latent_shape=SHAPE, ring_values=(40, 20, 56, 32, 8, 72))
    twin = TreeRingKey("b", pattern="values", radius=6, latent_shape=SHAPE, ring_values=(40, 20, 56, 32, 8, 73))
    keys = KeySet((base, twin))
    cs = conclusions(recovered(keys, "a", 40, 5), keys, calibration=synthetic_calibration(keys, 100))
    inconclusive = [c for c in cs if c.outcome == "inconclusive"]
    assert len(inconclusive) >= 36 and all(set(c.candidates) == {"a", "b"} for c in inconclusive)
    # excluding the true key happens at the stated level by chance (1 % per key), never as a rule
    assert sum(c.outcome == "identified" and c.key == "b" for c in cs) <= 2
    c = inconclusive[0]
    assert "cannot be told apart" in c.headline() and "no single key holder" in c.interpretation()


def test_exclusion_statistic_is_valid_under_its_hypothesis(separable):
    """Under H_j with white noise the analytic exclusion p-value of the true key is (about) uniform: key j is
    wrongly excluded at level 0.05 in about 5 % of cases, never much more."""
    z = recovered(separable, "key2", 400, 21)
    excl, df = exclusion_statistics(z, separable)
    p_true = exclusion_p_values(excl[:, 1], df, len(separable))
    assert np.mean(p_true <= 0.05) <= 0.08


def test_calibrated_detection_uses_the_empirical_null_and_states_its_floor(separable):
    null = tuple(float(x) for x in np.linspace(0.01, 1.0, 50))
    cal = MethodCalibration("gradient-free", "x", {}, null, (), {})
    c = conclusions(recovered(separable, "key1", 1, 3), separable, fpr=0.05, calibration=cal)[0]
    assert c.calibration == "calibrated" and c.detection_p == pytest.approx(1 / 51)
    assert c.min_supported_p == pytest.approx(1 / 51)
    # a level below the calibration's floor: the conclusion says so and needs the analytic test as well
    c = conclusions(recovered(separable, "key1", 1, 3), separable, fpr=0.01, calibration=cal)[0]
    assert any("cannot reach" in n for n in c.notes)


def test_evidence_outside_the_calibration_is_never_a_defended_positive(separable):
    cal = MethodCalibration("gradient-free", "x", {}, tuple(np.linspace(0.01, 1, 200)), (),
                            {"std": (0.95, 1.05)})
    z = recovered(separable, "key1", 1, 3) * 3.0          # far from the calibration's range of std
    c = conclusions(z, separable, calibration=cal)[0]
    assert c.outcome == "inconclusive" and c.calibration == "outside calibration"
    assert "beyond the calibration's range" in " ".join(c.notes)


def test_image_conclusion_is_the_default_pipelines_and_names_disagreements(separable):
    z = recovered(separable, "key1", 1, 3)
    good = conclusions(z, separable)[0]
    clean = conclusions(latents(1, 99), separable)[0]
    from dataclasses import replace

    c = image_conclusion({"encoder": replace(clean, method="encoder"), "gradient-free": good})
    assert c.method == "gradient-free" and c.outcome == good.outcome
    assert c.disagreements == ("encoder: not detected",)


def test_conclusion_round_trips_through_json(separable):
    c = conclusions(recovered(separable, "key3", 1, 8), separable)[0]
    assert Conclusion.from_json_dict(c.to_json_dict()) == c
    with pytest.raises(ValueError):
        Conclusion.from_json_dict({**c.to_json_dict(), "detection_p": float("nan")})
    with pytest.raises(ValueError):
        Conclusion.from_json_dict({**c.to_json_dict(), "outcome": "maybe"})


def test_separability_flags_the_demo_keys_and_new_keys_pass():
    demo = dec_inv_keys(SHAPE)
    s = separability(demo)
    assert not s.ok and len(s.warnings()) == 3          # the dec-inv keys are close at this latent size
    assert "too close" in s.warnings()[0]
    fresh = new_separable_keys(3, SHAPE, seed=2)
    assert separability(fresh).ok
    with pytest.raises(ValueError, match="larger --radius"):
        new_separable_keys(30, SHAPE, seed=2, attempts=100)


def test_a_vault_names_an_independently_drawn_key_but_not_a_ringid_key():
    """In a vault of Gaussian Shading and RingID keys, a Gaussian Shading key that alone passes its own test is
    named (its keys are independent draws); a RingID key that alone passes is ranked, not named."""
    from engine.watermarks import independent_key_ids, scheme_for
    from engine.watermarks import gaussian_shading, ringid
    from engine.watermarks.multi import MultiSchemeKeySet

    gs = gaussian_shading.new_keys(4, latent_shape=SHAPE, seed=3)
    ri = ringid.new_keys(4, latent_shape=SHAPE, seed=5)
    vault = MultiSchemeKeySet((gs, ri))
    independent = independent_key_ids(vault)
    assert independent == frozenset(gs.ids)
    scheme = scheme_for(vault)
    z = torch.cat([gaussian_shading.inject(latents(1, 11), gs["gs2"]), ringid.inject(latents(1, 12), ri.keys[1])])
    scores = scheme.score(z, vault, "effective")
    gs_c, ri_c = (conclude(Evidence(scores[i], None, 0, {}, independent), 0.01) for i in range(2))
    assert (gs_c.outcome, gs_c.key, gs_c.candidates) == ("identified", "gs2", ("gs2",))
    assert ri_c.detected and ri_c.outcome == "inconclusive" and ri_c.key is None
    assert ri.keys[1].id in ri_c.candidates


def test_a_vault_of_several_schemes_calibrates_on_clean_latents_alone():
    """`calibrate --per-key 0` on a vault: the calibration's clean null is the smallest p over all its keys, the
    calibrated conclusion still names a Gaussian Shading key that alone passes, and clean latents are flagged at
    about the level (at most 3 of 50: at 1 % that is exceeded with probability 0.002)."""
    from engine.analysis import AnalysisConfig
    from engine.calibration_making import calibration_from_latents
    from engine.noise_statistics import key_region, noise_statistics
    from engine.watermarks import gaussian_shading, independent_key_ids, ringid, scheme_for
    from engine.watermarks.multi import MultiSchemeKeySet

    vault = MultiSchemeKeySet((gaussian_shading.new_keys(3, latent_shape=SHAPE, seed=1),
                               ringid.new_keys(2, latent_shape=SHAPE, seed=2)))
    config = AnalysisConfig(methods=("encoder",))
    cal = calibration_from_latents("tiny", {}, vault, config, "float32",
                                   {"encoder": {"clean": latents(400, 21).numpy()}}, source="test")
    method = cal.methods["encoder"]
    assert len(method.clean_detection) == 400 and not method.identification_null
    scheme, region = scheme_for(vault), key_region(vault)
    z = torch.cat([gaussian_shading.inject(latents(1, 31), vault["gs3"]), latents(50, 32)])
    scores = scheme.score(z, vault, "effective")
    out = [conclude(Evidence(scores[i], None, 0, noise_statistics(z[i].numpy(), region).values,
                             independent_key_ids(vault)), 0.01, method, "encoder") for i in range(len(z))]
    assert (out[0].outcome, out[0].key, out[0].calibration) == ("identified", "gs3", "calibrated")
    assert sum(c.detected for c in out[1:]) <= 3


def test_an_independent_key_is_named_only_at_a_tenth_of_the_level():
    """Without a pairwise test an independently drawn key that alone passes is named only when its own
    Bonferroni p-value is also below the identification level (fpr / 10): at the detection level alone a lost
    watermark or a clean image lets another key pass by chance."""
    from engine.treering_scoring import KeyScore

    ids = ("gs1", "gs2", "gs3", "gs4")

    def conclusion(p_first: float) -> Conclusion:
        scores = [KeyScore(i, 0.5, p) for i, p in zip(ids, (p_first, 0.4, 0.7, 0.9))]
        return conclude(Evidence(scores, None, 0, {}, frozenset(ids)), 0.01)

    weak, strong = conclusion(0.5 * 0.01 / 4), conclusion(0.5 * 0.001 / 4)
    assert weak.detected and (weak.outcome, weak.key, weak.candidates) == ("inconclusive", None, ("gs1",))
    assert weak.identification_level == pytest.approx(0.001)
    assert any("not below the identification level 0.001" in n for n in weak.notes)
    assert (strong.outcome, strong.key) == ("identified", "gs1")
    assert not conclusion(2 * 0.01 / 4).detected


def test_a_key_is_named_only_when_excluded_under_every_alteration_the_calibration_saw(separable):
    """The identification null under alteration (engine.altered_calibration): a key is excluded only when its
    statistic is also beyond what the calibration's altered watermarked images give, so a calibration whose
    altered images lean far towards other keys names no key on the same evidence."""
    from dataclasses import replace

    calibration = synthetic_calibration(separable)
    named = [c for c in conclusions(recovered(separable, "key1", 40, 11), separable, calibration=calibration)
             if c.outcome == "identified"]
    assert len(named) >= 30 and all(c.key == "key1" for c in named)

    # altered images that stay near their own key change nothing …
    mild = replace(calibration, identification_null_altered={"jpeg 50": calibration.identification_null[:50]})
    cs = conclusions(recovered(separable, "key1", 40, 11), separable, calibration=mild)
    assert sum(c.outcome == "identified" for c in cs) == len(named)
    assert all("simulated alteration that left the watermark detectable (1: jpeg 50)" in c.identification_test
               for c in cs)
    # … while an alteration under which the true key's statistic reaches far keeps every key a candidate
    bent = replace(calibration, identification_null_altered={"jpeg 50": calibration.identification_null[:50],
                                                             "brightness 2": (1e3,) * 50})
    cs = conclusions(recovered(separable, "key1", 40, 11), separable, calibration=bent)
    assert all(c.detected and c.outcome == "inconclusive" and set(c.candidates) == set(separable.ids) for c in cs)
    assert all("(2: jpeg 50, brightness 2)" in c.identification_test for c in cs)
    # the examiner still learns what the evidence says if it is unaltered, as a note
    hinted = [c for c in cs if any("were the evidence unaltered, only key1 would remain" in n for n in c.notes)]
    assert len(hinted) == len(named)


def test_a_calibration_keeps_its_altered_null_and_old_files_keep_their_hash(separable):
    from dataclasses import replace

    from engine.calibration import MethodCalibration

    calibration = synthetic_calibration(separable)
    plain = calibration.to_json_dict()
    assert "identification_null_altered" not in plain       # files made without it hash as before
    assert MethodCalibration.from_json_dict(plain) == calibration
    bent = replace(calibration, identification_null_altered={"brightness 2": (1.5, 4.25), "noise 0.1": ()})
    assert MethodCalibration.from_json_dict(bent.to_json_dict()) == bent
    bad = {**bent.to_json_dict(), "identification_null_altered": {"brightness 2": [1.0, float("nan")]}}
    with pytest.raises(ValueError, match="identification_null_altered"):
        MethodCalibration.from_json_dict(bad)


def test_an_altered_null_is_added_only_with_the_calibration_s_own_images(separable):
    """`with_altered_null` adds the null under alteration to an existing calibration, refusing latents that do
    not reproduce its identification null; only altered images that would be asked identification count."""
    from engine.calibration_making import with_altered_null

    calibration = synthetic_calibration(separable, per_key=20)
    own = {k: recovered(separable, k, 20, 2000 + 10 * j).numpy() for j, k in enumerate(separable.ids)}
    lost = {k: latents(20, 77 + j).numpy() for j, k in enumerate(separable.ids)}      # the ring destroyed
    added = with_altered_null(calibration, separable, "effective", own, {}, {"jpeg 50": own, "blur 20": lost}, {})
    assert added.clean_detection == calibration.clean_detection and added.coverage == calibration.coverage
    assert sorted(added.identification_null_altered["jpeg 50"]) == pytest.approx(sorted(calibration.identification_null))
    # an image whose ring is gone counts only when detected anyway, at 0.1: about 6 of 60
    assert len(added.identification_null_altered["blur 20"]) <= 15
    assert added.summary["altered_watermarked"] == {"jpeg 50": 60, "blur 20": 60}
    others = {k: recovered(separable, k, 20, 5000 + j).numpy() for j, k in enumerate(separable.ids)}
    with pytest.raises(ValueError, match="do not reproduce"):
        with_altered_null(calibration, separable, "effective", others, {}, {"jpeg 50": own}, {})


def test_a_clipped_share_beyond_every_calibration_image_is_outside_without_margin(separable):
    """Clipped pixels are counted exactly and a share beyond the calibration's is itself the finding, so
    `clipped_share` has no margin, unlike the noise statistics (engine.noise_statistics.EXACT_RANGE)."""
    z = recovered(separable, "key1", 1, 3)
    scores, (excl, df) = score_keys(z, separable), exclusion_statistics(z, separable)
    cal = MethodCalibration("gradient-free", "x", {}, tuple(np.linspace(0.001, 1, 999)), (),
                            {"clipped_share": (0.0, 0.6), "corner_fill": (0.0, 0.6)})

    def conclusion(**noise):
        return conclude(Evidence(scores[0], excl[0], df, noise), 0.01, cal, "gradient-free")

    assert conclusion(clipped_share=0.6, corner_fill=0.85).calibration == "calibrated"   # corner_fill: margin 0.3
    c = conclusion(clipped_share=0.61, corner_fill=0.0)
    assert c.calibration == "outside calibration" and c.outcome == "inconclusive"
    assert "clipped_share = 0.61 beyond the calibration's range [0, 0.6]" in " ".join(c.notes)
    assert "half its width" not in " ".join(c.notes)


def test_a_jpeg_block_grid_withholds_the_key_but_not_the_detection(separable):
    """block_artifacts above every calibration image's withholds only a named key (engine.noise_statistics.
    IDENTIFICATION_ONLY): the detection test is measured to hold on JPEG-compressed images, identification not."""
    z = recovered(separable, "key1", 4, 3, gain=1.0, noise=0.5)
    scores, (excl, df) = score_keys(z, separable), exclusion_statistics(z, separable)
    cal = replace(synthetic_calibration(separable), coverage={"block_artifacts": (0.75, 1.25)})

    def conclusion(i, v):
        return conclude(Evidence(scores[i], excl[i], df, {"block_artifacts": v}), 0.01, cal, "gradient-free")

    named = [i for i in range(4) if conclusion(i, 1.25).outcome == "identified"]
    assert named and all(conclusion(i, 1.25).key == "key1" for i in named)
    for i in named:
        inside, jpeg = conclusion(i, 1.0), conclusion(i, 1.26)
        assert inside.outcome == "identified" and conclusion(i, 0.5).outcome == "identified"   # one-sided: smooth
        assert jpeg.outcome == "inconclusive" and jpeg.key is None and jpeg.candidates == ("key1",)
        assert jpeg.detected and jpeg.detection_p == inside.detection_p and jpeg.calibration == "calibrated"
        assert "block_artifacts = 1.26 above every calibration image's (1.25)" in " ".join(jpeg.notes)


def test_block_artifacts_see_a_jpeg_grid_and_not_a_smooth_image():
    import io

    from PIL import Image

    from engine.noise_statistics import block_artifacts

    rng = np.random.default_rng(0)
    img = np.asarray(Image.fromarray((rng.random((11, 11, 3)) * 255).astype(np.uint8)).resize(
        (64, 64), Image.Resampling.BICUBIC))
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)

    def stat(rgb):
        return block_artifacts(rgb.transpose(2, 0, 1).astype(np.float64) / 127.5 - 1)

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=30)
    jpeg = np.asarray(Image.open(buf).convert("RGB"))
    assert 0.8 < stat(img) < 1.2 < 1.3 < stat(jpeg)
    assert np.isnan(block_artifacts(np.zeros((3, 8, 8))))         # too small to say


def test_mid_band_deficit_grows_with_a_blur_and_is_zero_on_white_noise():
    from PIL import Image, ImageFilter

    from engine.noise_statistics import mid_band_deficit

    rng = np.random.default_rng(1)

    def stat(rgb):
        return mid_band_deficit(rgb.transpose(2, 0, 1).astype(np.float64) / 127.5 - 1)

    # white noise has a flat spectrum: the two bands hold the same mean power
    white = (rng.random((3, 256, 256)) * 2 - 1)
    assert abs(mid_band_deficit(white)) < 0.05
    img = np.asarray(Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).resize(
        (64, 64), Image.Resampling.BICUBIC))
    blurred = [stat(np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(r)))) for r in (0, 1, 2, 4)]
    assert blurred == sorted(blurred) and blurred[2] > blurred[0] + 0.5
    # noise after the blur does not give the mid band back as a gradient measure would read it
    noised = np.clip(np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(4)), dtype=np.float64)
                     + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
    assert stat(noised) > blurred[0] + 1.0
    assert np.isnan(mid_band_deficit(np.zeros((3, 8, 8))))         # too small to say
    assert np.isnan(mid_band_deficit(np.zeros((3, 64, 64))))       # too flat to say


def test_dark_corners_keep_a_rotation_that_a_radius_2_blur_takes_the_pure_black_from():
    """A 9° rotation's black wedges, blurred with radius 2, keep dark (≤ 32/255) corner pixels where the
    pure-black share of `corner_fill` is gone; the image unaltered has neither."""
    from engine.attacks import apply_attacks, combined
    from engine.noise_statistics import corner_fill, dark_corners

    rng = np.random.default_rng(2)
    img = np.clip(rng.normal(140, 25, (64, 64, 3)), 60, 255).astype(np.uint8)   # nothing darker than 60/255

    def both(rgb):
        x = rgb.transpose(2, 0, 1).astype(np.float64) / 127.5 - 1
        return corner_fill(x), dark_corners(x)

    assert both(img) == (0.0, 0.0)
    fill, dark = both(apply_attacks(img, combined("rotation+resizedcrop+blur@0.05", 0.2, 7)))   # radius 1
    assert 0 < fill <= dark
    fill, dark = both(apply_attacks(img, combined("rotation+resizedcrop+blur@0.1", 0.2, 7)))    # radius 2
    assert fill < dark and dark > 0.01
    assert both(apply_attacks(img, combined("blur", 0.1, 7))) == (0.0, 0.0)       # a blur alone darkens no corner


def test_a_null_carries_a_trace_only_when_all_its_images_have_more_than_most_unaltered():
    """`alteration_traces`: the least value of a trace that every image has more of than the median of the same
    images unaltered, or than the trace's own baseline (pure-black corners: none) where those are not given."""
    from engine.calibration_making import alteration_traces

    before = [{"corner_fill": 0.0, "mid_band_deficit": v} for v in (0.5, 0.8, 0.9, 1.0, 1.4)]
    blurred = [{"corner_fill": 0.0, "mid_band_deficit": v} for v in (1.2, 1.5, 1.9, 1.3, 2.0)]
    both = ("corner_fill", "mid_band_deficit")
    assert alteration_traces(blurred, before, both) == {"mid_band_deficit": 1.2}
    assert alteration_traces(blurred, before) == {}         # a candidate only when asked for (CANDIDATE_TRACES)
    assert alteration_traces(blurred, None, both) == {}     # no baseline of its own: unaltered images needed
    lightly = [{**s, "mid_band_deficit": v} for s, v in zip(blurred, (0.85, 1.5, 1.9, 1.3, 2.0))]
    assert alteration_traces(lightly, before, both) == {}   # one image has less than most unaltered ones
    rotated = [{"corner_fill": v, "mid_band_deficit": 0.9} for v in (0.02, 0.05, 0.1, 0.03, 0.2)]
    assert alteration_traces(rotated) == {"corner_fill": 0.02} == alteration_traces(rotated, before, both)
    assert alteration_traces(rotated[:4] + [{"mid_band_deficit": 0.9}], before) == {}   # a value missing
    assert alteration_traces(rotated[:4] + [{"corner_fill": 0.0}]) == {}
    # one trace only, the first carried in the order asked: a second would narrow the evidence the null applies to
    both_carried = [{**s, "mid_band_deficit": v} for s, v in zip(rotated, (1.2, 1.5, 1.9, 1.3, 2.0))]
    assert alteration_traces(both_carried, before, both) == {"corner_fill": 0.02}
    assert alteration_traces(both_carried, before, both[::-1]) == {"mid_band_deficit": 1.2}
    # by default dark corners come first (a blur and noise take the pure black, not the dark); they have no baseline
    # of their own, so without the unaltered images the null falls back to the pure-black corners
    dark = [{**s, "dark_corners": v} for s, v in zip(rotated, (0.11, 0.15, 0.2, 0.12, 0.3))]
    dark_before = [{**s, "dark_corners": v} for s, v in zip(before, (0.0, 0.0, 0.05, 0.2, 0.9))]
    assert alteration_traces(dark, dark_before) == {"dark_corners": 0.11}
    assert alteration_traces(dark) == {"corner_fill": 0.02}
    assert alteration_traces(dark, [{**s, "dark_corners": 0.12} for s in dark_before]) == {"corner_fill": 0.02}


def test_traces_are_added_to_a_shipped_null_without_changing_it(separable):
    """`with_alteration_traces` gives a trace only to a null without one, over all the images it was drawn on, keeps
    the null and the trace it has (alone), and refuses a count that is not the null's or a label it does not hold."""
    from engine.calibration_making import with_alteration_traces

    calibration = replace(synthetic_calibration(separable),
                          detection_null_altered={"combo-all 0.2": (0.1, 0.2, 0.3), "rotation+resizedcrop 0.1": (0.4,)},
                          detection_null_altered_traces={"rotation+resizedcrop 0.1": {"corner_fill": 0.1}},
                          summary={"altered_clean": {"combo-all 0.2": 4, "rotation+resizedcrop 0.1": 4}})
    before = [{"corner_fill": 0.0, "mid_band_deficit": v} for v in (0.5, 0.8, 0.9, 1.0)]
    altered = {"combo-all 0.2": [{"corner_fill": 0.0, "mid_band_deficit": v} for v in (1.3, 1.1, 1.6, 1.7)],
               "rotation+resizedcrop 0.1": [{"corner_fill": 0.05, "mid_band_deficit": v} for v in (1, 1.2, 1.3, 1.1)]}
    assert with_alteration_traces(calibration, altered, before) == calibration   # corner fill: held already
    out = with_alteration_traces(calibration, altered, before, ("corner_fill", "mid_band_deficit"))
    assert out.detection_null_altered == calibration.detection_null_altered
    assert out.detection_null_altered_traces == {"combo-all 0.2": {"mid_band_deficit": 1.1},
                                                 "rotation+resizedcrop 0.1": {"corner_fill": 0.1}}
    assert list(out.detection_null_altered_traces) == list(calibration.detection_null_altered)   # the plan's order
    empty = replace(calibration, detection_null_altered={**calibration.detection_null_altered, "combo-all 0.2": ()})
    assert "combo-all 0.2" not in with_alteration_traces(empty, altered, before, ("mid_band_deficit",)
                                                         ).detection_null_altered_traces
    with pytest.raises(ValueError, match="3 images under 'combo-all 0.2' for a null drawn on 4"):
        with_alteration_traces(calibration, {"combo-all 0.2": altered["combo-all 0.2"][:3]}, before)
    with pytest.raises(ValueError, match="no detection null under 'jpeg 50'"):
        with_alteration_traces(calibration, {"jpeg 50": altered["combo-all 0.2"]}, before)


def test_a_null_with_two_traces_applies_only_to_evidence_with_both(separable):
    from engine.verdicts import altered_detection

    calibration = replace(synthetic_calibration(separable), detection_null_altered={"combo-all 0.2": (1e-4,) * 200},
                          detection_null_altered_traces={"combo-all 0.2": {"corner_fill": 0.02,
                                                                           "mid_band_deficit": 1.3}})
    both = {"corner_fill": 0.05, "mid_band_deficit": 1.4}
    p, vetoes, text = altered_detection(calibration, 1e-3, 1e-4, 0.01, both)
    assert vetoes and p > 0.01 and "all did here" in text
    assert ("(corner_fill: share of pure-black pixels in the image's four corner squares; mid_band_deficit: log10 "
            "of the luma's power at 0.02–0.08 cycles/pixel over its power at 0.08–0.15)") in text
    for lacking in ({**both, "mid_band_deficit": 0.9}, {**both, "corner_fill": 0.0}):
        p, vetoes, text = altered_detection(calibration, 1e-3, 1e-4, 0.01, lacking)
        assert not vetoes and p == 1e-4 and "1 did not here (this evidence has less)" in text
    assert altered_detection(calibration, 1e-3, 1e-4, 0.01, {"corner_fill": 0.05})[1]   # no value: present


def test_clean_images_are_added_only_with_the_calibration_s_own_pipeline(separable):
    """`with_more_clean` appends the added images' detection statistics to every method's null (the earlier
    ones unchanged), widens the coverage only where they reach beyond it, counts them, and refuses latents whose
    settings differ or whose re-recovered first clean images do not reproduce the stored statistics."""
    from engine.analysis import AnalysisConfig
    from engine.calibration import settings_sha256
    from engine.calibration_making import calibration_from_latents, with_more_clean

    config = AnalysisConfig(methods=("encoder",))
    clean = latents(100, 41).numpy()
    marked = {k: recovered(separable, k, 20, 50 + j).numpy() for j, k in enumerate(separable.ids)}
    cal = calibration_from_latents("tiny", {}, separable, config, "float32",
                                   {"encoder": {"clean": clean, **marked}}, source="test, seeds 100000…")
    more = latents(200, 42).numpy()
    more[0] *= 1.5                                          # one image beyond the coverage's std range
    stats = [{"corner_fill": 0.0, "clipped_share": 0.0}] * 200
    settings = {"encoder": settings_sha256(config, "encoder", "float32")}
    out = with_more_clean(cal, separable, "effective", settings, {"encoder": more}, stats, {"encoder": clean[:8]},
                          "seeds 100100…100299")
    before, after = cal.methods["encoder"], out.methods["encoder"]
    assert after.clean_detection[:100] == before.clean_detection and len(after.clean_detection) == 300
    assert after.min_supported_p == pytest.approx(1 / 301) and out.counts["clean"] == 300
    assert after.coverage["std"][1] > 1.4 > before.coverage["std"][1] and after.coverage["std"][0] <= before.coverage["std"][0]
    assert set(after.coverage) == set(before.coverage)         # a statistic it lacks is not added from a part
    assert after.identification_null == before.identification_null
    assert sum(after.summary["in_sample_conclusions"]["clean"].values()) == 200
    assert "200 more clean images added (seeds 100100…100299)" in out.source
    with pytest.raises(ValueError, match="do not reproduce"):
        with_more_clean(cal, separable, "effective", settings, {"encoder": more}, stats,
                        {"encoder": latents(8, 43).numpy()}, "x")
    with pytest.raises(ValueError, match="other settings"):
        with_more_clean(cal, separable, "effective", {"encoder": "0" * 64}, {"encoder": more}, stats,
                        {"encoder": clean[:8]}, "x")


def test_the_level_a_finite_calibration_holds_spreads_as_stated(separable):
    """The false-positive rate an empirical p-value gives at a level, over calibrations drawn again, has the
    central range `calibrated_level_range` states (simulated: 4000 calibrations of 300 uniform statistics), and
    a calibrated conclusion names that range beside its test."""
    from engine.rates import calibrated_level_range
    from engine.verdicts import level_range_text

    lo, hi = calibrated_level_range(300, 0.01)
    rng = np.random.default_rng(5)
    # detection when the exhibit's statistic is below the calibration's 3rd smallest: its rate is that value
    held = np.sort(rng.uniform(size=(4000, 300)), axis=1)[:, 2]
    assert np.mean(held < lo) == pytest.approx(0.025, abs=0.01) and np.mean(held > hi) == pytest.approx(0.025, abs=0.01)
    assert calibrated_level_range(1000, 0.01) == pytest.approx((0.0048, 0.0170), abs=2e-4)
    assert calibrated_level_range(300, 0.001) is None
    c = conclusions(latents(1, 61), separable, calibration=synthetic_calibration(separable))[0]
    lo, hi = calibrated_level_range(400, 0.01)                     # the synthetic calibration's 400 clean
    assert f"a calibration of 400 images holds the level 0.01 only to within {level_range_text((lo, hi))} in 95 % " \
           "of calibration draws" in c.detection_test
    assert level_range_text((0.0048, 0.017)) == "0.48–1.7 %"


def ring_imitation(keys: KeySet, n: int, seed: int, strength: float) -> torch.Tensor:
    """Clean noise with a positive bump on every ring the keys mark — what a hidden rotation leaves in z_T, which
    brings an un-watermarked latent closer to every ring key than chance (no key's pattern in particular)."""
    from engine.treering import fft_latent, ifft_latent

    z = latents(n, seed)
    key = keys.keys[0]
    spectrum = fft_latent(z)
    bump = torch.zeros(key.latent_shape, dtype=spectrum.dtype)
    bump[key.mask()] = strength * float(np.mean(key.ring_values))
    return ifft_latent(spectrum + bump).real.float()


def test_clean_images_under_a_simulated_alteration_veto_a_detection_they_reach(separable):
    """The detection null under alteration (engine.altered_calibration): a watermark is detected only when the
    statistic is beyond the level against the unaltered clean images and against each altered null. Clean latents
    that imitate a ring key are flagged by the unaltered null alone; with an altered null drawn from such latents
    (other seeds) they are not, the note names the alteration, and a watermark that survives is still identified."""
    calibration = synthetic_calibration(separable)
    imitating = ring_imitation(separable, 60, 300, 0.35)
    flagged = [c for c in conclusions(imitating, separable, calibration=calibration) if c.detected]
    assert len(flagged) >= 20              # the unaltered null alone: far beyond its level

    null_t = tuple(float(min(s.p_value for s in row)) for row in score_keys(ring_imitation(separable, 200, 900, 0.35),
                                                                            separable))
    guarded = replace(calibration, detection_null_altered={"combo-all 0.2": null_t, "rotation+resizedcrop+blur 0.1": ()})
    cs = conclusions(imitating, separable, calibration=guarded)
    assert sum(c.detected for c in cs) <= 6            # ~1 % of 60 expected; binomial tail at 6 < 1e-4
    vetoed = [c for c in cs if c.unaltered_detection_p is not None]
    assert len(vetoed) >= len(flagged) - 6
    for c in vetoed:
        assert c.outcome == "not_detected" and c.detection_p > 0.01 and c.unaltered_detection_p <= 0.01
        assert "within what the model's altered clean images give" in c.headline()
        assert any("clean images reach a statistic this small under combo-all 0.2 (" in n for n in c.notes)
    # an empty null is not used; the test says which alterations and how many images
    assert all("under 1 simulated alteration (combo-all 0.2; 200 images each" in c.detection_test for c in cs)

    marked = conclusions(recovered(separable, "key1", 40, 11), separable, calibration=guarded)
    plain = conclusions(recovered(separable, "key1", 40, 11), separable, calibration=calibration)
    assert [c.outcome for c in marked] == [c.outcome for c in plain]
    assert sum(c.key == "key1" for c in marked) >= 30
    assert all(c.unaltered_detection_p is None for c in marked)


def test_an_altered_detection_null_too_small_for_the_level_vetoes_only_within_its_range(separable):
    """With fewer than 1/level − 1 values an altered null cannot reach the level: it vetoes a statistic within its
    range and says nothing of one beyond every value."""
    calibration = synthetic_calibration(separable)
    marked = recovered(separable, "key1", 20, 11)
    t = [float(min(s.p_value for s in row)) for row in score_keys(marked, separable)]
    plain = conclusions(marked, separable, calibration=calibration)
    assert sum(c.detected for c in plain) >= 18
    small = replace(calibration, detection_null_altered={"combo-all 0.3": (max(t) * 10,) * 20})
    assert [(c.outcome, c.detection_p) for c in conclusions(marked, separable, calibration=small)] == \
        [(c.outcome, c.detection_p) for c in plain]
    reaching = replace(calibration, detection_null_altered={"combo-all 0.3": (1.0,) * 19 + (min(t) / 2,)})
    cs = conclusions(marked, separable, calibration=reaching)
    assert all(c.outcome == "not_detected" and c.detection_p == pytest.approx(max(2 / 21, p.detection_p))
               for c, p in zip(cs, plain))


def test_an_altered_null_with_a_trace_vetoes_only_evidence_that_carries_as_much_of_it(separable):
    """A null whose images all have pure-black corner pixels (a rotation blurred only lightly) applies to evidence
    with at least their least corner fill, or none recorded; evidence with less is judged by the other nulls."""
    calibration = synthetic_calibration(separable)
    imitating = ring_imitation(separable, 60, 300, 0.35)
    null_t = tuple(float(min(s.p_value for s in row)) for row in score_keys(ring_imitation(separable, 200, 900, 0.35),
                                                                            separable))
    traced = replace(calibration, detection_null_altered={"rotation+resizedcrop+blur@0.05 0.2": null_t},
                     detection_null_altered_traces={"rotation+resizedcrop+blur@0.05 0.2": {"corner_fill": 0.02}})
    scores = score_keys(imitating, separable)
    excl, df = exclusion_statistics(imitating, separable)
    region = key_region(separable)

    def concluded(corner_fill):
        out = []
        for i in range(len(imitating)):
            noise = noise_statistics(imitating[i].numpy(), region).values
            if corner_fill is not None:
                noise = {**noise, "corner_fill": corner_fill}
            out.append(conclude(Evidence(scores[i], excl[i], df, noise), 0.01, traced, "gradient-free"))
        return out

    plain = conclusions(imitating, separable, calibration=calibration)
    flagged = sum(c.detected for c in plain)
    assert flagged >= 20
    # without the trace the null is silent: the conclusions are the unaltered null's, and the test says why
    without = concluded(0.0)
    assert [c.outcome for c in without] == [c.outcome for c in plain]
    assert all("count only for evidence with at least their least value: 1 did not here" in c.detection_test
               for c in without)
    # with as much of it, or no value for it, the null vetoes
    for corner_fill in (0.02, 0.3, None):
        cs = concluded(corner_fill)
        assert sum(c.detected for c in cs) <= 6 and sum(c.unaltered_detection_p is not None for c in cs) >= flagged - 6
    assert all("all did here" in c.detection_test for c in concluded(0.3))
    # the file keeps the traces, only for labels it holds
    assert MethodCalibration.from_json_dict(traced.to_json_dict()) == traced
    for bad in ({"other 0.1": {"corner_fill": 0.02}}, {"rotation+resizedcrop+blur@0.05 0.2": {"corner_fill": "x"}}):
        with pytest.raises(ValueError, match="detection_null_altered_traces"):
            MethodCalibration.from_json_dict({**traced.to_json_dict(), "detection_null_altered_traces": bad})


def test_a_conclusion_vetoed_by_an_altered_null_round_trips_and_old_records_read_the_same(separable):
    calibration = synthetic_calibration(separable)
    null_t = tuple(float(min(s.p_value for s in row))
                   for row in score_keys(ring_imitation(separable, 200, 900, 0.35), separable))
    c = next(c for c in conclusions(ring_imitation(separable, 60, 300, 0.35), separable,
                                    calibration=replace(calibration, detection_null_altered={"combo-all 0.2": null_t}))
             if c.unaltered_detection_p is not None)
    assert Conclusion.from_json_dict(c.to_json_dict()) == c
    plain = conclusions(latents(1, 5), separable, calibration=calibration)[0]
    assert "unaltered_detection_p" not in plain.to_json_dict()


def test_a_calibration_keeps_its_altered_detection_null_and_adds_one_only_with_its_own_images(separable):
    """The detection null under alteration survives the file format (absent when empty, so older files hash as
    before; values must be p-values), and `with_altered_detection_null` keeps only the altered clean images that
    the calibration covers, after checking the first clean images reproduce its stored statistics."""
    from engine.analysis import AnalysisConfig
    from engine.calibration_making import calibration_from_latents, with_altered_detection_null

    calibration = synthetic_calibration(separable)
    assert "detection_null_altered" not in calibration.to_json_dict()
    guarded = replace(calibration, detection_null_altered={"combo-all 0.2": (0.5, 1e-4), "combo-all 0.3": ()})
    assert MethodCalibration.from_json_dict(guarded.to_json_dict()) == guarded
    bad = {**guarded.to_json_dict(), "detection_null_altered": {"combo-all 0.2": [1.5]}}
    with pytest.raises(ValueError, match="detection_null_altered"):
        MethodCalibration.from_json_dict(bad)

    config = AnalysisConfig(methods=("encoder",))
    clean = latents(100, 41).numpy()
    marked = {k: recovered(separable, k, 20, 50 + j).numpy() for j, k in enumerate(separable.ids)}
    cal = calibration_from_latents("tiny", {}, separable, config, "float32",
                                   {"encoder": {"clean": clean, **marked}}, source="test, seeds 100000…")
    entry = cal.methods["encoder"]
    imitating = ring_imitation(separable, 30, 300, 0.35).numpy()
    far = latents(30, 44).numpy() * 3                   # far beyond the coverage's std range: not covered
    out = with_altered_detection_null(entry, separable, "effective", clean[:8],
                                      {"combo-all 0.2": imitating, "combo-all 0.3": far}, {})
    assert len(out.detection_null_altered["combo-all 0.2"]) == 30 and out.detection_null_altered["combo-all 0.3"] == ()
    assert out.summary["altered_clean"] == {"combo-all 0.2": 30, "combo-all 0.3": 30}
    assert out.clean_detection == entry.clean_detection and out.coverage == entry.coverage
    with pytest.raises(ValueError, match="do not reproduce"):
        with_altered_detection_null(entry, separable, "effective", latents(8, 43).numpy(), {"x": imitating}, {})
