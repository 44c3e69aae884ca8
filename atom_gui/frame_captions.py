"""How one frame's state reads on screen: the box colour, the label over the box, the status-bar line."""

from __future__ import annotations

from tracker_core.annotation import Source
from tracker_core.result import Status

from . import palette


def state_color(state) -> str:
    """Manual blue, interpolated violet, tracked by status (green, yellow, orange, red)."""
    if state is None or state.source is None:
        return palette.MANUAL_COLOR
    if state.source is Source.MANUAL:
        return palette.MANUAL_COLOR
    if state.source is Source.INTERPOLATED:
        return palette.INTERPOLATED_COLOR
    if state.stale:
        return palette.STALE_COLOR
    try:
        return palette.STATUS_COLORS[Status(state.status)]
    except ValueError:
        return palette.STATUS_COLORS[Status.NORMAL]


def box_caption(label: str, state) -> str:
    if state.stale:
        return f"{label} · stale"
    if state.source is Source.TRACKED and state.score is not None:
        return f"{label} · {state.score:.2f}"
    return label


def frame_caption(frame: int, num_frames: int, label: str, state) -> str:
    text = f"Frame {frame} / {num_frames - 1} · {label}: "
    if state is None:
        return text + "no box"
    parts = []
    if state.source is not None:
        parts.append(state.source.value if state.source is not Source.MANUAL else "keyframe")
    if state.stale:
        parts.append("stale: not exported (Shift+K keeps it)")
    elif state.status and state.source is Source.TRACKED:
        parts.append(state.status.replace("_", " "))
    if state.score is not None:
        parts.append(f"score {state.score:.2f}")
    if state.iou is not None:
        parts.append(f"IoU {state.iou:.2f}")
    if state.occluded:
        parts.append("occluded")
    if state.out_of_view:
        parts.append("out of view")
    return text + (", ".join(parts) or "no box")

