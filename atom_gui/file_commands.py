"""The File menu's commands: open, save as, import, export, the review video, recent files, and the folders the
dialogs start in (remembered across sessions, never inside the app's own installation).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, QSettings, QStandardPaths
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QProgressBar, QPushButton, QWidget

from .import_export import (
    FORMATS,
    ExportCancelled,
    ImportCommand,
    choose_export_destination,
    export_review_video_in_background,
    export_to,
    import_format,
)
from .project_files import video_stem
from .video_session import VideoSession

MAX_RECENT = 10
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.mpg *.m4v);;All files (*)"


class FileHost(Protocol):
    video: VideoSession | None
    qsettings: QSettings
    project_dir: Path
    correction: object  # the window's CorrectionController (an import pauses the run being written)

    def open_path(self, path: str | Path) -> None: ...

    def show_message(self, text: str, timeout_ms: int = 0) -> None: ...

    def show_error(self, title: str, text: str, details: str | None = None) -> None: ...

    def set_current_object(self, object_id: int | None) -> None: ...

    def update_enabled(self) -> None: ...


def usable_start_dir(path: str | Path | None) -> str | None:
    """``path`` when it is a folder a person would browse: not inside a Python installation (the demo video
    lives in a package's site-packages, where File ▸ Open must not start)."""
    if not path or not Path(path).is_dir():
        return None
    parts = set(Path(path).resolve().parts)
    return None if parts & {"site-packages", "dist-packages"} else str(path)


def home_videos_dir() -> str:
    movies = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MoviesLocation)
    return movies if movies and Path(movies).is_dir() else str(Path.home())


class ReviewProgress(QWidget):
    """The review video's progress and its Cancel button, in the status bar while one is written."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(260)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop writing the review video (the partial file is removed)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.setVisible(False)


class FileCommands(QObject):
    """File ▸ … for one window. ``writing_review``: a review video is being written (one at a time)."""

    def __init__(self, host: FileHost, review: ReviewProgress, parent: QObject | None = None):
        super().__init__(parent)
        self.host = host
        self.review = review
        self._review_cancel: threading.Event | None = None  # set while a review video is being written
        review.cancel_button.clicked.connect(self.cancel_review_video)

    @property
    def writing_review(self) -> bool:
        return self._review_cancel is not None

    def fill_menus(self, actions: dict[str, QAction]) -> None:
        """The Open recent, Import and Export submenus."""
        recent = actions["recent"].menu()
        recent.aboutToShow.connect(lambda: self._fill_recent(recent))
        for fmt, text, _folder in FORMATS:
            actions["import"].menu().addAction(text, lambda f=fmt: self.import_annotations(f))
            actions["export"].menu().addAction(text, lambda f=fmt: self.export_annotations(f))

    # ---- folders the dialogs start in ---------------------------------------------------------------------

    def start_dir(self, kind: str) -> str:
        """Where the ``kind`` ("open" or "export") dialog starts: where the person last went with it, else their
        videos folder (or, for exports, the open video's folder when it is a normal folder)."""
        remembered = usable_start_dir(self.host.qsettings.value(f"folders/{kind}"))
        if remembered:
            return remembered
        video = self.host.video
        if kind == "export" and video is not None:
            folder = usable_start_dir(Path(video.source.path).parent)
            if folder and os.access(folder, os.W_OK):
                return folder
        return home_videos_dir()

    def remember_dir(self, kind: str, folder: str | Path) -> None:
        """The next ``kind`` dialog starts in ``folder`` (where the person just went)."""
        self.host.qsettings.setValue(f"folders/{kind}", str(folder))

    # ---- opening ------------------------------------------------------------------------------------------

    def choose_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.host, "Open video", self.start_dir("open"), VIDEO_FILTER)
        if path:
            self.remember_dir("open", Path(path).parent)
            self.host.open_path(path)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self.host, "Open a folder of frames", self.start_dir("open"))
        if path:
            self.remember_dir("open", Path(path).parent)
            self.host.open_path(path)

    def choose_project(self) -> None:
        start = str(self.host.project_dir) if Path(self.host.project_dir).is_dir() else self.start_dir("open")
        path, _ = QFileDialog.getOpenFileName(self.host, "Open project", start,
                                              "ATOM projects (*.json);;All files (*)")
        if path:
            self.host.open_path(path)

    def recent(self) -> list[str]:
        value = self.host.qsettings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def add_recent(self, path: str) -> None:
        recent = [p for p in self.recent() if p != path]
        self.host.qsettings.setValue("recent", [path, *recent][:MAX_RECENT])

    def _fill_recent(self, menu) -> None:
        menu.clear()
        for path in self.recent():
            menu.addAction(path, lambda p=path: self.host.open_path(p))
        if menu.isEmpty():
            menu.addAction("(none)").setEnabled(False)

    # ---- saving -------------------------------------------------------------------------------------------

    def save_project_as(self) -> None:
        video = self.host.video
        if video is None:
            return
        path, _ = QFileDialog.getSaveFileName(self.host, "Save project as", str(video.project_path),
                                              "ATOM projects (*.json)")
        if path:
            try:
                video.save_as(path)
            except OSError as exc:
                self.host.show_error("Cannot save the project", f"{path}\n\n{exc}")
                return
            self.host.show_message(f"Saved {path}", 5000)

    # ---- import and export --------------------------------------------------------------------------------

    def export_annotations(self, fmt: str) -> None:
        video = self.host.video
        if video is None:
            return
        out = choose_export_destination(self.host, video.document, fmt, self.start_dir("export"))
        if not out:
            return
        self.remember_dir("export", Path(out).parent)
        try:
            message = export_to(self.host, video.document, fmt, out)
        except Exception as exc:  # a format error, a full disk: say it, lose nothing
            self.host.show_error("Export failed", str(exc))
            return
        self.host.show_message(message, 10000)

    def import_annotations(self, fmt: str) -> None:
        video = self.host.video
        if video is None:
            return
        self.host.correction.pause_for_edit(any_object=True)
        try:
            outcome = import_format(self.host, video.document, fmt, self.start_dir("open"))
        except Exception as exc:  # parsers name the file and line; the document is unchanged
            self.host.show_error("Import failed", str(exc))
            return
        if outcome is None:
            return
        added, message = outcome
        if added:
            video.undo_stack.push(ImportCommand(video.document, added, f"Import {len(added)} object(s)"))
            self.host.set_current_object(added[0])
        self.host.show_message(message, 10000)

    def export_review_video(self) -> None:
        video = self.host.video
        if video is None or self.writing_review:
            return
        default = str(Path(self.start_dir("export")) / f"{video_stem(video.source.path)}.review.mp4")
        path, _ = QFileDialog.getSaveFileName(self.host, "Export a review video", default, "MP4 video (*.mp4)")
        if not path:
            return
        self.remember_dir("export", Path(path).parent)
        self.host.show_message(f"Writing the review video {path}…")
        # In the status bar, not a dialog: the person keeps working while the frames are encoded (the export
        # reads a copy of the document).
        bar = self.review.bar
        bar.setRange(0, video.num_frames)
        bar.setValue(0)
        bar.setFormat(f"{Path(path).name}: %v / %m frames")
        self._review_cancel = threading.Event()
        self._show_review_progress()

        def finished(message: str | None = None, error: Exception | None = None) -> None:
            self._review_cancel = None
            self._show_review_progress()
            if isinstance(error, ExportCancelled):
                self.host.show_message("Review video cancelled; nothing was written.", 8000)
            elif error is not None:
                self.host.show_error("Review video failed", str(error))
            else:
                self.host.show_message(message, 10000)

        export_review_video_in_background(
            video.document, video.document.video.path, path,
            lambda out: finished(f"Review video written: {out}"),
            lambda exc: finished(error=exc),
            on_progress=bar.setValue, cancel=self._review_cancel)

    def cancel_review_video(self) -> None:
        """The Cancel button beside the review video's progress: stops at the next frame, removes the file."""
        if self._review_cancel is not None:
            self._review_cancel.set()

    def _show_review_progress(self) -> None:
        self.review.setVisible(self.writing_review)
        self.host.update_enabled()
