"""The tracker made ready before Space: loaded and warmed while the video opens, initialised on the first box as
soon as it is drawn.

ATOM's first frame is its costliest: importing torch and loading the model, then learning the target (augmented
samples and a joint optimisation), and torch's first calls are slower still. Done when Space is pressed, that is
seconds of waiting; done while the person looks at the video and draws the box, Space finds a tracker that has
already learnt the target and the first tracked frame follows at once.

:class:`TrackerWarmup` runs this preparation on a thread of its own and hands the prepared tracker to the
tracking worker through :meth:`TrackerWarmup.factory`, the factory the worker calls to make a tracker. The
worker then initialises it as usual; when the frame and box are the ones it was prepared on, that costs nothing.
A preparation and the worker never use a tracker at the same time (one lock), and only the newest request waits
to run (a box drawn again replaces the one before).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal

from tracker_core.boxes import Box
from tracker_core.trackers import TrackerSpec

from .core_adapters import Tracker

WARM_BOX_FRACTION = 0.15  # the warm-up learns a box this fraction of the frame's sides, at its centre


@dataclass
class _Spare:
    """A made tracker not yet handed to the worker; ``frame``/``box``: what it was initialised on, if real."""

    choice: TrackerSpec
    tracker: Tracker
    generation: int  # TrackerWarmup.discard() makes older spares stale
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
    time, 0 when unknown); an empty text when nothing is being prepared any more.
    """

    progress = Signal(str, float)

    def __init__(self, factory: Callable[..., Tracker], parent: QObject | None = None):
        super().__init__(parent)
        self._factory = factory
        self._lock = threading.Lock()  # held while a tracker is being made or initialised
        self._cond = threading.Condition()
        self._job: _Job | None = None  # the newest request not yet started
        self._spare: _Spare | None = None
        self._generation = 0
        self._closing = False
        self.init_seconds: float | None = None  # the last first-frame initialisation's length, for estimates
        self._thread = threading.Thread(target=self._run, name="atom-warmup", daemon=True)
        self._thread.start()

    # ---- requests (GUI thread) ----------------------------------------------------------------------------

    def warm(self, choice: TrackerSpec, frame: np.ndarray) -> None:
        """Load ``choice``'s model and run one initialisation and one frame on ``frame`` (a box at its centre)."""
        self._request(_Job(choice, frame, None, ""))

    def prepare(self, choice: TrackerSpec, frame: np.ndarray, box: Box, label: str) -> None:
        """Initialise a tracker on ``box`` in ``frame``, so that a run starting there begins at once."""
        self._request(_Job(choice, frame, box, label))

    def discard(self) -> None:
        """Forget the prepared tracker and any waiting request (the settings changed). Never waits."""
        with self._cond:
            self._job = None
            self._generation += 1

    @property
    def busy(self) -> bool:
        """A preparation is running or waiting."""
        return self._job is not None or self._lock.locked()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._job = None
            self._cond.notify_all()
        self._thread.join(timeout=30)
        self._spare = None

    # ---- the tracker factory (the tracking worker's thread) -----------------------------------------------

    def factory(self, name: str, model_path: str | None = None, preset: str | None = None, device: str = "auto",
                correction_policy: str | None = None) -> Tracker:
        """The worker's tracker: the prepared one when it matches the choice (waiting for a preparation in
        progress), else a new one."""
        choice = TrackerSpec(name, model_path, preset, device, correction_policy)
        with self._cond:
            self._job = None  # Space wins over a waiting preparation
        with self._lock:
            spare, self._spare = self._usable_spare(choice), None
            if spare is None:
                spare = _Spare(choice, self._make(choice), self._generation)
        return PreparedTracker(spare, self)

    # ---- the preparation thread ---------------------------------------------------------------------------

    def _usable_spare(self, choice: TrackerSpec) -> _Spare | None:
        spare = self._spare
        with self._cond:
            current = self._generation
        return spare if spare is not None and spare.choice == choice and spare.generation == current else None

    def _request(self, job: _Job) -> None:
        with self._cond:
            self._job = job
            self._cond.notify_all()

    def _next_job(self) -> _Job | None:
        with self._cond:
            while self._job is None and not self._closing:
                self._cond.wait()
            job, self._job = self._job, None
            return None if self._closing else job

    def _newer_job_waits(self) -> bool:
        with self._cond:
            return self._job is not None or self._closing

    def _run(self) -> None:
        while (job := self._next_job()) is not None:
            try:
                with self._lock:
                    self._prepare(job)
            except Exception:  # a failed preparation costs only its time: the run meets the error and reports it
                self._spare = None
            finally:
                if not self._newer_job_waits():
                    self.progress.emit("", 0.0)

    def _prepare(self, job: _Job) -> None:
        spare = self._usable_spare(job.choice)
        if spare is None:
            self._spare = None
            with self._cond:
                generation = self._generation
            spare = self._spare = _Spare(job.choice, self._make(job.choice), generation)
        if job.box is None:
            if spare.result is not None or self._newer_job_waits():
                return  # warm already, or a box is waiting: learning it warms up as well
            h, w = job.frame.shape[:2]
            box = Box(w * (1 - WARM_BOX_FRACTION) / 2, h * (1 - WARM_BOX_FRACTION) / 2, w * WARM_BOX_FRACTION,
                      h * WARM_BOX_FRACTION)
            self.progress.emit("Warming up the tracker…", self.init_seconds or 0.0)
            spare.result = self._initialize(spare.tracker, job.frame, box)
            spare.tracker.track(job.frame)  # the per-frame path's first call is slow too
            spare.frame = spare.box = None  # learnt on a made-up box: not worth reusing
            return
        self.progress.emit(f"Learning the target on {job.label}…", self.init_seconds or 0.0)
        spare.result = self._initialize(spare.tracker, job.frame, job.box)
        spare.frame, spare.box = job.frame, job.box

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
    once; anything else is the wrapped tracker's own (an initialisation then reports its progress)."""

    def __init__(self, spare: _Spare, warmup: TrackerWarmup):
        self._spare = spare
        self._warmup = warmup
        self.tracker = spare.tracker

    def initialize(self, frame: np.ndarray, box: Box):
        spare = self._spare
        self._spare = None  # only the first initialisation can be the prepared one
        if (spare is not None and spare.box is not None and tuple(spare.box) == tuple(box)
                and spare.frame.shape == frame.shape and np.array_equal(spare.frame, frame)):
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
