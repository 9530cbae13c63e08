"""Scrolling over the window must scroll, never change a value: a spin box or combo box takes the mouse
wheel only once it has focus (clicked or tabbed into). Without this, scrolling the Advanced panel past the
Iterations box silently changed the iterations of the next run."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QWidget

GUARDED = (QAbstractSpinBox, QComboBox)


class WheelGuard(QObject):
    """Event filter: a wheel event on an unfocused guarded widget is ignored, so it goes to the scroll area
    around it instead of changing the value."""

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Wheel and isinstance(obj, GUARDED) and not obj.hasFocus():
            event.ignore()
            return True
        return False


def guard_wheel(root: QWidget) -> WheelGuard:
    """Guard every spin box and combo box under `root`, now and those added later (one filter, kept alive
    by `root`)."""
    guard = root.findChild(WheelGuard, "wheel_guard")
    if guard is None:
        guard = WheelGuard(root)
        guard.setObjectName("wheel_guard")
    for w in root.findChildren(QWidget):
        if isinstance(w, GUARDED):
            w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)    # the wheel alone no longer gives focus
            w.installEventFilter(guard)
    return guard
