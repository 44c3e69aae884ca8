"""The previous states of the frames an edit touched: what an undo command needs to revert it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .frame_state import FrameState


@dataclass(frozen=True)
class Snapshot:
    """Per object, per frame: the state before an edit (None: the frame had no state).

    Every mutating Document method returns one; ``Document.restore(snapshot)`` puts it back and returns the
    snapshot of what it replaced, so undo and redo are both ``restore``.
    """

    states: Mapping[int, Mapping[int, FrameState | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        frozen = {obj: MappingProxyType(dict(frames)) for obj, frames in self.states.items() if frames}
        object.__setattr__(self, "states", MappingProxyType(frozen))

    @property
    def object_ids(self) -> list[int]:
        return list(self.states)

    def frames(self, obj_id: int) -> list[int]:
        """The frames of ``obj_id`` this snapshot covers, sorted."""
        return sorted(self.states.get(obj_id, {}))

    def is_empty(self) -> bool:
        return not self.states

    def merge(self, later: Snapshot) -> Snapshot:
        """One snapshot for two edits made in sequence (this one first): for a frame both touched, the state
        before the first edit wins. This is how a tracking run of many per-frame applies becomes one undo step.
        """
        merged: dict[int, dict[int, FrameState | None]] = {}
        for source in (later, self):  # self last so that its (earlier) states overwrite
            for obj_id, frames in source.states.items():
                merged.setdefault(obj_id, {}).update(frames)
        return Snapshot(merged)


class SnapshotCollector:
    """Gathers the snapshots of many small edits into one (a run applies its results in many batches).

    ``Snapshot.merge`` copies both sides, so merging per batch would be quadratic over a long run; this keeps
    the first state seen per frame in plain dicts and builds one Snapshot at the end.
    """

    def __init__(self) -> None:
        self._states: dict[int, dict[int, FrameState | None]] = {}

    def add(self, snapshot: Snapshot) -> None:
        for object_id, frames in snapshot.states.items():
            target = self._states.setdefault(object_id, {})
            for frame, state in frames.items():
                target.setdefault(frame, state)  # the earliest state is what undo must bring back

    def __len__(self) -> int:
        return sum(len(frames) for frames in self._states.values())

    def snapshot(self) -> Snapshot:
        return Snapshot(self._states)
