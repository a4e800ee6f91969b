"""Classical matting engines over pymatting (imported lazily: its first import compiles numba kernels).

Progress and cancellation go through pymatting's conjugate-gradient callback, which is called
after every iteration; the callback raises Cancelled, which unwinds out of the solver.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from collections.abc import Iterator

import numpy as np

from mattestudio.core import trimap as trimap_ops
from mattestudio.engines.base import EngineBase, EngineInfo, Param, clipped32
from mattestudio.errors import MattestudioError
from mattestudio.progress import scaled
from mattestudio.types import CancelToken, ProgressFn

_RTOL = Param(
    "rtol",
    1e-7,
    "Relative residual at which the linear solver stops. Smaller is more exact and slower.",
    "Solver tolerance",
    1e-12,
    1e-2,
)
_MAXITER = Param(
    "maxiter", 10000, "Upper bound on conjugate-gradient iterations.", "Max iterations", 10, 100000
)
_EPSILON = Param(
    "epsilon",
    1e-7,
    "Regularisation of the local color model; larger gives smoother mattes.",
    "Smoothness (epsilon)",
    1e-10,
    1e-1,
)
_RADIUS = Param(
    "radius", 1, "Window radius of the local color model (1 = 3x3 windows).", "Window radius", 1, 5
)


@contextlib.contextmanager
def _printed_to_log() -> Iterator[None]:
    """pymatting prints its "PERFORMANCE WARNING" (an incomplete-Cholesky retry) with print():
    keep it off stdout, where the CLI lists the files it wrote; it goes to the log instead."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        text = buffer.getvalue().strip()
        if text:
            logging.getLogger(__name__).info("pymatting: %s", " ".join(text.split()))


def _cg_callback(rtol: float, progress: ProgressFn | None, cancel: CancelToken | None, label: str):
    """A pymatting cg callback that reports progress on a log scale of the residual and honours cancel.

    The residual of conjugate gradients does not fall monotonically, so the best value so far is
    reported: progress never goes backwards.
    """
    target = math.log(max(rtol, 1e-300))
    state = {"n": 0, "frac": 0.0}
    solver_progress = scaled(progress, 0.1, 0.95)

    def callback(A, x, b, norm_b, r, norm_r):
        state["n"] += 1
        if cancel is not None:
            cancel.raise_if_cancelled()
        if solver_progress is not None and state["n"] % 5 == 0 and norm_b > 0:
            rel = max(norm_r / norm_b, 1e-300)
            state["frac"] = max(state["frac"], min(max(math.log(rel) / target, 0.0), 1.0))
            solver_progress(state["frac"], f"{label}: iteration {state['n']}")

    return callback


class PymattingEngine(EngineBase):
    """Shared plumbing for pymatting's estimate_alpha_* recipes."""

    #: pymatting's estimate_alpha_* function, and the engine parameters it takes as laplacian_kwargs.
    estimator = ""
    _image64: np.ndarray | None = None
    laplacian_params: tuple[str, ...] = ()

    def _laplacian_kwargs(self) -> dict:
        kwargs = {name: self.params[name] for name in self.laplacian_params}
        if "radius" in kwargs and self._image64 is not None:
            # A window must fit in the image (pymatting asserts it): on a small image the windows
            # shrink to the largest that fits.
            side = min(self._image64.shape[:2])
            kwargs["radius"] = max(1, min(int(kwargs["radius"]), (side - 1) // 2))
        return kwargs

    def _call(self, image, tri_f, cg_kwargs):
        import pymatting

        with _printed_to_log():
            return getattr(pymatting, self.estimator)(
                image, tri_f, laplacian_kwargs=self._laplacian_kwargs(), cg_kwargs=cg_kwargs
            )

    def predict(
        self,
        trimap: np.ndarray,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ):
        trimap = self._check_trimap(trimap, cancel)
        if progress is not None:
            progress(0.05, f"{self.info.display_name}: building the linear system")
        cg_kwargs = {
            "rtol": self.params.get("rtol", 1e-7),
            "maxiter": self.params.get("maxiter", 10000),
            "callback": _cg_callback(
                self.params.get("rtol", 1e-7), progress, cancel, self.info.display_name
            ),
        }
        try:
            alpha = self._call(self._image64, trimap_ops.to_float(trimap), cg_kwargs)
        except ValueError as exc:
            if "did not converge" not in str(exc):
                raise
            raise MattestudioError(
                f"{self.info.display_name}: the solver did not converge within {cg_kwargs['maxiter']} "
                "iterations; raise maxiter, loosen rtol, or try another engine"
            ) from None
        if progress is not None:
            progress(1.0, "done")
        return clipped32(alpha), None

    def prepare(self, image: np.ndarray) -> None:
        super().prepare(image)
        self._image64 = np.ascontiguousarray(
            image, np.float64
        )  # pymatting's kernels are compiled for float64

    def reset(self) -> None:
        super().reset()
        self._image64 = None


class ClosedFormPymatting(PymattingEngine):
    info = EngineInfo(
        name="closed-form-pymatting",
        display_name="Closed-form (pymatting)",
        kind="classical",
        description="Levin et al. 2008 matting Laplacian solved by pymatting (reference implementation).",
        params=(_EPSILON, _RADIUS, _RTOL, _MAXITER),
    )
    estimator = "estimate_alpha_cf"
    laplacian_params = ("epsilon", "radius")


class KnnEngine(PymattingEngine):
    info = EngineInfo(
        name="knn",
        display_name="KNN matting",
        kind="classical",
        description="KNN matting (Chen et al. 2013): non-local neighbours in color and position.",
        params=(
            Param(
                "n_neighbors",
                "20,10",
                "Neighbours per pixel at the two feature scales, comma-separated.",
                "Neighbours",
            ),
            _RTOL,
            _MAXITER,
        ),
    )

    estimator = "estimate_alpha_knn"

    def _laplacian_kwargs(self) -> dict:
        try:
            counts = [int(v) for v in str(self.params["n_neighbors"]).split(",") if v.strip()]
        except ValueError:
            raise MattestudioError(
                f"parameter n_neighbors: {self.params['n_neighbors']!r} is not a "
                "comma-separated list of whole numbers"
            ) from None
        if self._image64 is not None:  # a tiny image has fewer pixels than neighbours asked for
            pixels = self._image64.shape[0] * self._image64.shape[1]
            counts = [max(1, min(k, pixels - 1)) for k in counts]
        return {"n_neighbors": counts}


class LargeKernelEngine(PymattingEngine):
    info = EngineInfo(
        name="large-kernel",
        display_name="Large-kernel matting",
        kind="classical",
        description="He et al. 2010: the matting Laplacian with large windows, applied without building it.",
        params=(
            Param(
                "epsilon",
                1e-7,
                "Regularisation of the local color model.",
                "Smoothness (epsilon)",
                1e-10,
                1e-1,
            ),
            Param(
                "radius",
                10,
                "Window radius (large windows spread alpha further).",
                "Window radius",
                1,
                50,
            ),
            _RTOL,
            _MAXITER,
        ),
    )
    estimator = "estimate_alpha_lkm"
    laplacian_params = ("epsilon", "radius")

    def _laplacian_kwargs(self) -> dict:
        kwargs = super()._laplacian_kwargs()
        if self._image64 is not None:
            # pymatting box-filters the (side - 2r) valid windows again: side >= 4r + 1.
            h, w = self._image64.shape[:2]
            fits = (min(h, w) - 1) // 4
            if fits < 1:
                raise MattestudioError(
                    f"{self.info.display_name} needs at least 5 pixels on each side; the image is "
                    f"{w}x{h} (use closed-form for it)"
                )
            kwargs["radius"] = min(kwargs["radius"], fits)
        return kwargs


def _rw_laplacian(image: np.ndarray, sigma: float, regularization: float = 1e-8):
    """Graph Laplacian D - W over 8-neighbours with weights exp(-|I_i - I_j|^2 / sigma^2) (Grady et al.).

    Built here rather than with pymatting's rw_laplacian, which ignores its sigma (it hard-codes
    exp(-900 d^2)) and row-normalises W: that matrix is not symmetric, so conjugate gradients do
    not converge on it, even for small images.
    """
    import scipy.sparse

    h, w = image.shape[:2]
    index = np.arange(h * w).reshape(h, w)
    rows, cols, vals = [], [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        x0, x1 = max(0, -dx), w - max(0, dx)
        a, b = image[: h - dy, x0:x1], image[dy:, x0 + dx : x1 + dx]
        weight = np.exp(-((a - b) ** 2).sum(axis=2) / (sigma * sigma)).ravel()
        i, j = index[: h - dy, x0:x1].ravel(), index[dy:, x0 + dx : x1 + dx].ravel()
        rows += [i, j]
        cols += [j, i]
        vals += [weight, weight]
    W = scipy.sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(h * w, h * w)
    )
    degree = np.asarray(W.sum(axis=1)).ravel() + regularization
    return (scipy.sparse.diags(degree) - W).tocsr()


class RandomWalkEngine(PymattingEngine):
    info = EngineInfo(
        name="random-walk",
        display_name="Random-walk matting",
        kind="classical",
        description="Grady et al. 2005: random walks on a color-weighted pixel graph.",
        params=(
            Param(
                "sigma",
                0.1,
                "Color sensitivity of the edge weights exp(-|color difference|^2 / sigma^2); "
                "smaller follows color edges more sharply.",
                "Sigma",
                1e-3,
                1.0,
            ),
            _RTOL,
            _MAXITER,
        ),
    )

    def _call(self, image, tri_f, cg_kwargs):
        from pymatting import cg, jacobi, make_linear_system

        A, b = make_linear_system(_rw_laplacian(image, self.params["sigma"]), tri_f)
        return cg(A, b, M=jacobi(A), **cg_kwargs).reshape(tri_f.shape)


class LearningBasedEngine(PymattingEngine):
    info = EngineInfo(
        name="learning-based",
        display_name="Learning-based matting",
        kind="classical",
        description="Zheng and Kambhamettu 2009: locally learned linear alpha models.",
        params=(_EPSILON, _RADIUS, _RTOL, _MAXITER),
    )
    estimator = "estimate_alpha_lbdm"
    laplacian_params = ("epsilon", "radius")


class SharedSamplingEngine(PymattingEngine):
    info = EngineInfo(
        name="shared-sampling",
        display_name="Shared sampling",
        kind="classical",
        description="Gastal and Oliveira 2010: shared foreground/background sample pairs; also gives colors.",
        params=(),
        produces_foreground=True,
    )

    def predict(self, trimap, *, progress=None, cancel=None):
        from pymatting import estimate_alpha_sm

        self._require_image()
        if cancel is not None:
            cancel.raise_if_cancelled()
        if progress is not None:
            progress(0.1, "Shared sampling: gathering samples")
        alpha, fg, _bg = estimate_alpha_sm(
            self._image64, trimap_ops.to_float(trimap), return_foreground_background=True
        )
        if progress is not None:
            progress(1.0, "done")
        return clipped32(alpha), clipped32(fg)
