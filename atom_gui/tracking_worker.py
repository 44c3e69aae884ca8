"""The tracking loop, off the GUI thread: one result per frame streamed through Qt signals.

The worker lives in its own QThread and owns its own video reader, so neither decoding nor tracking ever runs
on the GUI thread. A run goes frame by frame from a start box in one direction; it ends at the stop frame, at a
flagged frame (the tracker does not track through occlusion or out-of-view spans), at a manual keyframe when
asked to, on low confidence when auto-pause is on, or when the GUI asks it to stop. Every result is emitted as
soon as it exists, so whatever ends a run (a stop, an exception) nothing tracked before is lost.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal, Slot

from tracker_core.boxes import Box
from tracker_core.result import Status
from tracker_core.trackers import TrackerSpec

from .core_adapters import Tracker, VideoSourceLike, make_tracker

# Why a run ended (the GUI words its status message from these).
END_OF_RANGE = "end"
STOPPED = "stopped"
FLAGGED = "flagged"
KEYFRAME = "keyframe"
LOW_CONFIDENCE = "low confidence"
FAILED = "failed"


@dataclass(frozen=True)
class RunSpec:
    """One tracking run for one object.

    start_frame/start_box: where the tracker starts (already annotated; never re-emitted).
    stop_frame: the last frame to track, inclusive, in the run's direction.
    start_is_manual: the start box is a person's box (a correction), not the tracker's own last result.
    manual_boxes: keyframes met on the way; the tracker never overwrites them, it re-anchors there.
    blocked_frames: flagged frames; the run ends before the first one.
    pause_below: auto-pause after a frame whose max score is below this (None: never).
    """

    run_id: int
    object_id: int
    start_frame: int
    start_box: Box
    stop_frame: int
    direction: int = 1
    start_is_manual: bool = True
    manual_boxes: dict[int, Box] = field(default_factory=dict)
    stop_at_keyframe: bool = True
    blocked_frames: frozenset[int] = frozenset()
    pause_below: float | None = None
    end_reason: str = END_OF_RANGE  # what reaching stop_frame means (the frame after it is a keyframe, ...)
    tracker: TrackerSpec = TrackerSpec()  # a different spec means a fresh tracker object


@dataclass
class _TrackerState:
    """A tracker kept between runs, so that pause-and-continue does not re-initialise it."""

    choice: TrackerSpec
    tracker: Tracker
    last_frame: int | None = None
    direction: int = 1


class TrackingWorker(QObject):
    """Runs :class:`RunSpec` s in the thread it is moved to.

    resultReady(run_id, frame_index, TrackResult, frame): one tracked frame (frame is the decoded RGB image).
    runFinished(run_id, reason, frames_tracked): the run ended normally (reason: one of the constants above).
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
        self._factory = tracker_factory
        self._stop = threading.Event()
        self._trackers: dict[int, _TrackerState] = {}
        self._trackers_lock = threading.Lock()

    # ---- called from the GUI thread (thread-safe) -----------------------------------------------------------

    def request_stop(self) -> None:
        """End the current run after the frame being tracked; its results so far are all kept."""
        self._stop.set()

    def forget_tracker(self, object_id: int | None = None) -> None:
        """Drop the kept tracker state (all objects when None): the next run initialises afresh."""
        with self._trackers_lock:
            if object_id is None:
                self._trackers.clear()
            else:
                self._trackers.pop(object_id, None)

    # ---- the worker thread --------------------------------------------------------------------------------

    @Slot(object)
    def run(self, spec: RunSpec) -> None:
        """Track one run; emits results as they come and exactly one runFinished or runFailed."""
        self._stop.clear()
        done = 0
        try:
            state = self._start(spec)
            reason = spec.end_reason
            index = spec.start_frame
            while True:
                index += spec.direction
                if (index - spec.stop_frame) * spec.direction > 0 or not 0 <= index < self._reader.num_frames:
                    break
                if self._stop.is_set():
                    reason = STOPPED
                    break
                if index in spec.blocked_frames:
                    reason = FLAGGED
                    break
                if index in spec.manual_boxes:
                    if spec.stop_at_keyframe:
                        reason = KEYFRAME
                        break
                    # A person's box on the way: the tracker takes it (per its correction policy) and goes on.
                    state.tracker.update_with_box(self._reader.read(index), spec.manual_boxes[index])
                    state.last_frame = index
                    continue
                frame = self._reader.read(index)
                result = state.tracker.track(frame)
                state.last_frame = index
                done += 1
                self.resultReady.emit(spec.run_id, index, result, frame)
                if spec.pause_below is not None and (
                        result.status == Status.NOT_FOUND or result.max_score < spec.pause_below):
                    reason = LOW_CONFIDENCE
                    break
        except Exception as exc:  # any failure ends the run with a message; the emitted results stay
            self.forget_tracker(spec.object_id)  # its state is unknown after an exception
            self.runFailed.emit(spec.run_id, f"{type(exc).__name__}: {exc}", traceback.format_exc())
            return
        self.runFinished.emit(spec.run_id, reason, done)

    def _start(self, spec: RunSpec) -> _TrackerState:
        """The tracker for this run: continued, updated with a corrected box, or initialised."""
        with self._trackers_lock:
            state = self._trackers.get(spec.object_id)
        if state is not None and state.choice != spec.tracker:
            state = None
        if state is None:
            self.message.emit(f"Loading the {spec.tracker.name} tracker…")
            started = time.perf_counter()
            tracker = self._factory(spec.tracker.name, model_path=spec.tracker.model_path,
                                    preset=spec.tracker.preset, device=spec.tracker.device,
                                    correction_policy=spec.tracker.correction_policy)
            self.message.emit(f"{spec.tracker.name} ready in {time.perf_counter() - started:.1f} s")
            state = _TrackerState(spec.tracker, tracker)
            frame = self._reader.read(spec.start_frame)
            tracker.initialize(frame, spec.start_box)
        elif (not spec.start_is_manual and state.last_frame == spec.start_frame
              and state.direction == spec.direction):
            pass  # a pause and continue: the tracker is exactly where the run starts
        else:
            state.tracker.update_with_box(self._reader.read(spec.start_frame), spec.start_box)
        state.direction = spec.direction
        state.last_frame = spec.start_frame
        with self._trackers_lock:
            self._trackers[spec.object_id] = state
        return state
