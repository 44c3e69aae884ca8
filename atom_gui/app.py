"""Starting the app: the QApplication, its look, and the main window on a first video."""

from __future__ import annotations

import dataclasses
import sys

import pyqtgraph as pg
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from .settings import APP_NAME


def qt_binding_problem() -> str | None:
    """Why the installed Qt binding would crash the app, or None.

    PySide6 6.12.0 drops one reference to None, True or False on every call that returns them when it runs on
    Python < 3.12 (where those objects are not immortal yet): after a few thousand calls, a normal minute of
    use, Python aborts with "deallocating None". Measured here: QLabel.setText x1000 lowers None's count by
    1000 under 6.12.0 and leaves it unchanged under 6.11.3.
    """
    import PySide6

    if sys.version_info < (3, 12) and PySide6.__version__ == "6.12.0":
        return (f"PySide6 {PySide6.__version__} crashes on Python {sys.version.split()[0]} (a reference-counting "
                f"bug); install another version: pip install 'PySide6-Essentials>=6.6,!=6.12.0'")
    return None


def make_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication (the existing one when there is one), dark-themed: video and heat maps read better on
    a dark surround, and pyqtgraph's panels are dark already."""
    # glibc's malloc is left to its own (dynamic) mmap threshold: a fixed 1 MiB one (mallopt) settled a 4K video's
    # memory lower, but halved the tracking speed (the tracker's large tensors mapped and unmapped every frame).
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName(APP_NAME)  # no organisation: it would name the settings and data folders twice
    app.setStyle("Fusion")
    palette = QPalette()
    for role, color in ((QPalette.ColorRole.Window, "#1c2128"), (QPalette.ColorRole.WindowText, "#e6edf3"),
                        (QPalette.ColorRole.Base, "#15181c"), (QPalette.ColorRole.AlternateBase, "#22272e"),
                        (QPalette.ColorRole.Text, "#e6edf3"), (QPalette.ColorRole.Button, "#2d333b"),
                        (QPalette.ColorRole.ButtonText, "#e6edf3"), (QPalette.ColorRole.Highlight, "#2f81f7"),
                        (QPalette.ColorRole.HighlightedText, "#ffffff"), (QPalette.ColorRole.ToolTipBase, "#22272e"),
                        (QPalette.ColorRole.ToolTipText, "#e6edf3"), (QPalette.ColorRole.PlaceholderText, "#8b949e")):
        palette.setColor(role, QColor(color))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#6e7681"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor("#6e7681"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#6e7681"))
    app.setPalette(palette)
    # No antialiasing for curves and images: it costs several milliseconds a redraw, which the event loop
    # needs while a fast tracker streams results (the box ROI antialiases on its own).
    pg.setConfigOptions(antialias=False)
    return app


def run_app(path: str | None, overrides: dict | None = None) -> int:
    """Open the window on ``path`` with session-only setting ``overrides``; returns the exit code."""
    problem = qt_binding_problem()
    if problem:
        from tracker_core.errors import CommandError

        raise CommandError(problem)
    app = make_application()
    from .main_window import MainWindow
    from .settings import AppSettings, user_qsettings

    qsettings = user_qsettings()
    settings = dataclasses.replace(AppSettings.load(qsettings), **(overrides or {}))
    window = MainWindow(qsettings=qsettings, settings=settings)
    window.show()
    if path:
        window.open_path(path)
    return app.exec()
