"""Live mode: bounded work per stroke, refined afterwards in tiles, newest stroke first.

A stroke first gets one bounded solve (``first change``): the box around the changed pixels, with
every pixel outside it held at the current alpha (a fixed, Dirichlet boundary). When that box holds
more unknown pixels than the first-change budget, the box is solved at a reduced resolution instead
and upsampled (a proxy), so the cost of the first change never depends on the stroke's size.

What the first solve could not settle is refined afterwards in tiles of a fixed grid (``tiling``),
each solved exactly with its surroundings fixed, a few at a time per ``refine`` call. A tile
whose solve still moves alpha by more than the tolerance near one of its sides queues the
neighbour on that side: the refinement spreads as far as the stroke's change reaches, and no
further. Waves are refined newest stroke first. Every result lists the tiles still queued as
``approximate_regions``; when none are left the result is settled (within ``tolerance`` of a
whole-image solve where the change could spread freely; a tile is visited a bounded number of
times, so a change that is still spreading after that stays marked as approximate).

No call ever factorizes more than the first-change budget or one batch of tiles.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from mattestudio.engines.base import clipped32
from mattestudio.engines.fastcf.regional import Box, grow, paste, ring_change, solve_box
from mattestudio.engines.fastcf.tiling import TileGrid, solve_tiles
from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN

MAX_VISITS = 6  # refinements of one tile per stroke


@dataclass(frozen=True)
class Region:
    """A part of the alpha that is still approximate."""

    box: Box  # y0, y1, x0, x1 (half-open), full-resolution pixels
    stroke: int  # the stroke (or 0: the first solve) whose refinement will reach it
    #: "coarse": solved at a reduced resolution; "spreading": the change has not died out here
    #: yet; both are refined by further refine() calls. "unsettled": still changing after the
    #: bounded number of refinements per stroke; only a full solve (Run) settles it.
    reason: str


@dataclass(frozen=True)
class LiveResult:
    """One Live update. ``alpha`` is the whole current matte (float32 H x W); only ``changed``
    (a box, or None) differs from the previous result, so a caller may send just that part."""

    alpha: np.ndarray
    changed: Box | None
    approximate_regions: tuple[Region, ...]
    stroke: int
    mode: str  # "unchanged", "stroke", "proxy", "start", "refined"
    solved_unknowns: int  # variables factorized by this call (what bounds its cost)
    seconds: float = 0.0

    @property
    def exact(self) -> bool:
        return not self.approximate_regions


@dataclass
class Wave:
    stroke: int
    reason: str
    max_visits: int
    queue: list[tuple[int, int]] = field(default_factory=list)
    visits: dict[tuple[int, int], int] = field(default_factory=dict)
    #: Tiles whose change was still spreading after ``max_visits``: left approximate (a Run
    #: settles them), so the work per stroke stays bounded.
    unsettled: set[tuple[int, int]] = field(default_factory=set)
    #: Variables this wave may still factorize: what bounds a stroke's total refinement.
    budget: int = 1 << 62

    def push(self, key: tuple[int, int]) -> None:
        if key in self.queue:
            return
        if self.visits.get(key, 0) < self.max_visits:
            self.queue.append(key)
        else:
            self.unsettled.add(key)


@dataclass
class LiveState:
    trimap: np.ndarray  # uint8, the trimap the working alpha belongs to
    alpha: np.ndarray  # float64 working alpha (known pixels exactly 0 / 1)
    unknown: np.ndarray  # bool
    grid: TileGrid
    waves: list[Wave] = field(default_factory=list)  # oldest first
    strokes: int = 0
    #: float32 copy of ``alpha`` kept up to date box by box, so a result costs one memcpy
    #: instead of a whole-image clip and conversion.
    alpha32: np.ndarray | None = None

    def regions(self) -> tuple[Region, ...]:
        out: list[Region] = []
        for wave in reversed(self.waves):
            out.extend(Region(self.grid.box(*k), wave.stroke, wave.reason) for k in wave.queue)
            out.extend(
                Region(self.grid.box(*k), wave.stroke, "unsettled")
                for k in sorted(wave.unsettled - set(wave.queue))
            )
        return tuple(out)

    def result(self, changed, mode, solved, start) -> LiveResult:
        if self.alpha32 is None:
            self.alpha32 = clipped32(self.alpha)
        elif changed is not None:
            y0, y1, x0, x1 = changed
            self.alpha32[y0:y1, x0:x1] = np.clip(self.alpha[y0:y1, x0:x1], 0, 1)
        return LiveResult(
            self.alpha32.copy(),
            changed,
            self.regions(),
            self.strokes,
            mode,
            int(solved),
            time.perf_counter() - start,
        )


def union(a: Box | None, b: Box | None) -> Box | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


def tiles_touching(grid: TileGrid, box: Box) -> list[tuple[int, int]]:
    y0, y1, x0, x1 = box
    out = []
    for i, ry in enumerate(grid.rows):
        if ry >= y1 or ry + grid.side <= y0:
            continue
        for j, cx in enumerate(grid.cols):
            if cx < x1 and cx + grid.side > x0:
                out.append((i, j))
    return out


def _edge_tiles(grid: TileGrid, box: Box, shape, margin: int) -> list[tuple[int, int]]:
    """Tiles that reach within ``margin`` of the box's sides that are not image borders: where a
    change that did not die out inside the box continues."""
    h, w = shape
    y0, y1, x0, x1 = box
    inner = (
        y0 + margin if y0 > 0 else 0,
        y1 - margin if y1 < h else h,
        x0 + margin if x0 > 0 else 0,
        x1 - margin if x1 < w else w,
    )
    out = []
    for k in tiles_touching(grid, grow(box, margin, shape)):
        b = grid.box(*k)
        inside = b[0] >= inner[0] and b[1] <= inner[1] and b[2] >= inner[2] and b[3] <= inner[3]
        if not inside:
            out.append(k)
    return out


def apply_trimap(state: LiveState, trimap: np.ndarray) -> Box | None:
    """Take the new trimap into the state; returns the changed pixels' box (None: no change)."""
    diff = state.trimap != trimap
    rows = np.flatnonzero(diff.any(axis=1))
    if not len(rows):
        return None
    cols = np.flatnonzero(diff.any(axis=0))
    box = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
    y0, y1, x0, x1 = box
    t = trimap[y0:y1, x0:x1]
    state.trimap[y0:y1, x0:x1] = t
    state.unknown[y0:y1, x0:x1] = t == UNKNOWN
    a = state.alpha[y0:y1, x0:x1]
    a[t == FOREGROUND] = 1.0
    a[t == BACKGROUND] = 0.0  # new unknown pixels keep their previous value as the start
    return box


def proxy_solve(stats, image, state: LiveState, box: Box, max_unknowns: int) -> int:
    """Solve ``box`` at a reduced resolution (at most ``max_unknowns`` variables) with its
    surroundings fixed, and upsample into the box's unknown pixels. Returns the variables solved."""
    from mattestudio.engines.fastcf.laplacian import WindowStats

    y0, y1, x0, x1 = box
    n = int(state.unknown[y0:y1, x0:x1].sum())
    scale = min(1.0, (max_unknowns / max(n, 1)) ** 0.5)
    for _ in range(6):  # mixed pixels of the downscaled box are unknown too: shrink until it fits
        c, sh, sw, img, known, variables = _downscaled_box(image, state, box, scale, stats.radius)
        count = int(variables.sum())
        if count <= max_unknowns:
            break
        scale *= 0.95 * (max_unknowns / count) ** 0.5
    else:
        return 0
    if not variables.any():
        return 0
    values = solve_box(
        WindowStats.lazy(stats.radius, stats.epsilon),
        np.ascontiguousarray(img, np.float64),
        variables,
        np.ascontiguousarray(known, np.float64),
        (0, sh, 0, sw),
    )
    if values is None:
        return 0
    small = np.where(np.isnan(values), known, values)
    up = _guided_upsample(small, img, image[c[0] : c[1], c[2] : c[3]])
    a = state.alpha[y0:y1, x0:x1]
    u = state.unknown[y0:y1, x0:x1]
    a[u] = np.clip(up[y0 - c[0] : y1 - c[0], x0 - c[2] : x1 - c[2]][u], 0.0, 1.0)
    return int(variables.sum())


def _downscaled_box(image, state: LiveState, box: Box, scale: float, r: int):
    import cv2

    y0, y1, x0, x1 = box
    # One ring of fixed pixels around the box (at the small scale) carries the boundary values.
    pad = int(np.ceil(2 * r / scale)) + 1
    c = grow(box, pad, state.unknown.shape)
    ch, cw = c[1] - c[0], c[3] - c[2]
    sh, sw = max(int(round(ch * scale)), 4), max(int(round(cw * scale)), 4)
    img = cv2.resize(image[c[0] : c[1], c[2] : c[3]], (sw, sh), interpolation=cv2.INTER_AREA)
    known = cv2.resize(
        state.alpha[c[0] : c[1], c[2] : c[3]], (sw, sh), interpolation=cv2.INTER_AREA
    )
    unk = cv2.resize(
        state.unknown[c[0] : c[1], c[2] : c[3]].astype(np.float32),
        (sw, sh),
        interpolation=cv2.INTER_AREA,
    )
    variables = unk > 0
    # Only the box's own pixels are variables; the ring stays at the current alpha.
    sy, sx = sh / ch, sw / cw
    ry0 = int(np.ceil((y0 - c[0]) * sy)) + r
    ry1 = int((y1 - c[0]) * sy) - r
    rx0 = int(np.ceil((x0 - c[2]) * sx)) + r
    rx1 = int((x1 - c[2]) * sx) - r
    inner = np.zeros_like(variables)
    inner[max(ry0, 0) : max(ry1, 0), max(rx0, 0) : max(rx1, 0)] = True
    return c, sh, sw, img, known, variables & inner


def _guided_upsample(small: np.ndarray, guide_small: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """Edge-aware upsampling (a guided filter's linear model fitted at the small scale on the
    luminance, applied at full scale): strands sharper than a plain bilinear resize."""
    import cv2

    h, w = guide.shape[:2]
    g_s = np.asarray(guide_small, np.float64).mean(axis=2)
    p = np.asarray(small, np.float64)
    k = (5, 5)
    mean_g = cv2.boxFilter(g_s, -1, k)
    mean_p = cv2.boxFilter(p, -1, k)
    var_g = cv2.boxFilter(g_s * g_s, -1, k) - mean_g * mean_g
    cov = cv2.boxFilter(g_s * p, -1, k) - mean_g * mean_p
    a = cov / (var_g + 1e-4)
    b = mean_p - a * mean_g
    a = cv2.resize(cv2.boxFilter(a, -1, k), (w, h), interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(cv2.boxFilter(b, -1, k), (w, h), interpolation=cv2.INTER_LINEAR)
    return a * np.asarray(guide, np.float64).mean(axis=2) + b


def first_solve(
    stats,
    image,
    state: LiveState,
    seed: Box,
    *,
    first_unknowns: int,
    tol: float,
    margin: int,
    stroke_unknowns: int = 1 << 62,
):
    """The bounded first change for a stroke whose changed pixels span ``seed``: returns (changed
    box, mode, variables solved) and queues the stroke's refinement wave."""
    shape = state.unknown.shape
    state.strokes += 1
    wave = Wave(state.strokes, "spreading", max_visits=MAX_VISITS, budget=stroke_unknowns)
    box = grow(seed, margin, shape)
    n = int(state.unknown[box[0] : box[1], box[2] : box[3]].sum())
    if n == 0:
        return box, "stroke", 0
    if n <= first_unknowns:
        values = solve_box(stats, image, state.unknown, state.alpha, box)
        if values is None:
            return box, "stroke", 0
        change = ring_change(values, state.alpha, box, shape, depth=max(4, margin // 4))
        paste(state.alpha, values, box)
        if change > tol:
            for k in _edge_tiles(state.grid, box, shape, margin):
                wave.push(k)
        mode, solved = "stroke", n
    else:
        solved = proxy_solve(stats, image, state, box, first_unknowns)
        wave.reason = "coarse"
        for k in tiles_touching(state.grid, box):
            wave.push(k)
        mode = "proxy"
    if wave.queue:
        state.waves.append(wave)
    return box, mode, solved


def _independent(keys: list[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """Up to ``limit`` of ``keys`` (in order) no two of which are neighbours: they can be solved at
    once and each sees the others' unchanged pixels."""
    out: list[tuple[int, int]] = []
    for k in keys:
        if all(abs(k[0] - o[0]) > 1 or abs(k[1] - o[1]) > 1 for o in out):
            out.append(k)
            if len(out) == limit:
                break
    return out


def refine_step(stats, image, state: LiveState, *, workers: int, tol: float, cancel=None):
    """Solve one batch of tiles of the newest wave; returns (changed box, variables solved) or None
    when nothing is queued."""
    busy = [w for w in state.waves if w.queue]
    # Waves with nothing left to refine go, except for the record of their unsettled tiles.
    state.waves = [w for w in state.waves if w.queue or w.unsettled]
    if not busy:
        return None
    wave = busy[-1]
    if wave.budget <= 0:  # the stroke's refinement budget is spent: the rest stays approximate
        wave.unsettled.update(wave.queue)
        wave.queue.clear()
        return None, 0
    batch = _independent(wave.queue, workers)
    grid = state.grid
    boxes = {k: grid.box(*k) for k in batch}
    before = {k: state.alpha[b[0] : b[1], b[2] : b[3]].copy() for k, b in boxes.items()}
    solved = sum(int(state.unknown[b[0] : b[1], b[2] : b[3]].sum()) for b in boxes.values())
    wave.budget -= solved
    solve_tiles(
        stats, image, state.unknown, state.alpha, grid, workers=workers, keys=batch, cancel=cancel
    )
    changed = None
    shape = state.unknown.shape
    step = grid.rows[1] - grid.rows[0] if len(grid.rows) > 1 else grid.side // 2
    depth = max(4, grid.side - step)  # the band a neighbour shares with this tile
    for k in batch:
        wave.queue.remove(k)
        wave.visits[k] = wave.visits.get(k, 0) + 1
        b = boxes[k]
        diff = np.abs(state.alpha[b[0] : b[1], b[2] : b[3]] - before[k])
        if diff.max() > 0:
            changed = union(changed, b)
        i, j = k
        sides = (
            (b[0] > 0, diff[:depth], (i - 1, j)),
            (b[1] < shape[0], diff[-depth:], (i + 1, j)),
            (b[2] > 0, diff[:, :depth], (i, j - 1)),
            (b[3] < shape[1], diff[:, -depth:], (i, j + 1)),
        )
        for cut, band, nb in sides:
            if (
                cut
                and band.size
                and band.max() > tol
                and 0 <= nb[0] < len(grid.rows)
                and 0 <= nb[1] < len(grid.cols)
            ):
                wave.push(nb)
    return changed, solved


def refine(
    stats, image, state: LiveState, *, workers: int, tol: float, seconds: float, cancel=None
):
    """Batches of refinement until about ``seconds`` have passed or nothing is queued."""
    start = time.perf_counter()
    changed, solved, any_work = None, 0, False
    while True:
        step = refine_step(stats, image, state, workers=workers, tol=tol, cancel=cancel)
        if step is None:
            break
        any_work = True
        changed = union(changed, step[0])
        solved += step[1]
        if time.perf_counter() - start >= seconds:
            break
    if not any_work:
        return None
    return state.result(changed, "refined", solved, start)
