"""The report for schemes beside Tree-Ring: keys named by id and hash (never a secret), each scheme's own
statistic in the exhibits, and each scheme's weaknesses in the limitations."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image

from tests.test_report_sections import NoFigures


def test_report_names_schemes_statistics_and_keeps_secrets(tiny_ddim_dir, tmp_path):
    from engine.analysis import AnalysisConfig, analyze
    from engine.key_vault import KeyVault
    from engine.model_loader import load_model
    from engine.provenance import reverify
    from engine.watermarks import gaussian_shading, ringid
    from forensics_app.report.sections import ReportInfo, ReportSections

    model = load_model(str(tiny_ddim_dir), device="cpu")
    gs = gaussian_shading.new_keys(2, latent_shape=model.latent_shape, seed=1).keys
    ri = ringid.new_keys(2, latent_shape=model.latent_shape, seed=2).keys
    keys = KeyVault(gs + ri).for_scan()
    paths = []
    for n in range(2):
        paths.append(tmp_path / f"e{n}.png")
        Image.fromarray(np.random.default_rng(n).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(paths[-1])
    run = analyze(model, keys, paths, replace(AnalysisConfig.for_model(model), methods=("encoder",)))
    sections = ReportSections(run=run, info=ReportInfo(case_id="S"), generated_utc="now", commit="c", weights={},
                              weights_note="", checks=[reverify(a.evidence.path, a.evidence.sha256) for a in run.images],
                              truth={}, json_name="r.json", json_sha256="0", figures=NoFigures())
    html, resources = sections.build()
    assert "Gaussian Shading / RingID key(s) tested" in html
    assert "Gaussian Shading (Yang et al. 2024)" in html and "RingID (Ci et al. 2024)" in html
    for k in gs:
        assert k.sha256[:32] in html
        assert k.key_hex not in html and k.nonce_hex not in html and k.watermark_hex not in html
    assert "Recovered evidence in the scheme's own terms" in html
    assert "bits match" in html or "ring distance min(" in html
    assert "<b>Gaussian Shading.</b>" in html and "<b>RingID.</b>" in html
    assert not any(r.startswith("fig:") for r in resources)
    assert "<b>The correction.</b> With K = 4 key(s)" in html
    assert "non-central χ²" not in html            # Tree-Ring's p-value paragraph is not printed for other schemes
