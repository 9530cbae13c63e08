"""The window with a key vault of Gaussian Shading and RingID keys: it loads, runs, and shows each scheme's
own evidence view and statistic."""

from __future__ import annotations

import pytest

from tests.test_gui import drop, gui_config, run_and_wait, use_tiny, window  # noqa: F401


@pytest.fixture(scope="session")
def vault_file(tmp_path_factory):
    from engine.key_vault import KeyVault
    from engine.watermarks import gaussian_shading, ringid

    path = tmp_path_factory.mktemp("vault") / "vault.json"
    shape = (4, 16, 16)
    KeyVault(gaussian_shading.new_keys(2, shape, seed=1).keys + ringid.new_keys(3, shape, seed=2).keys,
             provenance="GUI test").save(path)
    return path


@pytest.fixture(scope="session")
def vault_samples(tiny_ddim_dir, vault_file, tmp_path_factory):
    from engine.key_vault import load_vault
    from forensics_app.cli import main

    out = tmp_path_factory.mktemp("vault-samples")
    vault = load_vault(vault_file)
    for n, key in enumerate((vault.keys[0].id, vault.keys[2].id)):
        assert main(["generate", "--model", str(tiny_ddim_dir), "--keys", str(vault_file), "--key", key, "--count",
                     "1", "--seed", str(10 * n), "--steps", "10", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    return out


def test_vault_runs_and_shows_scheme_evidence(qtbot, window, tiny_ddim_dir, vault_file, vault_samples):  # noqa: F811
    use_tiny(window, tiny_ddim_dir, vault_file)
    drop(window, [vault_samples])
    run_and_wait(qtbot, window)
    window.select_item(next(i for i in window.evidence.items if i.runnable).path)
    rv = window.result_view
    r = rv.current_result()
    assert rv.stack.currentIndex() == 1 and rv.score_table.rowCount() == 5
    assert rv.finding_label.text() == r.conclusion.finding() and r.verdict.keys_tested == 5
    assert "own scheme test" in r.conclusion.detection_test and "χ²" not in r.conclusion.detection_test
    assert rv.spectrum_panel.view.image() is not None and rv.diff_panel.view.image() is not None
    assert rv.key_panels == []
    for i in range(rv.key_combo.count()):          # one key of each scheme: its own view
        rv.key_combo.setCurrentIndex(i)
        rv._redraw()
        text = rv.diff_panel.caption.text()
        assert ("bits match" in text) if rv.current_key().scheme == "gaussian-shading" else ("ring bins" in text)
