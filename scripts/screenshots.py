"""The README's screenshot and the pictures of the correction flow in docs/, made from the demo video.

    xvfb-run -s '-screen 0 1600x1000x24' .venv/bin/python scripts/screenshots.py [--out docs/images]

It opens the real window on bikes.mp4 with the shipped model and does what a person would: draw the cyclist's
box on frame 76, press Space with auto-pause on, track on through the low confidence where a car hides the
cyclist, mark the hidden frames occluded, correct a box, and let tracking carry on from it. Each step is saved as
a PNG (the window grabbed as it is on screen, then reduced to a dithered palette so that the files stay small).
Nothing is drawn by hand: run it again after a change to the app and commit the new pictures.

``--check DIR`` saves every picture there too at full colour, for looking at them before committing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QSettings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from atom_gui.app import make_application  # noqa: E402
from atom_gui.core_adapters import demo_video_path  # noqa: E402
from atom_gui.main_window import MainWindow  # noqa: E402
from atom_gui.settings import AppSettings  # noqa: E402
from tracker_core.annotation import Flag  # noqa: E402
from tracker_core.boxes import Box  # noqa: E402

START, CYCLIST = 76, Box(405, 50, 100, 170)  # the cyclist in bikes.mp4, fully visible from frame 76
HIDDEN = (86, 104)  # a car passes in front of the cyclist
WINDOW_SIZE = (1400, 860)


class Session:
    """The window on the demo video, driven step by step, waiting for the event loop as a person would."""

    def __init__(self, out: Path, check: Path | None):
        self.app = make_application()
        self.tmp = tempfile.TemporaryDirectory()
        qsettings = QSettings(os.path.join(self.tmp.name, "settings.ini"), QSettings.Format.IniFormat)
        settings = AppSettings(tracker="atom", auto_pause=True, pause_below=0.25, follow_tracking=True)
        self.window = MainWindow(qsettings=qsettings, settings=settings, project_dir=self.tmp.name)
        self.window.ask_recovery = lambda path: False
        self.window.resize(*WINDOW_SIZE)
        self.window.show()
        self.out, self.check = out, check
        out.mkdir(parents=True, exist_ok=True)
        if check is not None:
            check.mkdir(parents=True, exist_ok=True)

    def wait(self, condition=lambda: True, seconds: float = 0.3, limit: float = 300.0) -> None:
        """Run the event loop until ``condition()`` holds (then ``seconds`` more, for the redraws)."""
        deadline = time.perf_counter() + limit
        while not condition():
            if time.perf_counter() > deadline:
                raise RuntimeError(f"timed out; the status bar says: {self.window.message()}")
            self.app.processEvents()
            time.sleep(0.01)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            self.app.processEvents()
            time.sleep(0.01)

    def go_to(self, frame: int) -> None:
        self.window.go_to(frame)
        self.wait(lambda: self.window.displayed_frame == frame)

    def track(self, **options) -> tuple[str, int, float]:
        runs = []

        def ended(*args) -> None:
            runs.append(args)

        controller = self.window.controller
        controller.runEnded.connect(ended)
        try:
            if not self.window.correction.start_tracking(**options):
                raise RuntimeError(self.window.message())
            self.wait(lambda: bool(runs) and not controller.is_running, seconds=0.6)
        finally:
            controller.runEnded.disconnect(ended)
        return runs[-1]

    def save(self, name: str) -> Path:
        image = self.window.grab().toImage()
        if self.check is not None:
            image.save(str(self.check / name))
        path = self.out / name
        rgba = image.convertToFormat(image.Format.Format_RGBA8888)  # kept alive while its bytes are read
        rgb = Image.frombytes("RGBA", (rgba.width(), rgba.height()), bytes(rgba.constBits())).convert("RGB")
        rgb.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG).save(
            path, optimize=True)
        print(f"{path} ({path.stat().st_size // 1024} kB)")
        return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--check", type=Path, help="also save full-colour copies here, to look at")
    args = parser.parse_args(argv)
    s = Session(args.out, args.check)
    w = s.window
    w.open_path(demo_video_path())
    s.wait(lambda: w.displayed_frame is not None)
    s.go_to(START)

    # 1. The first box: drawn on frame 76; the tracker learns it while the person looks (the status bar says so).
    w.correction.apply_box(CYCLIST)
    s.wait(lambda: "Learning" in w.tracker_status.text(), limit=120)
    s.save("correction-1-first-box.png")
    s.wait(lambda: not w.video.warmup.busy, seconds=0.5)

    # 2. Space, with auto-pause on: the car hides the cyclist and tracking pauses on the low confidence.
    reason, frames, _ = s.track(direction=1)
    if reason != "low confidence":
        raise RuntimeError(f"expected an auto-pause, the run ended with {reason!r}")
    s.save("correction-2-auto-pause.png")

    # 3. Space again on the paused frame: on through the low confidence; the cyclist is found again.
    w.correction.toggle_tracking(1, 120 - w.current_frame)
    s.wait(lambda: not w.controller.is_running, seconds=1.0)
    s.save("readme-tracking.png")

    # 4. The hidden frames marked occluded (a Shift+drag on the timeline, then Q): their boxes show dashed.
    w.timeline.strip.set_selection(HIDDEN)
    w.correction.toggle_flag(Flag.OCCLUDED)
    w.clear_selection()
    s.go_to(95)
    s.save("correction-3-occluded.png")

    # 5. A correction: the box on frame 110 moved and resized with the mouse; tracking carries on from it.
    s.go_to(110)
    w.correction.apply_box(Box(375, 12, 105, 175), corrected=True)  # head to knees, as on frame 76
    s.track(direction=1, max_frames=18)
    s.go_to(110)
    s.save("correction-4-corrected.png")
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
