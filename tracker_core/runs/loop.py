"""The tracking loop: one run, frame by frame, each result handed on as soon as it exists.

A run ends at its stop frame, before a flagged frame, before a manual keyframe (or re-anchors there, under
TO_END), on low confidence when auto-pause is on, at a frame that cannot be decoded, when asked to stop, or on an
exception. Whatever ends it, every result made before was handed on, so nothing tracked is lost; the outcome
says why it ended. Trackers are kept between runs (:class:`TrackerPool`), so that a pause and continue does not
re-initialise them.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import VideoError
from ..result import Status, TrackResult
from ..trackers import Tracker, TrackerSpec
from .plan import FAILED, FLAGGED, KEYFRAME, LOW_CONFIDENCE, STOPPED, UNREADABLE, RunSpec


class RunObserver:
    """What a run tells whoever drives it (the app's worker turns these into Qt signals). No-ops by default."""

    def message(self, text: str) -> None:
        """Progress worth showing (loading a model)."""

    def started(self, initial: TrackResult | None) -> None:
        """The tracker is ready at the start frame; ``initial``: what a fresh tracker's initialize returned."""

    def result(self, frame: int, result: TrackResult, image: np.ndarray) -> None:
        """One tracked frame (``image``: the decoded RGB frame)."""


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended.

    reason: one of the end reasons of :mod:`.plan`. frames: results handed on. last_frame: the last frame
    tracked (the start frame when none). error/details: the message and traceback of FAILED, or the decoding
    error of UNREADABLE.
    """

    reason: str
    frames: int
    last_frame: int
    error: str | None = None
    details: str | None = None


@dataclass
class _KeptTracker:
    choice: TrackerSpec
    tracker: Tracker
    last_frame: int | None = None
    direction: int = 1


class TrackerPool:
    """Trackers kept between runs, one per object, made by ``factory(name, model_path=, preset=, device=,
    correction_policy=)``. Thread-safe: the app forgets trackers from the GUI thread while a run uses one."""

    def __init__(self, factory: Callable[..., Any]):
        self._factory = factory
        self._kept: dict[int, _KeptTracker] = {}
        self._lock = threading.Lock()

    def forget(self, object_id: int | None = None) -> None:
        """Drop the kept tracker (all objects when None): the next run initialises afresh."""
        with self._lock:
            if object_id is None:
                self._kept.clear()
            else:
                self._kept.pop(object_id, None)

    def start(self, spec: RunSpec, reader, observer: RunObserver) -> _KeptTracker:
        """The tracker for this run: continued, updated with a corrected box, or made and initialised."""
        with self._lock:
            kept = self._kept.get(spec.object_id)
        if kept is not None and kept.choice != spec.tracker:
            kept = None
        initial = None
        if kept is None:
            # The start frame first: its decoding (a seek, 0.1-0.3 s on 4K video) then overlaps whatever the factory
            # waits for (the app's warm-up still learning the box) instead of following it.
            start_frame = reader.read(spec.start_frame)
            observer.message(f"Loading the {spec.tracker.name} tracker…")
            started = time.perf_counter()
            tracker = self._factory(spec.tracker.name, model_path=spec.tracker.model_path,
                                    preset=spec.tracker.preset, device=spec.tracker.device,
                                    correction_policy=spec.tracker.correction_policy)
            observer.message(f"{spec.tracker.name} ready in {time.perf_counter() - started:.1f} s")
            kept = _KeptTracker(spec.tracker, tracker)
            initial = tracker.initialize(start_frame, spec.start_box)
        elif not spec.start_is_manual and kept.last_frame == spec.start_frame and kept.direction == spec.direction:
            pass  # a pause and continue: the tracker is exactly where the run starts
        else:
            kept.tracker.update_with_box(reader.read(spec.start_frame), spec.start_box)
        kept.direction = spec.direction
        kept.last_frame = spec.start_frame
        with self._lock:
            self._kept[spec.object_id] = kept
        observer.started(initial if isinstance(initial, TrackResult) else None)
        return kept


def run_loop(spec: RunSpec, reader, pool: TrackerPool, observer: RunObserver | None = None,
             stop: threading.Event | None = None) -> RunOutcome:
    """Track one run with ``reader`` (``read(i)`` -> RGB frame, ``num_frames``); returns how it ended.

    Exceptions end the run as FAILED (the object's tracker is forgotten: its state is unknown); an unreadable
    frame ends it as UNREADABLE. KeyboardInterrupt and SystemExit are not caught: results handed on stay.
    """
    observer = observer or RunObserver()
    done, last = 0, spec.start_frame
    index = spec.start_frame
    try:
        kept = pool.start(spec, reader, observer)
        reason = spec.end_reason
        while True:
            index += spec.direction
            if (index - spec.stop_frame) * spec.direction > 0 or not 0 <= index < reader.num_frames:
                break
            if stop is not None and stop.is_set():
                reason = STOPPED
                break
            if index in spec.blocked_frames:
                reason = FLAGGED
                break
            if index in spec.manual_boxes:
                if spec.stop_at_keyframe:
                    reason = KEYFRAME
                    break
                # A person's box on the way: the tracker takes it (per its correction policy) and goes on.
                kept.tracker.update_with_box(reader.read(index), spec.manual_boxes[index])
                kept.last_frame = last = index
                continue
            frame = reader.read(index)
            result = kept.tracker.track(frame)
            kept.last_frame = last = index
            done += 1
            observer.result(index, result, frame)
            if spec.pause_below is not None and (
                    result.status == Status.NOT_FOUND or result.max_score < spec.pause_below):
                reason = LOW_CONFIDENCE
                break
    except VideoError as exc:
        pool.forget(spec.object_id)  # the tracker never saw this frame; start clean after it
        return RunOutcome(UNREADABLE, done, last, f"frame {index} cannot be read: {exc}")
    except Exception as exc:  # any failure ends the run with a message; the results handed on stay
        pool.forget(spec.object_id)
        return RunOutcome(FAILED, done, last, f"{type(exc).__name__}: {exc}", traceback.format_exc())
    return RunOutcome(reason, done, last)
