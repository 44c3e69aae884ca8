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

from tracker_core.result import TrackResult

MAX_MAP_SIDE = 64


def compact(result: TrackResult) -> TrackResult:
    """The result with its score map shrunk (area-averaged) to at most MAX_MAP_SIDE a side, and no timings."""
    scores = result.score_map
    if scores is not None and max(scores.shape) > MAX_MAP_SIDE:
        h, w = scores.shape
        scale = MAX_MAP_SIDE / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        scores = cv2.resize(np.asarray(scores, np.float32), size, interpolation=cv2.INTER_AREA)
    return dataclasses.replace(result, score_map=scores, timings={})


class EvidenceMemory:
    """(object, frame) -> the last TrackResult seen there, least recently stored dropped first."""

    def __init__(self, capacity: int = 1000):
        self.capacity = capacity
        self._results: OrderedDict[tuple[int, int], TrackResult] = OrderedDict()

    def put(self, object_id: int, frame: int, result: TrackResult) -> None:
        key = (object_id, frame)
        self._results[key] = compact(result)
        self._results.move_to_end(key)
        while len(self._results) > self.capacity:
            self._results.popitem(last=False)

    def get(self, object_id: int, frame: int) -> TrackResult | None:
        return self._results.get((object_id, frame))

    def clear(self) -> None:
        self._results.clear()

    def __len__(self) -> int:
        return len(self._results)
