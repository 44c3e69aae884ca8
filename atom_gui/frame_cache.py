"""Decoded frames for the GUI: a bounded LRU cache that a background thread fills ahead of the playhead.

The GUI thread never decodes. It asks with :meth:`FrameCache.request`; a cached frame comes back at once, any
other arrives later through ``frameReady``. Only the newest request matters (a person scrubbing the slider
has moved on), so each request replaces the queue rather than adding to it.

Memory is bounded by bytes, counted on the frames actually stored, whatever their size: the same budget holds
about 40 frames of 1080p and 10 of 4K. The prefetch window shrinks to half the budget, so that on a large video
prefetching never evicts the frame on screen and its neighbours.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal

from .core_adapters import VideoSourceLike

DEFAULT_MAX_BYTES = 256 * 1024 * 1024


class FrameCache(QObject):
    """A bounded frame cache with background decoding and prefetch.

    frameReady(index, frame): a frame decoded by the background thread (delivered on the GUI thread).
    decodeFailed(index, message): the frame could not be decoded.
    """

    frameReady = Signal(int, object)
    decodeFailed = Signal(int, str)

    def __init__(self, reader: VideoSourceLike, max_bytes: int = DEFAULT_MAX_BYTES, prefetch: int = 8,
                 parent: QObject | None = None):
        """``reader`` becomes the decoding thread's (which closes it): pass a ``clone()`` of your source."""
        super().__init__(parent)
        self.num_frames = reader.num_frames
        self.max_bytes = max_bytes
        frame_bytes = max(1, reader.width * reader.height * 3)
        self.prefetch = max(1, min(prefetch, max_bytes // 2 // frame_bytes))
        self.nbytes = 0  # of the frames stored now
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cond = threading.Condition()
        self._wanted: list[int] = []
        self._closing = False
        self._thread = _DecodeThread(self, reader)
        self._thread.start()

    # ---- GUI-thread API -----------------------------------------------------------------------------------

    def get(self, index: int) -> np.ndarray | None:
        """The frame when it is cached (marking it recently used), else None. Never blocks on decoding."""
        with self._cond:
            frame = self._frames.get(index)
            if frame is not None:
                self._frames.move_to_end(index)
            return frame

    def request(self, index: int, direction: int = 1) -> np.ndarray | None:
        """Return the frame when cached; otherwise decode it in the background. Prefetch ahead either way."""
        if not 0 <= index < self.num_frames:
            return None
        frame = self.get(index)
        step = 1 if direction >= 0 else -1
        ahead = [index + step * k for k in range(1, self.prefetch + 1)]
        wanted = ([] if frame is not None else [index]) + [i for i in ahead if 0 <= i < self.num_frames]
        with self._cond:
            self._wanted = [i for i in wanted if i not in self._frames]
            if self._wanted:
                self._cond.notify()
        return frame

    def put(self, index: int, frame: np.ndarray) -> None:
        """Store a frame decoded elsewhere (the tracking worker reads every frame it tracks)."""
        with self._cond:
            self._store(index, frame)

    def __len__(self) -> int:
        with self._cond:
            return len(self._frames)

    def close(self) -> None:
        """Stop the decoding thread and release its reader; the cache cannot be used afterwards."""
        with self._cond:
            self._closing = True
            self._wanted = []
            self._cond.notify_all()
        self._thread.wait()
        with self._cond:
            self._frames.clear()
            self.nbytes = 0

    # ---- shared with the decoding thread ------------------------------------------------------------------

    def _store(self, index: int, frame: np.ndarray) -> None:
        old = self._frames.pop(index, None)
        if old is not None:
            self.nbytes -= old.nbytes
        self._frames[index] = frame
        self.nbytes += frame.nbytes
        while self.nbytes > self.max_bytes and len(self._frames) > 1:  # the newest stays, however large
            _, evicted = self._frames.popitem(last=False)
            self.nbytes -= evicted.nbytes

    def _next_wanted(self) -> int | None:
        """Block until there is a frame to decode; None when closing."""
        with self._cond:
            while True:
                if self._closing:
                    return None
                while self._wanted:
                    index = self._wanted.pop(0)
                    if index not in self._frames:
                        return index
                self._cond.wait()


class _DecodeThread(QThread):
    """Decodes the frames the cache wants, with its own reader (a reader is not shared between threads)."""

    def __init__(self, cache: FrameCache, reader: VideoSourceLike):
        super().__init__()
        self._cache = cache
        self._reader = reader

    def run(self) -> None:
        try:
            while (index := self._cache._next_wanted()) is not None:
                try:
                    frame = self._reader.read(index)
                except Exception as exc:  # a damaged frame must not kill the thread: report it and go on
                    self._cache.decodeFailed.emit(index, str(exc))
                    continue
                with self._cache._cond:
                    self._cache._store(index, frame)
                self._cache.frameReady.emit(index, frame)
        finally:
            self._reader.close()
