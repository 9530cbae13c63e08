"""`run_gui(argv)`: the desktop window, started by `treering-forensics` with no subcommand."""

from __future__ import annotations

import sys
import traceback


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
    from forensics_app.gui.worker import freeze_long_lived_objects

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
    try:
        return int(app.exec())
    finally:
        sys.excepthook = previous_hook
