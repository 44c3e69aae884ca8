"""Undo commands over the annotation document: every edit in the app is one of these on a QUndoStack.

Every mutating Document method returns a Snapshot of the states it replaced, and ``Document.restore`` returns
the snapshot of what it replaced in turn, so undo and redo are the same operation: swap the stored snapshot
with the document's current states. Only the frames an edit touched are stored, so a long history of a long
video stays small. Commands are made after the edit is applied (a dragged box, a tracking run that streamed
its results), so the first ``redo`` — the one QUndoStack.push makes — does nothing.
"""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand

from tracker_core.annotation import Document, Snapshot

# A box correction and the tracking run started from it are one undo step: the run merges into the edit.
CORRECTION_MERGE_ID = 1001


class SnapshotCommand(QUndoCommand):
    """An already applied document edit, undone and redone by swapping snapshots."""

    def __init__(self, document: Document, text: str, snapshot: Snapshot):
        super().__init__(text)
        self.document = document
        self.snapshot = snapshot
        self._applied = True

    def redo(self) -> None:
        if self._applied:
            return
        self.snapshot = self.document.restore(self.snapshot)
        self._applied = True

    def undo(self) -> None:
        self.snapshot = self.document.restore(self.snapshot)
        self._applied = False


class BoxEditCommand(SnapshotCommand):
    """A box drawn or corrected on one frame (a keyframe).

    A correction (``mergeable``) and the run started from it right after are one undo step: undo puts the
    tracker's old boxes back, wrong one included, in one go. A first box drawn is not merged: undoing a run
    should not also take away the box the person drew.
    """

    def __init__(self, document: Document, object_id: int, frame: int, snapshot: Snapshot, text: str = "",
                 mergeable: bool = False):
        super().__init__(document, text or f"Set the box on frame {frame}", snapshot)
        self.object_id = object_id
        self.frame = frame
        self.mergeable = mergeable
        self.merged_run = False

    def id(self) -> int:
        return CORRECTION_MERGE_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, TrackingRunCommand) or not self.mergeable or self.merged_run or not self._applied:
            return False
        if other.object_id != self.object_id or other.start_frame != self.frame:
            return False
        self.snapshot = self.snapshot.merge(other.snapshot)  # the edit came first: its states win
        self.merged_run = True
        self.setText(f"Correct frame {self.frame} and track {other.frames} frames")
        return True


class TrackingRunCommand(SnapshotCommand):
    """A whole tracking run, one undo step however many frames it wrote."""

    def __init__(self, document: Document, object_id: int, start_frame: int, frames: int, snapshot: Snapshot):
        super().__init__(document, f"Track {frames} frames from frame {start_frame}", snapshot)
        self.object_id = object_id
        self.start_frame = start_frame
        self.frames = frames

    def id(self) -> int:
        return CORRECTION_MERGE_ID


class _ObjectPresenceCommand(QUndoCommand):
    """Takes a whole object out of the document and puts the same one back (same id, label, frames)."""

    def __init__(self, document: Document, object_id: int, text: str):
        super().__init__(text)
        self.document = document
        self.object_id = object_id
        self._removed = None

    def _take(self) -> None:
        self._removed = self.document.remove_object(self.object_id)

    def _put_back(self) -> None:
        if self._removed is not None:
            self.document.insert_object(self._removed)
            self._removed = None


class AddObjectCommand(_ObjectPresenceCommand):
    """A new object (added already): undo takes it out with its frames, redo puts the same one back."""

    def __init__(self, document: Document, object_id: int):
        super().__init__(document, object_id, f"Add {document.object(object_id).label}")

    redo = _ObjectPresenceCommand._put_back
    undo = _ObjectPresenceCommand._take


class DeleteObjectCommand(_ObjectPresenceCommand):
    """An object taken out with all its boxes when pushed: undo puts the same one back."""

    def __init__(self, document: Document, object_id: int):
        super().__init__(document, object_id, f"Delete {document.object(object_id).label}")

    redo = _ObjectPresenceCommand._take
    undo = _ObjectPresenceCommand._put_back


class ObjectPropertiesCommand(QUndoCommand):
    """A new label and description (LaSOT's nlp.txt sentence) for an object, applied already."""

    def __init__(self, document: Document, object_id: int, previous: tuple[str, str]):
        super().__init__(f"Rename {previous[0]} to {document.object(object_id).label}")
        self.document = document
        self.object_id = object_id
        self._other = previous
        self._first = True

    def _swap(self) -> None:
        label, description = self._other
        self._other = (self.document.set_label(self.object_id, label),
                       self.document.set_description(self.object_id, description))

    def redo(self) -> None:
        if self._first:
            self._first = False
            return
        self._swap()

    def undo(self) -> None:
        self._swap()
