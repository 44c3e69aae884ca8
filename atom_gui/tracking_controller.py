"""Tracking runs seen from the GUI thread: start, pause, stop, and writing each result into the document.

The controller owns the worker thread. It turns "track from here" into a :class:`RunSpec` with the document's
rules (where the run must stop: a flagged frame, or the next keyframe under UNTIL_KEYFRAME), writes the streamed
results into the document in small batches (at most 25 per second, so a fast tracker cannot flood the event
loop), and when the run ends, however it ends, pushes the whole run onto the undo stack as one command.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QThread, QTimer, Signal
from PySide6.QtGui import QUndoStack

from tracker_core.annotation import ReplacePolicy, Source
from tracker_core.boxes import Box
from tracker_core.trackers import TrackerSpec

from .annotation_model import AnnotationModel
from .core_adapters import Tracker, VideoSourceLike, make_tracker
from .evidence_memory import EvidenceMemory
from .tracking_worker import END_OF_RANGE, FAILED, FLAGGED, KEYFRAME, RunSpec, TrackingWorker
from .undo_commands import SnapshotCollector, TrackingRunCommand

FLUSH_INTERVAL_MS = 40


@dataclass
class RunOptions:
    """The settings a run depends on (the window fills this from its settings)."""

    tracker: TrackerSpec = field(default_factory=TrackerSpec)
    replace_policy: ReplacePolicy = ReplacePolicy.UNTIL_KEYFRAME
    pause_below: float | None = None  # auto-pause under this max score (None: off)
    collect: bool = False  # keep the results aside (in last_collected) instead of writing them: a fill's runs


@dataclass
class _ActiveRun:
    spec: RunSpec
    policy: ReplacePolicy
    collect: bool = False
    collected: dict = field(default_factory=dict)
    collector: SnapshotCollector = field(default_factory=SnapshotCollector)
    frames: int = 0
    first_result_at: float | None = None
    last_result_at: float | None = None
    last_frame: int | None = None

    @property
    def fps(self) -> float:
        if self.frames < 2 or self.first_result_at is None or self.last_result_at == self.first_result_at:
            return 0.0
        return (self.frames - 1) / (self.last_result_at - self.first_result_at)


class TrackingController(QObject):
    """Runs the tracker for the window and keeps the document and undo stack right.

    runStarted(RunSpec)
    resultsApplied(frame, TrackResult, image): results up to ``frame`` are in the document (newest shown).
    runEnded(reason, frames, fps): the run ended; its frames are one undo step.
    runFailed(message, traceback): an exception ended the run; every box tracked before it is kept.
    message(text): worker progress (model loading) for the status bar.
    """

    runStarted = Signal(object)
    resultsApplied = Signal(int, object, object)
    runEnded = Signal(str, int, float)
    runFailed = Signal(str, str)
    message = Signal(str)
    _startRun = Signal(object)

    def __init__(self, model: AnnotationModel, undo_stack: QUndoStack, reader: VideoSourceLike,
                 tracker_factory: Callable[..., Tracker] = make_tracker, parent: QObject | None = None):
        super().__init__(parent)
        self.model = model
        self.undo_stack = undo_stack
        self._thread = QThread()
        self._thread.setObjectName("atom-tracking")
        self.worker = TrackingWorker(reader, tracker_factory)
        self.worker.moveToThread(self._thread)
        self._startRun.connect(self.worker.run)
        self.worker.resultReady.connect(self._on_result)
        self.worker.runFinished.connect(self._on_finished)
        self.worker.runFailed.connect(self._on_failed)
        self.worker.message.connect(self.message)
        self._thread.start()
        self._next_run_id = 1
        self._run: _ActiveRun | None = None
        self.last_frame: int | None = None  # the last frame the last run tracked
        self.last_collected: dict = {}  # frame -> TrackResult of the last collecting run
        self.evidence = EvidenceMemory()  # every result's score map and proposals, for stepping back
        self._pending: list = []
        self._latest = None  # (frame, result, image) of the newest result not yet announced
        self._flush_timer = QTimer(self)
        self._flush_timer.setInterval(FLUSH_INTERVAL_MS)
        self._flush_timer.timeout.connect(self._flush)

    # ---- commands -----------------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._run is not None

    @property
    def active_object(self) -> int | None:
        return None if self._run is None else self._run.spec.object_id

    @property
    def fps(self) -> float:
        """Frames per second of the running run so far (0 before its second result)."""
        return 0.0 if self._run is None else self._run.fps

    @property
    def direction(self) -> int:
        """The running run's direction (+1 when none runs)."""
        return 1 if self._run is None else self._run.spec.direction

    def plan(self, object_id: int, frame: int, direction: int, max_frames: int | None,
             options: RunOptions) -> RunSpec:
        """The run that "track from this frame" means now; raises ValueError with a message for the person."""
        doc = self.model.document
        state = doc.state(object_id, frame)
        if state is None or state.box is None:
            raise ValueError(f"frame {frame} has no box for {doc.object(object_id).label}: draw one first")
        if state.flagged:
            raise ValueError(f"frame {frame} is flagged occluded or out of view: clear the flag, or start "
                             f"from a frame where the object is visible")
        limit = doc.tracking_limit(object_id, frame, direction, options.replace_policy)
        if limit is None or limit == frame:
            at_end = frame == (doc.num_frames - 1 if direction > 0 else 0)
            what = "it is the video's last frame in this direction" if at_end else \
                "the next frame is a keyframe or is flagged occluded or out of view"
            raise ValueError(f"nothing to track from frame {frame}: {what}")
        end_reason = END_OF_RANGE
        barrier = doc.state(object_id, limit + direction) if 0 <= limit + direction < doc.num_frames else None
        if barrier is not None and barrier.flagged:
            end_reason = FLAGGED
        elif barrier is not None and barrier.is_keyframe and options.replace_policy is ReplacePolicy.UNTIL_KEYFRAME:
            end_reason = KEYFRAME
        if max_frames is not None:
            capped = min(limit, frame + max_frames) if direction > 0 else max(limit, frame - max_frames)
            if capped != limit:
                limit, end_reason = capped, END_OF_RANGE
        lo, hi = sorted((frame + direction, limit))
        manual = {f: s.box for f, s in doc.states(object_id, lo, hi) if s.source is Source.MANUAL}
        spec = RunSpec(run_id=self._next_run_id, object_id=object_id, start_frame=frame, start_box=state.box,
                       stop_frame=limit, direction=direction, start_is_manual=state.source is Source.MANUAL,
                       manual_boxes=manual,
                       stop_at_keyframe=options.replace_policy is ReplacePolicy.UNTIL_KEYFRAME,
                       pause_below=options.pause_below, end_reason=end_reason, tracker=options.tracker)
        self._next_run_id += 1
        return spec

    def start(self, spec: RunSpec, policy: ReplacePolicy = ReplacePolicy.UNTIL_KEYFRAME,
              collect: bool = False) -> None:
        """Start a planned run (one at a time). With ``collect``, results go to ``last_collected`` at the end
        instead of into the document (and no undo step is made)."""
        if self._run is not None:
            raise RuntimeError("a tracking run is already going")
        self._run = _ActiveRun(spec, ReplacePolicy(policy), collect)
        self._pending = []
        self._flush_timer.start()
        self.runStarted.emit(spec)
        self._startRun.emit(spec)

    def pause(self) -> None:
        """End the run after the current frame; the tracker keeps its state so that the next run continues."""
        if self._run is not None:
            self.worker.request_stop()

    def stop(self) -> None:
        """End the run after the current frame and forget the tracker's state; every result is kept."""
        if self._run is not None:
            self.worker.request_stop()
            self.worker.forget_tracker(self._run.spec.object_id)

    def forget_trackers(self) -> None:
        """Settings changed or the video changed: the next run starts a fresh tracker."""
        self.worker.forget_tracker(None)

    def shutdown(self, timeout_ms: int = 15000) -> None:
        """Stop any run and the thread (on close). A tracker stuck in one frame longer than the timeout is
        abandoned rather than freezing the window's close."""
        if self._run is not None:
            self.worker.request_stop()
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            self._thread.terminate()
            self._thread.wait()
        self._flush()

    # ---- worker signals (GUI thread) ----------------------------------------------------------------------

    def _on_result(self, run_id: int, frame: int, result, image) -> None:
        run = self._run
        if run is None or run_id != run.spec.run_id:
            return  # a straggler from a run already closed
        now = time.perf_counter()
        if run.first_result_at is None:
            run.first_result_at = now
        run.last_result_at = now
        run.frames += 1
        run.last_frame = frame
        # Plain floats: a tracker may hand back numpy scalars, which the project's JSON cannot hold.
        result = dataclasses.replace(result, box=Box.from_seq(result.box.as_tuple()))
        self.evidence.put(run.spec.object_id, frame, result)
        self._pending.append((frame, result))
        self._latest = (frame, result, image)

    def _flush(self) -> None:
        """Write the results received since the last flush in one document batch, then announce the newest."""
        run = self._run
        if run is not None and self._pending and run.collect:
            run.collected.update(self._pending)
            self._pending = []
        elif run is not None and self._pending:
            pending, self._pending = self._pending, []
            doc = self.model.document
            with doc.batch():
                snapshot = doc.apply_tracked(run.spec.object_id, pending, run.policy, start=run.spec.start_frame)
            run.collector.add(snapshot)
        if self._latest is not None:
            latest, self._latest = self._latest, None
            self.resultsApplied.emit(*latest)

    def _close_run(self) -> _ActiveRun | None:
        self._flush()
        self._flush_timer.stop()
        run, self._run = self._run, None
        if run is not None:
            self.last_frame = run.last_frame
            self.last_collected = run.collected
        if run is not None and len(run.collector):
            command = TrackingRunCommand(self.model.document, run.spec.object_id, run.spec.start_frame,
                                         run.frames, run.collector.snapshot())
            self.undo_stack.push(command)
        return run

    def _on_finished(self, run_id: int, reason: str, frames: int) -> None:
        if self._run is None or run_id != self._run.spec.run_id:
            return
        run = self._close_run()
        self.runEnded.emit(reason, run.frames, run.fps)

    def _on_failed(self, run_id: int, message: str, details: str) -> None:
        if self._run is None or run_id != self._run.spec.run_id:
            return
        run = self._close_run()
        self.runEnded.emit(FAILED, run.frames, run.fps)
        self.runFailed.emit(message, details)
