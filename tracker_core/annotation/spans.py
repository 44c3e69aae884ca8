"""Runs of frames of one kind, for the timeline strip."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from .frame_state import FrameState, Source

# ATOM's own not-found threshold on the classifier's max score (tracker_core.config) and a predicted IoU below
# which the IoU-Net doubts its box.
DEFAULT_MIN_SCORE = 0.25
DEFAULT_MIN_IOU = 0.5
LOW_CONFIDENCE_STATUSES = frozenset({"not_found", "uncertain"})


class SpanKind(str, Enum):
    """A frame's kind on the timeline; the two flag kinds are the "flagged" spans."""

    MANUAL = "manual"
    TRACKED = "tracked"
    INTERPOLATED = "interpolated"
    LOW_CONFIDENCE = "low_confidence"  # tracked frames below the thresholds
    STALE = "stale"  # tracked by an earlier run and left behind by a correction (FrameState.stale)
    OCCLUDED = "occluded"
    OUT_OF_VIEW = "out_of_view"

    @property
    def is_flag(self) -> bool:
        return self in (SpanKind.OCCLUDED, SpanKind.OUT_OF_VIEW)


@dataclass(frozen=True)
class Span:
    """Frames ``first..last`` (inclusive) of one kind."""

    kind: SpanKind
    first: int
    last: int

    def __len__(self) -> int:
        return self.last - self.first + 1


def is_low_confidence(
    state: FrameState, min_score: float = DEFAULT_MIN_SCORE, min_iou: float = DEFAULT_MIN_IOU
) -> bool:
    """A tracked box the tracker itself doubts: low max score, low predicted IoU, or a not-found/uncertain
    verdict. Manual and interpolated boxes are never low-confidence (a person chose them)."""
    if state.source is not Source.TRACKED:
        return False
    if state.score is not None and state.score < min_score:
        return True
    if state.iou is not None and state.iou < min_iou:
        return True
    return state.status in LOW_CONFIDENCE_STATUSES


def frame_kind(state: FrameState, min_score: float = DEFAULT_MIN_SCORE, min_iou: float = DEFAULT_MIN_IOU):
    """The timeline kind of one frame, or None for a state with neither box nor flag.

    Precedence: out of view, occluded (flags are authoritative), manual, stale, low confidence, tracked,
    interpolated.
    """
    if state.out_of_view:
        return SpanKind.OUT_OF_VIEW
    if state.occluded:
        return SpanKind.OCCLUDED
    if state.source is None:
        return None
    if state.source is Source.MANUAL:
        return SpanKind.MANUAL
    if state.stale:
        return SpanKind.STALE
    if is_low_confidence(state, min_score, min_iou):
        return SpanKind.LOW_CONFIDENCE
    return SpanKind.TRACKED if state.source is Source.TRACKED else SpanKind.INTERPOLATED


def compute_spans(
    states: Iterable[tuple[int, FrameState]], min_score: float = DEFAULT_MIN_SCORE, min_iou: float = DEFAULT_MIN_IOU
) -> list[Span]:
    """Spans from ``(frame, state)`` pairs sorted by frame; a frame without state ends a span."""
    spans: list[Span] = []
    kind, first, last = None, -1, -1
    for frame, state in states:
        this = frame_kind(state, min_score, min_iou)
        if this is not None and this is kind and frame == last + 1:
            last = frame
            continue
        if kind is not None:
            spans.append(Span(kind, first, last))
        kind, first, last = this, frame, frame
    if kind is not None:
        spans.append(Span(kind, first, last))
    return spans
