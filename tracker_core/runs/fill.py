"""Bidirectional fill between two keyframes: track forward from the first and backward from the second, then
keep, frame by frame, the more confident of the two results, and interpolate where both are weak.

The two runs are ordinary runs (:mod:`.loop`) whose results are kept aside; :func:`write_fill` writes the merge
into the document. Each kept box is written with the score, IoU and status of the pass it came from, and the
decisions carry that pass's result, so that the evidence shown for a frame is the evidence of its box.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..annotation import Document, ReplacePolicy, Source
from ..annotation.snapshot import Snapshot, SnapshotCollector
from ..boxes import Box
from ..result import Status, TrackResult

FORWARD, BACKWARD, INTERPOLATED = "forward", "backward", "interpolated"


@dataclass(frozen=True)
class FillDecision:
    """One frame of a fill: ``kind`` is FORWARD or BACKWARD (that pass's ``result`` kept) or INTERPOLATED."""

    frame: int
    kind: str
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
            decisions.append(FillDecision(frame, INTERPOLATED, box))
            continue
        if b_weak or (not f_weak and (f.max_score > b.max_score or (
                f.max_score == b.max_score and frame - first <= last - frame))):
            decisions.append(FillDecision(frame, FORWARD, f.box, f))
        else:
            decisions.append(FillDecision(frame, BACKWARD, b.box, b))
    return decisions


def fill_range(document: Document, object_id: int, frame: int) -> tuple[int, int]:
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


def write_fill(document: Document, object_id: int, first: int, last: int, forward: dict[int, TrackResult],
               backward: dict[int, TrackResult], min_score: float) -> tuple[list[FillDecision], Snapshot]:
    """Merge the two passes and write the merge (one batch of events); returns the decisions and the snapshot
    of the states it replaced (one undo step)."""
    decisions = merge_bidirectional(first, last, document.box(object_id, first), document.box(object_id, last),
                                    forward, backward, min_score)
    collector = SnapshotCollector()
    with document.batch():
        kept = [(d.frame, d.result) for d in decisions if d.result is not None]
        collector.add(document.apply_tracked(object_id, kept, ReplacePolicy.UNTIL_KEYFRAME, start=first))
        for d in decisions:
            if d.result is None:
                collector.add(document.set_box(object_id, d.frame, d.box, Source.INTERPOLATED))
    return decisions, collector.snapshot()
