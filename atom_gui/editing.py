"""The person's edits of the document, each pushed as one undo command.

Kept apart from the window so that the rules of editing (what a keyframe is, what "delete" means, what a flag
toggle covers) are in one small place and testable without widgets.
"""

from __future__ import annotations

from PySide6.QtGui import QUndoStack

from tracker_core.annotation import Document, Flag, Source
from tracker_core.boxes import Box

from .undo_commands import AddObjectCommand, BoxEditCommand, DeleteObjectCommand, SnapshotCommand


class AnnotationEditor:
    """Edits of one document through one undo stack. Methods return a status line for the person."""

    def __init__(self, document: Document, undo_stack: QUndoStack):
        self.document = document
        self.undo_stack = undo_stack

    def set_box(self, object_id: int, frame: int, box: Box, corrected: bool = False) -> str:
        """A drawn or corrected box: a manual keyframe (clears out-of-view there: the person sees it)."""
        box = box.clipped(*self._frame_size()) if self._frame_size() else box
        if not box.is_valid():
            return "The box is outside the frame."
        snapshot = self.document.set_box(object_id, frame, box, Source.MANUAL)
        verb = "Correct" if corrected else "Set"
        self.undo_stack.push(BoxEditCommand(self.document, object_id, frame, snapshot,
                                            f"{verb} the box on frame {frame}", mergeable=corrected))
        return f"Frame {frame} is a keyframe now."

    def make_keyframe(self, object_id: int, frame: int) -> str:
        """Accept the tracked or interpolated box of this frame as a person's box."""
        state = self.document.state(object_id, frame)
        if state is None or state.box is None:
            return f"Frame {frame} has no box to make a keyframe of: draw one (N, then drag)."
        if state.is_keyframe:
            return f"Frame {frame} is a keyframe already."
        snapshot = self.document.set_box(object_id, frame, state.box, Source.MANUAL)
        self.undo_stack.push(BoxEditCommand(self.document, object_id, frame, snapshot,
                                            f"Make frame {frame} a keyframe"))
        return f"Frame {frame} is a keyframe now."

    def toggle_flag(self, object_id: int, flag: Flag, first: int, last: int) -> str:
        """Set the flag over first..last, or clear it when the first frame already has it."""
        state = self.document.state(object_id, first)
        on = not (state is not None and state.flag(flag))
        snapshot = self.document.set_flag(object_id, flag, first, last, on)
        what = "out of view" if flag is Flag.OUT_OF_VIEW else "occluded"
        span = f"frame {first}" if first == last else f"frames {first}–{last}"
        text = f"{'Mark' if on else 'Unmark'} {span} {what}"
        if not snapshot.is_empty():
            self.undo_stack.push(SnapshotCommand(self.document, text, snapshot))
        return f"{span.capitalize()} marked {what}." if on else f"{span.capitalize()} no longer {what}."

    def delete_box(self, object_id: int, first: int, last: int) -> str:
        """Deleting marks out of view: the track and its boxes stay, so undo or clearing the flag restores."""
        snapshot = self.document.delete_box(object_id, first, last)
        if snapshot.is_empty():
            return "Nothing to delete here."
        span = f"frame {first}" if first == last else f"frames {first}–{last}"
        self.undo_stack.push(SnapshotCommand(self.document, f"Delete the box on {span}", snapshot))
        return f"Box deleted on {span} (marked out of view; O brings it back)."

    def interpolate_around(self, object_id: int, frame: int) -> str:
        """Linear interpolation between the keyframes before and after ``frame`` (tracked boxes are kept)."""
        doc = self.document
        state = doc.state(object_id, frame)
        before = frame if state is not None and state.is_keyframe else doc.previous_keyframe(object_id, frame)
        after = doc.next_keyframe(object_id, frame)
        if before is None or after is None:
            return "Interpolation needs a keyframe before and one after this frame."
        snapshot = doc.interpolate(object_id, before, after, overwrite_tracked=False)
        if snapshot.is_empty():
            return f"Nothing to interpolate between frames {before} and {after}."
        self.undo_stack.push(SnapshotCommand(doc, f"Interpolate frames {before}–{after}", snapshot))
        return f"Interpolated {len(snapshot.frames(object_id))} frames between {before} and {after}."

    def keep_stale(self, object_id: int, first: int, last: int) -> str:
        """Keep stale boxes (tracked again, exported again): over first..last, or, for one frame, the whole stale
        stretch around it."""
        doc = self.document
        if first == last:
            stale = set(doc.stale_frames(object_id))
            if first not in stale:
                return f"Frame {first} has no stale box (stale boxes are brown on the timeline)."
            while first - 1 in stale:
                first -= 1
            while last + 1 in stale:
                last += 1
        snapshot = doc.keep_stale(object_id, first, last)
        if snapshot.is_empty():
            return "No stale boxes here."
        kept = len(snapshot.frames(object_id))
        span = f"frame {first}" if first == last else f"frames {first}–{last}"
        self.undo_stack.push(SnapshotCommand(doc, f"Keep the stale boxes of {span}", snapshot))
        return f"Kept {kept} stale box{'es' if kept != 1 else ''} ({span}): tracked boxes again, exported again."

    def add_object(self, label: str = "") -> int:
        object_id = self.document.add_object(label or f"object {max(self.document.object_ids, default=0) + 1}")
        self.undo_stack.push(AddObjectCommand(self.document, object_id))
        return object_id

    def delete_object(self, object_id: int) -> str:
        """Remove an object with all its boxes, as one undo step."""
        obj = self.document.object(object_id)
        boxes = len(self.document.frames(object_id))
        self.undo_stack.push(DeleteObjectCommand(self.document, object_id))  # push runs redo: the removal
        frames = f"{boxes} annotated frame{'s' if boxes != 1 else ''}"
        return f"Deleted {obj.label} and its {frames} (Ctrl+Z brings them back)."

    def _frame_size(self) -> tuple[int, int] | None:
        return self.document.video.size
