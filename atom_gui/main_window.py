"""The main window: it lays out the views (frame, timeline, evidence dock, status bar) and keeps them showing the
open video, the current frame and the current object.

What the window does not do, it hands on: the open video and everything that lives as long as it is a
:class:`~atom_gui.video_session.VideoSession`; drawing, correcting and tracking are the
:class:`~atom_gui.correction.CorrectionController`'s; the File menu's dialogs are :class:`~atom_gui.file_commands.
FileCommands`'; the commands themselves, with their keys, menus and enabling rules, are data in
:mod:`atom_gui.actions`.

Threads: the GUI thread only draws and edits the document. Frames are decoded by the frame cache's thread and the
tracking worker's; opening a video runs on the thread pool; the tracker warms up on a thread of its own. So the
window never waits on a decoder or a tracker.

Data flow: the document (``tracker_core.annotation.Document``) is the truth. The annotation model mirrors it as
arrays and signals changes; the frame view, timeline strip and score curves redraw from it, coalesced to at most
~30 redraws a second however fast results come. Tracker evidence (score maps, proposals) is not part of the
document: the tracking controller keeps the recent results so that stepping back shows them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QPainter, QUndoStack
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from .actions import (
    ActionContext,
    apply_keys,
    build_menus,
    build_toolbar,
    make_actions,
    transport_actions,
    update_enabled,
)
from .annotation_model import SOURCE_MANUAL
from .background import call_in_background
from .core_adapters import Tracker, make_tracker, not_found_threshold
from .correction import CorrectionController
from .evidence_panels import EvidencePanels
from .file_commands import FileCommands, ReviewProgress
from .frame_captions import describe_frame, why_no_evidence
from .frame_view import FrameView
from .project_files import OpenedSession, display_name, open_session
from .settings import AppSettings, SettingsDialog, default_project_dir, user_qsettings
from .shortcuts import ShortcutDialog, cheat_sheet_html, load_keys, save_keys
from .timeline import Timeline, strip_codes
from .tracker_warmup import WarmupProgress
from .video_session import VideoSession

REFRESH_MS = 33
PANEL_INTERVAL_S = 0.12
EVIDENCE_DOCK_SHARE = 0.3  # of the window's width, within the bounds below: the video keeps the rest
EVIDENCE_DOCK_WIDTH = (240, 460)


class ElidedLabel(QLabel):
    """A one-line label that ends with "…" where its text is wider than it (the full text stays its text and
    its tooltip): a long message in the status bar is not cut off mid-word by the widgets beside it."""

    def paintEvent(self, event) -> None:
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter = QPainter(self)
        painter.drawText(rect, int(self.alignment()), text)


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
        self.qsettings = qsettings or user_qsettings()
        self.settings = settings or AppSettings.load(self.qsettings)
        self.tracker_factory = tracker_factory
        self.project_dir = Path(project_dir) if project_dir is not None else default_project_dir()
        self.setWindowTitle("ATOM Annotator")
        self.resize(1400, 860)
        self.setAcceptDrops(True)

        self.video: VideoSession | None = None
        self.undo_stack = QUndoStack(self)
        self.current_frame = 0
        self.current_object: int | None = None
        self.selection: tuple[int, int] | None = None  # the timeline range annotate commands cover
        self.last_error: tuple[str, str] | None = None
        self._displayed: int | None = None  # the frame whose image is on screen
        self._direction = 1  # of the last move, for prefetching
        self._opening: str | None = None

        self._build_views()
        self.correction = CorrectionController(self, self)
        self.files = FileCommands(self, self.review, self)
        self.keys = load_keys(self.qsettings)
        self.actions = make_actions(self, self.keys)
        build_menus(self.menuBar(), self.actions)
        self.files.fill_menus(self.actions)
        self._build_toolbar()
        self._connect_undo_stack()

        self._play_timer = self._timer(self._play_tick)
        self._refresh_timer = self._timer(self._refresh_track_views, single_shot=True)
        self._panels_timer = self._timer(self._update_evidence, single_shot=True)
        self._autosave_timer = self._timer(self._autosave_tick, interval_ms=1000)
        self._panels_drawn_at = 0.0
        self.apply_settings(self.settings, save=False)

    # ==== layout ===========================================================================================

    def _timer(self, slot, single_shot: bool = False, interval_ms: int = 0) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(single_shot)
        timer.setInterval(interval_ms)
        timer.timeout.connect(slot)
        return timer

    def _build_views(self) -> None:
        self.frame_view = FrameView()
        self.frame_view.boxDrawn.connect(lambda box: self.correction.apply_box(box, corrected=False))
        self.frame_view.boxEdited.connect(lambda box: self.correction.apply_box(box, corrected=True))
        self.frame_view.editStarted.connect(lambda: self.correction.edit_started())
        self.timeline = Timeline()
        self.timeline.frameRequested.connect(self.go_to)
        self.timeline.strip.selectionChanged.connect(self._on_selection)
        self.timeline.spin.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.timeline.spin.editingFinished.connect(self.frame_view.setFocus)
        self.timeline.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # letters and Space stay shortcuts
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
        self.panels.setMinimumWidth(EVIDENCE_DOCK_WIDTH[0])
        self.evidence_dock = QDockWidget("Tracker evidence", self)
        self.evidence_dock.setObjectName("evidence")
        self.evidence_dock.setWidget(self.panels)
        self.evidence_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                                       | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.evidence_dock)

        self.object_combo = QComboBox()
        self.object_combo.setMinimumWidth(140)
        self.object_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.object_combo.activated.connect(lambda i: self.set_current_object(self.object_combo.itemData(i)))

        # The status bar: the last message on the left (a widget, so a menu's status tips only cover it for a
        # moment), then the frame's state, the tracker's preparation, a review video's progress, frames/s.
        bar = self.statusBar()
        self.notice = ElidedLabel("")
        self.notice.setMinimumWidth(200)
        self.notice.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        bar.addWidget(self.notice, 1)
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(lambda: self.notice.setText(""))
        self.frame_label = QLabel("")
        self.warmup_progress = WarmupProgress()
        self.tracker_status, self.tracker_progress = self.warmup_progress.label, self.warmup_progress.bar
        self.review = ReviewProgress()
        self.review_progress, self.review_cancel_button = self.review.bar, self.review.cancel_button
        self.fps_label = QLabel("")
        for widget in (self.frame_label, self.warmup_progress, self.review, self.fps_label):
            bar.addPermanentWidget(widget)

    def _build_toolbar(self) -> None:
        tools = QToolBar("Main")
        tools.setObjectName("main-toolbar")
        tools.setMovable(False)
        tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        build_toolbar(tools, self.actions, {20: [QLabel(" Object: "), self.object_combo]})
        self.addToolBar(tools)
        self.timeline.add_actions(transport_actions(self.actions))

    def _connect_undo_stack(self) -> None:
        a, stack = self.actions, self.undo_stack
        stack.canUndoChanged.connect(lambda _: self.update_enabled())
        stack.canRedoChanged.connect(lambda _: self.update_enabled())
        stack.undoTextChanged.connect(lambda t: a["undo"].setText(f"&Undo {t}".strip()))
        stack.redoTextChanged.connect(lambda t: a["redo"].setText(f"&Redo {t}".strip()))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        # The evidence dock takes a share of the width, so that a small window still shows a usable video.
        low, high = EVIDENCE_DOCK_WIDTH
        width = int(min(high, max(low, EVIDENCE_DOCK_SHARE * self.width())))
        self.resizeDocks([self.evidence_dock], [width], Qt.Orientation.Horizontal)
        if self.cheat_sheet.isVisible():
            self.cheat_sheet.adjustSize()

    # ==== the open video ===================================================================================

    @property
    def document(self):
        return None if self.video is None else self.video.document

    @property
    def source(self):
        return None if self.video is None else self.video.source

    @property
    def controller(self):
        return None if self.video is None else self.video.controller

    @property
    def num_frames(self) -> int:
        return 0 if self.video is None else self.video.num_frames

    def open_path(self, path: str | Path) -> None:
        """Open a video file, a frame folder or a project file; the opening runs off the GUI thread."""
        path = str(path)
        self._opening = path
        self.show_message(f"Opening {path}…")
        if self.video is None:
            self.frame_view.set_hint(f"Opening {display_name(path)}…")
        project_dir = self.project_dir
        call_in_background(lambda: open_session(path, project_dir), lambda s: self._session_ready(path, s),
                           lambda exc: self._open_failed(path, exc))

    def _open_failed(self, path: str, exc: Exception) -> None:
        if self._opening != path:
            return
        self._opening = None
        self.frame_view.set_hint("" if self.video is not None else "Open a video (File ▸ Open, or drop a file)")
        self.show_message("")
        kind = "project" if path.lower().endswith(".json") else "video"
        self.show_error(f"Cannot open the {kind}", f"{path}\n\n{exc}")

    def _session_ready(self, path: str, opened: OpenedSession) -> None:
        if self._opening != path:  # another open was asked for meanwhile
            opened.close_readers()
            return
        self._opening = None
        self.close_video()
        use_recovery = opened.recovered is not None and self.ask_recovery(opened.recovery_path)
        self.undo_stack.clear()
        video = VideoSession(opened, use_recovery, self.undo_stack, self.tracker_factory, self)
        self.video = video
        video.cache.frameReady.connect(self._on_frame_ready)
        video.cache.decodeFailed.connect(self._on_decode_failed)
        video.model.framesChanged.connect(self._on_frames_changed)
        video.model.objectsChanged.connect(self._on_objects_changed)
        video.autosaveFailed.connect(lambda text: self.show_message(text, 8000))
        video.warmup.progress.connect(self.warmup_progress.show_stage)
        self.correction.attach(video)
        self._autosave_timer.start()
        self.files.add_recent(opened.video_path)
        self.setWindowTitle(f"ATOM Annotator — {video.name}")
        self.timeline.set_num_frames(video.num_frames)
        self.fps_label.setText("")
        self.frame_view.clear_frame()
        self.current_object = video.document.object_ids[0]
        self._on_objects_changed()
        keyframes = video.document.keyframes(self.current_object)
        self.go_to(keyframes[0] if keyframes else 0)
        message = opened.warning or video.opened_message()
        if video.recovered:
            self.notify(message)
        else:
            self.show_message(message, 8000)
        self.update_enabled()
        self.videoOpened.emit(path)

    def ask_recovery(self, autosave: Path) -> bool:
        """After a crash: offer the autosave (newer than the project). Tests replace this method."""
        answer = QMessageBox.question(
            self, "Recover unsaved work?",
            f"ATOM Annotator did not close properly last time. An autosave newer than the project exists:\n\n"
            f"{autosave}\n\nRecover it? (No discards the autosave and opens the last saved project.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        return answer == QMessageBox.StandardButton.Yes

    def close_video(self) -> None:
        self._play_timer.stop()
        self._autosave_timer.stop()
        if self.video is not None:
            self.correction.detach()
            self.video.close()
            self.video.deleteLater()
            self.video = None
        self.warmup_progress.show_stage("", 0.0)
        self.clear_notice()
        self._displayed = None
        self.undo_stack.clear()

    def _autosave_tick(self) -> None:
        if self.video is not None:
            self.video.autosave_tick()

    def save_project(self) -> bool:
        """Ctrl+S: save to the project file (atomically); the autosave is then removed."""
        if self.video is None:
            return False
        try:
            self.video.save()
        except OSError as exc:
            self.show_error("Cannot save the project", f"{self.video.project_path}\n\n{exc}")
            return False
        self.show_message(f"Saved {self.video.project_path}", 5000)
        return True

    # ==== navigation =======================================================================================

    def go_to(self, index: int) -> None:
        """Show a frame: the image when it is decoded (now when cached), the boxes and evidence at once."""
        if self.video is None:
            return
        index = int(np.clip(index, 0, self.num_frames - 1))
        if index != self.current_frame:
            self.correction.frame_moved()
        self._direction = 1 if index >= self.current_frame else -1
        self._set_current_frame(index, self.video.cache.request(index, self._direction))

    def follow(self, frame: int, image: np.ndarray | None) -> None:
        """Show the frame a run just tracked (the image comes with the result)."""
        self._set_current_frame(frame, image)

    def _set_current_frame(self, index: int, image: np.ndarray | None) -> None:
        self.current_frame = index
        self.timeline.set_current(index)
        self.panels.curves.set_current_frame(index)
        if image is not None:
            self._display(index, image)
        self.update_frame_overlays()

    @property
    def displayed_frame(self) -> int | None:
        """The frame whose image is on screen (None before the first is decoded)."""
        return self._displayed

    @property
    def playing(self) -> bool:
        return self._play_timer.isActive()

    def step(self, delta: int) -> None:
        self.go_to(self.current_frame + delta)

    def _display(self, index: int, frame: np.ndarray) -> None:
        first = self._displayed is None
        self.frame_view.set_frame(frame)
        self._displayed = index
        self.frameShown.emit(index)
        if first:  # the first frame of a video: get the tracker ready while the person draws the box
            self.video.warmup.warm(self.settings.tracker_choice(), frame)

    def _on_frame_ready(self, index: int, frame) -> None:
        if index == self.current_frame and self._displayed != index:
            self._display(index, frame)
            self._update_evidence()  # the IoU panel crops the frame

    def _on_decode_failed(self, index: int, message: str) -> None:
        if index == self.current_frame:
            self._play_timer.stop()
            self.show_message(f"Frame {index} cannot be decoded: {message}", 10000)

    def jump_keyframe(self, direction: int) -> None:
        doc, obj = self.document, self.current_object
        if doc is None or obj is None:
            return
        target = doc.next_keyframe(obj, self.current_frame) if direction > 0 else \
            doc.previous_keyframe(obj, self.current_frame)
        if target is None:
            self.show_message(f"No keyframe {'after' if direction > 0 else 'before'} this frame.", 3000)
        else:
            self.go_to(target)

    def jump_low_confidence(self, direction: int) -> None:
        if self.document is None or self.current_object is None:
            return
        target = self.document.next_low_confidence(self.current_object, self.current_frame, self.settings.low_score,
                                                   self.settings.low_iou, backward=direction < 0)
        if target is None:
            self.show_message(f"No low-confidence frame {'after' if direction > 0 else 'before'} this one.", 3000)
        else:
            self.go_to(target)

    def toggle_play(self) -> None:
        if self._play_timer.isActive():
            self._play_timer.stop()
        elif self.video is not None:
            self._play_timer.start(max(1, int(1000 / max(1.0, self.video.source.fps))))

    def stop_playback(self) -> None:
        self._play_timer.stop()

    def _play_tick(self) -> None:
        if self.current_frame >= self.num_frames - 1:
            self._play_timer.stop()
        elif self._displayed == self.current_frame:  # wait for a frame still being decoded
            self.step(1)

    def _on_selection(self, first: int, last: int) -> None:
        self.selection = None if first < 0 else (first, last)

    def clear_selection(self) -> None:
        self.timeline.strip.set_selection(None)

    # ==== objects ==========================================================================================

    def set_current_object(self, object_id: int | None) -> None:
        if object_id is None or self.document is None or object_id not in self.document:
            return
        self.current_object = object_id
        index = self.object_combo.findData(object_id)
        if index >= 0:
            self.object_combo.setCurrentIndex(index)
        self.update_frame_overlays()
        self._schedule_refresh()

    def next_object(self) -> None:
        if self.document is None or not self.document.object_ids:
            return
        ids = self.document.object_ids
        i = ids.index(self.current_object) if self.current_object in ids else -1
        self.set_current_object(ids[(i + 1) % len(ids)])

    def _on_objects_changed(self) -> None:
        self.object_combo.clear()
        if self.document is None:
            return
        for obj in self.document.objects():
            self.object_combo.addItem(obj.label, obj.id)
        if self.current_object not in self.document:
            self.current_object = self.document.object_ids[0] if self.document.object_ids else None
        if self.current_object is None:
            self.update_frame_overlays()
            self._schedule_refresh()
        else:
            self.set_current_object(self.current_object)

    # ==== keeping the views current ========================================================================

    def _on_frames_changed(self, object_id: int, first: int, last: int) -> None:
        if first <= self.current_frame <= last:
            self.update_frame_overlays()
        if object_id == self.current_object:
            self._schedule_refresh()

    def _schedule_refresh(self) -> None:
        """Redraw the strip and curves soon: within a frame when idle, at ~8 per second during a run."""
        if not self._refresh_timer.isActive():
            running = self.controller is not None and self.controller.is_running
            self._refresh_timer.start(int(PANEL_INTERVAL_S * 1000) if running else REFRESH_MS)

    def _refresh_track_views(self) -> None:
        """Timeline strip and score curves of the current object, from the model's arrays."""
        if self.video is None or self.current_object is None:
            self.timeline.strip.set_states(np.zeros(0, np.int8), np.zeros(0, bool), np.zeros(0, int))
            self.panels.curves.set_curves(None, None)
            return
        arrays = self.video.model.arrays(self.current_object)
        codes, low = strip_codes(arrays, self.settings.low_score, self.settings.low_iou)
        self.timeline.strip.set_states(codes, low, np.flatnonzero(arrays.source == SOURCE_MANUAL))
        self.panels.curves.set_curves(arrays.score, arrays.iou)

    def update_frame_overlays(self) -> None:
        """The boxes on the current frame, the frame's status line, and the evidence panels."""
        if self.document is None:
            return
        overlay = describe_frame(self.document, self.current_frame, self.current_object, self.correction.drawing)
        view = self.frame_view
        view.set_other_boxes([(b.box, b.color, b.caption) for b in overlay.others])
        if not self.correction.editing_box:
            current = overlay.current
            view.set_box(None) if current is None else view.set_box(current.box, current.color, current.caption)
        flagged = overlay.flagged
        view.set_flagged_box(None if flagged is None else flagged.box, "" if flagged is None else flagged.caption)
        view.draw_mode = overlay.draw_mode
        view.set_hint(overlay.hint)
        self.frame_label.setText(overlay.status)
        self._update_evidence()

    def _update_evidence(self) -> None:
        if self.video is None or self.current_object is None:
            return
        result = self.video.controller.evidence_for(self.current_object, self.current_frame)
        self.frame_view.set_evidence(result)
        # The panels redraw at most ~8 times a second during a run: their pixels cost event-loop time that a
        # fast tracker's stream needs, and no one reads a score map at 25 per second. The last one is drawn.
        now = time.perf_counter()
        if self.video.controller.is_running and now - self._panels_drawn_at < PANEL_INTERVAL_S:
            if not self._panels_timer.isActive():
                self._panels_timer.start(int(PANEL_INTERVAL_S * 1000))
            return
        self._panels_drawn_at = now
        image = self.video.cache.get(self.current_frame) if result is not None else None
        why = "" if result is not None else why_no_evidence(self.document.state(self.current_object,
                                                                                self.current_frame))
        self.panels.show_result(result, image, self.settings.tracker, why)

    # ==== messages ====================================================================

    def show_message(self, text: str, timeout_ms: int = 0) -> None:
        """The status bar's message line (``timeout_ms`` 0: until the next message)."""
        self.notice.setText(text)
        self.notice.setToolTip(text)
        if timeout_ms:
            self._notice_timer.start(timeout_ms)
        else:
            self._notice_timer.stop()

    def message(self) -> str:
        """The message the status bar shows now."""
        return self.notice.text()

    def notify(self, text: str) -> None:
        """A message worth noticing (undo, redo, recovery, the end of a fill, an auto-pause): over the frame for
        a few seconds, and in the status bar."""
        self.frame_view.show_notice(text)
        self.show_message(text, 15000)

    def clear_notice(self) -> None:
        self.frame_view.hide_notice()

    def show_error(self, title: str, text: str, details: str | None = None) -> None:
        """A window-modal message that does not block the event loop (tracking signals keep flowing)."""
        self.last_error = (title, text)
        box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Ok, self)
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.errorShown.emit(title, text)

    def update_enabled(self) -> None:
        video = self.video is not None
        update_enabled(self.actions, ActionContext(
            video=video, tracking=self.controller is not None and self.controller.is_running,
            can_undo=self.undo_stack.canUndo(), can_redo=self.undo_stack.canRedo(),
            review_idle=video and not self.files.writing_review))

    def show_speed(self, fps: float, running: bool) -> None:
        """Frames per second of the run going (``running``) or of the last one (0: nothing to say)."""
        text = f"{fps:.1f} frames/s" if fps > 0 else ""
        self.fps_label.setText(f"tracking · {text}" if running and text else text)

    # ==== settings, shortcuts, cheat sheet =================================================================

    def edit_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            self.apply_settings(dialog.settings())

    def set_setting(self, name: str, value) -> None:
        """One setting changed from a View menu check box."""
        if getattr(self.settings, name) != value:
            self.apply_settings(dataclasses.replace(self.settings, **{name: value}))

    def apply_settings(self, settings: AppSettings, save: bool = True) -> None:
        old = self.settings
        self.settings = settings
        if save:
            settings.save(self.qsettings)
        if old.tracker_choice() != settings.tracker_choice():
            self.correction.forget_trackers()
            image = None if self.video is None else self.video.cache.get(self.current_frame)
            if image is not None:
                self.video.warmup.warm(settings.tracker_choice(), image)
        for spec_name, field in (("follow", "follow_tracking"), ("overlay", "show_confidence_overlay"),
                                 ("evidence", "show_evidence")):
            self.actions[spec_name].setChecked(getattr(settings, field))
        self.evidence_dock.setVisible(settings.show_evidence)
        self.frame_view.show_confidence = settings.show_confidence_overlay
        self.panels.curves.set_rules(not_found_threshold(settings.tracker, settings.preset), settings.low_score,
                                     settings.low_iou)
        self._schedule_refresh()
        self.update_frame_overlays()
        self.update_enabled()

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

    # ==== drag and drop, close =============================================================================

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(urls[0].toLocalFile())

    def closeEvent(self, event) -> None:
        self.close_video()
        super().closeEvent(event)
