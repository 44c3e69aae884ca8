"""Bidirectional fill between two keyframes: track forward from the first and backward from the second, then
keep, frame by frame, the more confident of the two results, and interpolate where both are weak.

Qt-free: the window runs the two tracking runs (collecting their results instead of writing them) and hands
them here; the merge decides every frame between the keyframes, and the window writes it as one undo step.
"""

from __future__ import annotations

from dataclasses import dataclass

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
