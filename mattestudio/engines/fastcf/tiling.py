"""Overlapping tiles solved in parallel, with the result of a sequential sweep (a coarse-to-fine
Run's full-resolution pass, Live's refinements).

One multiplicative Schwarz sweep visits tiles in raster order, each solved exactly with everything
around it held fixed. Tiles on a regular grid with ``step > overlap + 2r`` interact only with their
eight neighbours, so tile (i, j) needs exactly (i-1, j-1), (i-1, j), (i-1, j+1) and (i, j-1)
finished before it starts; any two tiles that touch each other's pixels are then ordered as in the
sequential sweep. Running that dependency graph on a thread pool gives the same alpha, bit for bit,
as the sequential sweep, with up to one tile per core at once (a wavefront).

Threads are enough: the work is numba (``nogil``) and LAPACK/BLAS called through scipy (which
releases the GIL), and every worker holds its BLAS to one thread (``blas_threads``).
"""

from __future__ import annotations

import heapq
import os
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from mattestudio.engines.fastcf.regional import Box, clip_box, paste, solve_box


@dataclass(frozen=True)
class TileGrid:
    rows: tuple[int, ...]  # first row of each tile row
    cols: tuple[int, ...]
    side: int
    shape: tuple[int, int]
    origin: tuple[int, int] = (0, 0)  # top-left of the covered area
    extent: tuple[int, int] | None = None  # bottom-right (exclusive), default the image's

    def box(self, i: int, j: int) -> Box:
        y1, x1 = self.extent or self.shape
        b = (self.rows[i], self.rows[i] + self.side, self.cols[j], self.cols[j] + self.side)
        return clip_box((b[0], min(b[1], y1), b[2], min(b[3], x1)), self.shape)

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def cells(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(len(self.rows)) for j in range(len(self.cols))]


def _starts(lo: int, hi: int, step: int, overlap: int) -> tuple[int, ...]:
    return tuple(range(lo, max(hi - overlap, lo + 1), step))


def grid(shape, side: int, overlap: int, radius: int = 1, area: Box | None = None) -> TileGrid:
    """Tiles of ``side`` px overlapping by ``overlap`` covering ``area`` (default: the image)."""
    h, w = shape[:2]
    y0, y1, x0, x1 = area if area is not None else (0, h, 0, w)
    side = max(int(side), 8 * radius + 8)
    overlap = int(min(max(overlap, 0), side // 2 - 2 * radius - 1))
    step = side - overlap
    return TileGrid(
        _starts(y0, y1, step, overlap),
        _starts(x0, x1, step, overlap),
        side,
        (h, w),
        (y0, x0),
        (y1, x1),
    )


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def solve_tiles(
    stats,
    image: np.ndarray,
    unknown: np.ndarray,
    fixed: np.ndarray,
    tiles: TileGrid,
    *,
    workers: int | None = None,
    keys: list[tuple[int, int]] | None = None,
    cancel: Callable[[], None] | None = None,
    done: Callable[[int, int, Box, np.ndarray | None], None] | None = None,
) -> None:
    """Solve the tiles ``keys`` (default all) of ``tiles`` in place into ``fixed``.

    ``cancel()`` is called in the workers between elimination steps and may raise (the pool then
    drains and the exception propagates; tiles already pasted stay pasted). ``done(k, n, box,
    values)`` runs on the calling thread after each tile, in completion order (progress reports).
    """
    todo = set(tiles.cells() if keys is None else keys)
    n = len(todo)
    workers = max(1, min(workers or default_workers(), n or 1))

    def deps(i: int, j: int) -> list[tuple[int, int]]:
        return [d for d in ((i - 1, j - 1), (i - 1, j), (i - 1, j + 1), (i, j - 1)) if d in todo]

    def later(i: int, j: int) -> list[tuple[int, int]]:
        return [d for d in ((i, j + 1), (i + 1, j - 1), (i + 1, j), (i + 1, j + 1)) if d in todo]

    waiting = {k: len(deps(*k)) for k in todo}
    ready = [k for k, c in waiting.items() if c == 0]
    heapq.heapify(ready)
    check = (lambda _f: cancel()) if cancel is not None else None
    stop = threading.Event()

    def work(key):
        if stop.is_set():
            return key, None
        box = tiles.box(*key)
        values = solve_box(stats, image, unknown, fixed, box, check)
        paste(fixed, values, box)
        return key, values

    if workers == 1:
        for k, key in enumerate(sorted(todo)):
            key, values = work(key)
            if done is not None:
                done(k + 1, n, tiles.box(*key), values)
        return
    finished = 0
    error: BaseException | None = None
    with ThreadPoolExecutor(workers, thread_name_prefix="fastcf-tile") as pool:
        running: set = set()
        while ready or running:
            while ready and len(running) < workers and error is None:
                running.add(pool.submit(work, heapq.heappop(ready)))
            if not running:
                break
            complete, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in complete:
                try:
                    key, values = fut.result()
                except BaseException as exc:  # cancelled or failed: let the others finish
                    if error is None:
                        error = exc
                    stop.set()
                    continue
                finished += 1
                if done is not None and error is None:
                    done(finished, n, tiles.box(*key), values)
                for nxt in later(*key):
                    waiting[nxt] -= 1
                    if waiting[nxt] == 0:
                        heapq.heappush(ready, nxt)
    if error is not None:
        raise error
