"""Batch matting, one image at a time, reusable by the CLI, the Python API and distributed workers.

The steps are separate so that a scheduler (e.g. a Dask worker per image) can call them itself:

- :func:`plan` finds the images of a folder, pairs each with its trimap, leaves out files that are
  trimaps or outputs of an earlier run (what ``mattestudio sample`` writes) and images whose
  outputs exist;
- :func:`check_output_folder` proves the output folder writable before anything is solved;
- :func:`process_one` claims one image (a lock file per image, so concurrent batches on one output
  folder never redo each other's work), mattes it, writes its outputs atomically and returns an
  :class:`ImageOutcome` instead of raising, so one bad image never stops the rest;
- :func:`process_job` is :func:`process_one` with the engine each job needs, from an
  :class:`Engines` cache: an editor project (``.mattestudio``) renders with its saved engine;
- :class:`Summary` counts the outcomes and gives the closing line and exit status.

Only KeyboardInterrupt escapes :func:`process_one` (including the SystemError that numba-compiled
code turns a Ctrl-C into), so an interrupted run stops at once and leaves only complete files.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mattestudio.engines.registry import DEFAULT_ENGINE
from mattestudio.errors import MattestudioError, OutputError, is_interrupt, naming_file

if TYPE_CHECKING:
    from mattestudio.core.edges import EdgeAdjustments

#: Names that mark a file as a trimap or an output, not an input photo: ``sample_trimap.png``,
#: ``sample_alpha.png``, ``photo_cutout.png``... (a stem ending in one of these after ``_``).
DERIVED_SUFFIXES = ("trimap", "alpha", "cutout", "composite")
CLAIM_SUFFIX = ".claim"

Status = Literal["done", "skipped", "busy", "failed"]


@dataclass(frozen=True)
class BatchOptions:
    """What to run and what to write for every image."""

    engine: str = DEFAULT_ENGINE
    params: dict[str, Any] = field(default_factory=dict)
    cutout: bool = False
    alpha_bits: int = 8
    overwrite: bool = False
    edges: EdgeAdjustments | None = None  # applied after the engine (None: the engine's alpha)


@dataclass(frozen=True)
class ImageJob:
    """One image to matte: where it comes from and where its outputs go. Picklable."""

    name: str  # the file name stem, shared by the image, its trimap and its outputs
    image: Path
    trimap: Path | None  # None: no trimap of that name (reported as a failure)
    outputs: tuple[Path, ...]  # alpha first, then the cut-out when asked for

    @property
    def finished(self) -> bool:
        return all(p.is_file() for p in self.outputs)


@dataclass(frozen=True)
class ImageOutcome:
    """What happened to one image. ``message`` names the file for a failure."""

    image: Path
    status: Status
    message: str = ""
    outputs: tuple[Path, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class Plan:
    todo: tuple[ImageJob, ...]
    finished: tuple[ImageJob, ...]  # outputs already there (skipped unless overwrite)
    ignored: tuple[Path, ...]  # trimaps and outputs of earlier runs found among the images
    out_dir: Path


@dataclass
class Summary:
    outcomes: list[ImageOutcome] = field(default_factory=list)
    ignored: int = 0

    def add(self, outcome: ImageOutcome) -> None:
        self.outcomes.append(outcome)

    def count(self, status: Status) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failures(self) -> list[ImageOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def line(self) -> str:
        text = (
            f"{self.count('done')} done, {self.count('skipped')} skipped (already done), "
            f"{self.count('failed')} failed"
        )
        if self.count("busy"):
            text += f", {self.count('busy')} being matted by another batch"
        if self.ignored:
            text += f", {self.ignored} trimap or output files not matted"
        return text


# ---------------------------------------------------------------------------------------------
# Planning


def is_derived(path: Path) -> bool:
    """True for a file whose name says it is a trimap or an output (``x_trimap.png``, ``x_alpha.png``)."""
    stem = path.stem.lower()
    return any(stem.endswith("_" + s) or stem.endswith("-" + s) for s in DERIVED_SUFFIXES)


def _images_in(folder: Path) -> list[Path]:
    from mattestudio.core.io import IMAGE_SUFFIXES

    return [
        p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    ]


def is_project(path: Path) -> bool:
    from mattestudio.core.project import SUFFIX

    return path.suffix.lower() == SUFFIX


def _projects_in(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.iterdir()) if p.is_file() and is_project(p)]


def output_paths(name: str, out_dir: Path, options: BatchOptions) -> tuple[Path, ...]:
    alpha = out_dir / f"{name}_alpha.png"
    return (alpha, out_dir / f"{name}_cutout.png") if options.cutout else (alpha,)


def plan(
    images_dir: str | Path,
    trimaps_dir: str | Path,
    out_dir: str | Path,
    options: BatchOptions | None = None,
) -> Plan:
    """Pair every image of ``images_dir`` with the trimap of the same stem in ``trimaps_dir``.

    Files named like trimaps or outputs (``*_trimap``, ``*_alpha``, ``*_cutout``, ...) are not
    inputs. When the trimaps live in the image folder, ``NAME_trimap.png`` is found too.
    Raises MattestudioError when a folder is missing or holds no image.
    """
    options = options or BatchOptions()
    images_dir, trimaps_dir, out_dir = Path(images_dir), Path(trimaps_dir), Path(out_dir)
    for folder, what in ((images_dir, "image folder"), (trimaps_dir, "trimap folder")):
        if not folder.is_dir():
            raise MattestudioError(f"{what} not found", folder)
    files = _images_in(images_dir)
    projects = _projects_in(images_dir)
    stems = {p.stem for p in projects}
    inputs = [p for p in files if not is_derived(p) and p.stem not in stems] + projects
    ignored = tuple(p for p in files if is_derived(p))
    if not inputs:
        raise MattestudioError(
            "no images (png, jpg, tif, webp, bmp) or .mattestudio projects in this folder"
            + (" other than trimaps and outputs" if ignored else ""),
            images_dir,
        )
    # NAME_trimap.png pairs with NAME anywhere; a plain NAME.png only in a separate trimap folder.
    trimaps: dict[str, Path] = {}
    for p in _images_in(trimaps_dir):
        for tag in ("_trimap", "-trimap"):
            if p.stem.lower().endswith(tag):
                trimaps.setdefault(p.stem[: -len(tag)], p)
    if trimaps_dir.resolve() != images_dir.resolve():
        trimaps.update({p.stem: p for p in _images_in(trimaps_dir) if not is_derived(p)})
    todo: list[ImageJob] = []
    finished: list[ImageJob] = []
    for p in sorted(inputs, key=lambda p: p.name):
        trimap = p if is_project(p) else trimaps.get(p.stem)  # a project holds its trimap
        job = ImageJob(p.stem, p, trimap, output_paths(p.stem, out_dir, options))
        (finished if job.finished and not options.overwrite else todo).append(job)
    return Plan(tuple(todo), tuple(finished), ignored, out_dir)


def check_output_folder(out_dir: str | Path) -> Path:
    """Create ``out_dir`` and prove it writable with a real file, before anything is solved."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".mattestudio-write-test-", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(
            f"the output folder is not writable: {exc.strerror or exc}", out_dir
        ) from exc
    return out_dir


# ---------------------------------------------------------------------------------------------
# Claims: one lock file per image in the output folder


@contextlib.contextmanager
def claim(job: ImageJob, out_dir: str | Path) -> Iterator[bool]:
    """Hold the claim on ``job`` while the block runs; yields False when another batch holds it.

    POSIX: an exclusive ``flock`` on ``.NAME.claim``; the kernel drops it when its holder dies, so a
    crashed or killed batch never leaves a stale claim. Elsewhere: the file is created exclusively
    and a claim older than an hour, or whose process is gone on this host, is taken over.
    """
    path = Path(out_dir) / f".{job.name}{CLAIM_SUFFIX}"
    try:
        import fcntl
    except ImportError:  # Windows (tested by hiding fcntl)
        with _exclusive_file_claim(path) as held:
            yield held
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                fd = -1
                yield False
                return
            # The holder before us may have removed the file after we opened it: then our lock is
            # on an orphan inode, and a third batch could lock a new file. Retry on the current file.
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:  # Ctrl-C while claiming: leave no claim file of ours behind
            if fd >= 0:
                _drop_claim_file(path, fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        os.write(fd, f"{socket.gethostname()} {os.getpid()} {time.time():.0f}\n".encode())
        yield True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still locked: nobody can be holding it
        os.close(fd)


def _drop_claim_file(path: Path, fd: int) -> None:
    """Close ``fd``; remove the claim file first when nobody else holds it (we can lock it)."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino == os.stat(path).st_ino:
            os.unlink(path)
    except OSError:
        pass  # held by another batch, or already gone: theirs to remove
    finally:
        os.close(fd)


def sweep_claims(the_plan: Plan) -> None:
    """Remove claim files nobody holds (left by a killed worker, or by a Ctrl-C at the wrong
    moment); a claim another batch holds is kept."""
    for job in the_plan.todo:
        with claim(job, the_plan.out_dir):
            pass  # a claim we can take is nobody's; leaving the block removes its file


@contextlib.contextmanager
def _exclusive_file_claim(path: Path, max_age: float = 3600.0) -> Iterator[bool]:
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            if _stale(path, max_age):
                with contextlib.suppress(OSError):
                    os.unlink(path)
                continue
            yield False
            return
    else:
        yield False
        return
    try:
        os.write(fd, f"{socket.gethostname()} {os.getpid()} {time.time():.0f}\n".encode())
        os.close(fd)
        yield True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _stale(path: Path, max_age: float) -> bool:
    try:
        host, pid, _ = path.read_text().split()
        age = time.time() - path.stat().st_mtime
    except (OSError, ValueError):
        return True
    if age > max_age:
        return True
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return True
    return False


# ---------------------------------------------------------------------------------------------
# One image


def matte_file(job: ImageJob, engine, options: BatchOptions) -> tuple[Path, ...]:
    """Matte one image and write its outputs (each atomically). Raises MattestudioError.

    The trimap is read and checked against the image's header before the image is decoded, so a
    trimap that does not fit, or has nothing to solve, costs no memory for a huge image.
    """
    from mattestudio.core import io
    from mattestudio.core import trimap as trimap_ops
    from mattestudio.pipeline import run_matting

    if job.trimap is None:
        raise MattestudioError(f"no trimap named {job.name}.* (or {job.name}_trimap.*)", job.image)
    if is_project(job.image):
        from mattestudio.core import project

        state = project.load_project(job.image)
        image = state.image
        tri = trimap_ops.check(state.trimap, image.shape, job.image)
    else:
        shape = io.image_size(job.image)
        tri = trimap_ops.load(job.trimap, shape, image_source=job.image)
        image = io.load_image(job.image)
    try:
        edges = options.edges
        result = run_matting(
            engine,
            image,
            tri,
            estimate_foreground=options.cutout and (edges is None or edges.decontaminate > 0),
            edges=edges,
        )
    finally:
        engine.reset()  # free the per-image cache before the next image
    # All of an image's outputs or none: the alpha marks an image as done for a resumed batch, so
    # it is written last, and a Ctrl-C between two files removes what this image already wrote.
    written: list[Path] = []
    try:
        if options.cutout:
            written.append(io.save_rgba(job.outputs[1], result.foreground, result.alpha))
        written.insert(0, io.save_alpha(job.outputs[0], result.alpha, bits=options.alpha_bits))
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise
    return tuple(written)


def job_options(job: ImageJob, options: BatchOptions) -> BatchOptions:
    """The options one job renders with: a project uses the engine, parameters and edge
    adjustments saved in it (as ``mattestudio matte PROJECT`` does; edge flags given for the
    batch override the saved values); images, and projects that saved no engine, use
    ``options``. Raises MattestudioError naming an unreadable project."""
    if not is_project(job.image):
        return options
    from mattestudio.core import project
    from mattestudio.core.edges import EdgeAdjustments

    settings = project.load_settings(job.image)
    out = options
    saved_edges = settings.get("edges")
    if isinstance(saved_edges, dict):
        default = EdgeAdjustments().to_dict()
        given = options.edges.to_dict() if options.edges is not None else default
        flags = {k: v for k, v in given.items() if v != default[k]}
        edges = EdgeAdjustments.from_dict(saved_edges, job.image).replace(**flags)
        out = replace(out, edges=edges)
    engine = settings.get("engine")
    if not engine:
        return out
    params = settings.get("params")
    return replace(out, engine=str(engine), params=dict(params) if isinstance(params, dict) else {})


def engine_key(options: BatchOptions) -> tuple:
    return (options.engine, tuple(sorted((str(k), repr(v)) for k, v in options.params.items())))


class Engines:
    """The engines of one batch (or one worker), each created on first use and then reused: one
    per engine name and parameters. ``factory(options)`` makes one (default: the registry)."""

    def __init__(self, factory=None):
        self._factory = factory or _create_engine
        self._engines: dict[tuple, Any] = {}
        self.created = 0

    def get(self, options: BatchOptions):
        key = engine_key(options)
        if key not in self._engines:
            self._engines[key] = self._factory(options)
            self.created += 1
        return self._engines[key]


def _create_engine(options: BatchOptions):
    from mattestudio.engines import registry

    return registry.create(options.engine, **options.params)


def process_job(job: ImageJob, engines: Engines, options: BatchOptions) -> ImageOutcome:
    """:func:`process_one` with the engine this job needs (a project's own engine); a project
    whose settings or engine cannot be had is a failed outcome naming it."""
    try:
        opts = job_options(job, options)
        engine = engines.get(opts)
    except Exception as exc:
        if is_interrupt(exc):
            raise KeyboardInterrupt from None
        return ImageOutcome(job.image, "failed", str(naming_file(exc, job.image, options.engine)))
    return process_one(job, engine, opts)


def process_one(job: ImageJob, engine, options: BatchOptions) -> ImageOutcome:
    """Claim, matte and write one image; never raises for a bad image (only KeyboardInterrupt).

    ``engine`` is an engine instance (``registry.create(options.engine, **options.params)``),
    reused across images by the caller.
    """
    start = time.perf_counter()
    out_dir = job.outputs[0].parent
    with claim(job, out_dir) as held:
        if not held:
            return ImageOutcome(job.image, "busy")
        if job.finished and not options.overwrite:
            return ImageOutcome(job.image, "skipped")  # another batch finished it meanwhile
        try:
            written = matte_file(job, engine, options)
        except BaseException as exc:
            if is_interrupt(exc):
                raise KeyboardInterrupt from None
            if not isinstance(exc, Exception):
                raise
            return ImageOutcome(
                job.image,
                "failed",
                str(naming_file(exc, job.image, options.engine)),
                seconds=time.perf_counter() - start,
            )
    return ImageOutcome(job.image, "done", outputs=written, seconds=time.perf_counter() - start)


def run(
    images_dir: str | Path,
    trimaps_dir: str | Path,
    out_dir: str | Path,
    options: BatchOptions | None = None,
    on_outcome=None,
) -> Summary:
    """Plan, check the output folder, then process every image; returns the Summary.

    ``on_outcome(outcome)`` is called after each image (the CLI prints failures and advances its
    progress bar there). Raises MattestudioError for problems that stop the whole run (missing
    folder, unwritable output folder, unknown engine); KeyboardInterrupt passes through.
    """
    options = options or BatchOptions()
    the_plan = plan(images_dir, trimaps_dir, out_dir, options)
    check_output_folder(the_plan.out_dir)
    engines = Engines()
    engines.get(options)  # an unknown or unavailable engine stops the run before any image
    summary = Summary(ignored=len(the_plan.ignored))
    for job in the_plan.finished:
        summary.add(ImageOutcome(job.image, "skipped"))
        if on_outcome is not None:
            on_outcome(summary.outcomes[-1])
    try:
        for job in the_plan.todo:
            summary.add(process_job(job, engines, options))
            if on_outcome is not None:
                on_outcome(summary.outcomes[-1])
    finally:
        sweep_claims(the_plan)  # an interrupted claim leaves no file behind
    return summary
