"""Short background jobs (GrabCut) on Qt's thread pool, results back on the GUI thread."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from mattestudio.errors import MattestudioError


class _Relay(QObject):
    """Lives on the GUI thread; its slot runs there (queued from the pool thread). The value
    travels as an attribute, not as a signal argument: PySide6 has had reference-counting bugs
    with Python objects in queued signals."""

    finished = Signal()

    def __init__(self, on_done, on_error):
        super().__init__()
        self._on_done, self._on_error = on_done, on_error
        self.value = None
        self.error: BaseException | None = None
        self.finished.connect(self._finish)

    @Slot()
    def _finish(self) -> None:
        _live.discard(self)
        if self.error is None:
            self._on_done(self.value)
        elif self._on_error is not None:
            self._on_error(self.error)


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay):
        super().__init__()
        self.fn = fn
        self.relay = relay

    def run(self) -> None:
        try:
            self.relay.value = self.fn()
        except BaseException as exc:
            if not isinstance(exc, MattestudioError):  # expected errors reach the user as a message
                traceback.print_exc()
            self.relay.error = exc
        self.relay.finished.emit()


_live: set = set()


def run_task(
    fn: Callable[[], Any],
    on_done: Callable[[Any], None],
    on_error: Callable[[BaseException], None] | None = None,
) -> None:
    """Run ``fn()`` on a pool thread; call ``on_done(value)`` or ``on_error(exc)`` on the GUI thread."""
    relay = _Relay(on_done, on_error)
    _live.add(relay)
    QThreadPool.globalInstance().start(_Task(fn, relay))
