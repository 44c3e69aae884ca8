"""Tracking runs seen from the GUI thread: start, pause, stop, and writing each result into the document.

The controller owns the worker thread. The rules are ``tracker_core.runs``': planning (``plan_run``: where the
run must stop), writing (``RunRecorder``: never over a keyframe, stale boxes after a correction). This module
only paces them for Qt: it writes the streamed results into the document in small batches (at most 25 per
second, so a fast tracker cannot flood the event loop), and when the run ends, however it ends, applies the
stale-box rule and pushes the whole run onto the undo stack as one command.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QThread, QTimer, Signal
from PySide6.QtGui import QUndoStack

from tracker_core.annotation import ReplacePolicy
from tracker_core.boxes import Box
from tracker_core.result import TrackResult
from tracker_core.runs import FAILED, RunOptions, RunRecorder, RunSpec, plan_run

from .annotation_model import AnnotationModel
from .core_adapters import Tracker, VideoSourceLike, make_tracker
from .evidence_memory import EvidenceMemory
from .tracking_worker import TrackingWorker
from .undo_commands import TrackingRunCommand

FLUSH_INTERVAL_MS = 40
__all__ = ["RunOptions", "TrackingController"]  # RunOptions: the GUI's name for tracker_core.runs.RunOptions


@dataclass
class _ActiveRun:
    spec: RunSpec
    recorder: RunRecorder | None  # None for a collecting run (a fill's pass: nothing is written)
    collected: dict = field(default_factory=dict)
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

    @property
    def last_error(self) -> str | None:
        """Why the last run could not go on (an unreadable frame, an exception), or None."""
        outcome = self.worker.last_outcome
        return None if outcome is None else outcome.error

    def plan(self, object_id: int, frame: int, direction: int, max_frames: int | None,
             options: RunOptions) -> RunSpec:
        """The run that "track from this frame" means now; raises ValueError with a message for the person."""
        spec = plan_run(self.model.document, object_id, frame, direction, max_frames, options, self._next_run_id)
        self._next_run_id += 1
        return spec

    def evidence_for(self, object_id: int, frame: int) -> TrackResult | None:
        """The tracker's evidence of the box the document holds on ``frame`` (None if it is not in memory)."""
        return self.evidence.get(object_id, frame, self.model.document.state(object_id, frame))

    def start(self, spec: RunSpec, policy: ReplacePolicy | None = None, collect: bool = False) -> None:
        """Start a planned run (one at a time). With ``collect``, results go to ``last_collected`` at the end
        instead of into the document (and no undo step is made). ``policy``: the spec's own (kept for callers
        that pass it)."""
        if self._run is not None:
            raise RuntimeError("a tracking run is already going")
        if policy is not None and ReplacePolicy(policy) is not spec.policy:
            raise ValueError(f"the run was planned for {spec.policy.value}, not {ReplacePolicy(policy).value}")
        self._run = _ActiveRun(spec, None if collect else RunRecorder(self.model.document, spec))
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
        if run is not None and self._pending and run.recorder is None:
            run.collected.update(self._pending)
            self._pending = []
        elif run is not None and self._pending:
            pending, self._pending = self._pending, []
            run.recorder.apply(pending)
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
        if run is not None and run.recorder is not None:
            with self.model.document.batch():
                run.recorder.finish()  # the stale-box rule: part of the run's undo step
            if run.recorder.changed:
                command = TrackingRunCommand(self.model.document, run.spec.object_id, run.spec.start_frame,
                                             run.frames, run.recorder.snapshot())
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
