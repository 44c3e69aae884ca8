"""One open video and everything that lives exactly as long as it: the reader, the frame cache, the document and
its Qt model, the editor, the tracking controller, the autosave, the project file and its saved revision.

They are made together when a video opens and closed together when it closes (saving the project first), so the
window never holds half of an open video. Opening itself (probing the video, reading the project and any
autosave) runs off the GUI thread in ``project_files.open_session``; this object is built from its result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from tracker_core.annotation.project_io import save_project

from .annotation_model import AnnotationModel
from .autosave import BackgroundAutosaver
from .core_adapters import Tracker
from .editing import AnnotationEditor
from .frame_cache import FrameCache
from .project_files import OpenedSession, display_name
from .tracker_warmup import TrackerWarmup
from .tracking_controller import TrackingController

AUTOSAVE_INTERVAL_S = 5.0  # with the 1 s tick, a crash loses at most ~6 s of work (the goal is 10 s)


@dataclass(frozen=True)
class VideoInfo:
    """What the window shows of the video: its size, length and rate (the readers belong to the threads)."""

    path: str
    num_frames: int
    width: int
    height: int
    fps: float


class VideoSession(QObject):
    """Everything of one open video. ``document`` is the truth; the rest serves it.

    autosaveFailed(text): a background autosave could not be written (the next one tries again).
    """

    autosaveFailed = Signal(str)

    def __init__(self, opened: OpenedSession, use_recovery: bool, undo_stack: QUndoStack,
                 tracker_factory: Callable[..., Tracker], parent: QObject | None = None):
        """``use_recovery``: the person chose the autosave (newer than the project) over the project file."""
        super().__init__(parent)
        document = opened.document
        self.recovered = opened.recovered is not None and use_recovery
        if self.recovered:
            document = opened.recovered
            document.revision += 1  # unsaved as far as the project file goes
        elif opened.recovery_path is not None:
            opened.recovery_path.unlink(missing_ok=True)
        source = opened.source
        self.source = VideoInfo(opened.video_path, source.num_frames, source.width, source.height, source.fps)
        source.close()  # the metadata is all the GUI thread needs; a decoder would hold its buffers for nothing
        self.name = display_name(opened.video_path)
        self.project_path = opened.project_path
        self.document = document
        self.undo_stack = undo_stack
        self.cache = FrameCache(opened.cache_reader)
        self.model = AnnotationModel(document)
        self.editor = AnnotationEditor(document, undo_stack)
        # Trackers come through the warm-up: the model is loaded and warmed while the person draws the box.
        self.warmup = TrackerWarmup(tracker_factory, self)
        self.controller = TrackingController(self.model, undo_stack, opened.worker_reader, self.warmup.factory)
        if not document.object_ids:
            document.add_object("object 1")  # not an undo step: a video always starts with one object
        self.autosaver = self._make_autosaver()
        # The project file holds this revision; -1 when there is no file yet or the document came from the
        # autosave (unsaved as far as the project file goes).
        self.saved_revision = -1 if not self.project_path.is_file() or self.recovered else document.revision

    @property
    def num_frames(self) -> int:
        return self.source.num_frames

    def opened_message(self) -> str:
        """The status line after opening: the video, and what the recovery brought back."""
        s = self.source
        text = f"Opened {self.name}: {s.num_frames} frames, {s.width}×{s.height}, {s.fps:g} fps"
        if self.recovered:
            doc = self.document
            boxes = sum(len(doc.frames(obj)) for obj in doc.object_ids)
            objects = len(doc.object_ids)
            text = (f"Recovered the unsaved work of {self.name} from its autosave: {objects} "
                    f"object{'s' if objects != 1 else ''}, {boxes} annotated frame{'s' if boxes != 1 else ''} "
                    f"(written to the project when you save or close).")
        return text

    # ---- saving -------------------------------------------------------------------------------------------

    def save(self) -> None:
        """Save to the project file (atomically; OSError when it cannot be written); the autosave goes."""
        save_project(self.document, self.project_path)
        self.saved_revision = self.document.revision
        self.autosaver.discard()

    def save_as(self, path: str | Path) -> None:
        self.autosaver.discard()
        self.project_path = Path(path)
        self.autosaver = self._make_autosaver()
        self.save()

    def autosave_tick(self) -> None:
        """Every second: the autosaver writes when the document changed and its interval has passed."""
        self.autosaver.maybe_save()

    def autosave_soon(self) -> None:
        """After a tracking run: its frames are the work most worth keeping."""
        self.autosaver.save_soon()

    def save_on_close(self) -> None:
        """Closing or switching videos saves the project: annotations are never left behind unsaved."""
        doc = self.document
        if doc.revision != self.saved_revision and any(doc.states(obj) for obj in doc.object_ids):
            try:
                save_project(doc, self.project_path)
            except OSError:
                return  # the autosave stays, and is offered back at the next start
        self.autosaver.discard()

    def close(self) -> None:
        """Stop the threads, save, release the readers. The session cannot be used afterwards."""
        self.controller.shutdown()
        self.warmup.close()
        self.save_on_close()
        self.cache.close()
        self.model.close()

    def _make_autosaver(self) -> BackgroundAutosaver:
        autosaver = BackgroundAutosaver(self.document, self.project_path, AUTOSAVE_INTERVAL_S, self)
        autosaver.failed.connect(lambda text: self.autosaveFailed.emit(text[0].upper() + text[1:]))
        return autosaver
