"""What a run writes into the document, and the stale-box rule.

Results are written as they come, in batches (:meth:`RunRecorder.apply`), never over a manual keyframe and never
across a flagged frame (``Document.apply_tracked``). Every state a run replaces is remembered, so that the whole
run is one undo step (:meth:`RunRecorder.snapshot`).

The stale-box rule (:meth:`RunRecorder.finish`): when a run that started from a person's box (a correction, or a
keyframe) ends, however it ends, the boxes that earlier runs tracked beyond its last frame, in its direction, up
to the next manual keyframe or flagged frame, are marked stale (a run that passed a keyframe on the way, under
TO_END, leaves them alone: they came from that keyframe). Those boxes were tracked from the box the person
has just replaced (or from a chain that went wrong before it), so they cannot be trusted: the app shows them as
stale, exports leave them out, and a person may keep them (``Document.keep_stale``) or re-track over them. The
marking is part of the run's undo step, so one undo restores them as they were. Runs that continue from the
tracker's own last box (a pause and continue) leave later boxes alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..annotation import Document
from ..annotation.snapshot import Snapshot, SnapshotCollector
from .plan import RunSpec


def stale_range(document: Document, spec: RunSpec, last_frame: int) -> tuple[int, int] | None:
    """The frames (first, last; inclusive, in frame order) whose tracked boxes the rule marks stale after a run
    of ``spec`` that ended at ``last_frame`` (its start frame when it tracked nothing); None when there are none.
    """
    if not spec.start_is_manual:
        return None
    step = 1 if spec.direction > 0 else -1
    if any(0 < (f - spec.start_frame) * step <= (last_frame - spec.start_frame) * step for f in spec.manual_boxes):
        return None  # it re-anchored on a keyframe on the way (TO_END): what lies beyond came from that keyframe
    frame = last_frame + step
    end = None
    states = document.object(spec.object_id).states
    bound = document.num_frames if document.num_frames else (max(states, default=-1) + 1)
    while 0 <= frame < bound:
        state = states.get(frame)
        if state is not None and (state.is_keyframe or state.flagged):
            break
        end = frame
        frame += step
    if end is None:
        return None
    return tuple(sorted((last_frame + step, end)))


class RunRecorder:
    """Writes one run's results into ``document`` and collects what they replaced (one undo step)."""

    def __init__(self, document: Document, spec: RunSpec):
        self.document = document
        self.spec = spec
        self.frames = 0
        self.last_frame = spec.start_frame
        self._collector = SnapshotCollector()

    def apply(self, results: Iterable) -> Snapshot:
        """Write ``(frame, TrackResult)`` pairs, in the run's order, in one batch of document events."""
        results = list(results)
        if not results:
            return Snapshot()
        with self.document.batch():
            snapshot = self.document.apply_tracked(self.spec.object_id, results, self.spec.policy,
                                                   start=self.spec.start_frame)
        self._collector.add(snapshot)
        self.frames += len(results)
        self.last_frame = results[-1][0]
        return snapshot

    def finish(self, last_frame: int | None = None) -> Snapshot:
        """The run ended (at ``last_frame``, by default the last one applied): apply the stale-box rule."""
        last = self.last_frame if last_frame is None else last_frame
        span = stale_range(self.document, self.spec, last)
        if span is None:
            return Snapshot()
        snapshot = self.document.mark_stale(self.spec.object_id, *span)
        self._collector.add(snapshot)
        return snapshot

    @property
    def changed(self) -> bool:
        return len(self._collector) > 0

    def snapshot(self) -> Snapshot:
        """The states before the run, of every frame it changed (restore it to undo the run)."""
        return self._collector.snapshot()
