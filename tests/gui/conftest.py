"""GUI test set-up: headless Qt, a synthetic video, and a window that touches nothing outside tmp_path."""

import os

# Before any QApplication exists (pytest-qt creates one lazily on the first qtbot).
os.environ["QT_QPA_PLATFORM"] = "offscreen"

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

from gui_fakes import fake_factory, write_synthetic_video  # noqa: E402

from atom_gui.app import qt_binding_problem  # noqa: E402

# A binding that corrupts reference counts would abort the whole pytest process half-way (everyone's tests
# with it): skip the window tests then, and let test_qt_binding_is_safe fail with the reason.
BINDING_PROBLEM = qt_binding_problem()


@pytest.fixture(scope="session")
def synthetic_video(tmp_path_factory) -> Path:
    return write_synthetic_video(tmp_path_factory.mktemp("video") / "square.avi")


@pytest.fixture
def make_window(qtbot, tmp_path):
    """make_window(**fake_options or tracker_factory=..., settings=...) -> a shown MainWindow."""
    from PySide6.QtCore import QSettings

    from atom_gui.main_window import MainWindow
    from atom_gui.settings import AppSettings

    windows = []

    def make(tracker_factory=None, settings=None, **fake_options):
        if BINDING_PROBLEM:
            pytest.skip(BINDING_PROBLEM)
        qsettings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(qsettings=qsettings,
                            settings=settings or AppSettings(tracker="atom", auto_pause=False),
                            tracker_factory=tracker_factory or fake_factory(**fake_options),
                            project_dir=tmp_path / "projects")
        window.ask_recovery = lambda path: True
        window.resize(1100, 700)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


@pytest.fixture
def opened(make_window, synthetic_video, qtbot):
    """opened(**make_window options) -> a window with the synthetic video open and frame 0 shown."""

    def open_(**options):
        window = make_window(**options)
        with qtbot.waitSignal(window.frameShown, timeout=10000):
            window.open_path(synthetic_video)
        return window

    return open_
