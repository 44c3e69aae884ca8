"""Correct-and-continue: every command that draws or edits boxes or runs the tracker, and what follows from it.

The person's loop is: draw a box, Space, watch the evidence, grab the box where it drifts, let go, and tracking
carries on from the correction. The state of that loop lives here, in one place: a box held during a run (the run
pauses and resumes from the correction), N pressed (the next drag draws), the person looking elsewhere during a
run (the view stops following), a bidirectional fill in progress, an auto-pause that Space continues through.

The controller acts on the open video (:class:`~atom_gui.video_session.VideoSession`: document, editor,
tracking controller, warm-up) and talks to the window only through :class:`CorrectionHost`: where the person
is, and how to show them something.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QInputDialog

from tracker_core.annotation import Flag, ReplacePolicy
from tracker_core.boxes import Box
from tracker_core.result import TrackResult

from .bidirectional_fill import FillRun
from .settings import AppSettings
from .tracking_controller import RunOptions
from .tracking_worker import (
    END_OF_RANGE,
    FAILED,
    FLAGGED,
    KEYFRAME,
    LOW_CONFIDENCE,
    STOPPED,
    UNREADABLE,
    RunSpec,
)
from .undo_commands import ObjectPropertiesCommand
from .video_session import VideoSession


class CorrectionHost(Protocol):
    """What the controller needs of the window."""

    video: VideoSession | None
    settings: AppSettings
    current_frame: int
    current_object: int | None
    selection: tuple[int, int] | None

    def go_to(self, index: int) -> None: ...

    def set_current_object(self, object_id: int | None) -> None: ...

    def show_message(self, text: str, timeout_ms: int = 0) -> None: ...

    def notify(self, text: str) -> None: ...

    def clear_notice(self) -> None: ...

    def show_error(self, title: str, text: str, details: str | None = None) -> None: ...

    def show_speed(self, fps: float, running: bool) -> None: ...

    def follow(self, frame: int, image: np.ndarray | None) -> None: ...

    def update_frame_overlays(self) -> None: ...

    def update_enabled(self) -> None: ...

    def stop_playback(self) -> None: ...

    def clear_selection(self) -> None: ...


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


class CorrectionController(QObject):
    """The correct-and-continue loop of one window (its video changes with :meth:`attach` / :meth:`detach`)."""

    def __init__(self, host: CorrectionHost, parent: QObject | None = None):
        super().__init__(parent)
        self.host = host
        self.video: VideoSession | None = None
        self._reset()

    def _reset(self) -> None:
        self.drawing = False  # N was pressed: the next drag draws a box
        self.editing_box = False  # the person holds the box
        # (frame, direction) a run paused by a correction resumes from; frame None while the box is held
        self.resume: tuple[int | None, int] | None = None
        self.follow_suspended = False  # the person moved during a run: stay where they are
        self.fill: FillRun | None = None  # a bidirectional fill in progress (its two runs collect results)
        # (object, frame, direction) of the last auto-pause: Space there tracks on through the low confidence
        self.low_pause: tuple[int, int, int] | None = None
        self.through_low = False  # the running run ignores low confidence
        self.last_run: tuple[str, int, float] | None = None  # (reason, frames, fps) of the last run
        self._last_spec: RunSpec | None = None
        self._tracked_objects: set[int] = set()  # objects whose tracker the worker keeps (no preparation needed)

    def attach(self, video: VideoSession) -> None:
        self.video = video
        self._reset()
        c = video.controller
        c.resultsApplied.connect(self._on_results_applied)
        c.runStarted.connect(self._on_run_started)
        c.runEnded.connect(self._on_run_ended)
        c.runFailed.connect(self._on_run_failed)
        c.message.connect(lambda text: self.host.show_message(text, 5000))

    def detach(self) -> None:
        self.video = None
        self._reset()

    @property
    def running(self) -> bool:
        return self.video is not None and self.video.controller.is_running

    def _running_current(self) -> bool:
        c = None if self.video is None else self.video.controller
        return c is not None and c.is_running and c.active_object == self.host.current_object

    # ==== boxes ============================================================================================

    def start_drawing(self) -> None:
        """N: the next drag on the frame draws a new box for the current object (even where it has one)."""
        if self.video is None:
            return
        self.drawing = True
        self.host.update_frame_overlays()

    def edit_started(self) -> None:
        """The person grabbed the box: stop tracking at once, and carry on from the correction on release."""
        self.editing_box = True
        if self._running_current():
            self.resume = (None, self.video.controller.direction)
            self.video.controller.pause()

    def apply_box(self, box: Box, corrected: bool = False) -> None:
        """A drawn (or, with ``corrected``, moved) box becomes a keyframe. If a run was going, or was paused by
        grabbing the box, tracking carries on from it: correct-and-continue without a key press."""
        self.editing_box = False
        self.drawing = False
        video, host = self.video, self.host
        if video is None:
            return
        if host.current_object is None:  # every object was deleted: a drawn box starts a new one
            host.set_current_object(video.editor.add_object())
        c = video.controller
        if self._running_current():
            self.resume = (None, c.direction)
            c.pause()
        self.low_pause = None
        frame, obj = host.current_frame, host.current_object
        message = video.editor.set_box(obj, frame, box, corrected)
        if self.resume is not None:
            self.resume = (frame, self.resume[1])
            if not c.is_running:
                self._resume_tracking()
                return
        if obj not in self._tracked_objects and not c.is_running:
            self._prepare(obj, frame)
        host.show_message(message + " Press Space to track from it.", 6000)
        host.update_frame_overlays()

    def _prepare(self, object_id: int, frame: int) -> None:
        """Learn the new box now, while the person looks at it, so that Space starts tracking at once."""
        video = self.video
        state = video.document.state(object_id, frame)
        image = video.cache.get(frame)
        if state is None or state.box is None or image is None:
            return
        video.warmup.prepare(self.host.settings.tracker_choice(), image, state.box, f"frame {frame}")

    def _resume_tracking(self) -> None:
        frame, direction = self.resume
        self.resume = None
        if frame is None or self.video is None:
            return
        if frame != self.host.current_frame:
            self.host.go_to(frame)
        self.start_tracking(direction)

    def make_keyframe(self) -> None:
        if self.video is not None:
            self.host.show_message(self.video.editor.make_keyframe(self.host.current_object,
                                                                   self.host.current_frame), 4000)

    def _range(self) -> tuple[int, int]:
        """The frames an annotate command covers: the selected range of the timeline, else this frame."""
        frame = self.host.current_frame
        return self.host.selection or (frame, frame)

    def toggle_flag(self, flag: Flag) -> None:
        if self.video is None:
            return
        self.pause_for_edit()
        first, last = self._range()
        self.host.show_message(self.video.editor.toggle_flag(self.host.current_object, flag, first, last), 4000)

    def delete_box(self) -> None:
        if self.video is None:
            return
        self.pause_for_edit()
        first, last = self._range()
        self.host.show_message(self.video.editor.delete_box(self.host.current_object, first, last), 5000)

    def interpolate(self) -> None:
        if self.video is not None:
            self.host.show_message(self.video.editor.interpolate_around(self.host.current_object,
                                                                        self.host.current_frame), 5000)

    def keep_stale(self) -> None:
        if self.video is not None:
            self.pause_for_edit()
            self.host.show_message(self.video.editor.keep_stale(self.host.current_object, *self._range()), 5000)

    def undo(self) -> None:
        self._undo_or_redo(undo=True)

    def redo(self) -> None:
        self._undo_or_redo(undo=False)

    def _undo_or_redo(self, undo: bool) -> None:
        """Ctrl+Z / Ctrl+Y, saying what was undone or redone (the change may be on frames out of sight)."""
        if self.video is None:
            return
        self.pause_for_edit(any_object=True)
        stack = self.video.undo_stack
        if self.running or not (stack.canUndo() if undo else stack.canRedo()):
            return
        text = stack.undoText() if undo else stack.redoText()
        (stack.undo if undo else stack.redo)()
        self.low_pause = None
        other = "Ctrl+Y redoes it" if undo else "Ctrl+Z undoes it again"
        self.host.notify(f"{'Undone' if undo else 'Redone'}: {text[:1].lower()}{text[1:]} ({other}).")

    def pause_for_edit(self, any_object: bool = False) -> None:
        """Edits of a track being written would race the run: pause it first (its frames are kept)."""
        c = None if self.video is None else self.video.controller
        if c is not None and c.is_running and (any_object or c.active_object == self.host.current_object):
            c.pause()
            self.host.show_message("Tracking paused for the edit; press the key again.", 4000)

    # ==== objects ==========================================================================================

    def new_object(self) -> None:
        """Ctrl+N: a new object, current, and the next drag draws its first box."""
        if self.video is not None:
            self.host.set_current_object(self.video.editor.add_object())
            self.start_drawing()

    def delete_object(self) -> None:
        """Ctrl+Shift+Del: the current object and all its boxes go, as one undo step (not while it is tracked)."""
        if self.video is None or self.host.current_object is None:
            return
        if self._running_current():
            self.host.show_message("This object is being tracked: stop tracking (Esc) before deleting it.", 6000)
            return
        self.host.show_message(self.video.editor.delete_object(self.host.current_object), 8000)

    def edit_object(self) -> None:
        """F2: the current object's label and description (LaSOT's nlp.txt), one undo step."""
        if self.video is None or self.host.current_object is None:
            return
        doc = self.video.document
        obj = doc.object(self.host.current_object)
        label, ok = QInputDialog.getText(self.host, "Object label", "Label (the class name in exports):",
                                         text=obj.label)
        if not ok or not label.strip():
            return
        description, ok = QInputDialog.getMultiLineText(self.host, "Object description",
                                                        "Description (LaSOT's nlp.txt sentence):", obj.description)
        if not ok:
            return
        previous = (doc.set_label(obj.id, label.strip()), doc.set_description(obj.id, description.strip()))
        self.video.undo_stack.push(ObjectPropertiesCommand(doc, obj.id, previous))

    # ==== tracking =========================================================================================

    def toggle_tracking(self, direction: int, max_frames: int | None = None) -> None:
        """Space: start tracking from this frame's box, or pause a run that is going. Right after an auto-pause,
        on the frame where it paused, Space tracks on through the low confidence."""
        if self.video is None:
            return
        if self.running:
            self.video.controller.pause()
            return
        paused_here = (self.host.current_object, self.host.current_frame, direction) == self.low_pause
        self.start_tracking(direction, max_frames, through_low=paused_here)

    def track_through_low_confidence(self) -> None:
        """Ctrl+Space: track forward without pausing on low confidence (Space pauses)."""
        if self.video is not None and not self.running:
            self.start_tracking(1, through_low=True)

    def start_tracking(self, direction: int = 1, max_frames: int | None = None, through_low: bool = False) -> bool:
        video, host = self.video, self.host
        if video is None or video.controller.is_running:
            return False
        host.stop_playback()
        s = host.settings
        auto_pause = s.auto_pause and not through_low
        options = RunOptions(tracker=s.tracker_choice(), replace_policy=ReplacePolicy(s.replace_policy),
                             pause_below=s.pause_below if auto_pause else None)
        try:
            spec = video.controller.plan(host.current_object, host.current_frame, direction, max_frames, options)
        except ValueError as exc:
            host.show_message(_sentence(str(exc)), 6000)
            return False
        video.controller.start(spec, options.replace_policy)
        host.clear_notice()  # what it said (an auto-pause, an undo) is behind the person now
        self.follow_suspended = False
        self.low_pause = None
        self.through_low = through_low and s.auto_pause
        arrow = "forward" if direction > 0 else "backward"
        if self.through_low:
            host.show_message(f"Tracking {arrow} from frame {spec.start_frame} through the low confidence: no "
                              f"auto-pause until this run ends (Space pauses it).")
        else:
            host.show_message(f"Tracking {arrow} from frame {spec.start_frame} with {s.tracker}…")
        return True

    def stop(self) -> None:
        """Esc: stop a run (keeping its boxes); else leave drawing mode, or clear the timeline range."""
        if self.running:
            self.resume = None
            self._tracked_objects.discard(self.video.controller.active_object)  # stop() forgets its tracker
            self.video.controller.stop()
        elif self.drawing:
            self.drawing = False
        elif self.host.selection is not None:
            self.host.clear_selection()
        self.host.update_frame_overlays()

    def forget_trackers(self) -> None:
        """The tracker settings changed: every object starts a fresh tracker (prepared again when drawn)."""
        if self.video is not None:
            self.video.controller.forget_trackers()
            self.video.warmup.discard()
        self._tracked_objects.clear()

    def fill_between_keyframes(self) -> None:
        """B: fill the frames between the keyframes around this frame by tracking both ways (two runs)."""
        video, host = self.video, self.host
        if video is None or video.controller.is_running:
            return
        s = host.settings
        options = RunOptions(tracker=s.tracker_choice(), replace_policy=ReplacePolicy.UNTIL_KEYFRAME)
        try:
            first, last = FillRun.around(video.document, host.current_object, host.current_frame)
            fill = FillRun(video.controller, video.document, video.undo_stack, host.current_object, first, last,
                           options, s.low_score, self)
            fill.finished.connect(self._fill_finished)
            self.fill = fill
            fill.start()
        except ValueError as exc:
            self.fill = None
            host.show_message(str(exc), 6000)
            return
        self.follow_suspended = False
        host.show_message(f"Filling frames {first}–{last}: tracking forward, then backward…")

    def _fill_finished(self, message: str) -> None:
        self.fill = None
        self.host.notify(message)
        self.host.update_enabled()

    # ---- the tracking controller's signals ----------------------------------------------------------------

    def _on_run_started(self, spec: RunSpec) -> None:
        self._last_spec = spec
        self._tracked_objects.add(spec.object_id)
        self.host.update_enabled()

    def frame_moved(self) -> None:
        """The person went to another frame during a run: do not pull them back to the tracked frame."""
        if self.running:
            self.follow_suspended = True

    def _on_results_applied(self, frame: int, result: TrackResult, image) -> None:
        """Newest result of a batch (at most ~25 a second): follow it if asked."""
        video, host = self.video, self.host
        if video is None:
            return
        if image is not None:
            video.cache.put(frame, image)
        host.show_speed(video.controller.fps, running=True)
        object_id = video.controller.active_object
        follow = (host.settings.follow_tracking and not self.follow_suspended and not self.editing_box
                  and self.resume is None and object_id == host.current_object)
        if follow:
            host.follow(frame, image)
        elif frame == host.current_frame:
            host.update_frame_overlays()

    def _on_run_ended(self, reason: str, frames: int, fps: float) -> None:
        self.last_run = (reason, frames, fps)
        self.through_low = False
        video, host = self.video, self.host
        video.autosave_soon()
        host.show_speed(fps, running=False)
        if reason in (STOPPED, FAILED) and self._last_spec is not None:
            self._tracked_objects.discard(self._last_spec.object_id)
        if self.fill is not None:
            return  # the fill's own slot goes on with its next run or its merge
        if self.resume is not None and self.resume[0] is not None and reason != FAILED:
            self._resume_tracking()
            return
        if reason == FAILED:
            self.resume = None
            return  # the error dialog says it
        last_frame = video.controller.last_frame
        last = f"; last frame {last_frame}" if frames and last_frame is not None else ""
        if reason == LOW_CONFIDENCE and last_frame is not None:
            spec = self._last_spec
            self.low_pause = (spec.object_id, last_frame, spec.direction)
            state = video.document.state(spec.object_id, last_frame)
            score = f" (peak {state.score:.2f} < {host.settings.pause_below:.2f})" if state and state.score else ""
            host.notify(f"Paused on low confidence at frame {last_frame}{score} after {frames} frames. Drag the box "
                        f"to correct it and tracking carries on from your box, or press Space to track on "
                        f"through the low confidence (no auto-pause until that run ends).")
        else:
            texts = {
                END_OF_RANGE: f"Tracked {frames} frames{last}.",
                STOPPED: f"Stopped after {frames} frames{last}. Every box is kept.",
                FLAGGED: f"Tracked {frames} frames, up to a frame flagged occluded or out of view.",
                KEYFRAME: f"Tracked {frames} frames, up to the next keyframe.",
                UNREADABLE: f"Tracked {frames} frames, then stopped: {video.controller.last_error}.",
            }
            host.show_message(texts.get(reason, f"Tracking ended ({reason})."), 15000)
        host.update_enabled()
        host.update_frame_overlays()

    def _on_run_failed(self, message: str, details: str) -> None:
        kept = self.last_run[1] if self.last_run else 0
        self.host.show_error("Tracking stopped by an error",
                             f"{message}\n\nThe {kept} frames tracked before the error are kept (undo removes "
                             f"them).", details)
        self.host.update_enabled()
