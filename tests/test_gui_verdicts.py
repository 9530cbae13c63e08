"""The window's conclusions: Calibrate on the model (progress, cancel, the file used by later runs) and
Compare models (the last run's exhibits under another model), on the tiny random models."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from tests.test_gui import (_unsaved_results_are_discarded, gui_config, run_and_wait, tiny_keys_file,  # noqa: F401,E402
                            tiny_samples, use_tiny, window)


def test_calibrate_dialog_writes_a_file_the_next_run_uses(qtbot, window, tiny_ddim_dir, tiny_keys_file,
                                                          tiny_samples, tmp_path):
    from engine.calibration import Calibration
    from forensics_app.gui.calibration_dialog import CalibrationDialog

    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    spec = window.model_chooser.current_spec()
    dialog = CalibrationDialog(spec.id, window.key_chooser.current_keys(), window.advanced.settings(), window)
    qtbot.addWidget(dialog)
    dialog.made.connect(lambda p: setattr(window, "calibration_path", p))
    out = tmp_path / "cal.json"
    dialog.out.setText(str(out))
    dialog.clean.setValue(10)
    dialog.per_key.setValue(1)
    with qtbot.waitSignal(dialog.made, timeout=180_000):
        dialog.start()
    assert Calibration.load(out).counts["clean"] == 10
    assert "smallest supportable detection p" in dialog.status.text()
    assert window.calibration_path == str(out)
    window.add_paths([str(tiny_samples)])
    run_and_wait(qtbot, window)
    assert window.last_run.calibration.origin == "file"
    for item in window.evidence.items:
        if item.analysis is not None:
            assert item.analysis.conclusion.calibration in ("calibrated", "outside calibration")
            window.select_item(item.path)
            assert "empirical p-value" in window.result_view.finding_label.text()
            break


def test_calibrate_dialog_cancel_writes_nothing(qtbot, window, tiny_ddim_dir, tiny_keys_file, tmp_path):
    from forensics_app.gui.calibration_dialog import CalibrationDialog

    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    spec = window.model_chooser.current_spec()
    dialog = CalibrationDialog(spec.id, window.key_chooser.current_keys(), window.advanced.settings(), window)
    qtbot.addWidget(dialog)
    out = tmp_path / "cal.json"
    dialog.out.setText(str(out))
    dialog.clean.setValue(200)
    dialog.start()
    qtbot.waitUntil(lambda: dialog.progress.maximum() > 1, timeout=60_000)
    dialog.cancel()
    qtbot.waitUntil(lambda: not dialog.running, timeout=120_000)
    assert not out.exists() and "no calibration was written" in dialog.status.text()


def test_compare_models_dialog_states_which_model_explains_each_exhibit(qtbot, window, tiny_ddim_dir,
                                                                          tiny_flow_dir, tiny_keys_file, tiny_samples):
    from forensics_app.gui.model_comparison_dialog import ModelComparisonDialog

    flow_id = window.model_folders.add(str(tiny_flow_dir))
    use_tiny(window, tiny_ddim_dir, tiny_keys_file, methods=("encoder",))
    window.add_paths([str(tiny_samples)])
    run_and_wait(qtbot, window)
    assert window.compare_models_action.isEnabled()
    dialog = ModelComparisonDialog(window.last_run, [window.last_run.model_id, flow_id], window.advanced.settings(),
                                   window)
    qtbot.addWidget(dialog)
    assert dialog.model_combo.count() == 1
    dialog.start()
    qtbot.waitUntil(lambda: not dialog.running and dialog.table.rowCount() > 0, timeout=180_000)
    n = len(window.last_run.images)
    assert len(dialog.comparison) == n and dialog.table.rowCount() == 2 * n
    assert all(c.statement for c in dialog.comparison)


def test_the_evidence_list_says_when_only_altered_clean_images_kept_a_detection_negative():
    """A vetoed detection (engine.verdicts.altered_detection) reads differently from a plain negative in the list's
    status column, as in the headline."""
    from types import SimpleNamespace

    from engine.verdicts import Conclusion
    from forensics_app.gui.evidence_list import short_verdict

    plain = Conclusion("not_detected", None, (), 0.4, None, "calibrated", 0.01)
    vetoed = Conclusion("not_detected", None, (), 0.03, None, "calibrated", 0.01, unaltered_detection_p=0.002)
    assert short_verdict(SimpleNamespace(conclusion=plain)) == "no watermark"
    assert short_verdict(SimpleNamespace(conclusion=vetoed)) == \
        "no watermark (altered-like signal)"
