"""MattingRunner: runs engines on one worker QThread, newest request wins.

Engines run in a child process driven by the worker thread (mattestudio.ui.engine_process).
The main thread builds an immutable ``MattingJob`` (copies of the trimap, a read-only view of
the image, versions, engine name and parameters). The worker only ever sees the job, never the
live Document, so the user keeps painting while it runs. Submitting a new job cancels the
running one (its CancelToken) and replaces any job still waiting; results whose job id is not
the latest are dropped on arrival. Errors come back as a ``failed`` signal with a readable
message; nothing raised in the worker can crash the window.

A job may have several stages (Live mode: a coarse downscaled pass, then full resolution);
each finished stage is delivered as a result.
"""

from __future__ import annotations

import itertools
import queue
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from mattestudio.errors import Cancelled, MattestudioError
from mattestudio.types import CancelToken
from mattestudio.ui.engine_process import EngineProcess, error_message


@dataclass(frozen=True)
class MattingJob:
    job_id: int
    engine: str
    params: dict
    image: np.ndarray  # read-only, float32 H x W x 3
    image_version: int
    trimap: np.ndarray  # private copy, uint8 H x W
    trimap_version: int
    scales: tuple[float, ...] = (1.0,)
    #: Solve from scratch: incremental engines drop their previous result (Run, as opposed to Live).
    exact: bool = False
    cancel: CancelToken = field(default_factory=CancelToken, compare=False)


class _Worker(QObject):
    """Lives on the worker thread. Pulls the newest job from the runner and runs it in the
    engine process (see engine_process: numba holds the GIL, a thread alone would stutter)."""

    #: Events go through ``events`` (a thread-safe queue); this signal only says "look".
    #: Python objects are deliberately not passed through queued Qt signals: PySide6 has had
    #: reference-counting bugs there (crashes at interpreter exit on None/True payloads).
    notify = Signal()

    def __init__(self, take_job, process: EngineProcess | None = None):
        super().__init__()
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self._take_job = take_job
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
        job = self._take_job()
        if job is None:
            return
        try:
            self.process.run(
                job,
                job.cancel,
                lambda frac, msg: self._post("progress", job.job_id, frac, msg),
                lambda result, version: self._post("result", job.job_id, result, version),
            )
        except Cancelled:
            self._post("cancelled", job.job_id)
        except BaseException as exc:
            if not isinstance(exc, MattestudioError):
                traceback.print_exc()
            self._post("failed", job.job_id, error_message(exc))
        finally:
            self._post("done", job.job_id)

    def _post(self, *event) -> None:
        self.events.put(event)
        self.notify.emit()


class MattingRunner(QObject):
    """Main-thread front of the worker. Connect to the signals; call ``submit`` / ``cancel``."""

    started = Signal(int)
    progress = Signal(float, str)
    #: (MattingResult, trimap version it was computed from); only for the newest job.
    result_ready = Signal(object, int)
    failed = Signal(str)
    cancelled = Signal()
    busy_changed = Signal(bool)
    _wake = Signal()
    _warm = Signal()

    #: Tests set this to share one engine process between windows (it is then never stopped here).
    shared_process: EngineProcess | None = None

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: MattingJob | None = None
        self._current: MattingJob | None = None
        self.latest_id = 0
        self.dropped = 0  # stale results thrown away (for tests and the status bar)
        self._busy = False
        self._thread = QThread()
        self._thread.setObjectName("matting-worker")
        self._worker = _Worker(self._take_job, MattingRunner.shared_process)
        self._worker.moveToThread(self._thread)
        self._wake.connect(self._worker.wake)
        self._warm.connect(self._worker.warm_up)
        self._worker.notify.connect(self._drain)
        self._thread.start()

    # -- main thread API ---------------------------------------------------------------------------
    def submit(
        self,
        engine: str,
        params: dict,
        image: np.ndarray,
        image_version: int,
        trimap: np.ndarray,
        trimap_version: int,
        scales: tuple[float, ...] = (1.0,),
        exact: bool = False,
    ) -> int:
        image_view = image.view()
        image_view.flags.writeable = False  # the Document replaces, never edits, its image
        job = MattingJob(
            next(self._ids),
            engine,
            dict(params),
            image_view,
            image_version,
            np.array(trimap, np.uint8, copy=True),
            trimap_version,
            tuple(scales),
            bool(exact),
        )
        with self._lock:
            if self._current is not None:
                self._current.cancel.cancel()
            self._pending = job
            self.latest_id = job.job_id
        self._set_busy(True)
        self.started.emit(job.job_id)
        self._wake.emit()
        return job.job_id

    def cancel(self) -> None:
        with self._lock:
            self._pending = None
            if self._current is not None:
                self._current.cancel.cancel()
            self.latest_id = next(self._ids)  # anything still in flight is now stale
            running = self._current is not None
        if not running:
            self._set_busy(False)
        self.cancelled.emit()

    @property
    def busy(self) -> bool:
        return self._busy

    def warm_up(self) -> None:
        """Start the engine process now (it imports pymatting), so the first run starts at once."""
        self._warm.emit()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        if not self._thread.isRunning():
            return
        self.cancel()
        self._thread.quit()
        self._thread.wait(timeout_ms)
        if self._worker.owns_process:
            self._worker.process.stop()

    # -- worker side -------------------------------------------------------------------------------
    def _take_job(self) -> MattingJob | None:  # called on the worker thread
        with self._lock:
            job, self._pending = self._pending, None
            self._current = job
            return job

    # -- results (main thread, queued) ---------------------------------------------------------------
    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    @Slot()
    def _drain(self) -> None:
        handlers: dict[str, Callable[..., None]] = {
            "progress": self._on_progress,
            "result": self._on_result,
            "failed": self._on_failed,
            "cancelled": self._on_cancelled,
            "done": self._on_done,
        }
        while True:
            try:
                kind, *args = self._worker.events.get_nowait()
            except queue.Empty:
                return
            handlers[kind](*args)

    def _on_progress(self, job_id: int, frac: float, msg: str) -> None:
        if job_id == self.latest_id:
            self.progress.emit(frac, msg)

    def _on_result(self, job_id: int, result, trimap_version: int) -> None:
        if job_id != self.latest_id:
            self.dropped += 1
            return
        self.result_ready.emit(result, trimap_version)

    def _on_failed(self, job_id: int, message: str) -> None:
        if job_id == self.latest_id:
            self.failed.emit(message)

    def _on_cancelled(self, job_id: int) -> None:
        pass  # cancel() already told the UI; a superseded job needs no message

    def _on_done(self, job_id: int) -> None:
        with self._lock:
            if self._current is not None and self._current.job_id == job_id:
                self._current = None
            idle = self._current is None and self._pending is None
        if idle:
            self._set_busy(False)
