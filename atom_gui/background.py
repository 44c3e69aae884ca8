"""One-off calls off the GUI thread (opening a video probes and seeks it, which can take a while).

``call_in_background(fn, on_done, on_error[, on_progress])`` runs ``fn()`` on Qt's global thread pool and delivers
its return value or exception (and its progress reports) to the callbacks on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

_alive: set = set()  # the relays of calls in flight: Python must not collect them before they report


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(object)
    progressed = Signal(int)


class _Call(QRunnable):
    def __init__(self, fn: Callable, relay: _Relay):
        super().__init__()
        self._fn = fn
        self._relay = relay

    def run(self) -> None:
        try:
            value = self._fn()
        except Exception as exc:  # reported to the GUI, which words it for the person
            self._relay.failed.emit(exc)
        else:
            self._relay.done.emit(value)


def call_in_background(fn: Callable, on_done: Callable[[object], None],
                       on_error: Callable[[Exception], None],
                       on_progress: Callable[[int], None] | None = None) -> None:
    """With ``on_progress``, ``fn`` is called as ``fn(report)``: ``report(n)`` from the worker thread reaches
    ``on_progress(n)`` on the GUI thread (queued, so a fast worker never blocks on the GUI)."""
    relay = _Relay()  # created on the GUI thread, so its signals are delivered there
    _alive.add(relay)
    if on_progress is not None:
        relay.progressed.connect(on_progress)
        inner = fn

        def fn():
            return inner(relay.progressed.emit)

    def finish(callback, value):
        _alive.discard(relay)
        callback(value)

    relay.done.connect(lambda value: finish(on_done, value))
    relay.failed.connect(lambda exc: finish(on_error, exc))
    QThreadPool.globalInstance().start(_Call(fn, relay))
