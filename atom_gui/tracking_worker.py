"""The tracking loop off the GUI thread: a thin Qt face of ``tracker_core.runs`` (one result per frame, as
signals).

The worker lives in its own QThread and owns its own video reader, so neither decoding nor tracking ever runs on
the GUI thread. The loop, its end reasons and the kept trackers are ``tracker_core.runs.loop``'s; this module
only turns them into signals. Every result is emitted as soon as it exists, so whatever ends a run (a stop, an
exception) nothing tracked before is lost.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal, Slot

from tracker_core.runs import (  # noqa: F401  (the GUI's names for the end reasons and the run description)
    END_OF_RANGE,
    FAILED,
    FLAGGED,
    KEYFRAME,
    LOW_CONFIDENCE,
    STOPPED,
    UNREADABLE,
    RunObserver,
    RunSpec,
    TrackerPool,
    run_loop,
)

from .core_adapters import Tracker, VideoSourceLike, make_tracker


class _SignalObserver(RunObserver):
    """Hands the loop's news to the worker's signals."""

    def __init__(self, worker: TrackingWorker, run_id: int):
        self.worker, self.run_id = worker, run_id

    def message(self, text: str) -> None:
        self.worker.message.emit(text)

    def result(self, frame, result, image) -> None:
        self.worker.resultReady.emit(self.run_id, frame, result, image)


class TrackingWorker(QObject):
    """Runs :class:`RunSpec` s in the thread it is moved to.

    resultReady(run_id, frame_index, TrackResult, frame): one tracked frame (frame is the decoded RGB image).
    runFinished(run_id, reason, frames_tracked): the run ended normally (reason: one of the constants above;
        for UNREADABLE, ``last_error`` says which frame and why).
    runFailed(run_id, message, traceback_text): an exception ended the run; results before it were emitted.
    message(text): progress worth showing in the status bar (loading a model).
    """

    resultReady = Signal(int, int, object, object)
    runFinished = Signal(int, str, int)
    runFailed = Signal(int, str, str)
    message = Signal(str)

    def __init__(self, reader: VideoSourceLike,
                 tracker_factory: Callable[..., Tracker] = make_tracker):
        super().__init__()
        self._reader = reader
        self._stop = threading.Event()
        self.trackers = TrackerPool(tracker_factory)
        self.last_outcome = None  # the RunOutcome of the last run

    # ---- called from the GUI thread (thread-safe) -----------------------------------------------------------

    def request_stop(self) -> None:
        """End the current run after the frame being tracked; its results so far are all kept."""
        self._stop.set()

    def forget_tracker(self, object_id: int | None = None) -> None:
        """Drop the kept tracker state (all objects when None): the next run initialises afresh."""
        self.trackers.forget(object_id)

    # ---- the worker thread --------------------------------------------------------------------------------

    @Slot(object)
    def run(self, spec: RunSpec) -> None:
        """Track one run; emits results as they come and exactly one runFinished or runFailed."""
        self._stop.clear()
        outcome = run_loop(spec, self._reader, self.trackers, _SignalObserver(self, spec.run_id), self._stop)
        self.last_outcome = outcome
        if outcome.reason == FAILED:
            self.runFailed.emit(spec.run_id, outcome.error, outcome.details)
        else:
            self.runFinished.emit(spec.run_id, outcome.reason, outcome.frames)
