"""MattingRunner: runs engines on one worker QThread, newest request wins.

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
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from mattestudio.errors import Cancelled, MattestudioError
from mattestudio.types import CancelToken


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
    cancel: CancelToken = field(default_factory=CancelToken, compare=False)


def _message(exc: BaseException) -> str:
    if isinstance(exc, MattestudioError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory: try a smaller image or a lighter engine"
    return f"{type(exc).__name__}: {exc}"


class _Worker(QObject):
    """Lives on the worker thread. Pulls the newest job from the runner and runs it."""

    progress = Signal(int, float, str)
    result = Signal(int, object, int)  # job id, MattingResult, trimap version
    failed = Signal(int, str)
    cancelled = Signal(int)
    done = Signal(int)

    def __init__(self, take_job):
        super().__init__()
        self._take_job = take_job
        self._engines: dict = {}  # (name, params, scale) -> [engine, image_version]

    def _engine(self, job: MattingJob, scale: float):
        from mattestudio.engines import registry

        key = (job.engine, tuple(sorted((k, repr(v)) for k, v in job.params.items())), scale)
        entry = self._engines.get(key)
        if entry is None:
            if len(self._engines) >= 4:
                self._engines.clear()
            entry = [registry.create(job.engine, **job.params), None]
            self._engines[key] = entry
        return entry

    @Slot()
    def wake(self) -> None:
        job = self._take_job()
        if job is None:
            return
        try:
            self._run(job)
        except Cancelled:
            self.cancelled.emit(job.job_id)
        except BaseException as exc:  # noqa: BLE001 - every failure is reported, none crashes the app
            traceback.print_exc()
            self.failed.emit(job.job_id, _message(exc))
        finally:
            self.done.emit(job.job_id)

    def _run(self, job: MattingJob) -> None:
        from mattestudio.core.document import downscaled
        from mattestudio.pipeline import run_matting

        last = [0.0]
        n = len(job.scales)

        for k, scale in enumerate(job.scales):
            job.cancel.raise_if_cancelled()

            def progress(frac: float, msg: str, k=k) -> None:
                now = time.monotonic()
                if now - last[0] >= 0.05 or frac >= 1.0:
                    last[0] = now
                    self.progress.emit(job.job_id, (k + frac) / n, msg)

            image, trimap = job.image, job.trimap
            if scale != 1.0:
                image, trimap = downscaled(image, trimap, scale)
            entry = self._engine(job, scale)
            engine, prepared_version = entry
            prepared = prepared_version == job.image_version
            if not prepared:
                entry[1] = None
            result = run_matting(engine, image, trimap, prepared=prepared, progress=progress,
                                 cancel=job.cancel, request_id=job.job_id, scale=scale)
            entry[1] = job.image_version
            job.cancel.raise_if_cancelled()
            self.result.emit(job.job_id, result, job.trimap_version)


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

    def __init__(self, parent: Optional[QObject] = None):
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: Optional[MattingJob] = None
        self._current: Optional[MattingJob] = None
        self.latest_id = 0
        self.dropped = 0  # stale results thrown away (for tests and the status bar)
        self._busy = False
        self._thread = QThread()
        self._thread.setObjectName("matting-worker")
        self._worker = _Worker(self._take_job)
        self._worker.moveToThread(self._thread)
        self._wake.connect(self._worker.wake)
        self._worker.progress.connect(self._on_progress)
        self._worker.result.connect(self._on_result)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._on_cancelled)
        self._worker.done.connect(self._on_done)
        self._thread.start()

    # -- main thread API ---------------------------------------------------------------------------
    def submit(self, engine: str, params: dict, image: np.ndarray, image_version: int, trimap: np.ndarray,
               trimap_version: int, scales: tuple[float, ...] = (1.0,)) -> int:
        image_view = image.view()
        image_view.flags.writeable = False  # the Document replaces, never edits, its image
        job = MattingJob(next(self._ids), engine, dict(params), image_view, image_version,
                         np.array(trimap, np.uint8, copy=True), trimap_version, tuple(scales))
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

    def shutdown(self, timeout_ms: int = 5000) -> None:
        self.cancel()
        self._thread.quit()
        self._thread.wait(timeout_ms)

    # -- worker side -------------------------------------------------------------------------------
    def _take_job(self) -> Optional[MattingJob]:  # called on the worker thread
        with self._lock:
            job, self._pending = self._pending, None
            self._current = job
            return job

    # -- results (main thread, queued) ---------------------------------------------------------------
    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

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
