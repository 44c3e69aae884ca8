"""The tracker made ready before Space: loaded and warmed while the video opens, initialised on the first box as
soon as it is drawn.

ATOM's first frame is its costliest: importing torch and loading the model, then learning the target (augmented
samples and a joint optimisation), and torch's first calls are slower still. Done when Space is pressed, that is
seconds of waiting; done while the person looks at the video and draws the box, Space finds a tracker that has
already learnt the target and the first tracked frame follows at once.

:class:`TrackerWarmup` runs this preparation on a thread of its own and hands the prepared tracker to the
tracking worker through :meth:`TrackerWarmup.factory`, the factory the worker calls to make a tracker. The worker
then initialises it as usual; when the frame and box are the ones it was prepared on, that costs nothing. A
preparation and the worker never use the tracker at the same time, and only the newest request waits to run (a
box drawn again replaces the one before).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

from tracker_core.boxes import Box
from tracker_core.trackers import TrackerSpec

from .core_adapters import Tracker

WARM_BOX_FRACTION = 0.15  # the warm-up learns a box this fraction of the frame's sides, at its centre
WARM_FRAME_WIDTH = 640  # on the frame made at most this wide: the networks' first calls are what it warms up
# The warm-up's first calls start only after this long without a box: a box drawn sooner is learnt at once
# instead (learning it warms up as well), rather than waiting for a warm-up it no longer needs.
WARM_DELAY_S = 3.0


def warm_frame(frame: np.ndarray) -> np.ndarray:
    """``frame`` (H, W, 3) at most WARM_FRAME_WIDTH wide: on a 4K frame the warm-up would cost as much as a real
    first frame, for nothing (the crops are resized to the network's input anyway)."""
    h, w = frame.shape[:2]
    if w <= WARM_FRAME_WIDTH:
        return frame
    return cv2.resize(frame, (WARM_FRAME_WIDTH, max(1, round(h * WARM_FRAME_WIDTH / w))),
                      interpolation=cv2.INTER_AREA)


@dataclass
class _Spare:
    """A made tracker not yet handed to the worker. ``frame``/``box``/``result``: what it was initialised on
    (None after a warm-up on a made-up box); ``warm``: its first calls are done."""

    choice: TrackerSpec
    tracker: Tracker
    generation: int  # TrackerWarmup.discard() makes older spares stale
    warm: bool = False
    frame: np.ndarray | None = None
    box: Box | None = None
    result: object = None


@dataclass
class _Job:
    choice: TrackerSpec
    frame: np.ndarray
    box: Box | None  # None: only warm up
    label: str  # how the frame is named in progress messages ("frame 76")


class TrackerWarmup(QObject):
    """Prepares trackers ahead of Space for one open video.

    progress(text, expected_s): a preparation stage started (``expected_s``: its likely length from the last
    first-frame initialisation, 0 when unknown); an empty text when nothing is being prepared any more.
    """

    progress = Signal(str, float)

    def __init__(self, factory: Callable[..., Tracker], parent: QObject | None = None):
        super().__init__(parent)
        self._factory = factory
        # One condition guards everything below; the spare is used by one thread at a time: the preparation
        # thread while ``_running``, the worker while ``_claimed``.
        self._cond = threading.Condition()
        self._job: _Job | None = None  # the newest request not yet started
        self._running = False
        self._claimed = False
        self._worker_waits = False  # the worker wants the tracker: a warm-up still waiting gives way
        self._spare: _Spare | None = None
        self._generation = 0
        self._closing = False
        self.init_seconds: float | None = None  # the last first-frame initialisation's length, for estimates
        self._thread = threading.Thread(target=self._run, name="atom-warmup", daemon=True)
        self._thread.start()

    # ---- requests (GUI thread; none of them waits) --------------------------------------------------------

    def warm(self, choice: TrackerSpec, frame: np.ndarray) -> None:
        """Load ``choice``'s model and run its first calls on ``frame`` (a small box at its centre)."""
        self._request(_Job(choice, frame, None, ""))

    def prepare(self, choice: TrackerSpec, frame: np.ndarray, box: Box, label: str) -> None:
        """Initialise a tracker on ``box`` in ``frame``, so that a run starting there begins at once."""
        self._request(_Job(choice, frame, box, label))

    def discard(self) -> None:
        """Forget the prepared tracker and any waiting request (the settings changed)."""
        with self._cond:
            self._job = None
            self._generation += 1
            self._cond.notify_all()

    @property
    def busy(self) -> bool:
        """A preparation is running or waiting."""
        with self._cond:
            return self._job is not None or self._running

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._job = None
            self._cond.notify_all()
        self._thread.join(timeout=30)
        self._spare = None

    def _request(self, job: _Job) -> None:
        with self._cond:
            self._job = job
            self._cond.notify_all()

    # ---- the tracker factory (the tracking worker's thread) -----------------------------------------------

    def factory(self, name: str, model_path: str | None = None, preset: str | None = None, device: str = "auto",
                correction_policy: str | None = None) -> Tracker:
        """The worker's tracker: the prepared one when it matches the choice, else a new one. A preparation
        waiting or running is waited for: it is learning the box just drawn, which is what the run starts from
        (starting over would cost the same again)."""
        choice = TrackerSpec(name, model_path, preset, device, correction_policy)
        with self._cond:
            self._worker_waits = True
            self._cond.notify_all()
            while (self._job is not None or self._running) and not self._closing:
                self._cond.wait()
            self._worker_waits = False
            self._claimed = True
            spare, self._spare = self._usable_spare(choice), None
        try:
            if spare is None:
                spare = _Spare(choice, self._make(choice), self._generation)
        finally:
            with self._cond:
                self._claimed = False
                self._cond.notify_all()
        return PreparedTracker(spare, self)

    def _usable_spare(self, choice: TrackerSpec) -> _Spare | None:
        """The spare, if it is for ``choice`` and not discarded since (call with the condition held)."""
        spare = self._spare
        return spare if spare is not None and spare.choice == choice and spare.generation == self._generation \
            else None

    # ---- the preparation thread ---------------------------------------------------------------------------

    def _next_job(self) -> tuple[_Job, _Spare | None, int] | None:
        """The newest request, the spare it may use and the generation it belongs to (None when closing)."""
        with self._cond:
            while (self._job is None or self._claimed) and not self._closing:
                self._cond.wait()
            if self._closing:
                return None
            job, self._job = self._job, None
            self._running = True
            spare, self._spare = self._usable_spare(job.choice), None
            return job, spare, self._generation

    def _newer_job_waits(self, wait_s: float = 0.0) -> bool:
        """Something wants the thread more than a warm-up (a box, the worker, closing), after waiting up to
        ``wait_s`` for it."""
        with self._cond:
            return self._cond.wait_for(lambda: self._job is not None or self._worker_waits or self._closing,
                                       timeout=wait_s)

    def _run(self) -> None:
        while (taken := self._next_job()) is not None:
            job, spare, generation = taken
            try:
                spare = self._prepare(job, spare or _Spare(job.choice, self._make(job.choice), generation))
            except Exception:  # a failed preparation costs only its time: the run meets the error and reports it
                spare = None
            with self._cond:
                self._running = False
                if spare is not None and spare.generation == self._generation:
                    self._spare = spare
                idle = self._job is None
                self._cond.notify_all()
            if idle:
                self.progress.emit("", 0.0)

    def _prepare(self, job: _Job, spare: _Spare) -> _Spare:
        if job.box is None:
            if spare.warm:
                return spare
            warm_up = getattr(spare.tracker, "warm_up", None)  # an ATOM tracker's; the classic ones have none
            if warm_up is not None:
                # The one-time costs any first box pays (tracing, lazy imports: about 0.6 s) need no quiet moment.
                warm_up()
            self.progress.emit("", 0.0)  # loaded; the first calls wait for a quiet moment
            if self._newer_job_waits(WARM_DELAY_S):
                return spare  # a box came (learning it warms up as well), or Space
            frame = warm_frame(job.frame)
            h, w = frame.shape[:2]
            box = Box(w * (1 - WARM_BOX_FRACTION) / 2, h * (1 - WARM_BOX_FRACTION) / 2, w * WARM_BOX_FRACTION,
                      h * WARM_BOX_FRACTION)
            self.progress.emit("Warming up the tracker…", 0.0)
            spare.tracker.initialize(frame, box)
            spare.tracker.track(frame)  # the per-frame path's first call is slow too
            spare.warm = True
            spare.frame = spare.box = spare.result = None  # learnt on a made-up box: not worth reusing
            return spare
        self.progress.emit(f"Learning the target on {job.label}…", self.init_seconds or 0.0)
        spare.result = self._initialize(spare.tracker, job.frame, job.box)
        spare.warm, spare.frame, spare.box = True, job.frame, job.box
        return spare

    def _make(self, choice: TrackerSpec) -> Tracker:
        self.progress.emit(f"Loading the {choice.name} tracker…", 0.0)
        return self._factory(choice.name, model_path=choice.model_path, preset=choice.preset,
                             device=choice.device, correction_policy=choice.correction_policy)

    def _initialize(self, tracker: Tracker, frame: np.ndarray, box: Box):
        started = time.perf_counter()
        result = tracker.initialize(frame, box)
        self.init_seconds = time.perf_counter() - started
        return result


class PreparedTracker:
    """A tracker from :class:`TrackerWarmup`: ``initialize`` on the frame and box it was prepared on returns at
    once; anything else is the wrapped tracker's own (a first initialisation then reports its progress)."""

    def __init__(self, spare: _Spare, warmup: TrackerWarmup):
        self._spare = spare
        self._warmup = warmup
        self.tracker = spare.tracker

    def initialize(self, frame: np.ndarray, box: Box):
        spare, self._spare = self._spare, None  # only the first initialisation can be the prepared one
        if (spare is not None and spare.box is not None and spare.box == box and spare.frame.shape == frame.shape
                and np.array_equal(spare.frame, frame)):
            return spare.result
        warmup = self._warmup
        warmup.progress.emit("Learning the target…", warmup.init_seconds or 0.0)
        try:
            return warmup._initialize(self.tracker, frame, box)
        finally:
            warmup.progress.emit("", 0.0)

    def track(self, frame: np.ndarray):
        return self.tracker.track(frame)

    def update_with_box(self, frame: np.ndarray, box: Box):
        return self.tracker.update_with_box(frame, box)

    def __getattr__(self, name: str):
        return getattr(self.tracker, name)


class WarmupProgress(QWidget):
    """The preparation in the status bar: what is being done and for how long, with a bar that fills over the
    time the last first-frame initialisation took (busy while that is unknown); hidden when idle."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.label = QLabel("")
        self.bar = QProgressBar()
        self.bar.setFixedWidth(110)
        self.bar.setTextVisible(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        self._stage = ("", 0.0, 0.0)  # (text, expected seconds, started at)
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._tick)
        self.setVisible(False)

    def show_stage(self, text: str, expected_s: float) -> None:
        """A stage began (``text``; "" when the preparation is over), likely to take ``expected_s`` (0: unknown)."""
        self._stage = (text, expected_s, time.perf_counter())
        self.setVisible(bool(text))
        if not text:
            self._timer.stop()
            return
        self.bar.setRange(0, 100 if expected_s > 0 else 0)
        self._timer.start()
        self._tick()

    def _tick(self) -> None:
        text, expected, started = self._stage
        elapsed = time.perf_counter() - started
        if expected > 0:
            self.bar.setValue(int(min(95.0, 100.0 * elapsed / expected)))
        self.label.setText(f"{text} {elapsed:.1f} s")
