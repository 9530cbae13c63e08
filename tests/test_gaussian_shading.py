"""Gaussian Shading known answers, no model: the cipher, the layout, the vote and the thresholds
(docs/schemes.md §1)."""

import numpy as np
import pytest
import torch

from engine.watermarks import gaussian_shading as gs
from engine.watermarks.gaussian_shading import GaussianShadingKey, threshold_bits


def test_chacha20_rfc8439_keystream():
    assert gs.chacha20_keystream(bytes(32), bytes(12), 16).hex() == "76b8e0ada0f13d90405d6ae55386bd28"


def test_keystream_bits_msb_first_over_c_order():
    key = GaussianShadingKey("k", "00" * 32, "00" * 12, "00" * 32, latent_shape=(4, 32, 32), hw=4)
    bits = key.keystream_bits().reshape(-1)
    # 0x76 = 0111 0110, 0xb8 = 1011 1000: byte j bit 7 is flat index 8j
    assert bits[:16].tolist() == [0, 1, 1, 1, 0, 1, 1, 0, 1, 0, 1, 1, 1, 0, 0, 0]


def test_reference_thresholds():
    assert threshold_bits(256, 1e-6) == 166
    assert threshold_bits(256, 1e-6, users=10**6) == 183
    assert threshold_bits(256, 1e-6, users=10**5, exact_multi_user=True) == 181
    assert (threshold_bits(128, 1e-6), threshold_bits(64, 1e-6), threshold_bits(1024, 1e-6)) == (91, 50, 588)


def test_binomial_tail_is_exact():
    assert gs.binomial_tail(np.array([256]), 256)[0] == pytest.approx(2.0**-256, rel=1e-9)
    assert gs.binomial_tail(np.array([0]), 256)[0] == pytest.approx(1.0)
    # the reference's off-by-one: acc ≥ 166/256 has a true false-positive rate above 1e-6
    assert gs.binomial_tail(np.array([166]), 256)[0] == pytest.approx(1.176e-6, rel=2e-3)
    assert gs.binomial_tail(np.array([167]), 256)[0] == pytest.approx(6.22e-7, rel=2e-3)


def test_tiling_not_interleaving():
    key = gs.new_key("k", (4, 64, 64), rng=np.random.default_rng(1))
    assert (key.hw, key.length, key.copies) == (8, 256, 64)
    sd = key.dispersed()
    s = key.watermark_bits()
    assert sd.shape == (4, 64, 64)
    for r, c in ((0, 0), (8, 16), (56, 8)):
        assert (sd[:, r:r + 8, c:c + 8] == s).all()


@pytest.mark.parametrize("shape,hw,length", [((4, 64, 64), 8, 256), ((4, 32, 32), 4, 256)])
def test_round_trip_and_flips(shape, hw, length):
    rng = np.random.default_rng(7)
    key = gs.new_key("k", shape, rng=rng)
    assert (key.hw, key.length) == (hw, length)
    z = gs.inject(torch.randn(1, *shape, generator=torch.Generator().manual_seed(0)), key)
    score = gs.score_keys(z, gs.SchemeKeySet((key,), gs.SCHEME))[0][0]
    assert score.matched == length and score.l1 == 0.0
    if shape[1] == 64:      # 64 copies: a bit fails only when ≥ 33 of 64 flip (P = 2.5e-4 at 30 %)
        flip = torch.from_numpy(rng.random(z.shape) < 0.3)
        z2 = torch.where(flip, -z, z)
        assert gs.score_keys(z2, gs.SchemeKeySet((key,), gs.SCHEME))[0][0].bit_accuracy >= 0.99


def test_tie_reads_zero():
    key = gs.new_key("k", (4, 32, 32), rng=np.random.default_rng(2))
    s = key.watermark_bits()
    sd = np.tile(s, (1, 4, 4))
    # flip exactly half (8 of 16) copies of every bit: the vote ties everywhere and must decode to 0
    copy_index = np.add.outer(np.arange(32) // 8, np.arange(32) // 8 * 4)      # 0…15 per position
    flip = (copy_index % 2 == 0)[None]
    m = (sd ^ flip) ^ key.keystream_bits()
    bits, _ = gs.decode(torch.from_numpy(m.astype(np.float32) * 2 - 1)[None], key)
    assert (bits == 0).all()


def test_null_accuracy():
    keys = gs.new_keys(1, (4, 64, 64), seed=3)
    z = torch.randn(2000, 4, 64, 64, generator=torch.Generator().manual_seed(1))
    scores = [s[0] for s in gs.score_keys(z, keys)]
    acc = np.array([1 - s.l1 for s in scores])
    # the tie rule (tie → 0, P(tie) = 0.0993 on 64 copies) moves the mean with the watermark's balance
    ones = int(keys.keys[0].watermark_bits().sum())
    t = gs.tie_probability(64)
    assert t == pytest.approx(0.0993, abs=1e-4)
    expected = ((256 - ones) * (1 + t) / 2 + ones * (1 - t) / 2) / 256
    assert acc.mean() == pytest.approx(expected, abs=0.0025)
    assert acc.std() == pytest.approx(0.03125, rel=0.08)
    assert (acc >= 166 / 256).sum() <= 1
    # the p-values are a valid null: about 1 % below 0.01
    p = np.array([s.p_value for s in scores])
    assert 0.002 <= (p <= 0.01).mean() <= 0.02


def test_vote_null_tail_is_a_distribution():
    tail = gs.vote_null_tail(np.arange(257), 128, 256, 16)
    assert tail[0] == pytest.approx(1.0) and tail[-1] > 0
    assert np.all(np.diff(tail) <= 1e-15)
    # no ties with odd copies: the plain binomial
    assert gs.vote_null_tail(np.array([170]), 100, 256, 9)[0] == pytest.approx(gs.binomial_tail(np.array([170]), 256)[0])


def test_any_shift_breaks_detection():
    key = gs.new_key("k", (4, 64, 64), rng=np.random.default_rng(4))
    z = gs.inject(torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(2)), key)
    for shift in (1, 8):
        acc = gs.score_keys(torch.roll(z, shift, dims=-1), gs.SchemeKeySet((key,), gs.SCHEME))[0][0].bit_accuracy
        assert abs(acc - 0.5) < 0.12


def test_identification_among_users_and_secrets_not_in_public_record():
    keys = gs.new_keys(100, (4, 32, 32), seed=5)
    scheme = gs.GaussianShadingScheme()
    z = scheme.inject(torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(3)), keys["gs37"])
    verdict = scheme.decide(scheme.score(z, keys)[0], 0.01)
    assert verdict.predicted_key == "gs37" and verdict.keys_tested == 100
    public = str(keys["gs37"].to_json_dict())
    for secret in ("key_hex", "nonce_hex", "watermark_hex"):
        assert getattr(keys["gs37"], secret) not in public
    assert "bit accuracy" in verdict.finding()
    clean = scheme.decide(scheme.score(torch.randn(1, 4, 32, 32), keys)[0], 0.01)
    assert clean.predicted_key is None


def test_bad_key_refused():
    with pytest.raises(ValueError, match="key_hex"):
        GaussianShadingKey("k", "zz" * 32, "00" * 12, "00" * 32)
    with pytest.raises(ValueError, match="divide"):
        GaussianShadingKey("k", "00" * 32, "00" * 12, "00" * 32, latent_shape=(4, 30, 30), hw=4)
