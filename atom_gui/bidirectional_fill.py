"""Bidirectional fill between two keyframes (B), driven from the GUI thread: a thin Qt face of
``tracker_core.runs.fill``.

:class:`FillRun` runs the two collecting runs (forward from the first keyframe, backward from the second)
through the tracking controller, then writes the merge (``write_fill``) as one undo step, and keeps as the
frames' evidence the results of the pass whose box was kept.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from tracker_core.annotation import Document, ReplacePolicy
from tracker_core.result import TrackResult
from tracker_core.runs import FAILED, STOPPED, FillDecision, fill_range, is_weak, merge_bidirectional, write_fill

from .undo_commands import SnapshotCommand

__all__ = ["FillDecision", "FillRun", "is_weak", "merge_bidirectional"]  # the GUI's names for the core's


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
        return fill_range(document, object_id, frame)

    def start(self) -> None:
        """Start the forward run (ValueError when it cannot start; nothing is connected then)."""
        self._run(self.first, 1)
        self.controller.runEnded.connect(self._run_ended)

    def _run(self, start: int, direction: int) -> None:
        spec = self.controller.plan(self.object_id, start, direction, self.last - self.first - 1, self.options)
        self.controller.start(spec, ReplacePolicy.UNTIL_KEYFRAME, collect=True)

    def _run_ended(self, reason: str, frames: int, fps: float) -> None:
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
        doc, obj = self.document, self.object_id
        decisions, snapshot = write_fill(doc, obj, self.first, self.last, self.forward, backward, self.min_score)
        for d in decisions:  # the evidence shown for a frame is that of the pass whose box was kept
            if d.result is not None:
                self.controller.evidence.put(obj, d.frame, d.result)
        if not snapshot.is_empty():
            self.undo_stack.push(SnapshotCommand(doc, f"Fill frames {self.first}–{self.last} both ways", snapshot))
        counts = {kind: sum(d.kind == kind for d in decisions) for kind in ("forward", "backward", "interpolated")}
        return (f"Filled frames {self.first}–{self.last}: {counts['forward']} from the forward run, "
                f"{counts['backward']} from the backward run, {counts['interpolated']} interpolated where both "
                f"were weak.")

    def _finish(self, message: str) -> None:
        self.controller.runEnded.disconnect(self._run_ended)
        self.finished.emit(message)
