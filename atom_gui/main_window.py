"""The main window: frame view, timeline, evidence panels, menus; it wires the models to the views.

Threads: the GUI thread only draws and edits the document. Frames are decoded by the frame cache's thread and
by the tracking worker's thread (each with its own reader); opening a video runs on the thread pool. So the
window never waits on a decoder or a tracker.

Data flow: the document (``tracker_core.annotation.Document``) is the truth. The annotation model mirrors it
as arrays and signals changes; the frame view, timeline strip and score curves redraw from it, coalesced to at
most ~30 redraws a second however fast results come. Tracker evidence (score maps, proposals) is not part of
the document: the window keeps the recent results in a bounded memory so that stepping back shows them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from tracker_core.annotation import Document, Flag, ReplacePolicy
from tracker_core.annotation.project_io import save_project
from tracker_core.boxes import Box
from tracker_core.result import TrackResult

from .annotation_model import SOURCE_MANUAL, AnnotationModel
from .autosave import BackgroundAutosaver
from .background import call_in_background
from .bidirectional_fill import FillRun
from .core_adapters import Tracker, make_tracker
from .editing import AnnotationEditor
from .evidence_panels import EvidencePanels
from .frame_cache import FrameCache
from .frame_captions import box_caption, frame_caption, state_color
from .frame_view import FrameView
from .import_export import (
    FORMATS,
    ExportCancelled,
    ImportCommand,
    export_format,
    export_review_video_in_background,
    import_format,
)
from .project_files import OpenedSession, open_session
from .settings import AppSettings, SettingsDialog
from .shortcuts import ShortcutDialog, apply_keys, cheat_sheet_html, load_keys, make_actions, save_keys
from .timeline import Timeline, strip_codes
from .tracking_controller import RunOptions, TrackingController
from .tracking_worker import END_OF_RANGE, FAILED, FLAGGED, KEYFRAME, LOW_CONFIDENCE, STOPPED, UNREADABLE
from .undo_commands import ObjectPropertiesCommand

REFRESH_MS = 33
PANEL_INTERVAL_S = 0.12
MAX_RECENT = 10
AUTOSAVE_INTERVAL_S = 5.0  # with the 1 s timer, a crash loses at most ~6 s of work (the goal is 10 s)


def default_project_dir() -> Path:
    """Projects of videos opened without one: the app's data folder (never the video's own folder)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".atom-annotator") / "projects"


class MainWindow(QMainWindow):
    """ATOM Annotator's window.

    videoOpened(path): a video is open and its first frame is on its way.
    errorShown(title, text): an error message was shown to the person (tests listen to this).
    frameShown(index): the image of frame ``index`` is on screen.
    """

    videoOpened = Signal(str)
    errorShown = Signal(str, str)
    frameShown = Signal(int)

    def __init__(self, qsettings: QSettings | None = None, settings: AppSettings | None = None,
                 tracker_factory: Callable[..., Tracker] = make_tracker, project_dir: str | Path | None = None):
        super().__init__()
        self.qsettings = qsettings or QSettings("ATOM Annotator", "ATOM Annotator")
        self.settings = settings or AppSettings.load(self.qsettings)
        self.tracker_factory = tracker_factory
        self.setWindowTitle("ATOM Annotator")
        self.resize(1400, 860)
        self.setAcceptDrops(True)

        self.source = None
        self.cache: FrameCache | None = None
        self.document: Document | None = None
        self.model: AnnotationModel | None = None
        self.controller: TrackingController | None = None
        self.editor: AnnotationEditor | None = None
        self.undo_stack = QUndoStack(self)
        self.current_frame = 0
        self.current_object: int | None = None
        self.last_error: tuple[str, str] | None = None
        self._review_cancel: threading.Event | None = None  # set while a review video is being written
        self.last_run: tuple[str, int, float] | None = None  # (reason, frames, fps) of the last run
        self._displayed: int | None = None
        self._direction = 1  # of the last move, for prefetching
        self._editing_box = False
        # (frame, direction) a run paused by a correction resumes from; frame None while the box is held
        self._resume: tuple[int | None, int] | None = None
        self._drawing = False  # N was pressed: the next drag draws a box
        self._follow_suspended = False  # the person moved during a run: stay where they are
        self._fill: FillRun | None = None  # a bidirectional fill in progress (its two runs collect results)
        self._selection: tuple[int, int] | None = None
        self._opening: str | None = None
        self.project_dir = Path(project_dir) if project_dir is not None else default_project_dir()
        self.project_path: Path | None = None
        self.autosaver: BackgroundAutosaver | None = None
        self._saved_revision = 0

        self._build_widgets()
        self.keys = load_keys(self.qsettings)
        self.actions = make_actions(self, self.keys)
        self._build_menus()
        self._connect_actions()
        self._play_timer = QTimer(self)
        self._play_timer.timeout.connect(self._play_tick)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_MS)
        self._refresh_timer.timeout.connect(self._refresh_track_views)
        self._panels_drawn_at = 0.0
        self._panels_timer = QTimer(self)
        self._panels_timer.setSingleShot(True)
        self._panels_timer.timeout.connect(self._update_evidence)
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(1000)
        self._autosave_timer.timeout.connect(self._autosave_tick)
        self._update_enabled()

    # ==== construction =====================================================================================

    def _build_widgets(self) -> None:
        self.frame_view = FrameView()
        self.frame_view.boxDrawn.connect(self._on_box_drawn)
        self.frame_view.boxEdited.connect(self._on_box_edited)
        self.frame_view.editStarted.connect(self._on_edit_started)
        self.timeline = Timeline()
        self.timeline.frameRequested.connect(self.go_to)
        self.timeline.strip.selectionChanged.connect(self._on_selection)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.frame_view, 1)
        layout.addWidget(self.timeline)
        self.setCentralWidget(central)

        self.cheat_sheet = QLabel(self.frame_view)
        self.cheat_sheet.setTextFormat(Qt.TextFormat.RichText)
        self.cheat_sheet.setStyleSheet("background: rgba(13, 17, 23, 225); border: 1px solid #30363d; "
                                       "border-radius: 6px; padding: 10px; font-size: 12px;")
        self.cheat_sheet.hide()

        self.panels = EvidencePanels()
        self.panels.curves.frameRequested.connect(self.go_to)
        self.panels.curves.set_thresholds(self.settings.low_score, 0.5)
        dock = QDockWidget("Tracker evidence", self)
        dock.setObjectName("evidence")
        dock.setWidget(self.panels)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.resizeDocks([dock], [430], Qt.Orientation.Horizontal)
        self.evidence_dock = dock

        self.object_combo = QComboBox()
        self.object_combo.setMinimumWidth(140)
        self.object_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.object_combo.activated.connect(lambda i: self.set_current_object(self.object_combo.itemData(i)))
        self.frame_label = QLabel("")
        self.frame_label.setMinimumWidth(360)
        self.fps_label = QLabel("")
        self.fps_label.setMinimumWidth(110)
        self.statusBar().addPermanentWidget(self.frame_label)
        # The review video's progress and its Cancel button, shown only while one is written.
        self.review_progress = QProgressBar()
        self.review_progress.setMaximumWidth(260)
        self.review_cancel_button = QPushButton("Cancel")
        self.review_cancel_button.setToolTip("Stop writing the review video (the partial file is removed)")
        self.review_cancel_button.clicked.connect(self.cancel_review_video)
        for widget in (self.review_progress, self.review_cancel_button):
            widget.setVisible(False)
            self.statusBar().addPermanentWidget(widget)
        self.statusBar().addPermanentWidget(self.fps_label)
        self.timeline.spin.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.timeline.spin.editingFinished.connect(self.frame_view.setFocus)
        self.timeline.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # letters and Space stay shortcuts

    def _build_menus(self) -> None:
        a = self.actions
        a["undo"].triggered.connect(self.undo)
        a["redo"].triggered.connect(self.redo)
        self.undo_stack.canUndoChanged.connect(lambda _: self._update_enabled())
        self.undo_stack.canRedoChanged.connect(lambda _: self._update_enabled())
        self.undo_stack.undoTextChanged.connect(lambda t: a["undo"].setText(f"&Undo {t}".strip()))
        self.undo_stack.redoTextChanged.connect(lambda t: a["redo"].setText(f"&Redo {t}".strip()))
        for name in ("follow", "overlay"):
            a[name].setCheckable(True)
        a["follow"].setChecked(self.settings.follow_tracking)
        a["overlay"].setChecked(self.settings.show_confidence_overlay)
        self.frame_view.show_confidence = self.settings.show_confidence_overlay

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([a["open"], a["open_folder"]])
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        file_menu.addActions([a["open_project"], a["save"], a["save_as"]])
        file_menu.addSeparator()
        self.import_menu = file_menu.addMenu("&Import annotations")
        self.export_menu = file_menu.addMenu("&Export annotations")
        for fmt, text, _folder in FORMATS:
            self.import_menu.addAction(text, lambda f=fmt: self.import_annotations(f))
            self.export_menu.addAction(text, lambda f=fmt: self.export_annotations(f))
        file_menu.addAction(a["export_review"])
        file_menu.addSeparator()
        file_menu.addAction(a["quit"])
        edit_menu = bar.addMenu("&Edit")
        edit_menu.addActions([a["undo"], a["redo"]])
        edit_menu.addSeparator()
        edit_menu.addActions([a["settings"], a["shortcuts"]])
        nav = bar.addMenu("&Navigate")
        nav.addActions([a[n] for n in ("next_frame", "prev_frame", "step_forward", "step_back", "first_frame",
                                       "last_frame", "next_keyframe", "prev_keyframe", "next_low", "prev_low",
                                       "play")])
        track = bar.addMenu("&Track")
        track.addActions([a[n] for n in ("track", "track_backward", "track_n", "track_n_backward", "fill",
                                         "stop")])
        annotate = bar.addMenu("&Annotate")
        annotate.addActions([a[n] for n in ("draw_box", "keyframe", "out_of_view", "occluded", "delete_box",
                                            "interpolate", "keep_stale")])
        annotate.addSeparator()
        annotate.addActions([a["new_object"], a["next_object"], a["object_properties"], a["delete_object"]])
        view = bar.addMenu("&View")
        view.addActions([a["follow"], a["overlay"], a["fit"]])
        view.addAction(self.evidence_dock.toggleViewAction())
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(a["cheat_sheet"])

        tools = QToolBar("Main")
        tools.setObjectName("main-toolbar")
        tools.setMovable(False)
        tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tools.addAction(a["open"])
        tools.addSeparator()
        tools.addWidget(QLabel(" Object: "))
        tools.addWidget(self.object_combo)
        tools.addAction(a["new_object"])
        tools.addSeparator()
        tools.addActions([a["track_backward"], a["track"], a["fill"], a["stop"]])
        tools.addSeparator()
        tools.addActions([a["keyframe"], a["out_of_view"], a["occluded"], a["interpolate"]])
        tools.addSeparator()
        tools.addActions([a["undo"], a["redo"], a["settings"], a["cheat_sheet"]])
        self.addToolBar(tools)
        self.timeline.add_actions([a["prev_keyframe"], a["step_back"], a["prev_frame"], a["play"],
                                   a["next_frame"], a["step_forward"], a["next_keyframe"], None])

    def _connect_actions(self) -> None:
        a = self.actions
        handlers = {
            "open": self.choose_video, "open_folder": self.choose_folder, "quit": self.close,
            "save": self.save_project, "save_as": self.save_project_as, "open_project": self.choose_project,
            "settings": self.edit_settings, "shortcuts": self.edit_shortcuts,
            "next_frame": lambda: self.step(1), "prev_frame": lambda: self.step(-1),
            "step_forward": lambda: self.step(self.settings.step_frames),
            "step_back": lambda: self.step(-self.settings.step_frames),
            "first_frame": lambda: self.go_to(0), "last_frame": lambda: self.go_to(self._num_frames() - 1),
            "next_keyframe": lambda: self.jump_keyframe(1), "prev_keyframe": lambda: self.jump_keyframe(-1),
            "next_low": lambda: self.jump_low_confidence(1), "prev_low": lambda: self.jump_low_confidence(-1),
            "play": self.toggle_play,
            "track": lambda: self.toggle_tracking(1), "track_backward": lambda: self.toggle_tracking(-1),
            "track_n": lambda: self.toggle_tracking(1, self.settings.track_frames),
            "track_n_backward": lambda: self.toggle_tracking(-1, self.settings.track_frames),
            "stop": self.stop_tracking, "fill": self.fill_between_keyframes,
            "draw_box": self.start_drawing, "keyframe": self.make_keyframe,
            "out_of_view": lambda: self.toggle_flag(Flag.OUT_OF_VIEW),
            "occluded": lambda: self.toggle_flag(Flag.OCCLUDED),
            "delete_box": self.delete_box, "interpolate": self.interpolate, "keep_stale": self.keep_stale,
            "new_object": self.new_object, "next_object": self.next_object,
            "object_properties": self.edit_object, "delete_object": self.delete_object,
            "export_review": self.export_review_video,
            "follow": self._toggle_follow, "overlay": self._toggle_overlay,
            "fit": lambda: self.frame_view.view.autoRange(padding=0.02),
            "cheat_sheet": self.toggle_cheat_sheet,
        }
        for name, handler in handlers.items():
            a[name].triggered.connect(lambda _checked=False, h=handler: h())

    # ==== opening ==========================================================================================

    def choose_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", self._last_dir(),
                                              "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.mpg *.m4v);;"
                                              "All files (*)")
        if path:
            self.open_path(path)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder of frames", self._last_dir())
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> None:
        """Open a video file, a frame folder or a project file; the opening runs off the GUI thread."""
        path = str(path)
        self._opening = path
        self.statusBar().showMessage(f"Opening {path}…")
        if self.source is None:
            self.frame_view.set_hint(f"Opening {Path(path).name}…")
        project_dir = self.project_dir
        call_in_background(lambda: open_session(path, project_dir), lambda s: self._session_ready(path, s),
                           lambda exc: self._open_failed(path, exc))

    def _open_failed(self, path: str, exc: Exception) -> None:
        if self._opening != path:
            return
        self._opening = None
        self.frame_view.set_hint("" if self.source is not None else "Open a video (File ▸ Open, or drop a file)")
        self.statusBar().clearMessage()
        kind = "project" if path.lower().endswith(".json") else "video"
        self.show_error(f"Cannot open the {kind}", f"{path}\n\n{exc}")

    def _session_ready(self, path: str, session: OpenedSession) -> None:
        if self._opening != path:  # another open was asked for meanwhile
            session.close_readers()
            return
        self._opening = None
        self._close_video()
        self.source = session.source
        self.project_path = session.project_path
        self.cache = FrameCache(session.cache_reader)
        self.cache.frameReady.connect(self._on_frame_ready)
        self.cache.decodeFailed.connect(self._on_decode_failed)
        document = session.document
        if session.recovered is not None and self.ask_recovery(session.recovery_path):
            document = session.recovered
            document.revision += 1  # unsaved as far as the project file goes
        elif session.recovery_path is not None:
            session.recovery_path.unlink(missing_ok=True)
        self._attach_document(document, session.worker_reader)
        self._saved_revision = -1 if not self.project_path.is_file() or document is session.recovered \
            else document.revision
        self._add_recent(session.video_path)
        name = Path(session.video_path).name
        self.setWindowTitle(f"ATOM Annotator — {name}")
        self.timeline.set_num_frames(self.source.num_frames)
        self.frame_view.clear_frame()
        first = self.document.keyframes(self.current_object)
        self.go_to(first[0] if first else 0)
        s = self.source
        self.statusBar().showMessage(session.warning or f"Opened {name}: {s.num_frames} frames, "
                                     f"{s.width}×{s.height}, {s.fps:g} fps", 8000)
        self.videoOpened.emit(path)

    def ask_recovery(self, autosave: Path) -> bool:
        """After a crash: offer the autosave (newer than the project). Tests replace this method."""
        answer = QMessageBox.question(
            self, "Recover unsaved work?",
            f"ATOM Annotator did not close properly last time. An autosave newer than the project exists:\n\n"
            f"{autosave}\n\nRecover it? (No discards the autosave and opens the last saved project.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        return answer == QMessageBox.StandardButton.Yes

    def _attach_document(self, document: Document, worker_reader) -> None:
        self.document = document
        self.model = AnnotationModel(document)
        self.model.framesChanged.connect(self._on_frames_changed)
        self.model.objectsChanged.connect(self._on_objects_changed)
        self.undo_stack.clear()
        self.editor = AnnotationEditor(document, self.undo_stack)
        self.controller = TrackingController(self.model, self.undo_stack, worker_reader, self.tracker_factory)
        self.controller.resultsApplied.connect(self._on_results_applied)
        self.controller.runStarted.connect(lambda _spec: self._update_enabled())
        self.controller.runEnded.connect(self._on_run_ended)
        self.controller.runFailed.connect(self._on_run_failed)
        self.controller.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        if not document.object_ids:
            document.add_object("object 1")  # not an undo step: a video always starts with one object
        self.current_object = document.object_ids[0]
        self.autosaver = self._make_autosaver(document, self.project_path)
        self._autosave_timer.start()
        self._on_objects_changed()
        self._schedule_refresh()
        self._update_enabled()

    def _close_video(self) -> None:
        self._play_timer.stop()
        self._autosave_timer.stop()
        if self.controller is not None:
            self.controller.shutdown()
            self.controller = None
        if self.document is not None:
            self._save_on_close()
        if self.cache is not None:
            self.cache.close()
            self.cache = None
        if self.model is not None:
            self.model.close()
            self.model = None
        if self.source is not None:
            self.source.close()
            self.source = None
        self._displayed = None
        self.document = None
        self.editor = None
        self.undo_stack.clear()

    # ==== navigation =======================================================================================

    def _num_frames(self) -> int:
        return self.source.num_frames if self.source is not None else 0

    def go_to(self, index: int) -> None:
        """Show a frame: the image when it is decoded (now when cached), the boxes and evidence at once."""
        if self.source is None:
            return
        index = int(np.clip(index, 0, self._num_frames() - 1))
        if self.controller is not None and self.controller.is_running and index != self.current_frame:
            self._follow_suspended = True  # the person looks elsewhere during the run: do not pull them back
        self._direction = 1 if index >= self.current_frame else -1
        self.current_frame = index
        self.timeline.set_current(index)
        self.panels.curves.set_current_frame(index)
        frame = self.cache.request(index, self._direction)
        if frame is not None:
            self._display(index, frame)
        self._update_frame_overlays()

    def step(self, delta: int) -> None:
        self.go_to(self.current_frame + delta)

    def _display(self, index: int, frame: np.ndarray) -> None:
        self.frame_view.set_frame(frame)
        self._displayed = index
        self.frameShown.emit(index)

    def _on_frame_ready(self, index: int, frame) -> None:
        if index == self.current_frame and self._displayed != index:
            self._display(index, frame)
            self._update_evidence()  # the IoU panel crops the frame

    def _on_decode_failed(self, index: int, message: str) -> None:
        if index == self.current_frame:
            self._play_timer.stop()
            self.statusBar().showMessage(f"Frame {index} cannot be decoded: {message}", 10000)

    def jump_keyframe(self, direction: int) -> None:
        if self.document is None:
            return
        doc, obj = self.document, self.current_object
        target = (doc.next_keyframe(obj, self.current_frame) if direction > 0
                  else doc.previous_keyframe(obj, self.current_frame))
        if target is None:
            self.statusBar().showMessage("No keyframe " + ("after" if direction > 0 else "before") +
                                         " this frame.", 3000)
        else:
            self.go_to(target)

    def jump_low_confidence(self, direction: int) -> None:
        if self.document is None:
            return
        target = self.document.next_low_confidence(self.current_object, self.current_frame,
                                                   self.settings.low_score, self.settings.low_iou,
                                                   backward=direction < 0)
        if target is None:
            self.statusBar().showMessage("No low-confidence frame " + ("after" if direction > 0 else "before") +
                                         " this one.", 3000)
        else:
            self.go_to(target)

    def toggle_play(self) -> None:
        if self._play_timer.isActive():
            self._play_timer.stop()
        elif self.source is not None:
            self._play_timer.start(max(1, int(1000 / max(1.0, self.source.fps))))

    def _play_tick(self) -> None:
        if self.current_frame >= self._num_frames() - 1:
            self._play_timer.stop()
        elif self._displayed == self.current_frame:  # wait for a frame still being decoded
            self.step(1)

    # ==== objects ==========================================================================================

    def set_current_object(self, object_id: int | None) -> None:
        if object_id is None or self.document is None or object_id not in self.document:
            return
        self.current_object = object_id
        index = self.object_combo.findData(object_id)
        if index >= 0:
            self.object_combo.setCurrentIndex(index)
        self._update_frame_overlays()
        self._schedule_refresh()

    def new_object(self) -> None:
        if self.editor is None:
            return
        object_id = self.editor.add_object()
        self.set_current_object(object_id)
        self.start_drawing()

    def next_object(self) -> None:
        if self.document is None or not self.document.object_ids:
            return
        ids = self.document.object_ids
        i = ids.index(self.current_object) if self.current_object in ids else -1
        self.set_current_object(ids[(i + 1) % len(ids)])

    def delete_object(self) -> None:
        """Ctrl+Shift+Del: the current object and all its boxes go, as one undo step (not while it is tracked)."""
        if self.editor is None or self.current_object is None:
            return
        c = self.controller
        if c is not None and c.is_running and c.active_object == self.current_object:
            self.statusBar().showMessage("This object is being tracked: stop tracking (Esc) before deleting it.", 6000)
            return
        self.statusBar().showMessage(self.editor.delete_object(self.current_object), 8000)

    def edit_object(self) -> None:
        """F2: the current object's label and description (LaSOT's nlp.txt), one undo step."""
        if self.document is None or self.current_object is None:
            return
        obj = self.document.object(self.current_object)
        label, ok = QInputDialog.getText(self, "Object label", "Label (the class name in exports):", text=obj.label)
        if not ok or not label.strip():
            return
        description, ok = QInputDialog.getMultiLineText(self, "Object description",
                                                        "Description (LaSOT's nlp.txt sentence):", obj.description)
        if not ok:
            return
        previous = (self.document.set_label(obj.id, label.strip()),
                    self.document.set_description(obj.id, description.strip()))
        self.undo_stack.push(ObjectPropertiesCommand(self.document, obj.id, previous))

    def _on_objects_changed(self) -> None:
        self.object_combo.clear()
        if self.document is None:
            return
        for obj in self.document.objects():
            self.object_combo.addItem(obj.label, obj.id)
        if self.current_object not in self.document:
            self.current_object = self.document.object_ids[0] if self.document.object_ids else None
        if self.current_object is None:
            self._update_frame_overlays()
            self._schedule_refresh()
        else:
            self.set_current_object(self.current_object)

    # ==== boxes and edits ==================================================================================

    def start_drawing(self) -> None:
        """N: the next drag on the frame draws a new box for the current object (even where it has one)."""
        if self.source is None:
            return
        self._drawing = True
        self._update_frame_overlays()

    def _on_edit_started(self) -> None:
        """The person grabbed the box: stop tracking at once, and carry on from the correction on release."""
        self._editing_box = True
        c = self.controller
        if c is not None and c.is_running and c.active_object == self.current_object:
            self._resume = (None, c.direction)
            c.pause()

    def _on_box_drawn(self, box: Box) -> None:
        self._apply_box(box, corrected=False)

    def _on_box_edited(self, box: Box) -> None:
        self._apply_box(box, corrected=True)

    def _apply_box(self, box: Box, corrected: bool) -> None:
        """A drawn or corrected box becomes a keyframe. If a run was going (or was paused by grabbing the box),
        tracking carries on from it: correct-and-continue without a key press."""
        self._editing_box = False
        self._drawing = False
        if self.editor is None:
            return
        if self.current_object is None:  # every object was deleted: a drawn box starts a new one
            self.set_current_object(self.editor.add_object())
        c = self.controller
        if c.is_running and c.active_object == self.current_object:
            self._resume = (None, c.direction)
            c.pause()
        message = self.editor.set_box(self.current_object, self.current_frame, box, corrected)
        if self._resume is not None:
            self._resume = (self.current_frame, self._resume[1])
            if not c.is_running:
                self._resume_tracking()
                return
        self.statusBar().showMessage(message + " Press Space to track from it.", 6000)
        self._update_frame_overlays()

    def _resume_tracking(self) -> None:
        frame, direction = self._resume
        self._resume = None
        if frame is None or self.document is None:
            return
        if frame != self.current_frame:
            self.go_to(frame)
        self.start_tracking(direction)

    def make_keyframe(self) -> None:
        if self.editor is not None:
            self.statusBar().showMessage(self.editor.make_keyframe(self.current_object, self.current_frame), 4000)

    def _range(self) -> tuple[int, int]:
        """The frames an annotate command covers: the selected range of the timeline, else this frame."""
        if self._selection is not None:
            return self._selection
        return self.current_frame, self.current_frame

    def _on_selection(self, first: int, last: int) -> None:
        self._selection = None if first < 0 else (first, last)

    def toggle_flag(self, flag: Flag) -> None:
        if self.editor is None:
            return
        self._stop_if_tracking_current()
        first, last = self._range()
        self.statusBar().showMessage(self.editor.toggle_flag(self.current_object, flag, first, last), 4000)

    def delete_box(self) -> None:
        if self.editor is None:
            return
        self._stop_if_tracking_current()
        first, last = self._range()
        self.statusBar().showMessage(self.editor.delete_box(self.current_object, first, last), 5000)

    def interpolate(self) -> None:
        if self.editor is not None:
            self.statusBar().showMessage(self.editor.interpolate_around(self.current_object, self.current_frame),
                                         5000)

    def keep_stale(self) -> None:
        if self.editor is not None:
            self._stop_if_tracking_current()
            self.statusBar().showMessage(self.editor.keep_stale(self.current_object, *self._range()), 5000)

    def undo(self) -> None:
        self._stop_if_tracking_current(any_object=True)
        if self.controller is None or not self.controller.is_running:
            self.undo_stack.undo()

    def redo(self) -> None:
        self._stop_if_tracking_current(any_object=True)
        if self.controller is None or not self.controller.is_running:
            self.undo_stack.redo()

    def _stop_if_tracking_current(self, any_object: bool = False) -> None:
        """Edits of a track being written would race the run: pause it first (its frames are kept)."""
        c = self.controller
        if c is not None and c.is_running and (any_object or c.active_object == self.current_object):
            c.pause()
            self.statusBar().showMessage("Tracking paused for the edit; press the key again.", 4000)

    # ==== tracking =========================================================================================

    def toggle_tracking(self, direction: int, max_frames: int | None = None) -> None:
        """Space: start tracking from this frame's box, or pause a run that is going."""
        if self.controller is None:
            return
        if self.controller.is_running:
            self.controller.pause()
            return
        self.start_tracking(direction, max_frames)

    def start_tracking(self, direction: int = 1, max_frames: int | None = None) -> bool:
        if self.controller is None or self.controller.is_running:
            return False
        self._play_timer.stop()
        s = self.settings
        options = RunOptions(tracker=s.tracker_choice(), replace_policy=ReplacePolicy(s.replace_policy),
                             pause_below=s.pause_below if s.auto_pause else None)
        try:
            spec = self.controller.plan(self.current_object, self.current_frame, direction, max_frames, options)
        except ValueError as exc:
            self.statusBar().showMessage(str(exc)[0].upper() + str(exc)[1:], 6000)
            return False
        self.controller.start(spec, options.replace_policy)
        self._follow_suspended = False
        arrow = "forward" if direction > 0 else "backward"
        self.statusBar().showMessage(f"Tracking {arrow} from frame {spec.start_frame} with {s.tracker}…")
        self.fps_label.setText("")
        return True

    def stop_tracking(self) -> None:
        """Esc: stop a run (keeping its boxes); else leave drawing mode, or clear the timeline range."""
        if self.controller is not None and self.controller.is_running:
            self._resume = None
            self.controller.stop()
        elif self._drawing:
            self._drawing = False
        elif self._selection is not None:
            self.timeline.strip.set_selection(None)
        self._update_frame_overlays()

    def fill_between_keyframes(self) -> None:
        """B: fill the frames between the keyframes around this frame by tracking both ways (two runs)."""
        if self.controller is None or self.controller.is_running:
            return
        s = self.settings
        options = RunOptions(tracker=s.tracker_choice(), replace_policy=ReplacePolicy.UNTIL_KEYFRAME)
        try:
            first, last = FillRun.around(self.document, self.current_object, self.current_frame)
            fill = FillRun(self.controller, self.document, self.undo_stack, self.current_object, first, last,
                           options, s.low_score, self)
            fill.finished.connect(self._fill_finished)
            self._fill = fill
            fill.start()
        except ValueError as exc:
            self._fill = None
            self.statusBar().showMessage(str(exc), 6000)
            return
        self._follow_suspended = False
        self.statusBar().showMessage(f"Filling frames {first}–{last}: tracking forward, then backward…")

    def _fill_finished(self, message: str) -> None:
        self._fill = None
        self.statusBar().showMessage(message, 15000)
        self._update_enabled()

    def _on_results_applied(self, frame: int, result: TrackResult, image) -> None:
        """Newest result of a batch (at most ~25 a second): remember its evidence, and follow it if asked."""
        object_id = self.controller.active_object
        if self.controller.fps > 0:
            self.fps_label.setText(f"tracking · {self.controller.fps:.1f} frames/s")
        if image is not None:
            self.cache.put(frame, image)
        follow = (self.settings.follow_tracking and not self._follow_suspended and not self._editing_box
                  and self._resume is None and object_id == self.current_object)
        if follow:
            self.current_frame = frame
            self.timeline.set_current(frame)
            self.panels.curves.set_current_frame(frame)
            if image is not None:
                self._display(frame, image)
            self._update_frame_overlays()
        elif frame == self.current_frame:
            self._update_frame_overlays()

    def _on_run_ended(self, reason: str, frames: int, fps: float) -> None:
        self.last_run = (reason, frames, fps)
        self._autosave_now()
        self.fps_label.setText(f"{fps:.1f} frames/s" if fps > 0 else "")
        if self._fill is not None:
            return  # the fill's own slot goes on with its next run or its merge
        if self._resume is not None and self._resume[0] is not None and reason != FAILED:
            self._resume_tracking()
            return
        if reason == FAILED:
            self._resume = None
            return  # the error dialog says it
        last_frame = self.controller.last_frame
        last = f"; last frame {last_frame}" if frames and last_frame is not None else ""
        texts = {
            END_OF_RANGE: f"Tracked {frames} frames{last}.",
            STOPPED: f"Stopped after {frames} frames{last}. Every box is kept.",
            FLAGGED: f"Tracked {frames} frames, up to a frame flagged occluded or out of view.",
            KEYFRAME: f"Tracked {frames} frames, up to the next keyframe.",
            LOW_CONFIDENCE: (f"Paused on low confidence after {frames} frames: check the box on frame "
                             f"{last_frame}, drag it to correct, then press Space."),
            UNREADABLE: f"Tracked {frames} frames, then stopped: {self.controller.last_error}.",
        }
        self.statusBar().showMessage(texts.get(reason, f"Tracking ended ({reason})."), 15000)
        self._update_enabled()
        self._update_frame_overlays()

    def _on_run_failed(self, message: str, details: str) -> None:
        kept = self.last_run[1] if self.last_run else 0
        self.show_error("Tracking stopped by an error",
                        f"{message}\n\nThe {kept} frames tracked before the error are kept (undo removes them).",
                        details)
        self._update_enabled()

    # ==== views ============================================================================================

    def _on_frames_changed(self, object_id: int, first: int, last: int) -> None:
        if first <= self.current_frame <= last:
            self._update_frame_overlays()
        if object_id == self.current_object:
            self._schedule_refresh()

    def _schedule_refresh(self) -> None:
        """Redraw the strip and curves soon: within a frame when idle, at ~8 per second during a run."""
        if not self._refresh_timer.isActive():
            running = self.controller is not None and self.controller.is_running
            self._refresh_timer.start(int(PANEL_INTERVAL_S * 1000) if running else REFRESH_MS)

    def _refresh_track_views(self) -> None:
        """Timeline strip and score curves of the current object, from the model's arrays."""
        if self.model is None or self.current_object is None:
            self.timeline.strip.set_states(np.zeros(0, np.int8), np.zeros(0, bool), np.zeros(0, int))
            self.panels.curves.set_curves(None, None)
            return
        arrays = self.model.arrays(self.current_object)
        codes, low = strip_codes(arrays, self.settings.low_score, self.settings.low_iou)
        self.timeline.strip.set_states(codes, low, np.flatnonzero(arrays.source == SOURCE_MANUAL))
        self.panels.curves.set_curves(arrays.score, arrays.iou)

    def _update_frame_overlays(self) -> None:
        """The boxes on the current frame, the frame's status line, and the evidence panels."""
        if self.document is None:
            return
        if self.current_object is None:  # every object deleted: nothing to show, a drag starts a new object
            self.frame_view.set_other_boxes([])
            self.frame_view.set_box(None)
            self.frame_view.draw_mode = True
            self.frame_view.set_hint("Drag on the frame to draw the box of a new object, then press Space to track")
            self.frame_label.setText(f"Frame {self.current_frame} / {self._num_frames() - 1} · no object")
            return
        doc, frame = self.document, self.current_frame
        others = []
        for obj in doc.objects():
            if obj.id == self.current_object:
                continue
            box = self.model.visible_box(obj.id, frame)
            if box is not None:
                others.append((box, state_color(doc.state(obj.id, frame)), obj.label))
        self.frame_view.set_other_boxes(others)
        state = doc.state(self.current_object, frame)
        label = doc.object(self.current_object).label
        if not self._editing_box:
            if state is not None and state.box is not None and not state.flagged:
                self.frame_view.set_box(state.box, state_color(state), box_caption(label, state))
            else:
                self.frame_view.set_box(None)
        has_box = state is not None and state.box is not None and not state.flagged
        first_box = not (self.model.arrays(self.current_object).source == SOURCE_MANUAL).any()
        # A drag draws a box when N was pressed, or when the object has no box anywhere yet (its first one);
        # otherwise a drag pans, so that reviewing never makes a box by accident (Shift+drag always draws).
        self.frame_view.draw_mode = self._drawing or (first_box and not has_box)
        if first_box and not has_box:
            self.frame_view.set_hint(f"Drag on the frame to draw the box around {label}, then press Space "
                                     f"to track")
        elif self._drawing:
            self.frame_view.set_hint(f"Drag on the frame to draw the box of {label}")
        else:
            self.frame_view.set_hint("")
        self.frame_label.setText(frame_caption(frame, self._num_frames(), label, state))
        self._update_evidence()

    def _update_evidence(self) -> None:
        if self.current_object is None or self.cache is None:
            return
        if self.controller is None:
            return
        result = self.controller.evidence_for(self.current_object, self.current_frame)
        self.frame_view.set_evidence(result)
        # The panels redraw at most ~8 times a second during a run: their pixels cost event-loop time that a
        # fast tracker's stream needs, and no one reads a score map at 25 per second. The last one is drawn.
        now = time.perf_counter()
        running = self.controller is not None and self.controller.is_running
        if running and now - self._panels_drawn_at < PANEL_INTERVAL_S:
            if not self._panels_timer.isActive():
                self._panels_timer.start(int(PANEL_INTERVAL_S * 1000))
            return
        self._panels_drawn_at = now
        image = self.cache.get(self.current_frame) if result is not None else None
        self.panels.show_result(result, image, self.settings.tracker)

    # ==== settings, shortcuts, cheat sheet =================================================================

    def edit_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            self.apply_settings(dialog.settings())

    def apply_settings(self, settings: AppSettings) -> None:
        old = self.settings
        self.settings = settings
        settings.save(self.qsettings)
        if self.controller is not None and old.tracker_choice() != settings.tracker_choice():
            self.controller.forget_trackers()
        self.actions["follow"].setChecked(settings.follow_tracking)
        self.actions["overlay"].setChecked(settings.show_confidence_overlay)
        self.frame_view.show_confidence = settings.show_confidence_overlay
        self.panels.curves.set_thresholds(settings.low_score, 0.5)
        self._schedule_refresh()
        self._update_frame_overlays()

    def edit_shortcuts(self) -> None:
        dialog = ShortcutDialog(self.keys, self)
        if dialog.exec():
            self.keys = dialog.keys()
            save_keys(self.qsettings, self.keys)
            apply_keys(self.actions, self.keys)
            if self.cheat_sheet.isVisible():
                self.toggle_cheat_sheet()
                self.toggle_cheat_sheet()

    def toggle_cheat_sheet(self) -> None:
        if self.cheat_sheet.isVisible():
            self.cheat_sheet.hide()
            return
        self.cheat_sheet.setText(cheat_sheet_html(self.keys))
        self.cheat_sheet.adjustSize()
        self.cheat_sheet.move(12, 12)
        self.cheat_sheet.raise_()
        self.cheat_sheet.show()

    def _toggle_follow(self) -> None:
        self.settings.follow_tracking = self.actions["follow"].isChecked()
        self.settings.save(self.qsettings)

    def _toggle_overlay(self) -> None:
        self.settings.show_confidence_overlay = self.actions["overlay"].isChecked()
        self.frame_view.show_confidence = self.settings.show_confidence_overlay
        self.settings.save(self.qsettings)
        self._update_evidence()

    # ==== projects and autosave ============================================================================

    def save_project(self) -> bool:
        """Save to the project file (atomically); the autosave is then removed."""
        if self.document is None:
            return False
        try:
            save_project(self.document, self.project_path)
        except OSError as exc:
            self.show_error("Cannot save the project", f"{self.project_path}\n\n{exc}")
            return False
        self._saved_revision = self.document.revision
        self.autosaver.discard()
        self.statusBar().showMessage(f"Saved {self.project_path}", 5000)
        return True

    def save_project_as(self) -> None:
        if self.document is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save project as", str(self.project_path),
                                              "ATOM projects (*.json)")
        if path:
            self.autosaver.discard()
            self.project_path = Path(path)
            self.autosaver = self._make_autosaver(self.document, self.project_path)
            self.save_project()

    def choose_project(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", str(self.project_dir),
                                              "ATOM projects (*.json);;All files (*)")
        if path:
            self.open_path(path)

    def _make_autosaver(self, document: Document, project_path: Path) -> BackgroundAutosaver:
        autosaver = BackgroundAutosaver(document, project_path, AUTOSAVE_INTERVAL_S, self)
        autosaver.failed.connect(lambda text: self.statusBar().showMessage(text[0].upper() + text[1:], 8000))
        return autosaver

    def _autosave_tick(self) -> None:
        if self.autosaver is not None:
            self.autosaver.maybe_save()

    def _autosave_now(self) -> None:
        """After a tracking run: its frames are the work most worth keeping."""
        if self.autosaver is not None:
            self.autosaver.save_soon()

    def _save_on_close(self) -> None:
        """Closing or switching videos saves the project: annotations are never left behind unsaved."""
        if self.document.revision != self._saved_revision and any(
                self.document.states(obj) for obj in self.document.object_ids):
            try:
                save_project(self.document, self.project_path)
            except OSError:
                return  # the autosave stays, and is offered back at the next start
        if self.autosaver is not None:
            self.autosaver.discard()
        self.autosaver = None

    def export_annotations(self, fmt: str) -> None:
        if self.document is None:
            return
        try:
            message = export_format(self, self.document, fmt, str(self.project_path.parent))
        except Exception as exc:  # a format error, a full disk: say it, lose nothing
            self.show_error("Export failed", str(exc))
            return
        if message:
            self.statusBar().showMessage(message, 10000)

    def import_annotations(self, fmt: str) -> None:
        if self.document is None:
            return
        self._stop_if_tracking_current(any_object=True)
        try:
            outcome = import_format(self, self.document, fmt, self._last_dir())
        except Exception as exc:  # parsers name the file and line; the document is unchanged
            self.show_error("Import failed", str(exc))
            return
        if outcome is None:
            return
        added, message = outcome
        if added:
            self.undo_stack.push(ImportCommand(self.document, added, f"Import {len(added)} object(s)"))
            self.set_current_object(added[0])
        self.statusBar().showMessage(message, 10000)

    def export_review_video(self) -> None:
        if self.document is None:
            return
        default = str(self.project_path.with_suffix("").with_suffix(".review.mp4"))
        path, _ = QFileDialog.getSaveFileName(self, "Export a review video", default, "MP4 video (*.mp4)")
        if not path:
            return
        self.statusBar().showMessage(f"Writing the review video {path}…")
        # In the status bar, not a dialog: the person keeps working while the frames are encoded (the export
        # reads a copy of the document).
        bar = self.review_progress
        bar.setRange(0, self._num_frames())
        bar.setValue(0)
        bar.setFormat(f"{Path(path).name}: %v / %m frames")
        cancel = threading.Event()
        self._review_cancel = cancel
        self._show_review_progress()

        def finished(message: str | None = None, error: Exception | None = None) -> None:
            self._review_cancel = None
            self._show_review_progress()
            if isinstance(error, ExportCancelled):
                self.statusBar().showMessage("Review video cancelled; nothing was written.", 8000)
            elif error is not None:
                self.show_error("Review video failed", str(error))
            else:
                self.statusBar().showMessage(message, 10000)

        export_review_video_in_background(
            self.document, self.document.video.path, path,
            lambda out: finished(f"Review video written: {out}"),
            lambda exc: finished(error=exc),
            on_progress=bar.setValue, cancel=cancel)

    def cancel_review_video(self) -> None:
        """The Cancel button beside the review video's progress: stops at the next frame, removes the file."""
        if self._review_cancel is not None:
            self._review_cancel.set()

    def _show_review_progress(self) -> None:
        """The progress, its Cancel button and the export action follow ``_review_cancel`` (set while writing)."""
        writing = self._review_cancel is not None
        self.review_progress.setVisible(writing)
        self.review_cancel_button.setVisible(writing)
        self._update_enabled()

    # ==== messages, recent files, drag and drop, close =====================================================

    def show_error(self, title: str, text: str, details: str | None = None) -> None:
        """A window-modal message that does not block the event loop (tracking signals keep flowing)."""
        self.last_error = (title, text)
        box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Ok, self)
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.errorShown.emit(title, text)

    def _update_enabled(self) -> None:
        has_video = self.source is not None
        running = self.controller is not None and self.controller.is_running
        for name in ("next_frame", "prev_frame", "step_forward", "step_back", "first_frame", "last_frame",
                     "next_keyframe", "prev_keyframe", "next_low", "prev_low", "play", "track",
                     "track_backward", "track_n", "track_n_backward", "fill", "draw_box", "keyframe", "out_of_view",
                     "occluded", "delete_box", "interpolate", "keep_stale", "new_object", "next_object", "save",
                     "save_as", "object_properties", "delete_object", "export_review"):
            self.actions[name].setEnabled(has_video)
        if self._review_cancel is not None:  # one review video at a time
            self.actions["export_review"].setEnabled(False)
        self.import_menu.setEnabled(has_video)
        self.export_menu.setEnabled(has_video)
        self.actions["stop"].setEnabled(running)
        self.actions["undo"].setEnabled(self.undo_stack.canUndo())
        self.actions["redo"].setEnabled(self.undo_stack.canRedo())

    def _last_dir(self) -> str:
        recent = self._recent()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def _recent(self) -> list[str]:
        value = self.qsettings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _add_recent(self, path: str) -> None:
        recent = [p for p in self._recent() if p != path]
        self.qsettings.setValue("recent", [path, *recent][:MAX_RECENT])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self._recent():
            self.recent_menu.addAction(path, lambda p=path: self.open_path(p))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none)").setEnabled(False)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(urls[0].toLocalFile())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.cheat_sheet.isVisible():
            self.cheat_sheet.adjustSize()

    def closeEvent(self, event) -> None:
        self._close_video()
        super().closeEvent(event)
