"""The one box convention of the project, and the conversions at its edges.

Inside the code a box is always ``(x, y, w, h)`` as floats in 0-based pixel coordinates, ``(x, y)`` being the
top-left corner of the box and ``(x + w, y + h)`` its bottom-right corner (continuous coordinates: a box covering
pixel column 0 only is ``x=0, w=1``).  The centre is therefore ``(x + w/2, y + h/2)``.

Files use other conventions (1-based integers in LaSOT/OTB, polygons in VOT, x1y1x2y2 in CVAT); convert with the
helpers below at the edges and nowhere else.  The same convention on torch tensors is in ``box_tensors.py``, so
that this module (and the annotation layer above it) needs numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# No image is wider or taller than this (2**24, where float32 still counts single pixels): coordinates beyond it are
# damage (1e300 would reach exports as "inf", which no reader takes back).
MAX_COORDINATE = float(2**24)


@dataclass(frozen=True)
class Box:
    """A float (x, y, w, h) box, 0-based, top-left corner."""

    x: float
    y: float
    w: float
    h: float

    def __post_init__(self) -> None:
        # Always plain Python floats: numpy or torch scalars would leak into JSON writers and comparisons.
        for name in ("x", "y", "w", "h"):
            v = getattr(self, name)
            if type(v) is not float:
                object.__setattr__(self, name, float(v))

    @classmethod
    def from_seq(cls, values: Sequence[float]) -> Box:
        if len(values) != 4:
            raise ValueError(f"a box needs 4 values (x, y, w, h), got {len(values)}")
        return cls(*(float(v) for v in values))

    @classmethod
    def from_center(cls, cx: float, cy: float, w: float, h: float) -> Box:
        return cls(cx - w / 2, cy - h / 2, w, h)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)

    @property
    def area(self) -> float:
        return max(self.w, 0.0) * max(self.h, 0.0)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.w, self.h)

    def as_array(self) -> np.ndarray:
        return np.array(self.as_tuple(), dtype=np.float64)

    def is_valid(self) -> bool:
        """Finite, a positive width and height, and within +-MAX_COORDINATE pixels (see :func:`box_problem`)."""
        return box_problem(self) is None

    def clipped(self, width: int, height: int) -> Box:
        """The part of the box inside a ``width x height`` image (may be empty: w or h == 0)."""
        x1, y1 = min(max(self.x, 0.0), width), min(max(self.y, 0.0), height)
        x2, y2 = min(max(self.x + self.w, 0.0), width), min(max(self.y + self.h, 0.0), height)
        return Box(x1, y1, x2 - x1, y2 - y1)

    def __iter__(self):
        return iter(self.as_tuple())


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Continuous IoU of two xywh boxes; 0 when either is empty."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    if aw <= 0 or ah <= 0 or bw <= 0 or bh <= 0:
        return 0.0
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise IoU of two (N, 4) xywh arrays (broadcasting), 0 for empty boxes. Returns (N,)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    iw = np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    ih = np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = np.clip(a[..., 2], 0, None) * np.clip(a[..., 3], 0, None)
    area_b = np.clip(b[..., 2], 0, None) * np.clip(b[..., 3], 0, None)
    union = area_a + area_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    valid = (a[..., 2] > 0) & (a[..., 3] > 0) & (b[..., 2] > 0) & (b[..., 3] > 0)
    return np.where(valid, out, 0.0)


def center_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance between the centres of (N, 4) xywh boxes. Returns (N,)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ca = a[..., :2] + a[..., 2:] / 2
    cb = b[..., :2] + b[..., 2:] / 2
    return np.linalg.norm(ca - cb, axis=-1)


# ---- edges: file conventions ------------------------------------------------------------------------------

def from_one_based(values: Sequence[float]) -> Box:
    """A box read from a 1-based file (LaSOT, OTB, GOT-10k: x, y of the top-left pixel, 1-based)."""
    x, y, w, h = (float(v) for v in values)
    return Box(x - 1.0, y - 1.0, w, h)


def to_one_based(box: Sequence[float], integer: bool = True) -> tuple:
    """A box for a 1-based file; rounded to integers when ``integer`` (LaSOT's convention)."""
    x, y, w, h = (float(v) for v in box)
    if integer:
        return (int(round(x + 1.0)), int(round(y + 1.0)), int(round(w)), int(round(h)))
    return (x + 1.0, y + 1.0, w, h)


def box_problem(box: Box) -> str | None:
    """Why ``box`` is not a usable box (a sentence for a message), or None when it is one."""
    values = box.as_tuple()
    if not all(math.isfinite(v) for v in values):
        return "the box needs finite numbers"
    if box.w <= 0 or box.h <= 0:
        return "the box needs a positive width and height"
    if max(abs(box.x), abs(box.y), box.x + box.w, box.y + box.h, -box.x - box.w, -box.y - box.h) > MAX_COORDINATE:
        return f"the box reaches beyond {MAX_COORDINATE:.0f} pixels, larger than any image"
    return None


def polygon_to_box(poly: Sequence[float]) -> Box:
    """Axis-aligned bounding box of a VOT polygon (x1, y1, ..., x4, y4), already in 0-based pixels."""
    xs = [float(v) for v in poly[0::2]]
    ys = [float(v) for v in poly[1::2]]
    return Box(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


def parse_box_arg(text: str) -> Box:
    """Parse ``"x,y,w,h"`` (0-based pixels) from the command line; raises ValueError with a clear message."""
    parts = [p for p in text.replace(" ", "").split(",") if p != ""]
    if len(parts) != 4:
        raise ValueError(f"expected x,y,w,h (four numbers separated by commas), got {text!r}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"expected x,y,w,h as numbers, got {text!r}") from None
    box = Box.from_seq(values)
    problem = box_problem(box)
    if problem is not None:
        raise ValueError(f"{text!r}: {problem}")
    return box
