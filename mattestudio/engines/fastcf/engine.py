"""Closed-form matting (Levin et al. 2008) built for the editor's brush.

Same matte as pymatting's ``estimate_alpha_cf`` (same Laplacian, window and epsilon), solved exactly
by a nested-dissection sparse Cholesky instead of incomplete-Cholesky CG.

Session use (see ``FastClosedFormEngine.predict``):

- ``prepare(image)`` keeps a float64 copy of the image; window statistics are computed during
  assembly, only for the windows that touch an unknown pixel.
- ``predict(trimap)`` compares the trimap with the one of the previous successful call. A local
  change is re-solved only in a box around it, grown until the solution stops changing at the box's
  edge (``tolerance``); anything else, or ``incremental=False``, is a full solve.
- Beyond ``memory_gb`` (camera-size photos) ``predict`` solves coarse to fine: an exact solve at a
  reduced size, a guided upsampling, then exact full-resolution tiles where the upsampled alpha is
  not yet a solution (``_coarse_to_fine``).
- ``predict_coarse(trimap, scale)`` is the Live-mode preview: a solve on the downscaled image,
  upsampled to full size.
- Cancel and progress are checked between elimination steps; a cancelled call changes nothing.

The solver modules (numba, scipy) are imported inside the methods that use them, so the registry
can read ``info`` (``mattestudio engines``) without loading them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mattestudio.core import trimap as trimap_ops
from mattestudio.engines.base import EngineBase, EngineInfo, Param, clipped32
from mattestudio.progress import scaled
from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN, CancelToken, ProgressFn


def _checker(
    progress: ProgressFn | None, cancel: CancelToken | None, lo: float, hi: float, label: str
):
    stage = scaled(progress, lo, hi)

    def check(frac: float) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        if stage is not None:
            stage(frac, label)

    return check


TILE_SIDE = 160  # px, Live refinement tiles: about 0.2 s each on a dense hair band
FINE_TILE = 256  # px, the full-resolution tiles of a coarse-to-fine Run
FINE_OVERLAP = 24  # px; the tiles start from the upsampled alpha, so seams need little overlap
# Regularisation of the guided upsampling's coefficients: 1e-5 to 1e-3 gave the same SAD within
# 10 % on a 1000 px crop of the 12 MP scene.
UPSAMPLE_EPSILON = 1e-4
LIVE_MARGIN = 16  # px around a stroke's changed pixels in its first solve


class FastClosedFormEngine(EngineBase):
    info = EngineInfo(
        name="closed-form",
        display_name="Closed-form (fast)",
        kind="classical",
        description="Levin et al. 2008 matting Laplacian, solved exactly by a nested-dissection sparse Cholesky; "
        "re-solves only around a brush stroke.",
        params=(
            Param(
                "epsilon",
                1e-7,
                "Regularisation of the local color model; larger gives smoother mattes.",
                "Smoothness (epsilon)",
                1e-10,
                1e-1,
            ),
            Param(
                "radius",
                1,
                "Window radius of the local color model (1 = 3x3 windows).",
                "Window radius",
                1,
                3,
            ),
            Param(
                "incremental",
                True,
                "After a local trimap change, re-solve only the region it can reach.",
                "Incremental re-solve",
            ),
            Param(
                "tolerance",
                2e-3,
                "Incremental re-solves grow until alpha moves less than this at the "
                "region's edge; the result then matches a full solve to about this much.",
                "Incremental tolerance",
                1e-6,
                0.1,
            ),
            Param(
                "memory_gb",
                2.0,
                "Memory for the direct solver's factor; larger problems are solved "
                "coarse-to-fine in overlapping tiles.",
                "Solver memory (GB)",
                0.05,
                64.0,
            ),
            Param(
                "fine_residual",
                0.003,
                "Large images are solved at a reduced size, upsampled along the image's edges, "
                "then re-solved at full resolution where the matting energy's gradient "
                "|L alpha| exceeds this; 0 re-solves every unknown pixel.",
                "Full-resolution detail threshold",
                0.0,
                1.0,
            ),
            Param(
                "workers",
                0,
                "Tiles solved at once on large images (0 = one per core).",
                "Parallel tiles",
                0,
                64,
            ),
            Param(
                "tile",
                0,
                "Side of the tiles of large solves in pixels (0 = automatic).",
                "Tile size (px)",
                0,
                4096,
            ),
        ),
        progressive=True,
    )

    def prepare(self, image: np.ndarray) -> None:
        super().prepare(image)
        from mattestudio.engines.fastcf.laplacian import WindowStats

        self._image64 = np.ascontiguousarray(image, np.float64)
        self._stats = WindowStats.lazy(self.params["radius"], self.params["epsilon"])
        self._last: tuple[np.ndarray, np.ndarray] | None = (
            None  # (trimap, alpha float64) of the last solve
        )
        self._coarse: dict[float, FastClosedFormEngine] = {}
        self._live: Any = None  # live.LiveState of predict_live / refine
        self.last_mode = ""  # "full", "incremental", "coarse-to-fine", "unchanged", "live-*"
        self.last_solve: dict[str, Any] = {}  # a coarse-to-fine solve's sizes: tests, benchmarks
        self._coarse_unknowns = 0
        self._margin_hint = 0

    def reset(self) -> None:
        super().reset()
        self._image64 = self._stats = self._last = self._live = None  # type: ignore[assignment]
        self._coarse = {}

    # -- public -------------------------------------------------------------------------------

    def forget_previous(self) -> None:
        """Make the next predict() a full solve (e.g. a "refine" after many incremental strokes)."""
        self._last = None
        self._live = None

    # -- Live mode: bounded work per call (see live.py) ----------------------------------------

    #: Variables of a stroke's first solve; a larger box is solved at a reduced resolution.
    live_first_unknowns = 30_000
    #: Variables of the reduced-resolution solve that starts a Live session without a result.
    live_start_unknowns = 100_000
    #: Variables all of one stroke's refinements may solve (about 3 s of work on one core); what
    #: the change still moves beyond that is marked "unsettled" until the next Run.
    live_stroke_unknowns = 400_000

    def _live_caps(self) -> tuple[int, int]:
        """The Live budgets, lowered where ``memory_gb`` could not hold their factors."""
        from mattestudio.engines.fastcf import regional

        half = self._budget_entries() / 2
        first, start = self.live_first_unknowns, self.live_start_unknowns
        while first > 64 and regional.factor_entries(first) > half:
            first = int(first * 0.8)
        while start > 64 and regional.factor_entries(start) > half:
            start = int(start * 0.8)
        return first, start

    def predict_live(
        self,
        trimap: np.ndarray,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ):
        """Live update after a stroke: bounded work, never a whole-image solve.

        Returns a ``live.LiveResult``: the matte now, the box that changed, and the regions still
        approximate, which further ``refine()`` calls settle (newest stroke first). The first call
        of a session without an earlier result starts from a reduced-resolution solve of the
        whole image, refined in tiles by ``refine()``; after ``predict()`` it continues from that.
        """
        import time

        from mattestudio.engines.fastcf import live

        start = time.perf_counter()
        trimap = self._check_trimap(trimap, cancel)
        first, start_n = self._live_caps()
        state = self._live
        if state is None and self._last is not None and self._last[0].shape == trimap.shape:
            tri0, alpha0 = self._last
            unknown0 = tri0 == UNKNOWN
            # The Live state takes the last solve's own arrays (nobody else holds them: predict()
            # returns a converted copy, and _last becomes the state's arrays below anyway), so
            # switching Live on after a camera-size Run copies no whole image.
            state = live.LiveState(
                tri0, alpha0, unknown0, self._tile_grid(trimap.shape, int(unknown0.sum()))
            )
        if state is None:
            unknown = trimap == UNKNOWN
            n = int(unknown.sum())
            scale = self._coarse_scale(trimap, n, start_n)
            guess, _ = self.predict_coarse(trimap, scale, progress=progress, cancel=cancel)
            grid = self._tile_grid(trimap.shape, n)
            state = live.LiveState(
                trimap.copy(), self._fixed(trimap, guess.astype(np.float64)), unknown, grid
            )
            if scale < 1.0:
                wave = live.Wave(0, "coarse", max_visits=live.MAX_VISITS)
                for k in grid.cells():
                    b = grid.box(*k)
                    if unknown[b[0] : b[1], b[2] : b[3]].any():
                        wave.push(k)
                state.waves.append(wave)
            self._live = state
            self._last = (state.trimap, state.alpha)
            self.last_mode = "live-start"
            h, w = trimap.shape
            return state.result((0, h, 0, w), "start", min(n, start_n), start)
        self._live = state
        self._last = (state.trimap, state.alpha)
        seed = live.apply_trimap(state, trimap)
        if seed is None:
            self.last_mode = "unchanged"
            return state.result(None, "unchanged", 0, start)
        box, mode, solved = live.first_solve(
            self._stats,
            self._image64,
            state,
            seed,
            first_unknowns=first,
            tol=self.params["tolerance"],
            margin=LIVE_MARGIN,
            stroke_unknowns=self.live_stroke_unknowns,
        )
        self.last_mode = "live-" + mode
        if progress is not None:
            progress(1.0, "done")
        return state.result(box, mode, solved, start)

    def refine(
        self,
        *,
        seconds: float = 0.5,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ):
        """Settle approximate regions of Live results for about ``seconds`` (at least one batch
        of tiles, one per worker). Returns the updated ``LiveResult``, or None when nothing is
        left to refine."""
        from mattestudio.engines.fastcf import live

        if self._live is None:
            return None
        out = live.refine(
            self._stats,
            self._image64,
            self._live,
            workers=self._workers(),
            tol=self.params["tolerance"],
            seconds=seconds,
            cancel=cancel.raise_if_cancelled if cancel is not None else None,
        )
        if out is not None:
            self.last_mode = "live-refined"
            if progress is not None:
                progress(1.0, "done")
        return out

    @property
    def live_pending(self) -> bool:
        """True while a Live result still has approximate regions that refine() would settle."""
        return self._live is not None and any(w.queue for w in self._live.waves)

    @staticmethod
    def _coarse_scale(
        trimap: np.ndarray, n: int, limit: int, start: float | None = None, fits=None
    ) -> float:
        """A scale at which the downscaled trimap has at most ``limit`` unknown pixels (or whose
        count passes ``fits``); mixed pixels of the downscaled trimap are unknown too, as in
        ``core.document.downscaled``."""
        import cv2

        fits = fits or (lambda c: c <= limit)
        scale = start if start is not None else min(1.0, (limit / max(n, 1)) ** 0.5)
        h, w = trimap.shape
        t = trimap.astype(np.float32)
        while scale < 1.0:
            nh, nw = max(int(round(h * scale)), 8), max(int(round(w * scale)), 8)
            s = cv2.resize(t, (nw, nh), interpolation=cv2.INTER_AREA)
            count = int(((s > 0.5) & (s < 254.5)).sum())
            if fits(count) or nh * nw <= 64:
                break
            scale *= 0.95 * (limit / count) ** 0.5 if limit else 0.9
        return scale

    @classmethod
    def budget_scale(cls, trimap: np.ndarray, n: int, need, budget: float) -> float:
        """The coarse solve's scale in a coarse-to-fine Run: ``need(unknown pixels)`` (in the
        units of ``budget``) of the downscaled trimap within 0.64 of ``budget``. Starts from the
        estimate for ``n`` unknown pixels; mixed pixels of the downscaled trimap are unknown too,
        so it shrinks until the count fits."""
        start = min(0.5, (budget / need(n)) ** 0.5 * 0.8)
        return cls._coarse_scale(trimap, n, 0, start=start, fits=lambda c: need(c) <= 0.64 * budget)

    def predict(
        self,
        trimap: np.ndarray,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ):
        trimap = self._check_trimap(trimap, cancel)
        alpha = None
        if self.params["incremental"] and self._last is not None:
            alpha = self._incremental(trimap, progress, cancel)
        if alpha is None:
            alpha = self._full(trimap, progress, cancel)
        self._last = (trimap.copy(), alpha)  # only reached when nothing was cancelled
        self._live = None  # Live continues from this result
        if progress is not None:
            progress(1.0, "done")
        return clipped32(alpha), None

    def predict_coarse(
        self,
        trimap: np.ndarray,
        scale: float = 0.5,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ):
        """Live-mode preview: solve at ``scale`` (0 < scale <= 1) and upsample to the full size.

        The coarse session is kept per scale, so repeated previews are incremental too. Does not
        change the full-resolution session's state.
        """
        import cv2

        if scale >= 1.0:
            return self.predict(trimap, progress=progress, cancel=cancel)
        h, w = trimap.shape
        _, a_s = self._coarse_solve(trimap, scale, progress=progress, cancel=cancel)
        alpha = cv2.resize(a_s, (w, h), interpolation=cv2.INTER_LINEAR)
        trimap_ops.force_known(alpha, np.asarray(trimap))
        return clipped32(alpha), None

    def _coarse_solve(
        self, trimap: np.ndarray, scale: float, *, progress=None, cancel=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(downscaled image, its alpha float32) at ``scale`` < 1; the session is kept per scale."""
        from mattestudio.core.trimap import downscaled

        image = self._require_image()
        key = round(float(scale), 4)
        sub = self._coarse.get(key)
        small, tri_s = downscaled(image, np.asarray(trimap, np.uint8), key)
        if sub is None or sub._image is None:
            sub = type(self)(**self.params)
            sub.prepare(small)
            self._coarse[key] = sub
        if (tri_s == UNKNOWN).any() and (
            (tri_s == FOREGROUND).any() or (tri_s == BACKGROUND).any()
        ):
            a_s, _ = sub.predict(tri_s, progress=progress, cancel=cancel)
        else:
            a_s = (tri_s == FOREGROUND).astype(np.float32)
        self._coarse_unknowns = int((tri_s == UNKNOWN).sum())
        return small, a_s

    # -- solves -------------------------------------------------------------------------------

    def _fixed(self, trimap: np.ndarray, guess: np.ndarray | None) -> np.ndarray:
        fixed = (trimap == FOREGROUND).astype(np.float64)
        if guess is not None:
            unknown = trimap == UNKNOWN
            fixed[unknown] = guess[unknown]
        return fixed

    def _budget_entries(self) -> float:
        return (
            self.params["memory_gb"] * 1e9 / 8 / 1.5
        )  # the factor plus the fronts being worked on

    def _full(self, trimap, progress, cancel) -> np.ndarray:
        from mattestudio.engines.fastcf import regional

        unknown = trimap == UNKNOWN
        n = int(unknown.sum())
        fixed = self._fixed(trimap, None)
        if n == 0:
            self.last_mode = "full"
            return fixed
        if regional.factor_entries(n) > self._budget_entries():
            return self._coarse_to_fine(trimap, unknown, progress, cancel)
        h, w = trimap.shape
        check = _checker(progress, cancel, 0.05, 0.95, f"{self.info.display_name}: solving")
        values = regional.solve_box(self._stats, self._image64, unknown, fixed, (0, h, 0, w), check)
        regional.paste(fixed, values, (0, h, 0, w))
        self.last_mode = "full"
        return fixed

    def _incremental(self, trimap, progress, cancel) -> np.ndarray | None:
        """Re-solve around the change from the previous trimap; None when a full solve is better."""
        from mattestudio.engines.fastcf import regional

        assert self._last is not None  # the caller checked
        before_tri, before = self._last
        if before_tri.shape != trimap.shape:
            return None
        changed = before_tri != trimap
        if not changed.any():
            self.last_mode = "unchanged"
            return before.copy()
        ys = np.flatnonzero(changed.any(axis=1))
        xs = np.flatnonzero(changed.any(axis=0))
        h, w = trimap.shape
        seed = (int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1)
        unknown = trimap == UNKNOWN
        fixed = self._fixed(trimap, before)
        tol = self.params["tolerance"]
        # Start from the reach the previous stroke needed: strokes on one image tend to need alike.
        margin = max(24, (seed[1] - seed[0] + seed[3] - seed[2]) // 4, self._margin_hint // 2)
        while True:
            box = regional.grow(seed, margin, trimap.shape)
            area = (box[1] - box[0]) * (box[3] - box[2])
            if area > 0.5 * h * w:
                return None
            inside = int(unknown[box[0] : box[1], box[2] : box[3]].sum())
            if regional.factor_entries(inside) > self._budget_entries():
                return None  # the box would not fit memory_gb: the (tiled) full solve does
            check = _checker(
                progress, cancel, 0.05, 0.95, f"{self.info.display_name}: re-solving the stroke"
            )
            values = regional.solve_box(self._stats, self._image64, unknown, fixed, box, check)
            if values is None:
                break
            # Where the box cuts through the image the solution must already have stopped moving
            # (checked over a band that widens with the box, since wide boxes mean smooth changes).
            if (
                regional.ring_change(values, before, box, trimap.shape, depth=max(4, margin // 4))
                <= tol / 4
            ):
                regional.paste(fixed, values, box)
                break
            margin *= 2
        self._margin_hint = margin
        self.last_mode = "incremental"
        return fixed

    def _coarse_to_fine(self, trimap, unknown, progress, cancel) -> np.ndarray:
        """Beyond the memory budget, coarse to fine: an exact solve at the largest scale whose
        factor fits, brought to full size along the image's edges (``local_linear``'s guided
        upsampling), then exact full-resolution solves, in tiles on all cores, of the unknown
        pixels where that alpha is not yet a solution: |L alpha| >= ``fine_residual``, and the
        pixels sharing a window with them. Every other pixel keeps the upsampled value. See docs/benchmarks.md
        ("coarse to fine") for the measured cost and quality against the older full sweep."""
        from mattestudio.engines.fastcf import regional

        n = int(unknown.sum())
        scale = self.budget_scale(trimap, n, regional.factor_entries, self._budget_entries())
        small, a_small = self._coarse_solve(
            trimap, scale, progress=scaled(progress, 0.0, 0.3), cancel=cancel
        )
        fixed = self.refine_coarse(trimap, small, a_small, progress=progress, cancel=cancel)
        self.last_solve.update(scale=scale, coarse_unknowns=self._coarse_unknowns)
        return fixed

    def refine_coarse(
        self,
        trimap: np.ndarray,
        small: np.ndarray,
        a_small: np.ndarray,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ) -> np.ndarray:
        """The fine half of a coarse-to-fine Run (``_coarse_to_fine``): ``a_small``, the alpha of
        the downscaled image ``small`` (from this engine or another one), brought to full size
        along the prepared image's edges, then re-solved exactly where it is not yet a solution.
        Returns H x W float64 alpha; progress runs from 0.3 to 0.95."""
        import cv2

        from mattestudio.engines.fastcf import local_linear, tiling

        trimap = np.asarray(trimap, np.uint8)
        unknown = trimap == UNKNOWN
        n = int(unknown.sum())
        r, eps = self.params["radius"], self.params["epsilon"]
        alpha = local_linear.guided_upsample(small, a_small, self._image64, r, UPSAMPLE_EPSILON)
        del small, a_small
        fixed = self._fixed(trimap, np.clip(alpha, 0.0, 1.0, out=alpha))
        del alpha
        if cancel is not None:
            cancel.raise_if_cancelled()
        residual = np.abs(local_linear.laplacian_times(self._image64, fixed, r, eps))
        far = (residual >= self.params["fine_residual"]).view(np.uint8)  # 0: every pixel
        del residual
        reach = 4 * r + 1  # pixels sharing a window with a far one lie within 2r of it
        variables = cv2.dilate(far, np.ones((reach, reach), np.uint8)).view(bool)
        variables &= unknown
        grid = self._tile_grid(trimap.shape, n, fine=True)
        label = f"{self.info.display_name}: tiles"

        def done(k: int, total: int, box, values) -> None:
            if progress is not None:
                progress(0.3 + 0.65 * k / total, f"{label} {k} of {total}")

        tiling.solve_tiles(
            self._stats,
            self._image64,
            variables,
            fixed,
            grid,
            workers=self._workers(),
            cancel=cancel.raise_if_cancelled if cancel is not None else None,
            done=done,
        )
        self.last_solve = {
            "fine_unknowns": int(variables.sum()),
            "tile_side": grid.side,
        }
        self.last_mode = "coarse-to-fine"
        return fixed

    def _workers(self) -> int:
        from mattestudio.engines.fastcf import tiling

        return int(self.params.get("workers") or 0) or tiling.default_workers()

    def _tile_grid(self, shape, n_unknown: int, area=None, fine: bool = False):
        """Live's tiles (``fine``: a coarse-to-fine Run's): small enough that every worker's factor
        fits its share of ``memory_gb`` (Live keeps half of it for the stroke's own solve), and
        small enough to be cheap: a dense tile costs about its side per unknown."""
        from mattestudio.engines.fastcf import regional, tiling

        side = int(self.params.get("tile") or (FINE_TILE if fine else TILE_SIDE))
        share = self._budget_entries() / ((1 if fine else 2) * self._workers())
        # Worst case every pixel of a tile unknown: the budget holds for any trimap.
        while side > 16 and regional.factor_entries(side * side) > share:
            side = int(side * 0.9)
        overlap = FINE_OVERLAP if fine else max(16, side // 5)
        return tiling.grid(shape, side, overlap, self.params["radius"], area)
