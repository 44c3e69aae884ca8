"""What a tracking run is, and where the document's rules make it stop.

A run tracks one object frame by frame from a start box in one direction. It never writes over a manual
keyframe (under UNTIL_KEYFRAME it ends before the next one; under TO_END it re-anchors there and goes on), never
tracks through a flagged frame (occluded or out of view), and may be capped to N frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..annotation import Document, ReplacePolicy, Source
from ..boxes import Box
from ..trackers import TrackerSpec

# Why a run ended (the app words its status line from these; `atom track` its warnings and exit code).
END_OF_RANGE = "end"  # it reached its stop frame
STOPPED = "stopped"  # a person (or a signal) stopped it
FLAGGED = "flagged"  # the next frame is flagged occluded or out of view
KEYFRAME = "keyframe"  # the next frame is a manual keyframe (UNTIL_KEYFRAME)
LOW_CONFIDENCE = "low confidence"  # auto-pause: the last result's max score fell under the threshold
UNREADABLE = "unreadable frame"  # the next frame cannot be decoded (a truncated video, a damaged image)
FAILED = "failed"  # an exception ended it


@dataclass(frozen=True)
class RunOptions:
    """The settings a run depends on (the app fills this from its settings, `atom track` from its options)."""

    tracker: TrackerSpec = field(default_factory=TrackerSpec)
    replace_policy: ReplacePolicy = ReplacePolicy.UNTIL_KEYFRAME
    pause_below: float | None = None  # auto-pause under this max score (None: off)


@dataclass(frozen=True)
class RunSpec:
    """One tracking run for one object.

    start_frame/start_box: where the tracker starts (already annotated; never re-emitted).
    stop_frame: the last frame to track, inclusive, in the run's direction.
    start_is_manual: the start box is a person's box (a correction), not the tracker's own last result. When
        such a run ends, the boxes earlier runs tracked beyond it are marked stale (:mod:`.writing`).
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

    @property
    def policy(self) -> ReplacePolicy:
        return ReplacePolicy.UNTIL_KEYFRAME if self.stop_at_keyframe else ReplacePolicy.TO_END

    @property
    def frames_asked(self) -> int:
        """How many frames the run would track if nothing stopped it early (keyframes on the way excluded)."""
        return abs(self.stop_frame - self.start_frame) - sum(
            1 for f in self.manual_boxes if min(self.start_frame, self.stop_frame) <= f
            <= max(self.start_frame, self.stop_frame))


def plan_run(document: Document, object_id: int, frame: int, direction: int, max_frames: int | None,
             options: RunOptions, run_id: int = 0) -> RunSpec:
    """The run that "track from this frame" means now; raises ValueError with a message for the person."""
    state = document.state(object_id, frame)
    if state is None or state.box is None:
        raise ValueError(f"frame {frame} has no box for {document.object(object_id).label}: draw one first")
    if state.flagged:
        raise ValueError(f"frame {frame} is flagged occluded or out of view: clear the flag, or start "
                         f"from a frame where the object is visible")
    limit = document.tracking_limit(object_id, frame, direction, options.replace_policy)
    if limit is None or limit == frame:
        at_end = frame == (document.num_frames - 1 if direction > 0 else 0)
        what = "it is the video's last frame in this direction" if at_end else \
            "the next frame is a keyframe or is flagged occluded or out of view"
        raise ValueError(f"nothing to track from frame {frame}: {what}")
    end_reason = END_OF_RANGE
    after = limit + direction
    barrier = document.state(object_id, after) if 0 <= after < document.num_frames else None
    if barrier is not None and barrier.flagged:
        end_reason = FLAGGED
    elif barrier is not None and barrier.is_keyframe and options.replace_policy is ReplacePolicy.UNTIL_KEYFRAME:
        end_reason = KEYFRAME
    if max_frames is not None:
        capped = min(limit, frame + max_frames) if direction > 0 else max(limit, frame - max_frames)
        if capped != limit:
            limit, end_reason = capped, END_OF_RANGE
    lo, hi = sorted((frame + direction, limit))
    manual = {f: s.box for f, s in document.states(object_id, lo, hi) if s.source is Source.MANUAL}
    return RunSpec(run_id=run_id, object_id=object_id, start_frame=frame, start_box=state.box, stop_frame=limit,
                   direction=direction, start_is_manual=state.source is Source.MANUAL, manual_boxes=manual,
                   stop_at_keyframe=options.replace_policy is ReplacePolicy.UNTIL_KEYFRAME,
                   pause_below=options.pause_below, end_reason=end_reason, tracker=options.tracker)
