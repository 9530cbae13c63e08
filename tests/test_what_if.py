"""The what-if panel: an analysed demo exhibit altered in memory, recovered and scored again; the response
agrees with the engine's `attack_response` and the exhibit's file is untouched."""

from __future__ import annotations

import hashlib

import pytest

pytest.importorskip("pytestqt")


@pytest.fixture(scope="module")
def demo_run():
    from engine.analysis import analyze
    from engine.model_loader import load_model
    from engine.options import AnalysisOptions
    from engine.resources import resource_path
    from engine.treering import KeySet

    model = load_model("demo", device="cpu")
    keys = KeySet.load(model.spec.default_keys_path)
    config = AnalysisOptions(methods=("encoder",), steps=5).to_config(model)
    path = resource_path("samples") / "key2_00600.png"
    return model, analyze(model, keys, [path], config), path


def test_panel_computes_the_attacked_exhibit_like_the_engine(qtbot, demo_run):
    from engine.what_if import attack_response
    from forensics_app.gui.what_if_panel import WhatIfPanel

    model, run, path = demo_run
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    panel = WhatIfPanel()
    qtbot.addWidget(panel)
    assert not panel.compute.isEnabled()
    panel.set_exhibit(run.images[0], run)
    panel.attack.setCurrentIndex(panel.attack.findData("jpeg"))
    panel.strength.setValue(50)
    assert panel.parameter.text() == "50 quality"
    panel.compute.click()
    qtbot.waitUntil(lambda: panel.table.rowCount() == 1, timeout=180_000)
    expected = attack_response(model, run.keys, run.images[0].evidence.pixels, run.config, "encoder", "jpeg", (0.5,))[0]
    cells = [panel.table.item(0, c).text() for c in range(panel.table.columnCount())]
    assert cells[:3] == ["jpeg", "50 quality", "encoder"]
    assert cells[3] == f"{expected.min_p:.3g}" and cells[4] == expected.best_key
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert panel.compute.isEnabled()
