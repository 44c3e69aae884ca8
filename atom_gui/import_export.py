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
from tracker_core.annotation.formats._common import describe_frames
from tracker_core.errors import AtomError

from .project_files import video_stem

# (format name, menu text, whether its import reads a folder), from the core's one list of formats
FORMATS = tuple((f.name, f.title, f.import_folder) for f in CORE_FORMATS.values())
FORMAT_TEXT = {f.name: f.title for f in CORE_FORMATS.values()}


# Formats that write one file: where it goes is a file name (the rest write a folder of files).
SINGLE_FILE_EXPORTS = {"cvat": ("CVAT XML (*.xml)", ".xml"), "json": ("ATOM projects (*.json)", ".json")}


def choose_export_destination(parent: QWidget, document: Document, fmt: str, start_dir: str) -> str | None:
    """Ask where an export goes: a file for single-file formats, else the folder to create (or fill).

    A save dialog names the folder, so that a new one can simply be typed (a folder picker accepts only folders
    that exist). Returns the path, or None when cancelled.
    """
    stem = video_stem(document.video.path) if document.video.path else "annotations"
    if fmt in SINGLE_FILE_EXPORTS:
        pattern, suffix = SINGLE_FILE_EXPORTS[fmt]
        path, _ = QFileDialog.getSaveFileName(parent, f"Export {FORMAT_TEXT[fmt]} to a file",
                                              str(Path(start_dir) / f"{stem}{suffix}"), pattern)
        return path or None
    path, _ = QFileDialog.getSaveFileName(
        parent, f"Export {FORMAT_TEXT[fmt]}: name the folder to write into (created when new)",
        str(Path(start_dir) / f"{stem}-{fmt}"), "", "",
        QFileDialog.Option.DontConfirmOverwrite | QFileDialog.Option.ShowDirsOnly)
    return path or None


def missing_frames_text(document: Document) -> str:
    """Which objects have frames that an export would write as absent (neither a box nor a flag, or a stale box
    that no one kept), in words for the person."""
    lines = []
    for obj in document.objects():
        missing, stale = [], []
        for f in range(document.num_frames):
            state = obj.states.get(f)
            if state is None or (state.exported_box is None and not state.flagged):
                missing.append(f)
                if state is not None and state.stale:
                    stale.append(f)
        if missing:
            line = (f"{obj.label}: no box and no flag on {len(missing)} of {document.num_frames} frames "
                    f"({describe_frames(missing)})")
            if stale:
                line += (f"; {len(stale)} of them ({describe_frames(stale)}) hold stale boxes, tracked before a "
                         f"correction: re-track them, or keep them (Shift+K)")
            lines.append(line)
    return "\n".join(lines)


def export_to(parent: QWidget, document: Document, fmt: str, out: str, ask=QMessageBox.question) -> str:
    """Export every object in ``fmt`` to ``out`` (a file for single-file formats, else a folder, made when
    missing); asks before writing frames without a box as absent. Returns a status line."""
    module = get_format(fmt)
    out_path = Path(out)
    if fmt in SINGLE_FILE_EXPORTS:
        options = {"filename": out_path.name} if fmt == "cvat" else {"name": out_path.stem}
        folder = out_path.parent
    else:
        options, folder = {}, out_path
    # The formats create missing folders themselves, and remove them again when nothing is written (a cancel).
    try:
        paths = module.export(document, None, str(folder), **options)
    except IncompleteAnnotationError:
        answer = ask(parent, "Frames without a box",
                     f"{FORMAT_TEXT[fmt]} needs a box or an absent flag on every frame.\n\n"
                     f"{missing_frames_text(document)}\n\nWrite those frames as absent (out of view)? "
                     f"No cancels the export; annotate them first.",
                     QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return "Export cancelled: some frames have neither a box nor a flag."
        paths = module.export(document, None, str(folder), missing="absent", **options)
    shown = ", ".join(str(p) for p in paths[:3]) + (" …" if len(paths) > 3 else "")
    return f"Exported {FORMAT_TEXT[fmt]}: {shown}"


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
