"""A long-lived child process that runs engines (Qt-free; the runner's worker thread drives it).

Why a process and not only a thread: pymatting's numba kernels and parts of scipy hold the GIL
for 100-200 ms at a time, which froze the editor's event loop for that long even with the
engine on a worker thread. In a child process the GUI keeps the GIL to itself; the worker
thread only waits on a pipe. Side benefits: a crash or out-of-memory kill in an engine cannot
take the editor down (the next run starts a fresh process), and a cancel that the engine does
not honour within a grace period ends the process.

Protocol (parent -> child): ("job", job_id, engine, params, image_key, image | None,
trimap, trimap_version, scales, exact) or ("stop",). The image is sent only when it is a new array.
Child -> parent: ("progress", id, fraction, message), ("result", id, MattingResult,
trimap_version), ("failed", id, message), ("cancelled", id), ("done", id).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from typing import Any

from mattestudio.errors import Cancelled, MattestudioError
from mattestudio.progress import scaled
from mattestudio.types import CancelToken


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


def _throttled_sender(conn, job_id: int) -> Callable[[float, str], None]:
    """A progress callback that sends at most 20 messages a second (and always the last)."""
    last = 0.0

    def send(fraction: float, text: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= 0.05 or fraction >= 1.0:
            last = now
            conn.send(("progress", job_id, fraction, text))

    return send


def _serve(conn, cancel_event) -> None:  # runs in the child
    from mattestudio.core.document import downscaled
    from mattestudio.engines import registry
    from mattestudio.pipeline import run_matting

    with contextlib.suppress(
        AttributeError, OSError
    ):  # the editor's event loop must win any fight for a CPU core
        os.nice(5)
    # Warm up: pymatting's import (and first-time numba compile) happens here, not in the first run.
    with contextlib.suppress(Exception):
        import pymatting  # noqa: F401
    token = _EventToken(cancel_event)
    engines: dict = {}
    image = None
    image_version = None
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] == "stop":
            return
        _, job_id, name, params, iv, img, trimap, tv, scales, exact = msg
        if img is not None:
            image, image_version = img, iv
        send = _throttled_sender(conn, job_id)
        try:
            if image is None or image_version != iv:
                raise RuntimeError("the engine process lost the image; run again")
            for k, scale in enumerate(scales):
                token.raise_if_cancelled()
                # Each scale fills its own share of the bar.
                progress = scaled(send, k / len(scales), (k + 1) / len(scales))

                key = (name, tuple(sorted((p, repr(v)) for p, v in params.items())), scale)
                entry = engines.get(key)
                if entry is None:
                    if len(engines) >= 4:
                        engines.clear()
                    entry = engines[key] = [registry.create(name, **params), None]
                img_s, tri_s = (image, trimap) if scale == 1.0 else downscaled(image, trimap, scale)
                prepared = entry[1] == iv
                if exact:
                    entry[0].forget_previous()
                entry[1] = None
                result = run_matting(
                    entry[0],
                    img_s,
                    tri_s,
                    prepared=prepared,
                    progress=progress,
                    cancel=token,
                    request_id=job_id,
                    scale=scale,
                )
                entry[1] = iv
                token.raise_if_cancelled()
                conn.send(("result", job_id, result, tv))
        except Cancelled:
            conn.send(("cancelled", job_id))
        except BaseException as exc:
            conn.send(("failed", job_id, error_message(exc)))
        finally:
            conn.send(("done", job_id))


class EngineProcess:
    """Parent side. Not thread-safe: use it from one thread (the runner's worker)."""

    def __init__(self, grace_seconds: float = 3.0):
        self.grace_seconds = grace_seconds
        self._proc: Any = None
        self._conn: Any = None
        self._cancel: Any = None
        self._image_ref = None  # the image array last sent (compared by identity)
        self._image_key = 0

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
        self._proc = ctx.Process(
            target=_serve, args=(child, self._cancel), daemon=True, name="mattestudio-engine"
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

    def stop(self, kill: bool = False) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        self._image_ref = None
        if conn is not None:
            try:
                if not kill:
                    conn.send(("stop",))
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
            except (AssertionError, ValueError, OSError):  # never started, or already closed
                pass
        if conn is not None:
            conn.close()

    def run(
        self,
        job,
        cancel: CancelToken,
        on_progress: Callable[[float, str], None],
        on_result: Callable[[object, int], None],
    ) -> None:
        """Run ``job`` (a MattingJob) to completion. Raises Cancelled or MattestudioError."""
        self.start()
        self._cancel.clear()
        # The image travels only when it is a different array from the last one sent (Documents
        # replace their image, never edit it in place); the child keys its prepared engines by it.
        base = job.image.base if job.image.base is not None else job.image
        image = None
        if base is not self._image_ref:
            self._image_key += 1
            image = job.image
        try:
            self._conn.send(
                (
                    "job",
                    job.job_id,
                    job.engine,
                    job.params,
                    self._image_key,
                    image,
                    job.trimap,
                    job.trimap_version,
                    job.scales,
                    job.exact,
                )
            )
        except (OSError, ValueError) as exc:
            self.stop(kill=True)
            raise MattestudioError(f"could not start the engine: {exc}") from None
        self._image_ref = base
        cancel_at: float | None = None
        failure: str | None = None
        cancelled = False
        while True:
            if cancel.cancelled and cancel_at is None:
                self._cancel.set()
                cancel_at = time.monotonic()
            if cancel_at is not None and time.monotonic() - cancel_at > self.grace_seconds:
                self.stop(
                    kill=True
                )  # the engine ignores the cancel: end it, a new process starts next time
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
            kind = msg[0]
            if kind == "progress":
                if cancel_at is None:
                    on_progress(msg[2], msg[3])
            elif kind == "result":
                if cancel_at is None:
                    on_result(msg[2], msg[3])
            elif kind == "failed":
                failure = msg[2]
            elif kind == "cancelled":
                cancelled = True
            elif kind == "done":
                break
        if cancelled or cancel_at is not None:
            raise Cancelled()
        if failure is not None:
            raise MattestudioError(failure)
