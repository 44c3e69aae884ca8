"""File ▸ Import and Export: the annotation formats of ``tracker_core.annotation.formats`` and the review video.

Exports read the document on the GUI thread (they are quick); the review video decodes and encodes every frame,
so it runs on the thread pool over a copy of the document and its own video reader. An import adds objects,
and is one undo step (undo takes the imported objects out again).
"""

from __future__ import annotations

import inspect
import threading
from pathlib import Path

from PySide6.QtGui import QUndoCommand
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from tracker_core.annotation import Document, Source
from tracker_core.annotation.formats import FORMATS as CORE_FORMATS
from tracker_core.annotation.formats import IncompleteAnnotationError, get_format
from tracker_core.errors import AtomError

# (format name, menu text, whether its import reads a folder), from the core's one list of formats
FORMATS = tuple((f.name, f.title, f.import_folder) for f in CORE_FORMATS.values())
FORMAT_TEXT = {f.name: f.title for f in CORE_FORMATS.values()}


def export_format(parent: QWidget, document: Document, fmt: str, start_dir: str,
                  ask=QMessageBox.question) -> str | None:
    """Export every object in ``fmt`` to a folder the person picks; returns a status line (None: cancelled)."""
    out = QFileDialog.getExistingDirectory(parent, f"Export {FORMAT_TEXT[fmt]} into", start_dir)
    if not out:
        return None
    return export_to(parent, document, fmt, out, ask)


def export_to(parent: QWidget, document: Document, fmt: str, out: str, ask=QMessageBox.question) -> str:
    module = get_format(fmt)
    try:
        paths = module.export(document, None, out)
    except IncompleteAnnotationError as exc:
        answer = ask(parent, "Frames without a box",
                     f"{exc}\n\nExport those frames as absent (out of view)?",
                     QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return "Export cancelled: some frames have neither a box nor a flag."
        paths = module.export(document, None, out, missing="absent")
    return f"Exported {FORMAT_TEXT[fmt]}: {', '.join(str(p) for p in paths[:3])}{' …' if len(paths) > 3 else ''}"


class ImportCommand(QUndoCommand):
    """Objects added by an import; undo takes them out, redo puts the same ones back."""

    def __init__(self, document: Document, object_ids: list[int], text: str):
        super().__init__(text)
        self.document = document
        self.object_ids = object_ids
        self._removed: list = []

    def redo(self) -> None:
        for obj in self._removed:
            self.document.insert_object(obj)
        self._removed = []

    def undo(self) -> None:
        with self.document.batch():
            self._removed = [self.document.remove_object(i) for i in self.object_ids]


def import_format(parent: QWidget, document: Document, fmt: str, start_dir: str) -> tuple[list[int], str] | None:
    """Ask for the file or folder, import it into ``document``; returns (new object ids, status line)."""
    if CORE_FORMATS[fmt].import_folder:
        path = QFileDialog.getExistingDirectory(parent, f"Import a {FORMAT_TEXT[fmt]} sequence", start_dir)
    else:
        path, _ = QFileDialog.getOpenFileName(parent, f"Import {FORMAT_TEXT[fmt]}", start_dir)
    if not path:
        return None
    source = Source.MANUAL
    if CORE_FORMATS[fmt].dense:
        # Dense formats: every frame would become a keyframe. Tracker output is better imported as tracked,
        # so that it can be corrected and re-tracked like the app's own results (CVAT's issue 349).
        choice, ok = QInputDialog.getItem(parent, "Import as", "The imported boxes are:",
                                          ["ground truth (keyframes)", "tracker output (tracked, re-trackable)"],
                                          0, False)
        if not ok:
            return None
        source = Source.MANUAL if choice.startswith("ground") else Source.TRACKED
    return import_into(document, fmt, path, source)


def import_into(document: Document, fmt: str, path: str, source: Source = Source.MANUAL) -> tuple[list[int], str]:
    before = set(document.object_ids)
    module = get_format(fmt)
    kwargs = {"source": source} if "source" in inspect.signature(module.import_).parameters else {}
    module.import_(path, video=document.video, document=document, **kwargs)
    added = [i for i in document.object_ids if i not in before]
    return added, f"Imported {len(added)} object(s) from {Path(path).name} ({FORMAT_TEXT[fmt]})."


class ExportCancelled(AtomError):
    """The person cancelled a review-video export (the partial file is removed)."""


def export_review_video_in_background(document: Document, video_path: str, out_path: str, on_done, on_error,
                                      on_progress=None, cancel: threading.Event | None = None):
    """Write the review video (boxes and states drawn, H.264) off the GUI thread.

    ``on_progress(frames_written)`` is called on the GUI thread as frames are written; setting ``cancel`` stops
    the export at the next frame, removes the partial file and reports :class:`ExportCancelled` to ``on_error``.
    """
    from tracker_core.annotation.review_video import export_review_video

    from .background import call_in_background
    from .core_adapters import open_video

    copy = document.copy()

    def work(report=None):
        source = open_video(video_path)
        written = 0

        def progress(n: int) -> None:
            nonlocal written
            if cancel is not None and cancel.is_set():
                raise ExportCancelled("the review video export was cancelled")
            written += n
            if report is not None:
                report(written)

        try:
            return export_review_video(copy, source, out_path, progress=progress)
        finally:
            source.close()

    call_in_background(work, on_done, on_error, on_progress)
