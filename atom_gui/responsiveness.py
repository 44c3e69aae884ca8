"""How responsive the window stays while the tracker works: event-loop latency while tracking (a benchmark).

A 10 ms precise QTimer runs on the GUI thread and records how late each tick fires; any work that blocks the
event loop (decoding, tracking, a slow redraw) shows up as lateness. The figures reported are the p99 lateness
during a tracking run of the real window (goal: under 50 ms), the same from the open until the first tracked
frame (model loading and the first frame's initialisation), the time from Space to the first tracked frame
(``space_to_first_frame_s``, after the person paused ``--think`` seconds between drawing the box and pressing
Space), the app's tracking frames per second, and the process's peak resident memory.

    python -m atom_gui.responsiveness [VIDEO] [--tracker atom] [--frames 100] [--box x,y,w,h] [--start N]
                                      [--think SECONDS]

Without VIDEO it uses the demo video (bikes.mp4) and a box on its cyclist. It is a benchmark, not a test: the
numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from PySide6.QtCore import QEventLoop, QObject, Qt, QTimer

DEMO_START, DEMO_BOX = 76, "405,50,100,170"  # the cyclist in bikes.mp4, visible from frame 76


class LatencyProbe(QObject):
    """Records how late a periodic GUI-thread timer fires (milliseconds past its interval)."""

    def __init__(self, interval_ms: int = 10, parent: QObject | None = None):
        super().__init__(parent)
        self.interval_ms = interval_ms
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last: float | None = None
        self.lateness_ms: list[float] = []

    def start(self) -> None:
        self.lateness_ms = []
        self._last = time.perf_counter()
        self._started = (self._last, time.thread_time())  # wall and this (GUI) thread's CPU time
        self._timer.start()

    def start_once(self, *_args) -> None:
        """Start unless started (connect it to a GUI-thread signal: the first tracked frame)."""
        if not self._timer.isActive():
            self.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.lateness_ms.append(max(0.0, (now - self._last) * 1000.0 - self.interval_ms))
        self._last = now

    def stop(self) -> dict:
        """Lateness percentiles, plus the share of the wall time the GUI thread spent on the CPU: unlike the
        lateness, that share does not grow when other programs load the machine."""
        self._timer.stop()
        stats = summarize(self.lateness_ms)
        if self.lateness_ms:
            wall = time.perf_counter() - self._started[0]
            stats["gui_thread_cpu_share"] = (time.thread_time() - self._started[1]) / max(wall, 1e-9)
        return stats


def summarize(lateness_ms: list[float]) -> dict:
    values = np.asarray(lateness_ms, dtype=np.float64)
    if values.size == 0:
        return {"ticks": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    return {"ticks": int(values.size), "p50_ms": float(np.percentile(values, 50)),
            "p99_ms": float(np.percentile(values, 99)), "max_ms": float(values.max())}


def measure(video: str | None = None, tracker: str = "atom", frames: int = 100, box: str | None = None,
            start: int | None = None, device: str = "auto", preset: str = "default", think_s: float = 2.0,
            timeout_s: float = 1800.0) -> dict:
    """Open the real window on ``video``, draw ``box`` on frame ``start``, wait ``think_s`` seconds, press Space
    for ``frames`` frames, and return the event-loop lateness during the run (the probe starts with the first
    tracked frame) and before it (from the open), the time from Space to the first tracked frame, the run's
    frames per second and the peak resident memory."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen" if not os.environ.get("DISPLAY") else "")
    import tempfile

    from PySide6.QtCore import QSettings

    from tracker_core.boxes import parse_box_arg

    from .app import make_application, qt_binding_problem
    from .core_adapters import demo_video_path
    from .main_window import MainWindow
    from .settings import AppSettings

    problem = qt_binding_problem()
    if problem:
        raise RuntimeError(problem)
    if video is None:
        video, box, start = str(demo_video_path()), box or DEMO_BOX, DEMO_START if start is None else start
    if box is None:
        raise ValueError("give the first box (--box x,y,w,h) for a video other than the demo")
    start = start or 0
    app = make_application()
    tmp = tempfile.TemporaryDirectory()
    settings = AppSettings(tracker=tracker, device=device, preset=preset, auto_pause=False, follow_tracking=True)
    window = MainWindow(qsettings=QSettings(os.path.join(tmp.name, "s.ini"), QSettings.Format.IniFormat),
                        settings=settings, project_dir=tmp.name)
    window.ask_recovery = lambda path: False
    window.resize(1400, 860)
    window.show()

    def wait(condition, limit_s: float) -> bool:
        deadline = time.perf_counter() + limit_s
        while not condition() and time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.002)
        return condition()

    startup = LatencyProbe()
    startup.start()
    window.open_path(video)
    if not wait(lambda: window.source is not None and window.displayed_frame is not None, 120):
        raise RuntimeError(window.last_error[1] if window.last_error else "the video did not open")
    window.go_to(start)
    wait(lambda: window.displayed_frame == start, 30)
    window.correction.apply_box(parse_box_arg(box))
    wait(lambda: False, think_s)  # the person looks at the box before pressing Space
    probe = LatencyProbe()
    first_result: list[float] = []
    before_run: dict = {}

    def on_result(*_args) -> None:
        if not first_result:
            first_result.append(time.perf_counter())
            before_run.update(startup.stop())
            probe.start()

    window.controller.resultsApplied.connect(on_result)  # on the GUI thread
    loop = QEventLoop()  # a real event loop, as in the app (not processEvents in a polling loop)
    window.controller.runEnded.connect(loop.quit)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    started = time.perf_counter()
    if not window.correction.start_tracking(1, frames):
        raise RuntimeError(window.message())
    loop.exec()
    stats = probe.stop()
    before_run = before_run or startup.stop()
    reason, tracked, fps = window.correction.last_run or ("timeout", 0, 0.0)
    stats.update({"startup_p99_ms": before_run["p99_ms"], "startup_max_ms": before_run["max_ms"],
                  "space_to_first_frame_s": first_result[0] - started if first_result else None,
                  "think_s": think_s, "peak_rss_mb": peak_rss_mb(),
                  "tracker": tracker, "frames": tracked, "end": reason, "tracking_fps": fps,
                  "wall_s": time.perf_counter() - started, "video": str(video),
                  "qt_platform": os.environ.get("QT_QPA_PLATFORM", ""),
                  "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
                  "cpu_count": os.cpu_count()})
    window.close()
    tmp.cleanup()
    return stats


def peak_rss_mb() -> float | None:
    """The process's peak resident memory so far (Linux and macOS; None elsewhere)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / (1024.0 * 1024.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m atom_gui.responsiveness", description=__doc__.split("\n")[0])
    parser.add_argument("video", nargs="?")
    parser.add_argument("--tracker", default="atom")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--box")
    parser.add_argument("--start", type=int)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--think", type=float, default=2.0,
                        help="seconds between drawing the box and pressing Space (default 2)")
    args = parser.parse_args(argv)
    stats = measure(args.video, args.tracker, args.frames, args.box, args.start, args.device, args.preset,
                    args.think)
    print(json.dumps(stats, indent=1))
    print(f"event-loop lateness while tracking: p99 {stats['p99_ms']:.1f} ms (goal < 50), "
          f"max {stats['max_ms']:.1f} ms; GUI thread on the CPU {100 * stats.get('gui_thread_cpu_share', 0):.0f}% "
          f"of the time; {stats['frames']} frames at {stats['tracking_fps']:.1f} frames/s ({stats['tracker']}); "
          f"Space to the first tracked frame {stats['space_to_first_frame_s'] or float('nan'):.2f} s "
          f"({stats['think_s']:g} s after the box); before the run p99 {stats['startup_p99_ms']:.1f} ms; "
          f"peak memory {stats['peak_rss_mb'] or float('nan'):.0f} MB; load average "
          f"{stats['load_average_1min']:.1f} on {stats['cpu_count']} cores", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
