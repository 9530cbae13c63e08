"""`run_gui(argv)`: the desktop window, started by `treering-forensics` with no subcommand."""

from __future__ import annotations

import os
import sys
import traceback

STARTUP_PROBE = "TREERING_FORENSICS_STARTUP_PROBE"     # set: print when the window is up, then quit (benchmarks)


def run_gui(argv: list[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from forensics_app.gui.settings import APPLICATION, ORGANIZATION

    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "treering-forensics", *(argv or [])])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Tree-Ring Forensics")

    from forensics_app.gui.main_window import MainWindow

    window = MainWindow()
    from forensics_app.gui.run_session import freeze_long_lived_objects

    freeze_long_lived_objects()            # the imports' objects: keep GC pauses out of the event loop
    previous_hook = sys.excepthook

    def log_unexpected(exc_type, exc, tb):
        # An error in a slot goes to the log panel as one line (details below it), never a traceback dialog.
        try:
            window.report_error(f"internal error ({exc_type.__name__}): {exc}")
            window.log("".join(traceback.format_exception(exc_type, exc, tb)).rstrip(), "details")
        except Exception:  # noqa: BLE001
            previous_hook(exc_type, exc, tb)

    sys.excepthook = log_unexpected
    window.show()
    if os.environ.get(STARTUP_PROBE):
        _probe_startup(window)
    try:
        return int(app.exec())
    finally:
        sys.excepthook = previous_hook


def _probe_startup(window) -> None:
    """For benchmarks/gui_startup.py: print the wall-clock time once the shown window's first events are
    processed (the loop is idle), then watch the event loop while start-up's background work (key set,
    engine import) finishes, print when it has and the loop's worst stall meanwhile, and close."""
    import time

    from PySide6.QtCore import Qt, QTimer

    ticks: list[float] = []

    def shown() -> None:
        print(f"STARTUP_SHOWN {time.time():.6f}", flush=True)
        timer.start(10)

    def tick() -> None:
        ticks.append(time.perf_counter())
        if window._startup_jobs is None and window.session.jobs.wait(0) and len(ticks) > 2:
            timer.stop()
            worst = max(b - a for a, b in zip(ticks, ticks[1:]))
            print(f"STARTUP_READY {time.time():.6f} worst_gap_s {worst:.4f}", flush=True)
            window.close()

    timer = QTimer(window)
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(tick)
    QTimer.singleShot(0, shown)
