"""Change notification without Qt: subscribers get a ChangeEvent after each change, coalesced inside batch().

Qt views subscribe with a callback that emits a signal or schedules a repaint (napari's EventedModel pattern),
so the document stays importable and testable headless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum


class ChangeKind(str, Enum):
    FRAMES = "frames"  # per-frame states of one object changed over [first, last]
    OBJECT_ADDED = "object_added"
    OBJECT_REMOVED = "object_removed"
    OBJECT_CHANGED = "object_changed"  # label, description or attributes
    VIDEO = "video"  # the video reference changed


@dataclass(frozen=True)
class ChangeEvent:
    """What changed: ``kind``, the object (None for VIDEO) and, for FRAMES, the inclusive frame range."""

    kind: ChangeKind
    obj_id: int | None = None
    first: int | None = None
    last: int | None = None

    @property
    def frames(self) -> range:
        """The changed frames as a range (empty unless kind is FRAMES)."""
        if self.first is None or self.last is None:
            return range(0)
        return range(self.first, self.last + 1)

    def merged(self, other: ChangeEvent) -> ChangeEvent:
        """This event widened to cover ``other`` (same kind and object)."""
        if self.first is None or other.first is None:
            return self
        return ChangeEvent(self.kind, self.obj_id, min(self.first, other.first), max(self.last, other.last))


Callback = Callable[[ChangeEvent], None]


class EventHub:
    """Subscribers and the pending events of the current batch."""

    def __init__(self) -> None:
        self._callbacks: list[Callback] = []
        self._depth = 0
        # (kind, obj_id) -> coalesced event; dicts keep the order of first occurrence
        self._pending: dict[tuple[ChangeKind, int | None], ChangeEvent] = {}

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(event)`` after each change; returns a function that unsubscribes it."""
        self._callbacks.append(callback)
        return lambda: self.unsubscribe(callback)

    def unsubscribe(self, callback: Callback) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, event: ChangeEvent) -> None:
        if self._depth:
            key = (event.kind, event.obj_id)
            previous = self._pending.get(key)
            self._pending[key] = event if previous is None else previous.merged(event)
            return
        for callback in list(self._callbacks):  # a callback may unsubscribe itself
            callback(event)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold events until the outermost batch ends, then emit one event per (kind, object).

        Events are emitted even when the body raises: whatever did change must reach the views.
        """
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                pending, self._pending = list(self._pending.values()), {}
                for event in pending:
                    self.emit(event)
