"""The tracker's evidence of recent frames (score maps, proposals), kept so that stepping back shows it.

Evidence is not annotation: the document keeps boxes and scores, not score maps. This bounded memory keeps the
last few hundred results per window, with score maps shrunk to what a panel shows (an upsampled 288x288 map
would cost 330 kB a frame; 64x64 is plenty on screen).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

import cv2
import numpy as np

from tracker_core.annotation import Source
from tracker_core.result import TrackResult

MAX_MAP_SIDE = 64
_ANY = object()  # get() without a state: the newest result


def compact(result: TrackResult) -> TrackResult:
    """The result with its score map shrunk (area-averaged) to at most MAX_MAP_SIDE a side, and no timings."""
    scores = result.score_map
    if scores is not None and max(scores.shape) > MAX_MAP_SIDE:
        h, w = scores.shape
        scale = MAX_MAP_SIDE / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        scores = cv2.resize(np.asarray(scores, np.float32), size, interpolation=cv2.INTER_AREA)
    return dataclasses.replace(result, score_map=scores, timings={})


def matches(result: TrackResult, state) -> bool:
    """Whether ``result`` is the evidence of the tracked box in ``state`` (same box, and same score when it has
    one). A manual or interpolated box has no tracker evidence, even where a result happened to agree with it."""
    if state is None or state.source is not Source.TRACKED or result.box.as_tuple() != state.box.as_tuple():
        return False
    return state.score is None or float(result.max_score) == state.score


class EvidenceMemory:
    """(object, frame) -> the last results seen there (a few per frame: a fill's two passes, a re-track),
    least recently stored frames dropped first.

    :meth:`get` with the frame's document state returns the result of the box the document holds, so the panels
    never show the evidence of a box that was thrown away (the other pass of a fill, a run undone since).
    """

    PER_FRAME = 4

    def __init__(self, capacity: int = 1000):
        self.capacity = capacity
        self._results: OrderedDict[tuple[int, int], list[TrackResult]] = OrderedDict()

    def put(self, object_id: int, frame: int, result: TrackResult) -> None:
        key = (object_id, frame)
        kept = [r for r in self._results.get(key, []) if not matches_result(r, result)]
        self._results[key] = (kept + [compact(result)])[-self.PER_FRAME:]
        self._results.move_to_end(key)
        while len(self._results) > self.capacity:
            self._results.popitem(last=False)

    def get(self, object_id: int, frame: int, state=_ANY) -> TrackResult | None:
        """The newest result of the frame; with ``state`` (a FrameState or None), the newest one that is the
        evidence of its box (None when there is none, e.g. for a manual or interpolated box)."""
        results = self._results.get((object_id, frame), [])
        if state is _ANY:
            return results[-1] if results else None
        return next((r for r in reversed(results) if matches(r, state)), None)

    def clear(self) -> None:
        self._results.clear()

    def __len__(self) -> int:
        return len(self._results)


def matches_result(a: TrackResult, b: TrackResult) -> bool:
    return a.box.as_tuple() == b.box.as_tuple() and float(a.max_score) == float(b.max_score)
