"""Generation → scan on the bundled demo model for the schemes beside Tree-Ring, through one key vault
(several schemes, corrected over every key), and no secret in the scan's record."""

import json
from dataclasses import replace

import pytest

from engine.analysis import AnalysisConfig, analyze, run_to_json
from engine.generation import GenerationConfig, generate_reference_set
from engine.key_vault import KeyVault, load_keys_for_scan
from engine.watermarks import gaussian_shading, prc, ringid

STEPS = 20


@pytest.mark.slow
def test_generate_then_scan_every_scheme(demo_model, tmp_path):
    model = demo_model
    gs = gaussian_shading.new_keys(3, latent_shape=model.latent_shape, seed=11).keys
    ri = ringid.new_keys(8, latent_shape=model.latent_shape, seed=12).keys
    pc = prc.new_keys(2, latent_shape=model.latent_shape, seed=13).keys
    vault_path = tmp_path / "vault.json"
    KeyVault(gs + ri + pc, provenance="end-to-end test").save(vault_path)
    keys = load_keys_for_scan(vault_path)
    folder = tmp_path / "evidence"
    config = GenerationConfig(steps=STEPS)
    generate_reference_set(model, gs[1], 1, folder, seed=5, config=config)
    generate_reference_set(model, ri[4], 1, folder, seed=6, config=config)
    generate_reference_set(model, pc[0], 1, folder, seed=8, config=config)
    generate_reference_set(model, None, 1, folder, seed=7, config=config)
    base = AnalysisConfig.for_model(model)
    analysis = replace(base, methods=("encoder",), diffusion=replace(base.diffusion, steps=STEPS))
    run = analyze(model, keys, sorted(folder.glob("*.png")), analysis)
    found = {im.evidence.path.rsplit("/", 1)[-1]: im.methods["encoder"].verdict for im in run.images}
    assert found[f"{gs[1].id}_00005.png"].predicted_key == gs[1].id
    assert found[f"{ri[4].id}_00006.png"].predicted_key == ri[4].id
    assert found["clean_00007.png"].predicted_key is None
    # PRC needs the signs of z_T nearly exact; through the demo model and the encoder it is not detected
    # (benchmarks/results/schemes), but its code statistic still leans towards the key on the watermarked image
    by_name = {im.evidence.path.rsplit("/", 1)[-1]: im.methods["encoder"] for im in run.images}
    prc_score = lambda name: next(s for s in by_name[name].scores if s.key_id == pc[0].id)
    print("PRC", prc_score(f"{pc[0].id}_00008.png"), prc_score("clean_00007.png"))
    assert prc_score(f"{pc[0].id}_00008.png").l1 < prc_score("clean_00007.png").l1
    assert all(v.keys_tested == 13 for v in found.values())
    gs_score = next(s for s in run.images[0].methods["encoder"].scores if s.key_id == gs[1].id)
    text = json.dumps(run_to_json(run))
    for k in gs:
        assert k.key_hex not in text and k.nonce_hex not in text and k.watermark_hex not in text
        assert k.sha256 in text
    assert all(k.seed_hex not in text for k in pc)
    assert gs_score is not None
