"""MattingRunner: runs jobs (matting and GrabCut) on one worker QThread.

Jobs run in a child process driven by the worker thread (mattestudio.ui.engine_process). The
main thread builds an immutable job (mattestudio.ui.protocol: copies of the trimap, a read-only
view of the image, the trimap revision, engine name and parameters). The worker only ever sees
the job, never the live Document, so the user keeps painting while it runs.

Two ways to submit:

- ``supersede=True`` (Run, GrabCut, slow engines in Live mode): the running job is cancelled and
  its results are dropped; the new job replaces any job still waiting.
- ``supersede=False`` (Live with an engine that re-solves incrementally): the running job
  finishes and its result is shown; the new job waits and replaces any job already waiting,
  so requests made while the worker is busy coalesce into one run of the newest state.

Events reach the main thread as the protocol's dataclasses through one queue and one relay
signal, whatever the job kind. Full-resolution matting results of one job that arrive while the
previous one still waits for the main thread are merged into it (the newest result, the union
of the changed boxes): at 12 MP each is ~200 MB, so a busy main thread never piles them up; errors come back as ``failed`` with a readable message and
nothing raised in the worker can crash the window.
"""

from __future__ import annotations

import dataclasses
import itertools
import queue
import threading
import traceback

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from mattestudio.errors import Cancelled, MattestudioError
from mattestudio.types import CancelToken, MattingResult
from mattestudio.ui.engine_process import EngineProcess, error_message
from mattestudio.ui.protocol import Done, Event, Failed, Job, Progress, Result


class _Ticket:
    """A job and its cancel token (the token stays on this side of the process boundary)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.cancel = CancelToken()


class _Worker(QObject):
    """Lives on the worker thread. Pulls the newest job from the runner and runs it in the
    engine process (see engine_process: numba holds the GIL, a thread alone would stutter)."""

    #: Events go through ``events`` (a thread-safe queue); this signal only says "look".
    #: Python objects are deliberately not passed through queued Qt signals: PySide6 has had
    #: reference-counting bugs there (crashes at interpreter exit on None/True payloads).
    notify = Signal()

    def __init__(self, take, process: EngineProcess | None = None, waiting=None):
        super().__init__()
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        #: The matting result waiting for the main thread (its place in ``events`` is marked
        #: by _RESULT); a newer one of the same job replaces it (module doc).
        self._waiting_result: Result | None = None
        self._result_lock = threading.Lock()
        self.merged = 0  # results merged into a waiting one (tests)
        self._take = take
        self._waiting = waiting  # () -> bool: a newer job waits (Live refinement yields to it)
        self.owns_process = process is None
        self.process = process or EngineProcess()

    @Slot()
    def warm_up(self) -> None:
        try:
            self.process.start()
        except Exception:
            traceback.print_exc()

    @Slot()
    def wake(self) -> None:
        while True:
            ticket = self._take()
            if ticket is None:
                return
            job_id = ticket.job.job_id
            cancelled = False
            try:
                self.process.run(ticket.job, ticket.cancel, self._post, self._waiting)
            except Cancelled:
                cancelled = True
            except BaseException as exc:
                if not isinstance(exc, MattestudioError):
                    traceback.print_exc()
                self._post(Failed(job_id, error_message(exc)))
            self._post(Done(job_id, cancelled))

    def _post(self, event: Event) -> None:
        if _mergeable(event):
            assert isinstance(event, Result)
            with self._result_lock:
                waiting = self._waiting_result
                if waiting is not None and waiting.job_id == event.job_id:
                    self._waiting_result = _merged(waiting, event)
                    self.merged += 1
                    return  # its marker is queued already
                if waiting is None:
                    self._waiting_result = event
                    event = _RESULT  # type: ignore[assignment]
        self.events.put(event)
        self.notify.emit()

    def take_event(self) -> Event | None:
        """The next event for the main thread, or None when there is none."""
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return None
            if event is not _RESULT:
                return event
            with self._result_lock:
                waiting, self._waiting_result = self._waiting_result, None
            if waiting is not None:
                return waiting


#: Marks the place of the waiting matting result in the worker's event queue.
_RESULT = object()


def _mergeable(event: Event) -> bool:
    return (
        isinstance(event, Result)
        and isinstance(event.value, MattingResult)
        and event.value.scale == 1.0
    )


def _merged(old: Result, new: Result) -> Result:
    """``new`` as seen from what the main thread has shown before ``old``: its box grows to hold
    ``old``'s change too (or becomes None: compare in full)."""
    assert isinstance(old.value, MattingResult)
    a, b = old.box, new.box
    if a is None or b is None or new.basis is None or new.basis != old.value.request_id:
        return dataclasses.replace(new, box=None, basis=None)
    if a[1] <= a[0] or a[3] <= a[2]:  # an empty box changes nothing
        box = b
    elif b[1] <= b[0] or b[3] <= b[2]:
        box = a
    else:
        box = (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))
    return dataclasses.replace(new, box=box, basis=old.basis)


class MattingRunner(QObject):
    """Main-thread front of the worker. Connect to the signals; call ``submit`` / ``cancel``."""

    started = Signal(int)
    progress = Signal(float, str)
    #: A protocol ``Result`` (value, revision, changed box) of a job that was not superseded.
    result_ready = Signal(object)
    failed = Signal(str)
    #: The user's cancel stopped a running or waiting job.
    cancelled = Signal()
    busy_changed = Signal(bool)
    #: A job is over (finished, failed, cancelled or superseded): its id.
    finished = Signal(int)
    _wake = Signal()
    _warm = Signal()

    #: Tests set this to share one engine process between windows (it is then never stopped here).
    shared_process: EngineProcess | None = None

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: _Ticket | None = None
        self._current: _Ticket | None = None
        self.latest_id = 0
        #: Results of jobs with a lower id were superseded or cancelled: dropped on arrival.
        self._valid_from = 0
        self.dropped = 0  # stale results thrown away (for tests and the status bar)
        self._busy = False
        self._thread = QThread()
        self._thread.setObjectName("matting-worker")
        self._worker = _Worker(self._take, MattingRunner.shared_process, self._has_pending)
        self._worker.moveToThread(self._thread)
        self._wake.connect(self._worker.wake)
        self._warm.connect(self._worker.warm_up)
        self._worker.notify.connect(self._drain)
        self._thread.start()

    # -- main thread API ---------------------------------------------------------------------------
    def submit(self, job: Job, supersede: bool = True) -> int:
        """Queue ``job`` (its job_id is assigned here); returns the id."""
        image = job.image
        if image is not None:
            image = image.view()
            image.flags.writeable = False  # the Document replaces, never edits, its image
        job = dataclasses.replace(job, job_id=next(self._ids), image=image)
        ticket = _Ticket(job)
        with self._lock:
            if supersede:
                if self._current is not None:
                    self._current.cancel.cancel()
                self._valid_from = job.job_id
            dropped, self._pending = self._pending, ticket
            self.latest_id = job.job_id
        if dropped is not None:  # replaced before it ever ran
            self.finished.emit(dropped.job.job_id)
        self._set_busy(True)
        self.started.emit(job.job_id)
        self._wake.emit()
        return job.job_id

    def cancel(self, quiet: bool = False) -> bool:
        """Stop the running job and drop the waiting one. Returns whether there was any; the
        ``cancelled`` signal is emitted only then, and never when ``quiet``."""
        with self._lock:
            had = self._pending is not None or self._current is not None
            dropped, self._pending = self._pending, None
            if self._current is not None:
                self._current.cancel.cancel()
            self.latest_id = next(self._ids)  # anything still in flight is now stale
            self._valid_from = self.latest_id
            running = self._current is not None
        if dropped is not None:  # it never ran, so no Done will come for it
            self.finished.emit(dropped.job.job_id)
        if not running:
            self._set_busy(False)
        if had and not quiet:
            self.cancelled.emit()
        return had

    @property
    def busy(self) -> bool:
        return self._busy

    def warm_up(self) -> None:
        """Start the engine process now (it imports pymatting), so the first run starts at once."""
        self._warm.emit()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        if not self._thread.isRunning():
            return
        self.cancel(quiet=True)
        self._thread.quit()
        self._thread.wait(timeout_ms)
        if self._worker.owns_process:
            self._worker.process.stop()

    # -- worker side -------------------------------------------------------------------------------
    def _has_pending(self) -> bool:  # called on the worker thread
        return self._pending is not None  # one reference read: no lock needed

    def _take(self) -> _Ticket | None:  # called on the worker thread
        with self._lock:
            ticket, self._pending = self._pending, None
            self._current = ticket
            return ticket

    # -- events (main thread, queued) ----------------------------------------------------------------
    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    @Slot()
    def _drain(self) -> None:
        while True:
            event = self._worker.take_event()
            if event is None:
                return
            self.handle(event)

    def handle(self, event: Event) -> None:
        live = event.job_id >= self._valid_from
        if isinstance(event, Progress):
            if event.job_id == self.latest_id:
                self.progress.emit(event.fraction, event.message)
        elif isinstance(event, Result):
            if not live:
                self.dropped += 1
                return
            self.result_ready.emit(event)
        elif isinstance(event, Failed):
            if live:
                self.failed.emit(event.message)
        elif isinstance(event, Done):
            with self._lock:
                if self._current is not None and self._current.job.job_id == event.job_id:
                    self._current = None
                idle = self._current is None and self._pending is None
            self.finished.emit(event.job_id)
            if idle:
                self._set_busy(False)


def snapshot_trimap(trimap: np.ndarray) -> np.ndarray:
    """A private copy of the trimap for a job."""
    return np.array(trimap, np.uint8, copy=True)
