"""Bidirectional fill between two keyframes: track forward from the first and backward from the second, then
keep, frame by frame, the more confident of the two results, and interpolate where both are weak.

The merge (:func:`merge_bidirectional`) is Qt-free; :class:`FillRun` drives the two collecting runs through
the tracking controller and writes the merge into the document as one undo step.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from tracker_core.annotation import Document, ReplacePolicy, Source
from tracker_core.boxes import Box
from tracker_core.result import Status, TrackResult


@dataclass(frozen=True)
class FillDecision:
    frame: int
    kind: str  # "forward", "backward" (a tracker result kept) or "interpolated"
    box: Box
    result: TrackResult | None = None


def is_weak(result: TrackResult | None, min_score: float) -> bool:
    """A result not worth keeping over an interpolation: missing, lost, or below the score threshold."""
    return result is None or result.status == Status.NOT_FOUND or result.max_score < min_score


def merge_bidirectional(first: int, last: int, first_box: Box, last_box: Box,
                        forward: dict[int, TrackResult], backward: dict[int, TrackResult],
                        min_score: float) -> list[FillDecision]:
    """One decision per frame strictly between the keyframes ``first`` and ``last``.

    The more confident result wins (higher max score; ties go to the run that started nearer, as drift grows
    with distance); where both are weak, the box is interpolated linearly between the keyframe boxes.
    """
    decisions = []
    for frame in range(first + 1, last):
        f, b = forward.get(frame), backward.get(frame)
        f_weak, b_weak = is_weak(f, min_score), is_weak(b, min_score)
        if f_weak and b_weak:
            t = (frame - first) / (last - first)
            box = Box(*((1 - t) * u + t * v for u, v in zip(first_box.as_tuple(), last_box.as_tuple())))
            decisions.append(FillDecision(frame, "interpolated", box))
            continue
        if b_weak or (not f_weak and (f.max_score > b.max_score or (
                f.max_score == b.max_score and frame - first <= last - frame))):
            decisions.append(FillDecision(frame, "forward", f.box, f))
        else:
            decisions.append(FillDecision(frame, "backward", b.box, b))
    return decisions


class FillRun(QObject):
    """Forward from keyframe ``first``, backward from keyframe ``last``, then the merge: one undo step.

    finished(status_line): the fill is over (written, or stopped with nothing changed).
    """

    finished = Signal(str)

    def __init__(self, controller, document: Document, undo_stack: QUndoStack, object_id: int, first: int,
                 last: int, options, min_score: float, parent: QObject | None = None):
        super().__init__(parent)
        self.controller, self.document, self.undo_stack = controller, document, undo_stack
        self.object_id, self.first, self.last = object_id, first, last
        self.options, self.min_score = options, min_score
        self.forward: dict[int, TrackResult] | None = None

    @classmethod
    def around(cls, document: Document, object_id: int, frame: int) -> tuple[int, int]:
        """The keyframes a fill from ``frame`` covers; ValueError with a message for the person."""
        state = document.state(object_id, frame)
        first = frame if state is not None and state.is_keyframe else document.previous_keyframe(object_id, frame)
        last = document.next_keyframe(object_id, first) if first is not None else None
        if first is None or last is None or last - first < 2:
            raise ValueError("Fill needs a keyframe before (or on) this frame and one after it, with frames "
                             "between them.")
        if any(s.flagged for _, s in document.states(object_id, first, last)):
            raise ValueError(f"Frames {first}–{last} have occluded or out-of-view flags: fill tracks only across "
                             f"visible spans.")
        return first, last

    def start(self) -> None:
        """Start the forward run (ValueError when it cannot start; nothing is connected then)."""
        self._run(self.first, 1)
        self.controller.runEnded.connect(self._run_ended)

    def _run(self, start: int, direction: int) -> None:
        spec = self.controller.plan(self.object_id, start, direction, self.last - self.first - 1, self.options)
        self.controller.start(spec, ReplacePolicy.UNTIL_KEYFRAME, collect=True)

    def _run_ended(self, reason: str, frames: int, fps: float) -> None:
        from .tracking_worker import FAILED, STOPPED

        if reason in (STOPPED, FAILED):
            self._finish("Fill stopped: nothing was changed.")
        elif self.forward is None:
            self.forward = dict(self.controller.last_collected)
            try:
                self._run(self.last, -1)
            except ValueError as exc:
                self._finish(str(exc))
        else:
            self._finish(self._write(dict(self.controller.last_collected)))

    def _write(self, backward: dict[int, TrackResult]) -> str:
        from .undo_commands import SnapshotCollector, SnapshotCommand

        doc, obj = self.document, self.object_id
        decisions = merge_bidirectional(self.first, self.last, doc.box(obj, self.first), doc.box(obj, self.last),
                                        self.forward, backward, self.min_score)
        collector = SnapshotCollector()
        with doc.batch():
            kept = [(d.frame, d.result) for d in decisions if d.result is not None]
            collector.add(doc.apply_tracked(obj, kept, ReplacePolicy.UNTIL_KEYFRAME, start=self.first))
            for d in decisions:
                if d.result is None:
                    collector.add(doc.set_box(obj, d.frame, d.box, Source.INTERPOLATED))
        if len(collector):
            self.undo_stack.push(SnapshotCommand(doc, f"Fill frames {self.first}–{self.last} both ways",
                                                 collector.snapshot()))
        counts = {kind: sum(d.kind == kind for d in decisions) for kind in ("forward", "backward", "interpolated")}
        return (f"Filled frames {self.first}–{self.last}: {counts['forward']} from the forward run, "
                f"{counts['backward']} from the backward run, {counts['interpolated']} interpolated where both "
                f"were weak.")

    def _finish(self, message: str) -> None:
        self.controller.runEnded.disconnect(self._run_ended)
        self.finished.emit(message)
