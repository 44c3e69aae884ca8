"""How one frame reads on screen: the boxes with their colours and labels, the hint, whether a drag draws, and
the status-bar line. Qt-free decisions (:func:`describe_frame`); the window hands the result to the frame view.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tracker_core.annotation import Document, Source
from tracker_core.boxes import Box
from tracker_core.result import Status

from . import palette


@dataclass(frozen=True)
class BoxOverlay:
    box: Box
    color: str
    caption: str = ""


@dataclass(frozen=True)
class FrameOverlay:
    """What the frame view shows on one frame.

    current: the current object's box, editable (None: none here, or flagged).
    flagged: its box on a frame flagged occluded or out of view: drawn dashed, not editable (the box LaSOT
    still exports there). others: the other objects' visible boxes. draw_mode: a plain drag draws a box (else
    it pans). hint: the line shown over the view ("" for none). status: the status-bar line.
    """

    current: BoxOverlay | None = None
    flagged: BoxOverlay | None = None
    others: list[BoxOverlay] = field(default_factory=list)
    draw_mode: bool = True
    hint: str = ""
    status: str = ""


def describe_frame(document: Document, frame: int, object_id: int | None, drawing: bool) -> FrameOverlay:
    """The overlay of ``frame`` with ``object_id`` current; ``drawing``: N was pressed (the next drag draws)."""
    last = document.num_frames - 1
    if object_id is None:  # every object deleted: nothing to show, a drag starts a new object
        return FrameOverlay(hint="Drag on the frame to draw the box of a new object, then press Space to track",
                            status=f"Frame {frame} / {last} · no object")
    others = []
    for obj in document.objects():
        state = document.state(obj.id, frame)
        if obj.id != object_id and state is not None and state.box is not None and not state.flagged:
            others.append(BoxOverlay(state.box, state_color(state), obj.label))
    state = document.state(object_id, frame)
    label = document.object(object_id).label
    current = flagged = None
    if state is not None and state.box is not None:
        if state.flagged:
            what = "occluded" if state.occluded else "out of view"
            flagged = BoxOverlay(state.box, palette.OCCLUDED_COLOR, f"{label} · {what} (box kept for export)")
        else:
            current = BoxOverlay(state.box, state_color(state), box_caption(label, state))
    # A drag draws a box wherever this object shows none (its first box, a frame the tracker has not reached,
    # a flagged frame) or after N; on a box it moves the box, elsewhere it pans (Shift+drag always draws).
    draw_mode = drawing or current is None
    if current is None and not document.frames(object_id):
        hint = f"Drag on the frame to draw the box around {label}, then press Space to track"
    elif drawing:
        hint = f"Drag on the frame to draw the box of {label}"
    elif current is None and flagged is None:
        hint = f"No box for {label} on this frame: drag to draw one"
    else:
        hint = ""
    return FrameOverlay(current, flagged, others, draw_mode, hint, frame_caption(frame, last + 1, label, state))


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



def why_no_evidence(state) -> str:
    """What the evidence panels say on a frame without a tracker result, from its state."""
    if state is not None and state.flagged:
        return "This frame is flagged " + ("occluded" if state.occluded else "out of view")
    if state is None or state.box is None:
        return "Not tracked: no box on this frame"
    if state.source is Source.MANUAL:
        return "A keyframe: a person's box, no tracker evidence"
    if state.source is Source.INTERPOLATED:
        return "Interpolated between keyframes: no tracker evidence"
    return "Tracked earlier: its evidence is no longer kept (only recent frames' are)"
