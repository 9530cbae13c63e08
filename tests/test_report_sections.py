"""The report's sections without Qt: a run without manifest prints the window's batch matrices (folders ×
verdict, folders × nearest key) from engine.attribution_matrix."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image


class NoFigures:
    """A FigureMaker that draws nothing: the sections need only the images' sizes."""

    class Blank:
        def width(self) -> int:
            return 100

        def height(self) -> int:
            return 50

    def thumbnail(self, pixels):
        return self.Blank()

    def fourier(self, results, keys, score_target):
        return self.Blank()


def test_batch_section_without_manifest_is_the_windows_matrix(tiny_ddim_dir, tmp_path):
    from engine.analysis import AnalysisConfig, analyze
    from engine.attribution_matrix import attribution_matrix
    from engine.model_loader import load_model
    from engine.provenance import reverify
    from engine.treering import new_random_keys
    from forensics_app.report.sections import ReportInfo, ReportSections

    model = load_model(str(tiny_ddim_dir), device="cpu")
    keys = new_random_keys(2, latent_shape=model.latent_shape, radius=3, seed=0)
    paths = []
    for n in range(3):
        paths.append(tmp_path / f"e{n}.png")
        Image.fromarray(np.random.default_rng(n).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(paths[-1])
    run = analyze(model, keys, paths, replace(AnalysisConfig.for_model(model), methods=("encoder",)))
    sections = ReportSections(run=run, info=ReportInfo(case_id="S"), generated_utc="now", commit="c", weights={},
                              weights_note="",
                              checks=[reverify(a.evidence.path, a.evidence.sha256) for a in run.images],
                              truth={}, json_name="r.json", json_sha256="0", figures=NoFigures())
    html, resources = sections.build()
    assert "No ground truth" in html and "folder \\ verdict" in html and "folder \\ nearest key (L1)" in html
    # the summary states each question's level: a key is excluded at a tenth of the detection level
    assert f"at a false-positive level of <b>{run.config.fpr:g}</b>" in html
    assert f"every other key must be excluded, at <b>{run.config.fpr / 10:g}</b>" in html
    verdicts = attribution_matrix([(a.evidence.path, a.methods["encoder"].verdict.predicted_key) for a in run.images],
                                  keys.ids)
    row = "".join(f"<td>{v}</td>" for v in verdicts.counts[0])
    assert f"<td><b>{tmp_path.name}</b></td>{row}" in html
    assert set(resources) == {"thumb:1", "thumb:2", "thumb:3", "fig:1", "fig:2", "fig:3"}
