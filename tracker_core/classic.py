"""OpenCV's classic trackers (CSRT, KCF, MIL) behind the interface of the ATOM tracker.

``ClassicTracker(kind)`` has ``initialize(frame, box)``, ``track(frame) -> TrackResult`` and
``update_with_box(frame, box)``; frames are (H, W, 3) uint8 RGB and boxes are the project's float xywh
(``tracker_core.boxes``). Everything OpenCV-specific stays in this module: BGR frames, integer rectangles, the
API differences between OpenCV versions, and the inputs on which some trackers crash or hang.

OpenCV's trackers work on integer rectangles. To keep the caller's float box through that edge, the tracker
remembers the box it was given (after clipping to the image) relative to the integer rectangle that OpenCV
tracks, and maps every rectangle OpenCV returns back: same centre offset and size, both scaled by the change in
OpenCV's rectangle size (only CSRT changes scale). The same mapping lets a box below ``MIN_SIDE`` pixels be
tracked through a larger rectangle around it: MIL hangs inside OpenCV on tiny boxes (4x4 or 1xN pixels) and
CSRT fails on 1x1, and the context helps the others too.

Determinism: MIL draws its Haar features with the C library's ``rand()`` (not OpenCV's RNG), so the C
generator is seeded with ``srand`` (through ctypes) before every init and update, along with OpenCV's own
generator; one sequence then gives the same boxes run after run. Both generators are process or thread state
shared with other native code, which re-seeding does not harm (Python, NumPy and PyTorch do not use them).
Where the C library cannot be reached the tracker still works, only MIL is not repeatable. CSRT and KCF have
no randomness. Use one ClassicTracker per thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import sys
import time
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from .boxes import Box
from .errors import AtomError
from .result import Status, TrackResult

__all__ = ["KINDS", "MIN_SIDE", "ClassicTracker", "ClassicTrackerUnavailable", "available_kinds"]

MIN_SIDE = 10  # smallest side, in pixels, of the rectangle handed to OpenCV (see the module docstring)
_SEED = 0
_CLASS_NAMES = {"csrt": "TrackerCSRT", "kcf": "TrackerKCF", "mil": "TrackerMIL"}
KINDS = tuple(_CLASS_NAMES)  # the names of the classic trackers (tracker_core.trackers.CLASSIC_NAMES)


class ClassicTrackerUnavailable(AtomError):
    """The installed OpenCV lacks the requested tracker (CSRT and KCF need the contrib build)."""


def _find_factory(kind: str) -> tuple[Callable[[], object], bool] | None:
    """The constructor of OpenCV's tracker ``kind`` and whether it is the legacy API, or None.

    OpenCV 4.5.1+ and 5 expose ``cv2.TrackerX_create`` (integer rectangles); some builds only have
    ``cv2.TrackerX.create``; OpenCV 4.5-4.x contrib also keeps ``cv2.legacy.TrackerX_create`` (float
    rectangles, ``init`` returning a bool), which is used only when the current API is missing.
    """
    name = _CLASS_NAMES[kind]
    legacy = getattr(cv2, "legacy", None)
    for module, is_legacy in ((cv2, False), (legacy, True)):
        if module is None:
            continue
        factory = getattr(module, f"{name}_create", None)
        if factory is None:
            factory = getattr(getattr(module, name, None), "create", None)
        if factory is not None:
            return factory, is_legacy
    return None


_srand: Callable[[int], object] | None | bool = None  # resolved on first use; False when unavailable


def _seed_generators() -> None:
    """Seed OpenCV's RNG and the C library's rand() (see the module docstring)."""
    global _srand
    cv2.setRNGSeed(_SEED)
    if _srand is None:
        try:
            if sys.platform == "win32":
                libc = ctypes.CDLL("ucrtbase")  # the runtime OpenCV's Windows wheels link against
            else:
                libc = ctypes.CDLL(ctypes.util.find_library("c"))
            _srand = libc.srand
            _srand.argtypes = [ctypes.c_uint]
            _srand.restype = None
        except (OSError, AttributeError, TypeError):
            _srand = False
    if _srand:
        _srand(_SEED)


def available_kinds() -> tuple[str, ...]:
    """The kinds the installed OpenCV provides, in the order of ``KINDS``."""
    return tuple(k for k in KINDS if _find_factory(k) is not None)


def _to_bgr(frame: np.ndarray) -> np.ndarray:
    """A contiguous BGR uint8 copy of an RGB (H, W, 3) or grey (H, W) frame."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB images, got dtype {frame.dtype}")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise ValueError(f"frames must be (H, W, 3) RGB images, got shape {frame.shape}")
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_RGBA2BGR)
    return cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)


def _cv_rect(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """The integer rectangle given to OpenCV for ``box`` (already inside the image): rounded edges, at least
    ``MIN_SIDE`` pixels a side (grown around the centre, shifted to stay inside the image)."""
    x1, y1 = round(box.x), round(box.y)
    x2, y2 = round(box.x + box.w), round(box.y + box.h)
    out = []
    for lo, hi, limit in ((x1, x2, width), (y1, y2, height)):
        side = max(hi - lo, 1)
        if side < MIN_SIDE:
            side = min(MIN_SIDE, limit)
            lo = round((lo + hi) / 2 - side / 2)
        lo = min(max(lo, 0), limit - side)
        out.append((lo, side))
    (x, w), (y, h) = out
    return (x, y, w, h)


class ClassicTracker:
    """One of OpenCV's CSRT, KCF or MIL trackers with the project's tracker interface.

    ``name`` is the kind (``"csrt"``, ``"kcf"`` or ``"mil"``). ``track`` reports ``Status.NOT_FOUND`` and keeps
    the last box when OpenCV says it lost the target; ``max_score`` is OpenCV's own confidence when its build
    reports one (``getTrackingScore`` returning a value in [0, 1]), else 1.0 on success and 0.0 on failure.
    """

    # What update_with_box does with a correction, reported like AtomTracker's config.correction_policy: OpenCV
    # trackers cannot learn from a corrected box, so they start over on it.
    correction_policy = "reinitialize"

    def __init__(self, kind: str = "csrt") -> None:
        kind = str(kind).lower().strip()
        if kind not in KINDS:
            raise ValueError(f"unknown classic tracker {kind!r}; choose one of {', '.join(KINDS)}")
        found = _find_factory(kind)
        if found is None:
            raise ClassicTrackerUnavailable(
                f"this OpenCV ({cv2.__version__}) has no {kind.upper()} tracker; "
                f"install opencv-contrib-python-headless")
        self.name = kind
        self.kind = kind
        self._factory, self._legacy = found
        self._tracker = None
        self._box: Box | None = None  # the last reported box
        # The mapping from OpenCV's rectangle to ours, fixed at initialisation (see the module docstring).
        self._cv_size0 = (1.0, 1.0)
        self._ref_size = (1.0, 1.0)
        self._ref_offset = (0.0, 0.0)
        self._frame_size: tuple[int, int] | None = None

    @property
    def initialized(self) -> bool:
        return self._tracker is not None

    @property
    def box(self) -> Box | None:
        """The last box (from initialisation or tracking), None before ``initialize``."""
        return self._box

    def initialize(self, frame: np.ndarray, box: Box | Sequence[float]) -> None:
        """Start tracking ``box`` (float xywh, image pixels) in ``frame`` ((H, W, 3) uint8 RGB).

        The box is clipped to the image; a box that does not overlap the image raises ValueError.
        """
        bgr = _to_bgr(frame)
        height, width = bgr.shape[:2]
        box = box if isinstance(box, Box) else Box.from_seq(box)
        if not box.is_valid():
            raise ValueError(f"the box {box.as_tuple()} must have a finite position and a positive size")
        # Clip only when needed: clipping recomputes w and h and would change the caller's floats.
        inside = box.x >= 0 and box.y >= 0 and box.x + box.w <= width and box.y + box.h <= height
        clipped = box if inside else box.clipped(width, height)
        if clipped.w <= 0 or clipped.h <= 0:
            raise ValueError(f"the box {box.as_tuple()} lies outside the {width}x{height} image")
        if width < MIN_SIDE or height < MIN_SIDE:
            raise ValueError(f"the image ({width}x{height}) is too small to track in")
        rect = _cv_rect(clipped, width, height)

        tracker = self._factory()
        _seed_generators()
        try:
            ok = tracker.init(bgr, rect)
        except cv2.error as e:
            raise ValueError(self._init_failure(rect, width, height, e)) from None
        if self._legacy and ok is False:
            raise ValueError(self._init_failure(rect, width, height, None))

        self._tracker = tracker
        self._frame_size = (width, height)
        self._cv_size0 = (float(rect[2]), float(rect[3]))
        self._ref_size = (clipped.w, clipped.h)
        cx, cy = clipped.center
        self._ref_offset = (cx - (rect[0] + rect[2] / 2), cy - (rect[1] + rect[3] / 2))
        self._box = clipped

    def _init_failure(self, rect, width: int, height: int, error: Exception | None) -> str:
        detail = str(error).strip().splitlines()[-1] if error is not None else "init returned false"
        hint = ""
        if self.kind == "mil" and rect[2] * rect[3] > 0.5 * width * height:
            hint = " (MIL needs background around the target: the box covers most of the frame)"
        return f"{self.name.upper()} could not start on the box {rect} in a {width}x{height} image{hint}: {detail}"

    def track(self, frame: np.ndarray) -> TrackResult:
        """Locate the target in the next frame."""
        if self._tracker is None:
            raise RuntimeError("call initialize(frame, box) before track(frame)")
        t0 = time.perf_counter()
        bgr = _to_bgr(frame)
        height, width = bgr.shape[:2]
        if (width, height) != self._frame_size:
            fw, fh = self._frame_size
            raise ValueError(f"the frame is {width}x{height}, but tracking started on {fw}x{fh} frames")
        _seed_generators()
        try:
            ok, rect = self._tracker.update(bgr)
        except cv2.error:
            # Some trackers assert on degenerate states (e.g. a target pushed out of the image); report it as
            # lost rather than crash an annotation session.
            ok, rect = False, None
        ok = bool(ok) and rect is not None and rect[2] > 0 and rect[3] > 0
        if ok:
            self._box = self._from_cv(rect)
        score = self._confidence(ok)
        ms = (time.perf_counter() - t0) * 1000.0
        return TrackResult(box=self._box, status=Status.NORMAL if ok else Status.NOT_FOUND, max_score=score,
                           timings={"total": ms})

    def update_with_box(self, frame: np.ndarray, box: Box | Sequence[float]) -> None:
        """Re-initialise on a corrected box (OpenCV trackers cannot take a correction in place)."""
        self.initialize(frame, box)

    def _from_cv(self, rect: Sequence[float]) -> Box:
        """Map OpenCV's rectangle back to the float box convention (see the module docstring)."""
        x, y, w, h = (float(v) for v in rect)
        sx, sy = w / self._cv_size0[0], h / self._cv_size0[1]
        cx = x + w / 2 + self._ref_offset[0] * sx
        cy = y + h / 2 + self._ref_offset[1] * sy
        return Box.from_center(cx, cy, self._ref_size[0] * sx, self._ref_size[1] * sy)

    def _confidence(self, ok: bool) -> float:
        if not ok:
            return 0.0
        get_score = getattr(self._tracker, "getTrackingScore", None)
        if get_score is not None:
            try:
                score = float(get_score())
            except (cv2.error, TypeError, ValueError):
                score = -1.0
            # OpenCV 5 declares the method but returns -1 ("not available") for these trackers.
            if math.isfinite(score) and 0.0 <= score <= 1.0:
                return score
        return 1.0

    def __repr__(self) -> str:
        return f"ClassicTracker({self.name!r})"
