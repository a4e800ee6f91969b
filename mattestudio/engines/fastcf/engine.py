"""Closed-form matting (Levin et al. 2008) built for the editor's brush.

Same matte as pymatting's ``estimate_alpha_cf`` (same Laplacian, window and epsilon), solved exactly
by a nested-dissection sparse Cholesky instead of incomplete-Cholesky CG.

Session use (see ``FastClosedFormEngine.predict``):

- ``prepare(image)`` keeps a float64 copy of the image; window statistics are computed during
  assembly, only for the windows that touch an unknown pixel.
- ``predict(trimap)`` compares the trimap with the one of the previous successful call. A local
  change is re-solved only in a box around it, grown until the solution stops changing at the box's
  edge (``tolerance``); anything else, or ``incremental=False``, is a full solve.
- ``predict_coarse(trimap, scale)`` is the Live-mode preview: a solve on the downscaled image,
  upsampled to full size.
- Cancel and progress are checked between elimination steps; a cancelled call changes nothing.

The solver modules (numba, scipy) are imported inside the methods that use them, so the registry
can read ``info`` (``mattestudio engines``) without loading them.
"""

from __future__ import annotations

import numpy as np

from mattestudio.core import trimap as trimap_ops
from mattestudio.engines.base import EngineBase, EngineInfo, Param
from mattestudio.errors import TrimapError
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
        self.last_mode = ""  # "full", "incremental", "tiled", "unchanged": for benchmarks and tests
        self._margin_hint = 0

    def reset(self) -> None:
        super().reset()
        self._image64 = self._stats = self._last = None  # type: ignore[assignment]
        self._coarse = {}

    # -- public -------------------------------------------------------------------------------

    def forget_previous(self) -> None:
        """Make the next predict() a full solve (e.g. a "refine" after many incremental strokes)."""
        self._last = None

    def predict(
        self,
        trimap: np.ndarray,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ):
        image = self._require_image()
        trimap = np.asarray(trimap)
        if trimap.shape != image.shape[:2]:
            raise TrimapError(
                f"trimap is {trimap.shape[1]}x{trimap.shape[0]} but the prepared image is "
                f"{image.shape[1]}x{image.shape[0]}"
            )
        if not ((trimap == FOREGROUND).any() or (trimap == BACKGROUND).any()):
            raise TrimapError(
                f"{self.info.display_name} needs some foreground or background in the trimap"
            )
        if cancel is not None:
            cancel.raise_if_cancelled()
        alpha = None
        if self.params["incremental"] and self._last is not None:
            alpha = self._incremental(trimap, progress, cancel)
        if alpha is None:
            alpha = self._full(trimap, progress, cancel)
        self._last = (trimap.copy(), alpha)  # only reached when nothing was cancelled
        if progress is not None:
            progress(1.0, "done")
        return np.clip(alpha, 0, 1).astype(np.float32), None

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

        from mattestudio.core.trimap import downscaled

        image = self._require_image()
        if scale >= 1.0:
            return self.predict(trimap, progress=progress, cancel=cancel)
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
        h, w = image.shape[:2]
        alpha = cv2.resize(a_s, (w, h), interpolation=cv2.INTER_LINEAR)
        trimap_ops.force_known(alpha, np.asarray(trimap))
        return np.clip(alpha, 0, 1).astype(np.float32), None

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
            return self._tiled(trimap, unknown, progress, cancel)
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

    def _tiled(self, trimap, unknown, progress, cancel) -> np.ndarray:
        """Beyond the memory budget: a coarse solve as the starting point, then overlapping tiles
        (one multiplicative Schwarz sweep) each solved exactly with its surroundings fixed."""
        from mattestudio.engines.fastcf import regional

        h, w = trimap.shape
        n = int(unknown.sum())
        budget = self._budget_entries()
        scale = min(0.5, (budget / regional.factor_entries(n)) ** 0.5 * 0.8)
        coarse_progress = scaled(progress, 0.0, 0.3)
        start, _ = self.predict_coarse(trimap, scale, progress=coarse_progress, cancel=cancel)
        fixed = self._fixed(trimap, start.astype(np.float64))
        # Tiles with about a quarter of the budget's unknowns each, overlapping by a quarter of a side
        # so that each tile's edge sits well inside a tile already solved at full resolution.
        density = n / (h * w)
        side = int(min(max(h, w), max(256, (budget / 4 / 200.0 / max(density, 1e-3)) ** 0.5)))
        boxes = regional.tiles(trimap.shape, side, max(48, side // 4))
        for k, box in enumerate(boxes):
            check = _checker(
                progress,
                cancel,
                0.3 + 0.65 * k / len(boxes),
                0.3 + 0.65 * (k + 1) / len(boxes),
                f"{self.info.display_name}: tile {k + 1} of {len(boxes)}",
            )
            regional.paste(
                fixed,
                regional.solve_box(self._stats, self._image64, unknown, fixed, box, check),
                box,
            )
        self.last_mode = "tiled"
        return fixed
