"""The window's "Restore before inverting" option (pytest-qt, offscreen, the tiny random model): it runs in the worker
after the analysis, the result view shows "As submitted" and "Restored (settings)" side by side, the exhibit's own
conclusion is unchanged, a saved case reopens with it, a cancel keeps the plain run, and the option is remembered."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("pytestqt")

from tests.test_gui import (_unsaved_results_are_discarded, gui_config, run_and_wait, tiny_keys_file,  # noqa: F401,E402
                            tiny_samples, use_tiny, window)

SHOTS = os.environ.get("TREERING_RESTORE_SCREENSHOT", "")     # a path: save the window with a restored strip there


def _restore_on(window, kind="jpeg", value=50.0, iterations=2, weight=0.1):
    box = window.advanced.restore
    box.setChecked(True)
    box.kind.setCurrentIndex(box.kind.findData(kind))
    box.value.setValue(value)
    box.iterations.setValue(iterations)
    box.weight.setValue(weight)


def test_restored_reading_runs_after_the_analysis_and_is_shown_beside_the_raw(qtbot, window, tiny_ddim_dir,
                                                                             tiny_keys_file, tiny_samples, tmp_path):
    from engine.restored_verdict import restored_headline

    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    window.add_paths([str(p) for p in sorted(tiny_samples.glob("*.png"))[:2]])
    _restore_on(window)
    assert "restore: jpeg 50" in window.advanced.summary()
    rv = window.result_view
    run_and_wait(qtbot, window)
    run = window.last_run
    assert run is not None and all(a.restoration is not None and not a.restoration.failure for a in run.images)
    item = window.evidence.item_for(run.images[0].evidence.path)
    assert item.analysis is run.images[0]                      # the list holds the analysis with its reading
    window.select_item(item.path)
    s = item.analysis.restoration
    c = s.methods["encoder"].conclusion
    assert c.key is None and c.outcome in ("not_detected", "inconclusive")
    assert s.settings == "JPEG quality 50 (approximate: luma only); 2 data-consistency iterations, λ = 0.1"
    box = rv.restored_box
    assert box.isVisibleTo(window)
    assert box.raw_title.text() == "As submitted"
    assert box.restored_title.text() == ("Restored (JPEG quality 50 (approximate: luma only); 2 iterations, λ = 0.1) — "
                                         "a separate reading, never naming a key holder")
    raw = item.analysis.methods["encoder"]
    assert box.raw.text() == (f"{raw.conclusion.headline()} · encoder: detection p = "
                              f"{raw.conclusion.detection_p:.3g} (uncalibrated)")
    assert box.restored.text() == (f"{restored_headline(c)} · encoder: detection p = {c.detection_p:.3g} "
                                   "(uncalibrated)")
    assert not box.details.isVisibleTo(window)
    if SHOTS:
        window.resize(1440, 900)               # the window's default size (gui/window_state.py)
        qtbot.wait(200)
        window.grab().save(SHOTS)
    box.details_button.click()
    assert box.details.isVisibleTo(window) and c.finding() in box.details.text() and s.settings in box.details.text()
    # the exhibit's own conclusion is the plain analysis's
    assert rv.headline.text().startswith(raw.conclusion.headline())
    assert "restore before inverting: jpeg 50; 2 iterations, λ = 0.1" in window.log_dock.view.toPlainText()
    if SHOTS:
        qtbot.wait(200)
        window.grab().save(SHOTS.replace(".png", "-details.png"))
    # a saved case reopens with the restored reading
    from engine.case_file import load_case, save_case

    loaded = load_case(save_case(run, tmp_path / "case.trcase"))
    window.show_loaded_run(loaded.run)
    window.select_item(loaded.run.images[0].evidence.path)
    assert box.isVisibleTo(window) and box.restored.text().startswith(restored_headline(c))

    # without the option, no restored reading and no strip
    window.advanced.restore.setChecked(False)
    run_and_wait(qtbot, window)
    assert all(a.restoration is None for a in window.last_run.images)
    assert [a.conclusion for a in window.last_run.images] == [a.conclusion for a in run.images]   # raw unchanged
    window.select_item(window.last_run.images[0].evidence.path)
    assert not box.isVisibleTo(window)


def test_cancel_during_the_restoration_keeps_the_plain_run(qtbot, window, tiny_ddim_dir, tiny_keys_file,
                                                           tiny_samples):
    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    window.add_paths([str(sorted(tiny_samples.glob("*.png"))[0])])
    _restore_on(window, kind="blur", value=1.0)
    window.session.result.connect(lambda r: window.session.cancel())
    run_and_wait(qtbot, window)
    run = window.last_run
    assert run is not None and len(run.images) == 1 and run.images[0].restoration is None
    assert any("restored reading was cancelled" in n for n in run.notes)


def _remembered(qtbot, choice) -> None:
    """A new window shows `choice`, the one the last window closed with; then it is turned off."""
    from forensics_app.gui.main_window import MainWindow

    again = MainWindow()
    qtbot.addWidget(again)
    assert again.advanced.restore.choice() == choice
    again.advanced.restore.setChecked(False)
    again.close()


def test_the_restore_option_is_remembered_between_sessions(qtbot, gui_config):
    """Closing the window keeps the choice; a settings entry that is not a valid choice leaves it off."""
    from forensics_app.gui.main_window import MainWindow
    from forensics_app.gui.restore_controls import RestoreChoice
    from forensics_app.gui.settings import write_json

    first = MainWindow()
    qtbot.addWidget(first)
    _restore_on(first, kind="downscale", value=0.5, iterations=4, weight=0.25)
    first.close()
    _remembered(qtbot, RestoreChoice("downscale", 0.5, 4, 0.25))
    third = MainWindow()
    qtbot.addWidget(third)
    assert third.advanced.restore.choice() is None
    # the quality read from each JPEG file: no value to state, remembered too
    box = third.advanced.restore
    box.setChecked(True)
    box.kind.setCurrentIndex(box.kind.findData("jpeg-file"))
    assert not box.value.isEnabled()
    choice = box.choice()
    assert choice.kind == "jpeg-file" and choice.describe().startswith(
        "restore before inverting: jpeg, quality read from each file;")
    from engine.restored_record import JPEG_FROM_FILE

    assert choice.to_engine()[0] is JPEG_FROM_FILE
    third.close()
    _remembered(qtbot, choice)
    # the diffusion prior: its own default iterations, remembered with the rest
    fifth = MainWindow()
    qtbot.addWidget(fifth)
    box = fifth.advanced.restore
    box.setChecked(True)
    box.prior.setCurrentIndex(box.prior.findData("diffusion"))
    assert box.iterations.value() == 10 and box.iterations.maximum() == 50
    diffusion = box.choice()
    assert diffusion.prior == "diffusion" and diffusion.to_engine()[1].describe().startswith("diffusion prior: 10 of 50")
    fifth.close()
    _remembered(qtbot, diffusion)
    for bad in ({"kind": "sharpen", "value": 1.0, "iterations": 3, "weight": 0.1},
                {"kind": "blur", "value": 1.0, "iterations": 3, "weight": 0.1, "prior": "gan"},
                {"kind": "blur", "value": 1.0, "iterations": 60, "weight": 0.1, "prior": "diffusion"},
                {"kind": "jpeg", "value": 50.5, "iterations": 3, "weight": 0.1},
                {"kind": "blur", "value": 1.0, "iterations": 0, "weight": 0.1},
                {"kind": "downscale", "value": 2.0, "iterations": 3, "weight": 0.1}, ["jpeg", 50]):
        write_json(third.settings, "analysis/restore", bad)
        third.settings.sync()
        again = MainWindow()
        qtbot.addWidget(again)
        assert again.advanced.restore.choice() is None, bad
        again.close()


def test_a_refused_restored_reading_is_one_line_in_the_strip(qtbot):
    """A restoration that gave non-finite values: the strip says so in one line and shows no restored conclusion."""
    from types import SimpleNamespace

    from engine.restoration import Degradation, RestorationConfig
    from engine.restored_record import ImageRestoration
    from engine.verdicts import NOT_ANALYSED
    from forensics_app.gui.restored_view import RestoredResultBox

    box = RestoredResultBox()
    qtbot.addWidget(box)
    box.show_restoration(SimpleNamespace(methods={}, restoration=None), "encoder")
    assert box.isHidden()
    failed = ImageRestoration(Degradation("blur", 2.0), RestorationConfig(), NOT_ANALYSED,
                              failure="a.png: the restoration gave non-finite pixels (NaN or infinity), so no restored "
                                      "reading can be made")
    box.show_restoration(SimpleNamespace(methods={}, restoration=failed), "encoder")
    assert not box.isHidden()
    assert box.restored.text() == "Not made: " + failed.failure
    assert box.restored_title.text().startswith("Restored (Gaussian blur, radius 2; 3 iterations, λ = 0.1)")
    assert "prior gap per iteration" in box.details.text().lower() and "PSNR — dB" in box.details.text()


def test_the_diffusion_prior_on_a_one_step_model_is_refused_before_the_run(qtbot, window, demo_samples):
    """demo-flow has no sampling grid to walk part-way: the window says so in one line and starts nothing."""
    window.model_chooser.select("demo-flow")
    window.add_paths([str(sorted(demo_samples.glob("*.png"))[0])])
    _restore_on(window, kind="blur", value=2.0)
    box = window.advanced.restore
    box.prior.setCurrentIndex(box.prior.findData("diffusion"))
    assert not window.run_analysis()
    assert not window.session.running
    assert window.banner.isVisible()
    assert ("the diffusion prior needs a multi-step (DDIM) model; demo-flow is 'flow', which has no sampling grid "
            "to walk part-way") in window.log_dock.view.toPlainText()
