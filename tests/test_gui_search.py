"""The window's re-alignment search option (pytest-qt, offscreen, the tiny random model): it runs in the worker
after the analysis, the result view shows its conclusion beside the exhibit's, the exhibit's own conclusion is
unchanged, and a saved case reopens with it."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("pytestqt")

from tests.test_gui import (_unsaved_results_are_discarded, gui_config, run_and_wait, tiny_keys_file,  # noqa: F401,E402
                            tiny_samples, use_tiny, window)

SHOTS = os.environ.get("TREERING_SEARCH_SCREENSHOT", "")     # a path: save the window with a search result there


def _search_on(window, families=("flip",), decoys=9):
    box = window.advanced.search
    box.setChecked(True)
    for f, cb in box.family_checks.items():
        cb.setChecked(f in families)
    box.decoys.setValue(decoys)


def test_search_runs_after_the_analysis_and_is_shown_beside_the_conclusion(qtbot, window, tiny_ddim_dir,
                                                                          tiny_keys_file, tiny_samples, tmp_path):
    from engine.search_verdict import search_headline

    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    window.add_paths([str(p) for p in sorted(tiny_samples.glob("*.png"))[:2]])
    _search_on(window)
    assert "search: flip" in window.advanced.summary()
    rv = window.result_view
    run_and_wait(qtbot, window)
    run = window.last_run
    assert run is not None and all(a.realignment is not None for a in run.images)
    item = window.evidence.item_for(run.images[0].evidence.path)
    assert item.analysis is run.images[0]                      # the list holds the searched analysis
    window.select_item(item.path)
    s = item.analysis.realignment
    c = s.conclusions["encoder"]
    assert c.key is None and c.outcome in ("not_detected", "inconclusive")
    assert rv.search_box.isVisible() and rv.search_box.isVisibleTo(window)
    assert rv.search_box.headline.text() == ("Re-alignment search (a separate, search-corrected test; encoder): "
                                             + search_headline(c))
    r = s.results["encoder"]
    assert rv.search_box.summary.text() == (
        f"Winner: {r.best.describe()}, key {r.key_text}; corrected p = {r.decoy_p:.3g} (decoy-key max-statistic, 9 "
        "decoy sets). Tried (flip): 3 transforms × 3 key(s) — as submitted; flip left-right; flip top-bottom. The "
        "exhibit's conclusion above, from the image as submitted, stands.")
    assert not rv.search_box.details.isVisibleTo(window)
    rv.search_box.details_button.click()
    assert rv.search_box.details.isVisibleTo(window) and c.finding() in rv.search_box.details.text()
    # the exhibit's own conclusion is the plain analysis's, drawn before the search
    assert rv.headline.text().startswith(item.analysis.methods["encoder"].conclusion.headline())
    assert "re-alignment search: flip; 9 decoy key sets" in window.log_dock.view.toPlainText()
    if SHOTS:
        window.resize(1440, 900)               # the window's default size (gui/window_state.py)
        qtbot.wait(200)
        window.grab().save(SHOTS)
    # a saved case reopens with the search
    from engine.case_file import load_case, save_case

    loaded = load_case(save_case(run, tmp_path / "case.trcase"))
    window.show_loaded_run(loaded.run)
    window.select_item(loaded.run.images[0].evidence.path)
    assert rv.search_box.isVisibleTo(window) and rv.search_box.headline.text().endswith(search_headline(c))

    # without the option, no search and no box
    window.advanced.search.setChecked(False)
    run_and_wait(qtbot, window)
    assert all(a.realignment is None for a in window.last_run.images)
    window.select_item(window.last_run.images[0].evidence.path)
    assert not rv.search_box.isVisibleTo(window)
    if SHOTS:
        window.grab().save(SHOTS.replace(".png", "-plain.png"))


def test_search_with_no_family_is_a_message(qtbot, window, tiny_ddim_dir, tiny_keys_file, tiny_samples):
    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    window.add_paths([str(sorted(tiny_samples.glob("*.png"))[0])])
    _search_on(window, families=())
    assert not window.run_analysis()
    assert "no transform family is ticked" in window.banner.label.text()
    assert not window.session.running


def test_cancel_during_the_search_keeps_the_plain_run(qtbot, window, tiny_ddim_dir, tiny_keys_file, tiny_samples):
    """Cancel once the analysis result is in (the search is next): the plain results stay, without a search."""
    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    window.add_paths([str(sorted(tiny_samples.glob("*.png"))[0])])
    _search_on(window, families=("rotation", "crop"))
    window.session.result.connect(lambda r: window.session.cancel())
    run_and_wait(qtbot, window)
    run = window.last_run
    assert run is not None and len(run.images) == 1 and run.images[0].realignment is None
    assert any("re-alignment search was cancelled" in n for n in run.notes)
    assert "re-alignment search was cancelled" in window.log_dock.view.toPlainText()


def test_search_with_keys_of_another_scheme_keeps_the_analysis(qtbot, window, tiny_ddim_dir, tiny_samples,
                                                               tmp_path):
    """A Gaussian Shading vault: the search cannot score it, the analysis stands and the log says why."""
    from engine.key_vault import KeyVault
    from engine.options import AnalysisOptions
    from engine.watermarks import gaussian_shading

    vault = tmp_path / "gs.json"
    KeyVault(gaussian_shading.new_keys(2, (4, 16, 16), seed=1).keys, provenance="search test").save(vault)
    assert window.model_folders.add(str(tiny_ddim_dir)) is not None
    window.key_files.import_files([str(vault)])
    window.set_analysis_settings(AnalysisOptions(methods=("encoder",), steps=5, device="cpu"))
    window.add_paths([str(sorted(tiny_samples.glob("*.png"))[0])])
    _search_on(window)
    run_and_wait(qtbot, window)
    run = window.last_run
    assert run is not None and len(run.images) == 1 and run.images[0].realignment is None
    assert "the re-alignment search did not run: the re-alignment search scores Tree-Ring keys only" \
        in window.log_dock.view.toPlainText()


def test_the_search_option_is_remembered_between_sessions(qtbot, gui_config):
    """Closing the window keeps the search choice; a settings entry that is not a valid choice leaves it off."""
    from forensics_app.gui.main_window import MainWindow
    from forensics_app.gui.search_controls import SearchChoice
    from forensics_app.gui.settings import write_json

    first = MainWindow()
    qtbot.addWidget(first)
    _search_on(first, families=("rotation", "flip"), decoys=49)
    first.close()
    second = MainWindow()
    qtbot.addWidget(second)
    assert second.advanced.search.choice() == SearchChoice(("rotation", "flip"), 49)
    second.advanced.search.setChecked(False)
    second.close()
    third = MainWindow()
    qtbot.addWidget(third)
    assert third.advanced.search.choice() is None
    for bad in ({"families": ["rotation", "shear"], "decoys": 9}, {"families": ["flip"], "decoys": -1}, ["flip"]):
        write_json(third.settings, "analysis/search", bad)
        third.settings.sync()
        again = MainWindow()
        qtbot.addWidget(again)
        assert again.advanced.search.choice() is None, bad
        again.close()
