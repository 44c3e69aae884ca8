"""What the document knows about one object in one frame, and the vocabulary around it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum

from ..boxes import Box, box_problem


class Source(str, Enum):
    """Where a frame's box came from."""

    MANUAL = "manual"  # drawn or corrected by a person: a keyframe, never overwritten by the tracker
    TRACKED = "tracked"  # written by a tracker run
    INTERPOLATED = "interpolated"  # linear interpolation between two manual keyframes


class Flag(str, Enum):
    """Per-frame visibility flags (LaSOT's full_occlusion / out_of_view, CVAT's occluded / outside)."""

    OCCLUDED = "occluded"
    OUT_OF_VIEW = "out_of_view"


@dataclass(frozen=True)
class FrameState:
    """One object's state in one frame.

    box: the box in our convention (float xywh, 0-based), or None (only flags or a status are known).
    source: how the box was made; None exactly when ``box`` is None.
    score / iou: the tracker's max classifier score and predicted IoU (None when unknown, e.g. manual boxes).
    occluded / out_of_view: visibility flags; they are authoritative over the box (a flagged frame may keep a
        stale box so that clearing the flag gives it back).
    status: the tracker's verdict string (``tracker_core.result.Status`` values), or None.
    stale: a tracked box that an earlier run made and a later correction left behind (see
        ``tracker_core.runs.writing``): shown as such and left out of exports until a person keeps it.
    """

    box: Box | None = None
    source: Source | None = None
    score: float | None = None
    iou: float | None = None
    occluded: bool = False
    out_of_view: bool = False
    status: str | None = None
    stale: bool = False

    def __post_init__(self) -> None:
        # Keep the invariant "source iff box" so that keyframe and span queries never meet a half state.
        if (self.box is None) != (self.source is None):
            raise ValueError("a frame state has a source exactly when it has a box")
        if self.source is not None and not isinstance(self.source, Source):
            object.__setattr__(self, "source", Source(self.source))
        if self.stale and self.source is not Source.TRACKED:
            raise ValueError("only a tracked box can be stale")

    @property
    def exported_box(self) -> Box | None:
        """The box that exports write: none for a stale box (a person has not kept it)."""
        return None if self.stale else self.box

    @property
    def is_empty(self) -> bool:
        """True when the state says nothing (the document then stores no entry for the frame)."""
        return self.box is None and not self.occluded and not self.out_of_view and self.status is None

    @property
    def flagged(self) -> bool:
        return self.occluded or self.out_of_view

    @property
    def is_keyframe(self) -> bool:
        return self.source is Source.MANUAL

    def flag(self, flag: Flag) -> bool:
        return self.occluded if Flag(flag) is Flag.OCCLUDED else self.out_of_view

    def with_flag(self, flag: Flag, value: bool) -> FrameState:
        if Flag(flag) is Flag.OCCLUDED:
            return replace(self, occluded=bool(value))
        return replace(self, out_of_view=bool(value))

    def without_box(self) -> FrameState:
        return replace(self, box=None, source=None, score=None, iou=None, stale=False)


def as_box(value: Box | Sequence[float]) -> Box:
    """A Box from a Box or any 4-sequence; raises ValueError unless it is a usable box (``boxes.box_problem``)."""
    # Always rebuild: a Box may hold numpy scalars (np.int64 is not JSON-serialisable), Box.from_seq makes floats.
    box = Box.from_seq(tuple(value))
    problem = box_problem(box)
    if problem is not None:
        raise ValueError(f"{problem}, got {box.as_tuple()}")
    return box


def optional_float(value: float | None, name: str) -> float | None:
    """A finite float or None; raises ValueError for NaN/inf (they cannot be saved as JSON)."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value
