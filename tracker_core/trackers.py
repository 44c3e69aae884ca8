"""Trackers by name and the interface every tracker offers, for the CLI, the benchmarks and the app.

Names: ``atom``, ``atom-multiscale``, ``atom-fast``, ``atom-damped`` (the presets of ``config.py``), ``csrt``,
``kcf``, ``mil`` (OpenCV's, ``classic.py``); ``atom-update`` and ``atom-reinit`` are ``atom`` with an explicit
correction policy (to compare them with ``atom bench annotate``).

Benchmark workers and the app's tracking thread are handed a :class:`TrackerSpec`, never a tracker: trackers hold
models, OpenCV objects and CUDA state that must not cross processes, and a spec is small, picklable and comparable
(the app keeps its tracker while the spec stays the same).  :func:`build_tracker` makes the tracker it names.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import classic
from .boxes import Box
from .errors import CommandError
from .result import TrackResult

# name -> (preset, correction policy or None for the preset's own)
ATOM_NAMES = {"atom": ("default", None), "atom-multiscale": ("multiscale", None), "atom-fast": ("fast", None),
              "atom-damped": ("damped", None),
              "atom-update": ("default", "update"), "atom-reinit": ("default", "reinitialize")}
#: The ATOM trackers that differ in what they compute (the other two differ only in the correction policy, which
#: the app offers as a setting of its own).
ATOM_PRESET_NAMES = tuple(name for name, (_, policy) in ATOM_NAMES.items() if policy is None)
CLASSIC_NAMES = classic.KINDS  # OpenCV's trackers that classic.py wraps
TRACKER_NAMES = tuple(ATOM_NAMES) + CLASSIC_NAMES

#: What ``update_with_box`` does after a correction when a tracker does not say (start over on the corrected box).
DEFAULT_CORRECTION_POLICY = "reinitialize"


class Tracker(Protocol):
    """What every tracker offers: ``AtomTracker``, ``ClassicTracker``, and the fakes of the tests.

    Frames are ``(H, W, 3)`` uint8 RGB arrays; boxes are the project's float xywh (``boxes.Box``).  A tracker may
    say in ``correction_policy`` what ``update_with_box`` does with a corrected box: ``"reinitialize"`` (start over
    on it) or ``"update"`` (keep what was learned and move on from it); read it with :func:`correction_policy`.
    """

    def initialize(self, frame: np.ndarray, box: Box) -> Any: ...

    def track(self, frame: np.ndarray) -> TrackResult: ...

    def update_with_box(self, frame: np.ndarray, box: Box) -> Any: ...


def correction_policy(tracker: Tracker) -> str:
    return str(getattr(tracker, "correction_policy", DEFAULT_CORRECTION_POLICY))


@dataclass(frozen=True)
class TrackerSpec:
    """Which tracker to build.

    model_path / preset / device: for the ATOM trackers (None: the shipped model, the name's own preset).
    correction_policy: ``"reinitialize"`` or ``"update"``; None: the name's own.
    run: which of several repeated runs this is (``atom eval --runs``): run ``r`` seeds the ATOM trackers' random
    draws (augmentation, initial projection, refinement's jittered boxes) with the preset's seed + ``r``; run 0 is
    the single run.  The classic trackers draw nothing at random and ignore it.
    factory: tests only: a callable, or ``"module:attribute"`` for worker processes, called with the spec instead
    of :func:`make_tracker` (to benchmark fake trackers).
    """

    name: str = "atom"
    model_path: str | None = None
    preset: str | None = None
    device: str = "auto"
    correction_policy: str | None = None
    factory: Callable[..., Any] | str | None = None
    run: int = 0


def is_atom_tracker(name: str) -> bool:
    """ATOM trackers take a model, a preset and a device; the classic trackers take none of them."""
    return name in ATOM_NAMES


def check_tracker_names(names: list[str]) -> None:
    """Reject unknown names up front (before any worker starts)."""
    unknown = [n for n in names if n not in TRACKER_NAMES]
    if unknown:
        raise CommandError(f"unknown tracker {unknown[0]!r}; choose one of {', '.join(TRACKER_NAMES)}")


_model_cache: dict = {}
_model_lock = threading.Lock()  # one load per file, also when two threads ask at once (the app's warm-up and worker)


def load_model_cached(model_path: str | Path | None):
    """Load a model file once per process (trackers share the frozen networks read-only)."""
    from .model_io import load_model

    key = None if model_path is None else str(Path(model_path).resolve())
    with _model_lock:
        if key not in _model_cache:
            _model_cache[key] = load_model(model_path)
        return _model_cache[key]


def make_tracker(name: str, model_path: str | Path | None = None, preset: str | None = None,
                 device: str = "auto", seed: int | None = None, correction_policy: str | None = None,
                 run: int = 0) -> Tracker:
    """A fresh tracker. ``preset`` overrides the one implied by an ``atom*`` name; ``run`` adds to the seed
    (see :class:`TrackerSpec`)."""
    if name in CLASSIC_NAMES:
        return classic.ClassicTracker(name)
    check_tracker_names([name])
    from .config import preset as make_preset
    from .tracker import AtomTracker

    preset_name, policy = ATOM_NAMES[name]
    try:
        cfg = make_preset(preset or preset_name)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if seed is not None:
        cfg.seed = seed
    cfg.seed += run
    if correction_policy is not None or policy is not None:
        cfg.correction_policy = correction_policy or policy
    cfg.device = device
    tracker = AtomTracker(load_model_cached(model_path), cfg)
    tracker.name = name
    return tracker


def build_tracker(spec: TrackerSpec) -> Tracker:
    """A fresh tracker for ``spec``."""
    if spec.factory is not None:
        factory = spec.factory
        if not callable(factory):
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        return factory(spec)
    return make_tracker(spec.name, model_path=spec.model_path, preset=spec.preset, device=spec.device,
                        correction_policy=spec.correction_policy, run=spec.run)


def preflight(spec: TrackerSpec) -> str:
    """Build the tracker once so that a bad model path or preset fails a command at once (instead of failing every
    sequence in the workers), as one line.  Returns its correction policy."""
    try:
        tracker = build_tracker(spec)
    except CommandError:
        raise
    except Exception as exc:  # noqa: BLE001 - turned into a one-line user-facing error
        raise CommandError(f"cannot create tracker {spec.name!r}: {type(exc).__name__}: {exc}") from None
    policy = correction_policy(tracker)
    del tracker
    return policy
