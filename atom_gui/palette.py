"""Colours of the tracker states and annotation sources, shared by the box, the timeline and the legends.

One place for them so that "orange" means hard negative on the box, on the strip and in the cheat sheet alike.
"""

from __future__ import annotations

from PySide6.QtGui import QColor

from tracker_core.result import Status

STATUS_COLORS: dict[Status, str] = {
    Status.NORMAL: "#3ddc84",  # green: the classifier is sure
    Status.UNCERTAIN: "#ffd33d",  # yellow: a flat peak
    Status.HARD_NEGATIVE: "#ff8c1a",  # orange: a distractor close to the peak
    Status.NOT_FOUND: "#ff3b3b",  # red: the target is lost
}
MANUAL_COLOR = "#4da3ff"  # blue: a person drew or corrected this box (a keyframe)
INTERPOLATED_COLOR = "#b48cff"  # violet: filled between keyframes
STALE_COLOR = "#a0522d"  # brown: an earlier run's box past a correction, left out of exports until kept
OCCLUDED_COLOR = "#8a8a8a"
OUT_OF_VIEW_COLOR = "#5a5a5a"
EMPTY_COLOR = "#262a30"
LOW_CONFIDENCE_COLOR = "#ff3b3b"
CURRENT_FRAME_COLOR = "#ffffff"
MAX_SCORE_CURVE_COLOR = "#ffd33d"
IOU_CURVE_COLOR = "#35c7ff"


def qcolor(hex_color: str, alpha: int = 255) -> QColor:
    """A QColor from ``#rrggbb`` with an alpha in 0..255."""
    color = QColor(hex_color)
    color.setAlpha(alpha)
    return color
STATUS_COLORS_BY_NAME: dict[str, str] = {status.value: color for status, color in STATUS_COLORS.items()}
