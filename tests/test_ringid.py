"""RingID known answers, no model: the mask, the key order, the pattern, the null distances and
identification (docs/schemes.md §2)."""

import numpy as np
import pytest
import torch

from engine.watermarks import ringid
from engine.watermarks.base import SchemeKeySet


def test_mask_556_bins_by_rounded_distance():
    slots = ringid.slot_map(64)
    assert (slots > 0).sum() == 556
    assert [int((slots == k).sum()) for k in range(14, 3, -1)] == [88, 68, 72, 56, 68, 48, 40, 40, 28, 32, 16]
    assert slots[32, 32] == 0
    assert (slots == slots[::-1, ::-1][np.r_[-1, 0:63]][:, np.r_[-1, 0:63]]).all()    # point symmetric about DC
    # the same rings fit the demo's 32×32 latent
    assert (ringid.slot_map(32) > 0).sum() == 556


def test_key_order():
    assert ringid.key_bits(628) == (0, 1, 0, 0, 1, 1, 1, 0, 1, 0, 0)
    assert ringid.key_bits(1365) == (1, 0) * 5 + (1,) and ringid.key_bits(682) == (0, 1) * 5 + (0,)
    order = ringid.reference_key_order()
    assert len(order) == 2048 and order[0] == (-1,) * 11
    assert tuple(1 if v > 0 else 0 for v in order[628]) == ringid.key_bits(628)
    assert len(ringid.new_keys(latent_shape=(4, 64, 64))) == 2048


@pytest.mark.parametrize("side", [64, 32])
def test_pattern_is_real_alternating_and_injection_exact(side):
    key = ringid.RingIDKey("k", index=628, heter_seed=5, latent_shape=(4, side, side), value=float(side))
    p = key.pattern()
    slots = ringid.slot_map(side)
    rows, cols = np.indices((side, side))
    expected = np.zeros((side, side))
    for j, bit in enumerate(key.bits):
        expected[slots == 14 - j] = (1 if bit else -1) * side
    expected *= (-1.0) ** (rows + cols)
    assert np.abs(p[1] - expected).max() < 1e-9                 # ±v·(−1)^(row+col), real, after fix_gt + time_shift
    z = torch.randn(1, 4, side, side, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    zw = ringid.inject(z, key)
    f = torch.fft.fftshift(torch.fft.fft2(zw), dim=(-2, -1))[0].numpy()
    mask = slots > 0
    assert np.abs(f[3][mask] - p[1][mask]).max() < 1e-9
    assert np.abs(f[0][mask] - p[0][mask]).max() < 1e-9
    assert torch.allclose(zw[:, 1:3], z[:, 1:3], atol=1e-12)                    # the other channels are untouched


def test_null_distances_match_the_reference_simulation():
    keys = ringid.new_keys(indices=[628], latent_shape=(4, 64, 64), value=64.0)
    z = torch.randn(200, 4, 64, 64, generator=torch.Generator().manual_seed(3))
    s = [row[0] for row in ringid.score_keys(z, keys)]
    heter, ring, both = (np.array([getattr(x, a) for x in s]) for a in ("heter_distance", "ring_distance", "l1"))
    assert heter.mean() == pytest.approx(78.7, abs=1.0) and ring.mean() == pytest.approx(81.9, abs=1.0)
    assert both.mean() == pytest.approx(78.5, abs=1.0) and ring.std() == pytest.approx(2.3, abs=0.6)
    # the Rician null puts the p-values near uniform
    p = np.array([x.p_value for x in s])
    assert 0.35 < np.median(p) < 0.75 and (p < 0.01).sum() <= 6


def test_noisy_watermark_distance_and_identification():
    keys = ringid.new_keys(latent_shape=(4, 64, 64), value=64.0)
    g = torch.Generator().manual_seed(4)
    key = keys["ringid0628"]
    zw = ringid.inject(torch.randn(1, 4, 64, 64, generator=g), key)
    noisy = zw + 0.5 * torch.randn(zw.shape, generator=g)
    s = ringid.score_keys(noisy, SchemeKeySet((key,), "ringid"))[0][0]
    assert s.ring_distance == pytest.approx(28.4, rel=0.08)
    assert s.p_value < 1e-12
    scheme = ringid.RingIDScheme()
    # identification among all 2048 keys on exact watermarked latents
    picks = ringid.new_keys(indices=range(0, 2048, 97), latent_shape=(4, 64, 64), value=64.0).keys
    z = torch.cat([ringid.inject(torch.randn(1, 4, 64, 64, generator=g), k) for k in picks])
    scores = scheme.score(z, keys)
    verdicts = [scheme.decide(row, 0.01) for row in scores]
    assert [v.predicted_key for v in verdicts] == [k.id for k in picks]
    assert verdicts[0].keys_tested == 2048 and "ring distance" in verdicts[0].finding()


def test_bad_keys_refused():
    with pytest.raises(ValueError, match="do not fit"):
        ringid.RingIDKey("k", 0, 0, latent_shape=(4, 16, 16))
    with pytest.raises(ValueError, match="index"):
        ringid.RingIDKey("k", 2048, 0)
    with pytest.raises(ValueError, match="bits"):
        ringid.RingIDKey.from_vault_dict({**ringid.RingIDKey("k", 3, 0).to_vault_dict(), "bits": "1" * 11})


def test_rings_scale_with_the_latent_side():
    assert ringid.default_rings(64) == (14, 3) and ringid.default_rings(32) == (7, 1)
    keys = ringid.new_keys(latent_shape=(4, 32, 32))
    assert len(keys) == 64 and int(keys.keys[0].mask_2d().sum()) == 136 and keys.keys[0].value == 32.0
    reference = ringid.new_keys(latent_shape=(4, 32, 32), rings=(14, 3))
    assert len(reference) == 2048 and int(reference.keys[0].mask_2d().sum()) == 556


def test_scoring_many_latents_in_chunks_gives_the_same_scores(monkeypatch):
    """Memory stays bounded for many latents × many keys: chunked scoring equals scoring all at once."""
    import torch

    from engine.watermarks import ringid

    keys = ringid.new_keys(8, latent_shape=(4, 32, 32), seed=3)
    z = torch.randn((7, 4, 32, 32), generator=torch.Generator().manual_seed(5))
    whole = ringid.score_keys(z, keys)
    monkeypatch.setattr(ringid, "SCORE_CHUNK_ELEMENTS", 2 * 8 * 136 * 2)     # two latents per chunk
    chunked = ringid.score_keys(z, keys)
    # equal up to rounding: a chunk's matrix products may sum in another order (measured: 3e-16 apart)
    assert [[s.key_id for s in row] for row in whole] == [[s.key_id for s in row] for row in chunked]
    np.testing.assert_allclose([[(s.l1, s.p_value) for s in row] for row in whole],
                               [[(s.l1, s.p_value) for s in row] for row in chunked], rtol=1e-12, atol=1e-15)
