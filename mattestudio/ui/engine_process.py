"""A long-lived child process that runs jobs (Qt-free; the runner's worker thread drives it).

Why a process and not only a thread: pymatting's numba kernels and parts of scipy hold the GIL
for 100-200 ms at a time, which froze the editor's event loop for that long even with the
engine on a worker thread. In a child process the GUI keeps the GIL to itself; the worker
thread only waits on a pipe. Side benefits: a crash or out-of-memory kill in an engine cannot
take the editor down (the next run starts a fresh process), and a cancel that the engine does
not honour within a grace period ends the process.

Messages are the dataclasses of mattestudio.ui.protocol: an ``Envelope`` (job + image key) or
``Stop`` goes in; ``Progress``, ``Result``, ``Failed`` and ``Done`` come out. The image travels
only when it is a different array from the last one sent. Big arrays (the image, results)
travel as files in shared memory (mattestudio.ui.shared_arrays), in a folder that lives as long
as one engine process and is removed when it stops, however it stops.

Matting sessions stay warm between jobs: per (engine, parameters) the child keeps the prepared
engine and its last full-resolution result. A Live job then re-runs through
``pipeline.rematte`` (foreground colors only where the alpha changed) and sends back only the
changed box; the parent keeps the same last result and pastes the box into a copy of it. Both
sides see every result in pipe order, so they stay in step; a restart resets both.

Engines with bounded Live updates (``predict_live`` / ``refine``, the fast closed-form engine)
answer a Live job with one bounded solve around the stroke, then keep refining its approximate
regions, newest stroke first, sending each refinement as a further Result (its changed box
only) until nothing is left, the job is cancelled, or the parent says a newer job is waiting
(the ``yield`` event: the refinement then continues in that job).
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mattestudio.errors import Cancelled, MattestudioError
from mattestudio.progress import scaled
from mattestudio.types import CancelToken, MattingResult
from mattestudio.ui.protocol import (
    Done,
    Envelope,
    Event,
    Failed,
    GrabCutJob,
    GrabCutOutput,
    Job,
    MattingJob,
    Progress,
    Result,
    Stop,
)
from mattestudio.ui.shared_arrays import discard, new_folder, pack, remove_folder, unpack


class _EventToken(CancelToken):
    """A CancelToken backed by a multiprocessing Event, so the parent can cancel the child's run."""

    def __init__(self, event) -> None:
        self._event = event


def error_message(exc: BaseException) -> str:
    if isinstance(exc, MattestudioError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory: try a smaller image or a lighter engine"
    return f"{type(exc).__name__}: {exc}"


# -- child side -------------------------------------------------------------------------------------


class _Session:
    """One engine instance and what it last produced for the current image."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.image_key: int | None = None
        self.previous: MattingResult | None = None  # at full resolution
        self.previous_id = -1
        #: The engine's Live matte may differ from ``previous`` outside the next changed box
        #: (a refinement was cancelled half-way): the next Live result is compared in full.
        self.diverged = False


#: Seconds of refinement between two results (and between two looks at the yield event).
REFINE_SECONDS = 0.25


def bounded_live(engine) -> bool:
    """Whether Live jobs on ``engine`` take the bounded path (predict_live, then refine)."""
    return callable(getattr(engine, "predict_live", None)) and bool(
        getattr(engine, "params", {}).get("incremental")
    )


class _Server:
    MAX_SESSIONS = 4

    def __init__(
        self, conn, token: CancelToken, newer_waiting=None, folder: Path | None = None
    ) -> None:
        self.conn = conn
        #: Where big arrays go for the parent (None: in the pickle).
        self.folder = folder
        self.token = token
        #: Set by the parent when a newer job waits: stop refining (an Event, or None).
        self.newer_waiting = newer_waiting
        self.sessions: dict = {}
        self.image: np.ndarray | None = None
        self.image_key: int | None = None
        self.last_sent = (
            -1
        )  # job id of the last full-resolution matting result sent (the parent's basis)

    def send(self, event: Event) -> None:
        if isinstance(event, Result):
            value, shared = pack(event.value, self.folder)
            event = dataclasses.replace(event, value=value, shared=shared)
            try:
                self.conn.send(event)
            except BaseException:
                discard(shared)
                raise
            return
        self.conn.send(event)

    def progress_fn(self, job_id: int, lo: float, hi: float):
        """A stage's progress, scaled onto [lo, hi] of the job's bar (mattestudio.progress) and
        sent at most 20 times a second (and always at the stage's end)."""
        last = [0.0]

        def send(fraction: float, text: str) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.05 or fraction >= hi:
                last[0] = now
                self.send(Progress(job_id, fraction, text))

        return scaled(send, lo, hi)

    def session(self, name: str, params: dict, scale: float) -> _Session:
        from mattestudio.engines import registry

        key = (name, tuple(sorted((p, repr(v)) for p, v in params.items())), scale)
        s = self.sessions.get(key)
        if s is None:
            if len(self.sessions) >= self.MAX_SESSIONS:
                self.sessions.clear()
            s = self.sessions[key] = _Session(registry.create(name, **params))
        return s

    def serve(self) -> None:
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                return
            if isinstance(msg, Stop):
                return
            job = msg.job
            cancelled = False
            try:
                # Read into the engine's own memory: hot loops run on it (numpy's big arrays get
                # huge pages, a mapped shared-memory file does not).
                job = unpack(job, msg.shared, copy=True)
                if job.image is not None:
                    self.image, self.image_key = job.image, msg.image_key
                if self.image is None or self.image_key != msg.image_key:
                    raise RuntimeError("the engine process lost the image; run again")
                if isinstance(job, GrabCutJob):
                    self.grabcut(job)
                else:
                    self.matte(job)
            except Cancelled:
                cancelled = True
            except BaseException as exc:
                self.send(Failed(job.job_id, error_message(exc)))
            self.send(Done(job.job_id, cancelled))

    def grabcut(self, job: GrabCutJob) -> None:
        from mattestudio.core import trimap as trimap_ops

        assert self.image is not None  # checked by serve()

        seg = trimap_ops.grabcut_segment(
            self.image,
            job.rect,
            job.fg_marks,
            job.bg_marks,
            job.iterations,
            progress=self.progress_fn(job.job_id, 0.0, 1.0),
            cancel=self.token,
        )
        tri = trimap_ops.from_segmentation(
            seg, job.band, job.fg_marks, job.bg_marks, image=self.image, smart=job.smart
        )
        self.send(Result(job.job_id, job.revision, GrabCutOutput(seg, tri)))

    def matte(self, job: MattingJob) -> None:
        from mattestudio.core.trimap import downscaled
        from mattestudio.pipeline import rematte, run_matting

        image, trimap, token = self.image, job.trimap, self.token
        assert image is not None  # checked by serve()
        full = self.session(job.engine, job.params, 1.0)
        if full.image_key != self.image_key or job.exact:
            full.previous = None
        if job.exact:
            full.engine.forget_previous()  # part of the engine contract (a no-op by default)
        elif bounded_live(full.engine):
            self.matte_live(job, full)
            return
        # An engine that re-solves only around the edit answers faster than a coarse preview would.
        warm = full.previous is not None and bool(full.engine.params.get("incremental"))
        lo = 0.0
        if job.coarse_scale is not None and job.coarse_scale < 1.0 and not warm:
            token.raise_if_cancelled()
            lo = 0.3
            coarse = self.session(job.engine, job.params, job.coarse_scale)
            img_s, tri_s = downscaled(image, trimap, job.coarse_scale)
            prepared = coarse.image_key == self.image_key
            coarse.image_key = None
            result = run_matting(
                coarse.engine,
                img_s,
                tri_s,
                prepared=prepared,
                progress=self.progress_fn(job.job_id, 0.0, lo),
                cancel=token,
                request_id=job.job_id,
                scale=job.coarse_scale,
            )
            coarse.image_key = self.image_key
            token.raise_if_cancelled()
            result = full_size_preview(result, img_s, image, trimap)
            self.send(Result(job.job_id, job.revision, result))
        token.raise_if_cancelled()
        progress = self.progress_fn(job.job_id, lo, 1.0)
        previous, previous_id = full.previous, full.previous_id
        prepared = full.image_key == self.image_key
        full.image_key = None  # until this run has finished
        full.previous = None
        if previous is not None and prepared:
            try:
                result, box = rematte(
                    full.engine,
                    image,
                    trimap,
                    previous,
                    progress=progress,
                    cancel=token,
                    request_id=job.job_id,
                )
            except Cancelled:  # a cancelled predict leaves the engine as it was: keep the session
                full.image_key, full.previous = self.image_key, previous
                raise
        else:
            result, box = (
                run_matting(
                    full.engine,
                    image,
                    trimap,
                    prepared=prepared,
                    progress=progress,
                    cancel=token,
                    request_id=job.job_id,
                ),
                None,
            )
        full.image_key = self.image_key
        full.previous, full.previous_id = result, job.job_id
        token.raise_if_cancelled()
        if box is not None and previous_id == self.last_sent:
            y0, y1, x0, x1 = box
            crop = dataclasses.replace(
                result,
                alpha=result.alpha[y0:y1, x0:x1].copy(),
                foreground=result.foreground[y0:y1, x0:x1].copy(),
            )
            self.send(Result(job.job_id, job.revision, crop, box, previous_id, patch=True))
        else:
            basis = previous_id if box is not None else None
            self.send(Result(job.job_id, job.revision, result, box, basis))
        self.last_sent = job.job_id

    def matte_live(self, job: MattingJob, full: _Session) -> None:
        """A Live job on an engine with bounded updates: the stroke's first change, then
        refinements while the engine has approximate regions and no newer job waits."""
        image, token, engine = self.image, self.token, full.engine
        assert image is not None  # checked by serve()
        if full.image_key != self.image_key:
            full.image_key, full.previous = None, None
            engine.prepare(image)
            full.image_key = self.image_key
        start = time.perf_counter()
        live = engine.predict_live(
            job.trimap, progress=self.progress_fn(job.job_id, 0.0, 0.9), cancel=token
        )
        self.send_live(job, full, live, start)
        first = len(live.approximate_regions)
        while engine.live_pending:
            if self.newer_waiting is not None and self.newer_waiting.is_set():
                return  # the next job's refinement continues where this one stopped
            token.raise_if_cancelled()
            start = time.perf_counter()
            try:
                live = engine.refine(seconds=REFINE_SECONDS, cancel=token)
            except Cancelled:
                full.diverged = True  # tiles solved before the cancel are in the engine's matte
                raise
            if live is None:
                break
            left = len(live.approximate_regions)
            self.send(
                Progress(
                    job.job_id,
                    min(0.99, 1.0 - left / max(first, left, 1)),
                    f"refining: {left} regions approximate",
                )
            )
            self.send_live(job, full, live, start)

    def send_live(self, job: MattingJob, full: _Session, live: Any, start: float) -> None:
        """Send one LiveResult: foreground colors re-estimated only in its changed box, and
        only that box on the wire when the parent holds the previous result."""
        from mattestudio.engines.foreground import estimate_foreground, update_foreground
        from mattestudio.pipeline import changed_box

        image = self.image
        assert image is not None
        alpha = live.alpha  # the engine's own copy: known pixels are exactly 0 and 1
        previous, previous_id = full.previous, full.previous_id
        box: tuple[int, int, int, int] | None = None
        if previous is None or previous.alpha.shape != alpha.shape:
            fg = estimate_foreground(image, alpha)
        else:
            box = live.changed or (0, 0, 0, 0)
            if full.diverged:
                box = _union(box, changed_box(alpha, previous.alpha))
                full.diverged = False
            fg = previous.foreground  # owned here (the parent has its own copy): edit in place
            if box[1] > box[0] and box[3] > box[2]:
                update_foreground(image, alpha, fg, box)
        result = MattingResult(
            alpha=alpha,
            foreground=fg,
            engine=engine_name(full.engine),
            params=dict(full.engine.params),
            seconds=time.perf_counter() - start,
            request_id=job.job_id,
            approximate=tuple(_box(r.box) for r in live.approximate_regions),
            refining=bool(full.engine.live_pending),
        )
        full.previous, full.previous_id = result, job.job_id
        if box is not None and previous_id == self.last_sent:
            y0, y1, x0, x1 = box
            crop = dataclasses.replace(
                result,
                alpha=alpha[y0:y1, x0:x1].copy(),
                foreground=fg[y0:y1, x0:x1].copy(),
            )
            self.send(Result(job.job_id, job.revision, crop, box, previous_id, patch=True))
        else:
            basis = previous_id if box is not None else None
            self.send(Result(job.job_id, job.revision, result, box, basis))
        self.last_sent = job.job_id


def full_size_preview(
    result: MattingResult, small_image: np.ndarray, image: np.ndarray, trimap: np.ndarray
) -> MattingResult:
    """A coarse preview's alpha brought to the photo's size with an edge-aware guided upsampling
    (the small solve's local linear colour model applied to the full-resolution colours) and the
    trimap's known pixels exact: hair and edges stay sharp instead of a bilinear blur until the
    full solve arrives (alphamatting GT05: SAD 2.16 bilinear, 1.37 guided, 1.26 the full solve).
    It stays marked as a coarse preview (``scale``)."""
    from mattestudio.core.trimap import force_known
    from mattestudio.engines.fastcf.local_linear import guided_upsample

    alpha = guided_upsample(small_image, result.alpha, image)
    np.clip(alpha, 0.0, 1.0, out=alpha)
    return dataclasses.replace(result, alpha=force_known(alpha, trimap))


def engine_name(engine) -> str:
    return engine.info.name


def _box(b) -> tuple[int, int, int, int]:
    return int(b[0]), int(b[1]), int(b[2]), int(b[3])


def _union(a, b):
    """The smallest box holding both (an empty box counts as nothing)."""
    if a[1] <= a[0] or a[3] <= a[2]:
        return b
    if b[1] <= b[0] or b[3] <= b[2]:
        return a
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


def _serve(conn, cancel_event, newer_waiting=None, folder: str | None = None) -> None:  # child
    with contextlib.suppress(
        AttributeError, OSError
    ):  # the editor's event loop wins any fight for a core
        os.nice(5)
    with contextlib.suppress(
        Exception
    ):  # pymatting's import (and numba compile) now, not in the first run
        import pymatting  # noqa: F401
    _Server(
        conn, _EventToken(cancel_event), newer_waiting, None if folder is None else Path(folder)
    ).serve()


# -- parent side ------------------------------------------------------------------------------------


class EngineProcess:
    """Parent side. Not thread-safe: use it from one thread (the runner's worker)."""

    def __init__(self, grace_seconds: float = 3.0):
        self.grace_seconds = grace_seconds
        self._proc: Any = None
        self._conn: Any = None
        self._cancel: Any = None
        self._newer: Any = None  # Event: a newer job waits, stop refining
        self._image_ref: np.ndarray | None = None  # the image array last sent (by identity)
        self._image_key = 0
        self._basis: MattingResult | None = None  # last full-resolution result (module doc)
        #: Shared-memory folder of the running process (module doc); None when stopped.
        self.folder: Path | None = None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def start(self) -> None:
        if self.alive:
            return
        self.stop()
        ctx = mp.get_context("spawn")  # never fork a process that runs Qt threads
        parent, child = ctx.Pipe()
        self._cancel = ctx.Event()
        self._newer = ctx.Event()
        self.folder = new_folder()
        self._proc = ctx.Process(
            target=_serve,
            args=(child, self._cancel, self._newer, str(self.folder)),
            daemon=True,
            name="mattestudio-engine",
        )
        self._conn = parent
        try:
            self._proc.start()
        except BaseException:
            child.close()
            self.stop(kill=True)
            raise
        child.close()
        self._conn = parent
        self._image_ref = None
        self._basis = None

    def stop(self, kill: bool = False) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        self._image_ref = None
        self._basis = None
        if conn is not None:
            try:
                if not kill:
                    conn.send(Stop())
            except (OSError, ValueError):
                pass
        if proc is not None:
            try:
                if kill:
                    proc.kill()
                proc.join(timeout=2)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=2)
            # never started (kill() then raises AttributeError), or already closed
            except (AssertionError, AttributeError, ValueError, OSError):
                pass
        if conn is not None:
            conn.close()
        # The process is gone: whatever it wrote and nobody read (or the image it never
        # read) goes with its folder.
        remove_folder(self.folder)
        self.folder = None

    def _full_result(self, event: Result) -> Result:
        """Paste a patch into a copy of the basis; remember full-resolution matting results."""
        value: Any = event.value
        if event.patch:
            if self._basis is None or event.box is None or not isinstance(value, MattingResult):
                raise MattestudioError("the engine process sent a patch without a basis")
            y0, y1, x0, x1 = event.box
            alpha = self._basis.alpha.copy()
            fg = self._basis.foreground.copy()
            alpha[y0:y1, x0:x1] = value.alpha
            fg[y0:y1, x0:x1] = value.foreground
            value = dataclasses.replace(value, alpha=alpha, foreground=fg)
            event = dataclasses.replace(event, value=value, patch=False)
        if not isinstance(value, MattingResult) or value.scale != 1.0:
            return event
        self._basis = value
        return event

    def run(
        self,
        job: Job,
        cancel: CancelToken,
        on_event: Callable[[Event], None],
        newer_waiting: Callable[[], bool] | None = None,
    ) -> None:
        """Run ``job`` to completion, passing its Progress and Result events to ``on_event``.
        ``newer_waiting``: polled while the job runs; once true the engine stops refining (a
        Live job then ends early, with what it has shown so far). Raises Cancelled or
        MattestudioError."""
        self.start()
        self._cancel.clear()
        self._newer.clear()
        told_newer = False
        # The image travels only when it is a different array from the last one sent (Documents
        # replace their image, never edit it in place); the child keys its sessions by it.
        if job.image is None:
            raise MattestudioError("a job without an image")
        base = job.image.base if job.image.base is not None else job.image
        wire = job
        if base is not self._image_ref:
            self._image_key += 1
            self._basis = None
        else:
            wire = dataclasses.replace(job, image=None)
        wire, shared = pack(wire, self.folder)
        try:
            self._conn.send(Envelope(wire, self._image_key, shared))
        except (OSError, ValueError) as exc:
            discard(shared)
            self.stop(kill=True)
            raise MattestudioError(f"could not start the engine: {exc}") from None
        self._image_ref = base
        cancel_at: float | None = None
        failure: str | None = None
        cancelled = False
        while True:
            if not told_newer and newer_waiting is not None and newer_waiting():
                self._newer.set()
                told_newer = True
            if cancel.cancelled and cancel_at is None:
                self._cancel.set()
                cancel_at = time.monotonic()
            if cancel_at is not None and time.monotonic() - cancel_at > self.grace_seconds:
                # the engine ignores the cancel: end it, a new process starts next time
                self.stop(kill=True)
                raise Cancelled()
            try:
                if not self._conn.poll(0.02):
                    if not self.alive:
                        raise EOFError
                    continue
                msg = self._conn.recv()
            except (EOFError, OSError):
                code = self._proc.exitcode if self._proc is not None else None
                self.stop(kill=True)
                if cancel_at is not None:
                    raise Cancelled() from None
                raise MattestudioError(
                    "the engine process stopped unexpectedly"
                    + (f" (exit code {code}; out of memory?)" if code else "")
                ) from None
            if isinstance(msg, Result):
                value = unpack(msg.value, msg.shared)
                msg = dataclasses.replace(msg, value=value, shared=())
                msg = self._full_result(msg)  # even when cancelled: the basis must follow the child
                if cancel_at is None:
                    on_event(msg)
            elif isinstance(msg, Progress):
                if cancel_at is None:
                    on_event(msg)
            elif isinstance(msg, Failed):
                failure = msg.message
            elif isinstance(msg, Done):
                cancelled = msg.cancelled
                break
        if cancelled or cancel_at is not None:
            raise Cancelled()
        if failure is not None:
            raise MattestudioError(failure)
