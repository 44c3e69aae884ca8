"""Autosave that never freezes the window: copy on the GUI thread, serialise and write on the thread pool.

Serialising a 10,000-frame track is about 0.3 s of JSON, a visible stall every few seconds while tracking if it
ran on the GUI thread. Here the GUI thread only takes ``Document.copy()`` (each object's dict of immutable
FrameStates: about a millisecond), and a pool thread serialises it and writes it atomically to
``project_io.autosave_path``, in the project format, so ``find_recovery``/``load_project`` read it back as usual.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from tracker_core.annotation import Document
from tracker_core.annotation.project_io import autosave_path, project_text
from tracker_core.atomic_files import atomic_write_text

from .background import call_in_background


class BackgroundAutosaver(QObject):
    """Saves ``<project>.autosave.json`` at most every ``interval_s`` while the document changes.

    saved(path) / failed(message): the outcome of each background write (on the GUI thread).
    """

    saved = Signal(str)
    failed = Signal(str)

    def __init__(self, document: Document, project_path: str | Path, interval_s: float = 5.0,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.document = document
        self.project_path = Path(project_path)
        self.interval_s = interval_s
        self._saved_revision = document.revision
        self._last_save = -float("inf")
        self._generation = 0  # bumped by discard(): a write started before it must not leave a file behind
        self._idle = threading.Event()
        self._idle.set()

    @property
    def path(self) -> Path:
        return autosave_path(self.project_path)

    @property
    def dirty(self) -> bool:
        return self.document.revision != self._saved_revision

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    def maybe_save(self) -> bool:
        """Start a background save if the document changed and the interval has passed."""
        if time.monotonic() - self._last_save < self.interval_s:
            return False
        return self.save_soon()

    def save_soon(self) -> bool:
        """Start a background save now if the document changed (after a tracking run)."""
        if not self.dirty or self.busy:
            return False
        snapshot, revision = self.document.copy(), self.document.revision
        path, project_path, generation = self.path, self.project_path, self._generation
        self._idle.clear()
        self._last_save = time.monotonic()

        def write() -> str:
            try:
                atomic_write_text(path, project_text(snapshot, project_path))
                return str(path)
            finally:
                self._idle.set()

        call_in_background(write, lambda p: self._written(p, revision, generation),
                           lambda exc: self.failed.emit(f"autosave failed: {exc}"))
        return True

    def _written(self, path: str, revision: int, generation: int) -> None:
        if generation != self._generation:
            Path(path).unlink(missing_ok=True)  # discarded while it was being written
            return
        self._saved_revision = max(self._saved_revision, revision)
        self.saved.emit(path)

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        return self._idle.wait(timeout_s)

    def mark_clean(self) -> None:
        self._saved_revision = self.document.revision

    def discard(self) -> None:
        """After a proper save or a clean close: no autosave file, nothing pending."""
        self._generation += 1
        self.wait_idle()
        self.path.unlink(missing_ok=True)
        self.mark_clean()
