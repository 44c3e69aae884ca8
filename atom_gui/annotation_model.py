"""The Qt face of the annotation document: numpy mirrors of each track and change signals.

``tracker_core.annotation.Document`` (Qt-free, shared with the CLI) holds the annotations and enforces the
rules (keyframes are never overwritten, deleting sets a flag, nothing tracks through a flagged frame). The views
(timeline strip, score curves) need whole-track arrays many times a second, and a sparse dict of frame states
would cost a Python call per frame, so this model subscribes to the document and keeps one array per field and
per object, updated only over the frames each change event names (napari's evented-model / Qt-view split).

Edits go to the document directly (``model.document``); each returns a Snapshot that the undo commands keep.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from tracker_core.annotation import (
    DEFAULT_MIN_IOU,
    DEFAULT_MIN_SCORE,
    ChangeEvent,
    ChangeKind,
    Document,
    FrameState,
    Source,
)
from tracker_core.result import Status

SOURCE_NONE, SOURCE_MANUAL, SOURCE_TRACKED, SOURCE_INTERPOLATED = 0, 1, 2, 3
SOURCE_CODE = {Source.MANUAL: SOURCE_MANUAL, Source.TRACKED: SOURCE_TRACKED,
               Source.INTERPOLATED: SOURCE_INTERPOLATED}
FLAG_OCCLUDED, FLAG_OUT_OF_VIEW = 1, 2
STATUS_ORDER = (Status.NORMAL, Status.UNCERTAIN, Status.HARD_NEGATIVE, Status.NOT_FOUND)
STATUS_CODE = {s: i for i, s in enumerate(STATUS_ORDER)}
STATUS_CODE_BY_TEXT = {s.value: i for i, s in enumerate(STATUS_ORDER)}
NO_STATUS = -1


class TrackArrays:
    """One object's per-frame fields as arrays (NaN / 0 / NO_STATUS where a frame has no value)."""

    def __init__(self, num_frames: int):
        self.boxes = np.full((num_frames, 4), np.nan)
        self.source = np.zeros(num_frames, np.int8)
        self.status = np.full(num_frames, NO_STATUS, np.int8)
        self.score = np.full(num_frames, np.nan)
        self.iou = np.full(num_frames, np.nan)
        self.flags = np.zeros(num_frames, np.uint8)
        self.stale = np.zeros(num_frames, bool)

    def clear(self, first: int, last: int) -> None:
        sl = slice(first, last + 1)
        self.boxes[sl] = np.nan
        self.source[sl] = SOURCE_NONE
        self.status[sl] = NO_STATUS
        self.score[sl] = np.nan
        self.iou[sl] = np.nan
        self.flags[sl] = 0
        self.stale[sl] = False

    def put(self, frame: int, state: FrameState) -> None:
        if state.box is not None:
            self.boxes[frame] = state.box.as_tuple()
            self.source[frame] = SOURCE_CODE[state.source]
        self.status[frame] = STATUS_CODE_BY_TEXT.get(state.status, NO_STATUS)
        self.score[frame] = np.nan if state.score is None else state.score
        self.iou[frame] = np.nan if state.iou is None else state.iou
        self.flags[frame] = (FLAG_OCCLUDED if state.occluded else 0) | (FLAG_OUT_OF_VIEW if state.out_of_view else 0)
        self.stale[frame] = state.stale

    def low_confidence(self, min_score: float = DEFAULT_MIN_SCORE, min_iou: float = DEFAULT_MIN_IOU) -> np.ndarray:
        """The document's rule (spans.is_low_confidence), vectorised: tracked frames the tracker doubts."""
        with np.errstate(invalid="ignore"):
            doubtful = (self.score < min_score) | (self.iou < min_iou)
        doubtful |= (self.status == STATUS_CODE[Status.NOT_FOUND]) | (self.status == STATUS_CODE[Status.UNCERTAIN])
        return (self.source == SOURCE_TRACKED) & doubtful & (self.flags == 0)


class AnnotationModel(QObject):
    """A Document with per-object numpy mirrors and Qt signals.

    framesChanged(object_id, first, last): frames first..last (inclusive) of the object changed.
    objectsChanged(): an object was added, removed, renamed.
    """

    framesChanged = Signal(int, int, int)
    objectsChanged = Signal()

    def __init__(self, document: Document, parent: QObject | None = None):
        super().__init__(parent)
        self.document = document
        self.num_frames = document.num_frames
        self._arrays: dict[int, TrackArrays] = {}
        for object_id in document.object_ids:
            self._rebuild(object_id, 0, self.num_frames - 1)
        self._unsubscribe = document.subscribe(self._on_change)

    def close(self) -> None:
        """Stop listening to the document (the window is opening another one)."""
        self._unsubscribe()

    # ---- reading ------------------------------------------------------------------------------------------

    def object_ids(self) -> list[int]:
        return self.document.object_ids

    def label(self, object_id: int) -> str:
        return self.document.object(object_id).label

    def arrays(self, object_id: int) -> TrackArrays:
        return self._arrays[object_id]

    def state(self, object_id: int, frame: int) -> FrameState | None:
        return self.document.state(object_id, frame)

    def visible_box(self, object_id: int, frame: int):
        """The box to draw on a frame: none when the object is flagged absent there (a stale box may stay)."""
        state = self.document.state(object_id, frame)
        if state is None or state.box is None or state.flagged:
            return None
        return state.box

    # ---- keeping the mirrors ------------------------------------------------------------------------------

    def _on_change(self, event: ChangeEvent) -> None:
        if event.kind is ChangeKind.FRAMES:
            first = max(0, event.first)
            last = min(self.num_frames - 1, event.last)
            if event.obj_id in self._arrays and first <= last:
                self._rebuild(event.obj_id, first, last)
                self.framesChanged.emit(event.obj_id, first, last)
        elif event.kind is ChangeKind.OBJECT_ADDED:
            self._rebuild(event.obj_id, 0, self.num_frames - 1)
            self.objectsChanged.emit()
        elif event.kind is ChangeKind.OBJECT_REMOVED:
            self._arrays.pop(event.obj_id, None)
            self.objectsChanged.emit()
        elif event.kind is ChangeKind.OBJECT_CHANGED:
            self.objectsChanged.emit()

    def _rebuild(self, object_id: int, first: int, last: int) -> None:
        arrays = self._arrays.get(object_id)
        if arrays is None:
            arrays = self._arrays[object_id] = TrackArrays(self.num_frames)
        arrays.clear(first, last)
        states = self.document.object(object_id).states
        # Dict look-ups over the range, or over the stored frames when fewer: both avoid re-sorting the track.
        frames = range(first, last + 1) if last - first < len(states) else sorted(states)
        for frame in frames:
            state = states.get(frame)
            if state is not None and first <= frame <= last:
                arrays.put(frame, state)
