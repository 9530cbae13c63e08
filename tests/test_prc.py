"""PRC known answers, no model: the reference's derived parameters, Encode → Detect, the null, the Hoeffding
identity (docs/schemes.md §3)."""

import numpy as np
import pytest
import torch

from engine.watermarks import prc


def test_reference_parameters():
    p = prc.parameters(16384, 512, 1e-5)
    assert (p.num_test_bits, p.secpar, p.k, p.r, p.max_bp_iter) == (17, 39, 568, 15777, 8)
    assert p.noise_rate == pytest.approx(0.017616, abs=1e-6)
    q = prc.parameters(16384, 512, 1e-9)
    assert (q.num_test_bits, q.k, q.r) == (30, 581, 15764)
    demo = prc.parameters(4096, prc.default_message_length(4096), 1e-5)
    assert (demo.k, demo.r, demo.secpar) == (178, 3885, 33)


def test_checks_hold_on_codewords():
    key = prc.new_keys(1, (4, 16, 16), seed=1).keys[0]
    m = key.material()
    x = prc.codeword_signs(key, np.random.default_rng(0))
    # without errors every check's product of signs (pad removed) is +1; with noise_rate errors most are
    bits = ((1 - x) / 2).astype(int) ^ m.pad
    assert (bits[m.checks].sum(axis=1) % 2 == 0).mean() > 0.85


def test_encode_detect_null_and_noise():
    keys = prc.new_keys(1, (4, 32, 32), seed=2)
    key = keys.keys[0]
    g = torch.Generator().manual_seed(0)
    z = prc.inject(torch.randn(6, 4, 32, 32, generator=g), key)
    exact = prc.score_keys(z, keys)
    assert all(row[0].detected_at_key_fpr and row[0].p_value < 1e-5 for row in exact)
    noisy = prc.score_keys(z + torch.randn(z.shape, generator=g), keys)        # variance 1 added
    assert sum(row[0].detected_at_key_fpr for row in noisy) >= 5
    null = prc.score_keys(torch.randn(200, 4, 32, 32, generator=g), keys)
    assert sum(row[0].detected_at_key_fpr for row in null) <= 1
    assert all(row[0].p_value >= key.fpr or row[0].detected_at_key_fpr for row in null)


def test_hoeffding_identity_and_threshold_is_the_bound():
    lp = np.log(np.random.default_rng(3).uniform(0.1, 0.9, 50))
    lm = np.log(np.random.default_rng(4).uniform(0.1, 0.9, 50))
    c = 0.5 * (lp**2 + lm**2 - 0.5 * (lp + lm) ** 2).sum()
    assert c == pytest.approx(0.25 * ((lp - lm) ** 2).sum())
    # the reference's threshold is where the Hoeffding bound reaches the key's fpr: detected ⇔ bound ≤ fpr
    key = prc.new_keys(1, (4, 16, 16), seed=5).keys[0]
    g = torch.Generator().manual_seed(1)
    z = torch.randn(40, 4, 16, 16, generator=g)
    z[:20] = prc.inject(z[:20], key) + 1.5 * torch.randn(20, 4, 16, 16, generator=g)
    scores = prc.detect_statistics(z, key)
    assert 0 < sum(s.detected_at_key_fpr for s in scores) < 40
    assert all((s.p_value <= key.fpr * (1 + 1e-9)) == s.detected_at_key_fpr for s in scores)


def test_public_record_has_no_seed():
    key = prc.new_keys(1, seed=6).keys[0]
    assert key.seed_hex not in str(key.to_json_dict())
    with pytest.raises(ValueError, match="seed_hex"):
        prc.PRCKey("k", "xyz")
