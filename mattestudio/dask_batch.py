"""Batch matting on a Dask cluster: the plain batch's steps, one Dask task per image.

The client plans the run exactly like :func:`mattestudio.batching.run` (same inputs, same skipped
and finished images, same output names) and submits every image as paths; a worker mattes it with
:func:`mattestudio.batching.process_one` (claim, matte, atomic writes, a typed outcome), so the
outputs are the plain run's, byte for byte. Each worker thread keeps its engines
(:class:`mattestudio.batching.Engines`, one per engine and parameters) from one task to the next:
a deep model is loaded once per worker and reused for every image it gets.

Dask does the scheduling: a worker that dies (crash, out of memory, machine lost) has its images
rescheduled on the others; an image that kills ``distributed.scheduler.allowed-failures`` + 1
workers in a row (default 4) is reported as failed by name and the rest go on.

This module imports ``distributed``; nothing in ``import mattestudio`` imports it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mattestudio import batching
from mattestudio.errors import MattestudioError, naming_file

#: Test hook: ``NAME:MARKER`` makes the worker process exit (as if killed) when it starts on the
#: image NAME while the file MARKER does not exist yet; it creates MARKER first, so once only.
CRASH_ENV = "MATTESTUDIO_TEST_WORKER_EXIT"


@dataclass(frozen=True)
class RemoteOutcome:
    """What a worker sends back for one image."""

    outcome: batching.ImageOutcome
    worker: str  # host:pid of the worker process that matted it
    engine_created: bool = False  # this image paid for creating the worker's engine
    engine_error: str = ""  # the engine cannot be created on the worker: stops the run


@dataclass
class ClusterSummary(batching.Summary):
    """The plain Summary, plus where the work went."""

    engines_created: int = 0
    images_per_worker: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Worker side

_LOCAL = threading.local()  # this worker thread's engines, kept from one task to the next


def gpu_for_worker(index: int | None, gpus: int) -> str | None:
    """The GPU of the worker numbered ``index`` when a machine has several: worker i -> cuda:i%n."""
    if index is None or gpus < 2:
        return None
    return f"cuda:{index % gpus}"


def _worker_index() -> int | None:
    try:
        from distributed import get_worker

        return int(get_worker().name)  # LocalCluster names its workers 0..N-1
    except (ValueError, TypeError):  # `dask worker --name gpu-a`: no number
        return None


def _visible_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def _worker_params(options: batching.BatchOptions) -> dict[str, Any]:
    """The engine parameters, with a GPU of its own for each worker of a multi-GPU machine when
    the device is left to the engine (workers started with CUDA_VISIBLE_DEVICES see one GPU)."""
    from mattestudio.engines import registry

    params = dict(options.params)
    entry = registry.ENTRIES.get(options.engine)
    if entry is not None and "torch" in entry.requires and params.get("device", "auto") == "auto":
        device = gpu_for_worker(_worker_index(), _visible_gpus())
        if device is not None:
            params["device"] = device
    return params


def _engines() -> batching.Engines:
    engines = getattr(_LOCAL, "engines", None)
    if engines is None:
        engines = _LOCAL.engines = batching.Engines(_create_on_worker)
    return engines


def _create_on_worker(options: batching.BatchOptions):
    from mattestudio.engines import registry

    return registry.create(options.engine, **_worker_params(options))


def _maybe_exit_for_test(job: batching.ImageJob) -> None:
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    name, marker = spec.split(":", 1)
    if job.name == name:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        os._exit(3)


def matte_on_worker(job: batching.ImageJob, options: batching.BatchOptions) -> RemoteOutcome:
    """The Dask task for one image. Never raises for a bad image; a failure is an outcome."""
    _maybe_exit_for_test(job)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    engines = _engines()
    try:
        opts = batching.job_options(job, options)  # a project's own engine and parameters
        before = engines.created
        engine = engines.get(opts)
    except Exception as exc:
        message = str(exc) if isinstance(exc, MattestudioError) else f"{type(exc).__name__}: {exc}"
        if batching.is_project(job.image):  # this project's engine: this project fails
            message = str(naming_file(exc, job.image, options.engine))
            failed = batching.ImageOutcome(job.image, "failed", message)
            return RemoteOutcome(failed, worker)
        message = f"on worker {worker}: {message}"
        failed = batching.ImageOutcome(job.image, "failed", message)
        return RemoteOutcome(failed, worker, engine_error=message)
    outcome = batching.process_one(job, engine, opts)
    created = engines.created > before
    return RemoteOutcome(outcome, worker, engine_created=created)


# ---------------------------------------------------------------------------------------------
# Client side


def _lost_worker_message(job: batching.ImageJob, exc: BaseException) -> str:
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        return (
            f"{job.image}: every worker that matted this image died (out of memory?); "
            "the other images went on"
        )
    return f"{job.image}: the Dask task failed: {type(exc).__name__}: {exc}"


def run_plan(
    plan: batching.Plan,
    options: batching.BatchOptions,
    client,
    on_outcome: Callable[[batching.ImageOutcome], None] | None = None,
    timeout: float | None = None,
) -> ClusterSummary:
    """Matte ``plan.todo`` on the cluster of ``client``; finished images count as skipped.

    ``on_outcome`` is called on the client for each image as it completes (in completion order).
    On Ctrl-C (KeyboardInterrupt) or ``timeout`` seconds the remaining tasks are cancelled and
    the exception passes through; images being matted at that moment finish on their workers
    (or die with a local cluster that is closed) and only complete files are ever written.
    """
    from distributed import as_completed

    summary = ClusterSummary(ignored=len(plan.ignored))

    def record(outcome: batching.ImageOutcome) -> None:
        summary.add(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    for job in plan.finished:
        record(batching.ImageOutcome(job.image, "skipped"))
    if not plan.todo:
        return summary
    run_id = uuid.uuid4().hex[:8]
    futures = {
        # retries: a task that raised (a bad image never does: it is an outcome), e.g. on a
        # hiccup of the shared storage, runs again; a lost worker's tasks are rescheduled anyway.
        client.submit(
            matte_on_worker,
            job,
            options,
            key=f"mattestudio-{job.name}-{run_id}",
            pure=False,
            retries=2,
        ): job
        for job in plan.todo
    }
    try:
        for future in as_completed(list(futures), timeout=timeout):
            job = futures[future]
            try:
                remote: RemoteOutcome = future.result()
            except Exception as exc:  # the task could not run: lost workers, a broken cluster
                record(batching.ImageOutcome(job.image, "failed", _lost_worker_message(job, exc)))
                continue
            if remote.engine_error:
                raise MattestudioError(
                    f"engine {options.engine} cannot be created {remote.engine_error}"
                )
            summary.engines_created += remote.engine_created
            summary.images_per_worker[remote.worker] = (
                summary.images_per_worker.get(remote.worker, 0) + 1
            )
            record(remote.outcome)
    except BaseException:
        client.cancel(list(futures))
        raise
    return summary


def check_engine(options: batching.BatchOptions) -> None:
    """Refuse an unknown or unavailable engine, or a bad parameter, on the client before any task
    is submitted, with the plain batch's message (creating an engine loads no model: deep engines
    load theirs on the first image)."""
    batching.Engines().get(options)


def run(
    images_dir: str | Path,
    trimaps_dir: str | Path,
    out_dir: str | Path,
    options: batching.BatchOptions,
    client,
    on_outcome: Callable[[batching.ImageOutcome], None] | None = None,
    timeout: float | None = None,
) -> ClusterSummary:
    """:func:`mattestudio.batching.run` on a Dask cluster. Paths are made absolute, since the
    workers (on other machines, in other folders) see the same files under the same names."""
    images_dir, trimaps_dir, out_dir = (
        Path(p).resolve() for p in (images_dir, trimaps_dir, out_dir)
    )
    plan = batching.plan(images_dir, trimaps_dir, out_dir, options)
    batching.check_output_folder(plan.out_dir)
    check_engine(options)
    try:
        return run_plan(plan, options, client, on_outcome, timeout)
    finally:
        batching.sweep_claims(plan)  # claims left by killed workers (a held claim is kept)


# ---------------------------------------------------------------------------------------------
# Clusters


@contextlib.contextmanager
def local_client(workers: int) -> Iterator[Any]:
    """A Client on a LocalCluster of ``workers`` processes, one thread each (a matting engine
    uses the cores itself; threads would share one engine's memory and fight over cores)."""
    import logging

    from distributed import Client, LocalCluster

    if workers < 1:
        raise MattestudioError(f"--workers {workers}: expected 1 or more")
    # Dask logs worker restarts and shutdown chatter on stderr; the batch reports per image.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # a free port: several batches may run at once
        preload=["mattestudio.dask_local_worker"],  # Ctrl-C is the batch's to handle
    )
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


@contextlib.contextmanager
def remote_client(address: str, wait: float = 60.0) -> Iterator[Any]:
    """A Client on the scheduler at ``address``, once at least one worker has joined."""
    from distributed import Client

    try:
        client = Client(address, timeout=f"{wait}s")
    except (OSError, TimeoutError) as exc:
        raise MattestudioError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    try:
        try:
            client.wait_for_workers(1, timeout=wait)
        except TimeoutError as exc:
            raise MattestudioError(
                f"no Dask worker joined the scheduler at {address} within {wait:.0f} s"
            ) from exc
        yield client
    finally:
        client.close()
