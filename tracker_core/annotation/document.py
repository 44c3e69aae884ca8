"""The annotation document: a video reference and several objects, each with sparse per-frame states.

Shared by the app, the CLI and the import/export formats; it never imports Qt. Views subscribe to change
events (``subscribe``/``batch``), and every mutating method returns a :class:`Snapshot` of the states it
replaced, so that an undo command is ``document.restore(snapshot)`` (which returns the snapshot for redo).

Rules the document enforces, because the workflow depends on them:
- manual boxes (keyframes) are never overwritten by tracker results or interpolation;
- deleting a box sets ``out_of_view``; it never deletes the track;
- tracker results never cross a flagged frame (the tracker does not track through occlusion/out-of-view);
- a stale box (an earlier run's, left behind by a correction) stays stale until a person keeps it or a run
  replaces it; exports leave it out.
"""

from __future__ import annotations

import bisect
import copy
import enum
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from ..boxes import Box
from .events import Callback, ChangeEvent, ChangeKind, EventHub
from .frame_state import Flag, FrameState, Source, as_box, optional_float
from .snapshot import Snapshot
from .spans import DEFAULT_MIN_IOU, DEFAULT_MIN_SCORE, Span, compute_spans, is_low_confidence
from .video_ref import VideoRef


class ReplacePolicy(str, enum.Enum):
    """How far a tracker run started after a correction may replace earlier tracked frames."""

    UNTIL_KEYFRAME = "until_keyframe"  # stop at the next manual keyframe
    TO_END = "to_end"  # carry on to the end, stepping over (never overwriting) manual keyframes


@dataclass
class TrackedObject:
    """One annotated object. ``states`` is sparse: frames without an entry have no state.

    Objects returned by the document are live: read them freely, change them only through Document methods
    (which keep caches, revision and events right).
    """

    id: int
    label: str
    description: str = ""  # LaSOT's nlp.txt sentence
    attributes: dict[str, str] = field(default_factory=dict)  # format extras, e.g. GOT-10k's meta_info fields
    states: dict[int, FrameState] = field(default_factory=dict)

    def copy(self) -> TrackedObject:
        return TrackedObject(self.id, self.label, self.description, dict(self.attributes), dict(self.states))


def _status_text(status) -> str | None:
    """Status enums (``tracker_core.result.Status``) and strings both become plain strings."""
    if status is None:
        return None
    return str(getattr(status, "value", status))


class Document:
    """A project: a :class:`VideoRef` and objects with per-frame :class:`FrameState`."""

    def __init__(self, video: VideoRef | None = None) -> None:
        self._video = video or VideoRef()
        self._objects: dict[int, TrackedObject] = {}
        self._sorted: dict[int, list[int]] = {}  # cache of each object's sorted frames
        self._hub = EventHub()
        self.revision = 0  # bumped by every change; the autosaver compares it
        self.metadata: dict = {}  # free-form, JSON-serialisable (app settings); saved with the project

    # ---- events ---------------------------------------------------------------------------------------

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(ChangeEvent)`` after every change; returns a function that unsubscribes."""
        return self._hub.subscribe(callback)

    def unsubscribe(self, callback: Callback) -> None:
        self._hub.unsubscribe(callback)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Coalesce the events of several edits: one event per (kind, object) when the outermost batch ends."""
        with self._hub.batch():
            yield

    def _emit(self, kind: ChangeKind, obj_id: int | None = None, first: int | None = None,
              last: int | None = None) -> None:
        self.revision += 1
        self._hub.emit(ChangeEvent(kind, obj_id, first, last))

    # ---- video ----------------------------------------------------------------------------------------

    @property
    def video(self) -> VideoRef:
        return self._video

    @property
    def num_frames(self) -> int:
        return self._video.num_frames

    def set_video(self, video: VideoRef) -> VideoRef:
        """Replace the video reference; returns the previous one (for undo). States beyond the new frame
        count are kept (a shorter re-encode must not silently drop annotations)."""
        previous, self._video = self._video, video
        self._emit(ChangeKind.VIDEO)
        return previous

    # ---- objects --------------------------------------------------------------------------------------

    @property
    def object_ids(self) -> list[int]:
        return list(self._objects)

    def __contains__(self, obj_id: object) -> bool:
        return obj_id in self._objects

    def object(self, obj_id: int) -> TrackedObject:
        try:
            return self._objects[obj_id]
        except KeyError:
            raise KeyError(f"no object with id {obj_id!r}") from None

    def objects(self) -> list[TrackedObject]:
        return list(self._objects.values())

    def copy(self) -> Document:
        """An independent copy (video, objects, states, metadata; no subscribers), safe to read on another thread
        while this one changes. Cheap enough for the GUI thread: frame states are immutable, so each object's
        states dict is copied, not the states."""
        other = Document(self._video)
        other.metadata = copy.deepcopy(self.metadata)
        other._objects = {obj_id: obj.copy() for obj_id, obj in self._objects.items()}
        return other

    def add_object(self, label: str, description: str = "", attributes: dict[str, str] | None = None,
                   obj_id: int | None = None) -> int:
        """Add an empty object; returns its id (the next free one unless ``obj_id`` is given and free)."""
        if obj_id is None:
            obj_id = max(self._objects, default=0) + 1
        elif obj_id in self._objects:
            raise ValueError(f"an object with id {obj_id} exists already")
        self.insert_object(TrackedObject(int(obj_id), str(label), str(description), dict(attributes or {})))
        return obj_id

    def insert_object(self, obj: TrackedObject) -> None:
        """Insert a whole object (undo of :meth:`remove_object`, or an import); its id must be free."""
        if obj.id in self._objects:
            raise ValueError(f"an object with id {obj.id} exists already")
        for frame in obj.states:
            self._check_frame(frame)
        obj = obj.copy()
        obj.states = {f: s for f, s in obj.states.items() if not s.is_empty}
        self._objects[obj.id] = obj
        if any(other > obj.id for other in self._objects):  # undo of a deletion: back to its place (id order)
            self._objects = dict(sorted(self._objects.items()))
        self._sorted.pop(obj.id, None)
        with self.batch():
            self._emit(ChangeKind.OBJECT_ADDED, obj.id)
            if obj.states:
                self._emit(ChangeKind.FRAMES, obj.id, min(obj.states), max(obj.states))

    def remove_object(self, obj_id: int) -> TrackedObject:
        """Remove an object with all its states; returns it so that undo can :meth:`insert_object` it."""
        obj = self.object(obj_id)
        del self._objects[obj_id]
        self._sorted.pop(obj_id, None)
        self._emit(ChangeKind.OBJECT_REMOVED, obj_id)
        return obj

    def set_label(self, obj_id: int, label: str) -> str:
        """Rename an object; returns the previous label."""
        obj = self.object(obj_id)
        previous, obj.label = obj.label, str(label)
        self._emit(ChangeKind.OBJECT_CHANGED, obj_id)
        return previous

    def set_description(self, obj_id: int, description: str) -> str:
        """Set the free-text description (LaSOT's nlp.txt); returns the previous one."""
        obj = self.object(obj_id)
        previous, obj.description = obj.description, str(description)
        self._emit(ChangeKind.OBJECT_CHANGED, obj_id)
        return previous

    def set_attributes(self, obj_id: int, attributes: dict[str, str]) -> dict[str, str]:
        """Replace the object's format attributes; returns the previous ones."""
        obj = self.object(obj_id)
        previous, obj.attributes = obj.attributes, {str(k): str(v) for k, v in attributes.items()}
        self._emit(ChangeKind.OBJECT_CHANGED, obj_id)
        return previous

    # ---- queries --------------------------------------------------------------------------------------

    def state(self, obj_id: int, frame: int) -> FrameState | None:
        return self.object(obj_id).states.get(frame)

    def box(self, obj_id: int, frame: int) -> Box | None:
        state = self.state(obj_id, frame)
        return None if state is None else state.box

    def frames(self, obj_id: int) -> list[int]:
        """Sorted frames that have a state (do not modify the returned list)."""
        cached = self._sorted.get(obj_id)
        if cached is None:
            cached = self._sorted[obj_id] = sorted(self.object(obj_id).states)
        return cached

    def states(self, obj_id: int, first: int | None = None, last: int | None = None
               ) -> Iterator[tuple[int, FrameState]]:
        """``(frame, state)`` pairs in frame order, optionally limited to ``first..last`` (inclusive)."""
        frames = self.frames(obj_id)
        lo = 0 if first is None else bisect.bisect_left(frames, first)
        hi = len(frames) if last is None else bisect.bisect_right(frames, last)
        states = self._objects[obj_id].states
        for frame in frames[lo:hi]:
            yield frame, states[frame]

    def keyframes(self, obj_id: int) -> list[int]:
        """Frames with a manual box, sorted."""
        states = self.object(obj_id).states
        return [f for f in self.frames(obj_id) if states[f].is_keyframe]

    def next_keyframe(self, obj_id: int, frame: int) -> int | None:
        """The first manual keyframe strictly after ``frame``, or None."""
        keys = self.keyframes(obj_id)
        i = bisect.bisect_right(keys, frame)
        return keys[i] if i < len(keys) else None

    def previous_keyframe(self, obj_id: int, frame: int) -> int | None:
        """The last manual keyframe strictly before ``frame``, or None."""
        keys = self.keyframes(obj_id)
        i = bisect.bisect_left(keys, frame)
        return keys[i - 1] if i > 0 else None

    def next_low_confidence(self, obj_id: int, frame: int, min_score: float = DEFAULT_MIN_SCORE,
                            min_iou: float = DEFAULT_MIN_IOU, backward: bool = False) -> int | None:
        """The nearest tracked frame strictly after (or before, when ``backward``) ``frame`` whose score or
        predicted IoU is below the thresholds (or whose status is not_found/uncertain); None if there is none."""
        if backward:
            pairs = reversed(list(self.states(obj_id, last=frame - 1)))
        else:
            pairs = self.states(obj_id, first=frame + 1)
        for f, state in pairs:
            if not state.flagged and is_low_confidence(state, min_score, min_iou):
                return f
        return None

    def spans(self, obj_id: int, min_score: float = DEFAULT_MIN_SCORE, min_iou: float = DEFAULT_MIN_IOU,
              first: int | None = None, last: int | None = None) -> list[Span]:
        """Runs of manual / tracked / interpolated / low-confidence / occluded / out-of-view frames."""
        return compute_spans(self.states(obj_id, first, last), min_score, min_iou)

    def tracking_limit(self, obj_id: int, start: int, direction: int = 1,
                       policy: ReplacePolicy = ReplacePolicy.UNTIL_KEYFRAME) -> int | None:
        """The last frame a tracker run starting at ``start`` (exclusive) may write, going ``direction``
        (+1 forward, -1 backward): the frame before the next flagged frame, or before the next manual keyframe
        under UNTIL_KEYFRAME, else the video's end. None when going forward in a video of unknown length with
        no barrier. Returns ``start`` itself when the very next frame is a barrier."""
        step = 1 if direction >= 0 else -1
        policy = ReplacePolicy(policy)
        pairs = self.states(obj_id, first=start + 1) if step > 0 else reversed(list(self.states(obj_id,
                                                                                             last=start - 1)))
        for frame, state in pairs:
            if state.flagged or (policy is ReplacePolicy.UNTIL_KEYFRAME and state.is_keyframe):
                return frame - step
        if step < 0:
            return 0
        return self.num_frames - 1 if self.num_frames > 0 else None

    # ---- mutations (each returns the Snapshot of the states it replaced) ------------------------------

    def set_box(self, obj_id: int, frame: int, box: Box | Sequence[float], source: Source = Source.MANUAL,
                score: float | None = None, iou: float | None = None, status=None) -> Snapshot:
        """Set one frame's box. A manual box is a keyframe and clears ``out_of_view`` there (the person sees
        the object); other flags are kept. Use :meth:`apply_tracked` for tracker output, which respects
        keyframes; ``set_box`` overwrites whatever is there."""
        obj = self.object(obj_id)
        self._check_frame(frame)
        source = Source(source)
        old = obj.states.get(frame) or FrameState()
        new = FrameState(as_box(box), source, optional_float(score, "score"), optional_float(iou, "iou"),
                         old.occluded, old.out_of_view and source is not Source.MANUAL, _status_text(status))
        return self._write(obj_id, {frame: new})

    def clear(self, obj_id: int, first: int, last: int | None = None,
              sources: Iterable[Source] | None = None) -> Snapshot:
        """Forget states over ``first..last`` (inclusive; one frame when ``last`` is None).

        Without ``sources``: the states go entirely (box, flags, scores). With ``sources`` (e.g. ``{TRACKED}``
        to drop a stale tracker tail): only boxes of those sources go, and flags stay.
        """
        first, last = self._range(first, last)
        wanted = None if sources is None else {Source(s) for s in sources}
        changes: dict[int, FrameState | None] = {}
        for frame, state in self.states(obj_id, first, last):
            if wanted is None:
                changes[frame] = None
            elif state.source in wanted:
                changes[frame] = replace(state.without_box(), status=None)
        return self._write(obj_id, changes)

    def set_flag(self, obj_id: int, flag: Flag, first: int, last: int | None = None,
                 value: bool = True) -> Snapshot:
        """Set (or clear, with ``value=False``) a visibility flag over ``first..last`` (inclusive). Boxes are
        kept, so that clearing the flag gives them back."""
        flag = Flag(flag)
        first, last = self._range(first, last)
        obj = self.object(obj_id)
        if value:
            frames: Iterable[int] = range(first, last + 1)
        else:
            frames = [f for f, _ in self.states(obj_id, first, last)]
        changes = {}
        for frame in frames:
            old = obj.states.get(frame) or FrameState()
            if old.flag(flag) != bool(value):
                changes[frame] = old.with_flag(flag, value)
        return self._write(obj_id, changes)

    def mark_stale(self, obj_id: int, first: int, last: int | None = None) -> Snapshot:
        """Mark the tracked boxes over ``first..last`` stale (other frames are left as they are)."""
        first, last = self._range(first, last)
        changes = {frame: replace(state, stale=True) for frame, state in self.states(obj_id, first, last)
                   if state.source is Source.TRACKED and not state.stale}
        return self._write(obj_id, changes)

    def keep_stale(self, obj_id: int, first: int | None = None, last: int | None = None) -> Snapshot:
        """A person keeps the stale boxes over ``first..last`` (default: all of the object's): tracked again."""
        changes = {frame: replace(state, stale=False) for frame, state in self.states(obj_id, first, last)
                   if state.stale}
        return self._write(obj_id, changes)

    def stale_frames(self, obj_id: int, first: int | None = None, last: int | None = None) -> list[int]:
        """The frames over ``first..last`` (default: all) that hold a stale box, sorted."""
        return [frame for frame, state in self.states(obj_id, first, last) if state.stale]

    def delete_box(self, obj_id: int, first: int, last: int | None = None) -> Snapshot:
        """What "delete" means for a box: the object is out of view over ``first..last``. The track stays."""
        return self.set_flag(obj_id, Flag.OUT_OF_VIEW, first, last, True)

    def interpolate(self, obj_id: int, first: int | None = None, last: int | None = None,
                    overwrite_tracked: bool = True) -> Snapshot:
        """Linear interpolation between each pair of consecutive manual keyframes inside ``first..last``
        (default: all keyframes). Frames in between get source INTERPOLATED (keeping an occluded flag); manual
        frames are never touched, tracked ones only when ``overwrite_tracked``. Like CVAT's "outside", being out
        of view breaks the motion: a pair with an out-of-view end or an out-of-view frame between is skipped."""
        obj = self.object(obj_id)
        keys = [k for k in self.keyframes(obj_id)
                if (first is None or k >= first) and (last is None or k <= last)]
        changes: dict[int, FrameState | None] = {}
        for a, b in zip(keys, keys[1:]):
            sa, sb = obj.states[a], obj.states[b]
            if sa.out_of_view or sb.out_of_view or b - a < 2:
                continue
            if any(s.out_of_view for _, s in self.states(obj_id, a + 1, b - 1)):
                continue
            va, vb = sa.box.as_tuple(), sb.box.as_tuple()
            for frame in range(a + 1, b):
                old = obj.states.get(frame) or FrameState()
                if old.source is Source.TRACKED and not overwrite_tracked:
                    continue
                t = (frame - a) / (b - a)
                box = Box(*(u + (v - u) * t for u, v in zip(va, vb)))
                changes[frame] = FrameState(box, Source.INTERPOLATED, occluded=old.occluded)
        return self._write(obj_id, changes)

    def apply_tracked(self, obj_id: int, results: Iterable, policy: ReplacePolicy = ReplacePolicy.UNTIL_KEYFRAME,
                      start: int | None = None) -> Snapshot:
        """Write a batch of tracker results, in the order the run produced them (forward or backward).

        ``results``: ``(frame, result)`` pairs where ``result`` is a ``TrackResult``-like object (``box``,
        optional ``max_score``, ``iou``, ``status``) or a plain box. ``start`` is the frame the run started
        from (its keyframe): a result for that frame is skipped rather than ending the batch.

        Never overwrites a manual box: a manual frame is skipped, and under UNTIL_KEYFRAME the first manual
        keyframe after the start ends the batch (later results are dropped). A flagged frame always ends it.
        All results are validated before anything is written (ValueError, document unchanged).
        """
        policy = ReplacePolicy(policy)
        parsed = [(frame, *self._tracked_values(frame, result)) for frame, result in results]
        obj = self.object(obj_id)
        changes: dict[int, FrameState | None] = {}
        for frame, box, score, iou, status in parsed:
            old = obj.states.get(frame) or FrameState()
            if old.is_keyframe:
                if frame == start or policy is ReplacePolicy.TO_END:
                    continue
                break
            if old.flagged:
                break
            changes[frame] = FrameState(box, Source.TRACKED, score, iou, status=status)
        return self._write(obj_id, changes)

    def _tracked_values(self, frame: int, result) -> tuple:
        self._check_frame(frame)
        if isinstance(result, Box) or isinstance(result, (tuple, list)):
            return as_box(result), None, None, None
        return (as_box(result.box), optional_float(getattr(result, "max_score", None), "score"),
                optional_float(getattr(result, "iou", None), "iou"), _status_text(getattr(result, "status", None)))

    # ---- undo support ---------------------------------------------------------------------------------

    def snapshot(self, obj_id: int, frames: Iterable[int]) -> Snapshot:
        """The current states of ``frames`` (None where a frame has none), for a command to restore later."""
        states = self.object(obj_id).states
        return Snapshot({obj_id: {f: states.get(f) for f in frames}})

    def restore(self, snapshot: Snapshot) -> Snapshot:
        """Put the states of ``snapshot`` back; returns the snapshot of what they replaced (undo <-> redo).
        Every object of the snapshot must exist (KeyError otherwise, and nothing changes)."""
        for obj_id in snapshot.object_ids:
            self.object(obj_id)
        replaced = Snapshot()
        with self.batch():
            for obj_id, frames in snapshot.states.items():
                replaced = replaced.merge(self._write(obj_id, dict(frames)))
        return replaced

    # ---- internals ------------------------------------------------------------------------------------

    def _write(self, obj_id: int, changes: dict[int, FrameState | None]) -> Snapshot:
        """Apply ``changes`` (None or an empty state removes the entry); one FRAMES event; returns the
        previous states of the frames that really changed."""
        states = self.object(obj_id).states
        previous: dict[int, FrameState | None] = {}
        for frame, new in changes.items():
            if new is not None and new.is_empty:
                new = None
            old = states.get(frame)
            if old == new:
                continue
            previous[frame] = old
            if new is None:
                del states[frame]
            else:
                states[frame] = new
        if not previous:
            return Snapshot()
        self._sorted.pop(obj_id, None)
        self._emit(ChangeKind.FRAMES, obj_id, min(previous), max(previous))
        return Snapshot({obj_id: previous})

    def _check_frame(self, frame: int) -> None:
        if isinstance(frame, bool) or not isinstance(frame, int):
            raise TypeError(f"a frame index is an int, got {frame!r}")
        if frame < 0 or (self.num_frames > 0 and frame >= self.num_frames):
            raise ValueError(f"frame {frame} is outside the video (0..{self.num_frames - 1})")

    def _range(self, first: int, last: int | None) -> tuple[int, int]:
        last = first if last is None else last
        if last < first:
            first, last = last, first
        self._check_frame(first)
        self._check_frame(last)
        return first, last
