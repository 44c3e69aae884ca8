"""Building trackers by name inside benchmark workers.

Workers receive a picklable :class:`TrackerSpec` rather than a tracker (trackers hold models, OpenCV objects and
CUDA state that must not cross process boundaries) and build their own with ``tracker_core.trackers.make_tracker``.
A spec may instead carry a ``factory`` (a callable, or a ``"module:attribute"`` string for worker processes) so
tests can benchmark fake trackers.

Every tracker offers ``initialize(frame, box)``, ``track(frame) -> TrackResult`` and ``update_with_box(frame,
box)``.  ``correction_policy`` (default ``"reinitialize"``) says what ``update_with_box`` does after a correction.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import CommandError

TRACKER_NAMES = ("atom", "atom-multiscale", "csrt", "kcf", "mil")
CLASSIC_NAMES = ("csrt", "kcf", "mil")
DEFAULT_CORRECTION_POLICY = "reinitialize"


@dataclass(frozen=True)
class TrackerSpec:
    """What a worker needs to build one tracker."""

    name: str
    model_path: str | None = None
    preset: str | None = None
    device: str = "auto"
    factory: Callable[..., Any] | str | None = None


def _resolve(factory: Callable[..., Any] | str) -> Callable[..., Any]:
    if callable(factory):
        return factory
    module, _, attr = factory.partition(":")
    return getattr(importlib.import_module(module), attr)


def _make_tracker_function() -> Callable[..., Any]:
    """``tracker_core.trackers.make_tracker``, or a classic-only stand-in while that module does not exist."""
    try:
        from ..trackers import make_tracker
    except ModuleNotFoundError as exc:
        if exc.name not in ("tracker_core.trackers",):
            raise
        return _classic_only
    return make_tracker


def _classic_only(name: str, model_path=None, preset=None, device="auto"):
    if name not in CLASSIC_NAMES:
        raise CommandError(f"tracker {name!r} is not available (tracker_core.trackers is not installed)")
    try:
        from ..classic import ClassicTracker
    except ModuleNotFoundError as exc:
        if exc.name != "tracker_core.classic":
            raise
        return _Cv2Tracker(name)
    return ClassicTracker(name)


class _Cv2Tracker:
    """Minimal OpenCV adapter, used only when neither trackers.py nor classic.py is importable."""

    correction_policy = DEFAULT_CORRECTION_POLICY

    def __init__(self, name: str):
        import cv2

        self.name = name
        self._create = {"csrt": cv2.TrackerCSRT_create, "kcf": cv2.TrackerKCF_create,
                        "mil": cv2.TrackerMIL_create}[name]
        self._tracker = None
        self._box = None

    def initialize(self, frame, box) -> None:
        import cv2

        from ..boxes import Box

        self._box = Box.from_seq(list(box))
        self._tracker = self._create()
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        self._tracker.init(bgr, tuple(int(round(v)) for v in self._box.as_tuple()))

    def track(self, frame):
        import cv2

        from ..boxes import Box
        from ..result import Status, TrackResult

        ok, rect = self._tracker.update(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        if ok:
            self._box = Box(*(float(v) for v in rect))
            return TrackResult(self._box)
        return TrackResult(self._box, status=Status.NOT_FOUND, max_score=0.0)

    def update_with_box(self, frame, box) -> None:
        self.initialize(frame, box)


def build_tracker(spec: TrackerSpec):
    """A fresh tracker for ``spec``."""
    if spec.factory is not None:
        return _resolve(spec.factory)(spec)
    make = _make_tracker_function()
    try:
        return make(spec.name, model_path=spec.model_path, preset=spec.preset, device=spec.device)
    except ModuleNotFoundError as exc:
        # The OpenCV wrapper (classic.py) is optional for the benchmarks: fall back to the minimal adapter.
        if exc.name == "tracker_core.classic" and spec.name in CLASSIC_NAMES:
            return _Cv2Tracker(spec.name)
        raise


def correction_policy(tracker) -> str:
    return str(getattr(tracker, "correction_policy", DEFAULT_CORRECTION_POLICY))


def check_tracker_names(names: list[str]) -> None:
    """Reject unknown names up front (before any worker starts)."""
    known = set(TRACKER_NAMES)
    try:
        from .. import trackers as registry

        for attr in ("TRACKER_NAMES", "NAMES", "TRACKERS"):
            extra = getattr(registry, attr, None)
            if extra:
                known |= set(extra)
    except ImportError:
        pass
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CommandError(f"unknown tracker {unknown[0]!r}; expected one of {', '.join(sorted(known))}")


def preflight(spec: TrackerSpec) -> str:
    """Build the tracker once in the parent so that a bad model path or preset fails the command at once
    (instead of failing every sequence in the workers).  Returns its correction policy."""
    try:
        tracker = build_tracker(spec)
    except CommandError:
        raise
    except Exception as exc:  # noqa: BLE001 - turned into a one-line user-facing error
        raise CommandError(f"cannot create tracker {spec.name!r}: {type(exc).__name__}: {exc}") from None
    policy = correction_policy(tracker)
    del tracker
    return policy
