"""The one matting pipeline. The editor's worker, the CLI and the Python API all call run_matting.

document -> request (image, trimap, engine, params) -> engine -> MattingResult -> previews/export
"""

from __future__ import annotations

import time

import numpy as np

from mattestudio.core import edges as edge_ops
from mattestudio.core import trimap as trimap_ops
from mattestudio.engines.base import MattingEngine
from mattestudio.errors import MattestudioError, TrimapError
from mattestudio.progress import scaled
from mattestudio.types import CancelToken, MattingResult, ProgressFn

#: Smallest image side any engine can solve.
MIN_SIDE = 3


def run_matting(
    engine: MattingEngine,
    image: np.ndarray,
    trimap: np.ndarray,
    *,
    prepared: bool = False,
    estimate_foreground: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    request_id: int | None = None,
    scale: float = 1.0,
    edges: edge_ops.EdgeAdjustments | None = None,
) -> MattingResult:
    """Run ``engine`` on an image and trimap and return a complete MattingResult.

    ``image``: float32 H x W x 3 RGB in [0, 1]; ``trimap``: uint8 {0,128,255} H x W.
    ``prepared``: the caller already called engine.prepare(image) for this image (the editor keeps
    engines warm between strokes). Known regions are forced to exactly 0 and 1, and the foreground
    is estimated when the engine does not give one.
    ``edges``: edge adjustments applied last (CLI, API). The editor leaves them out and applies
    them to the preview and its exports instead, so a slider change never re-runs the engine.
    """
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        # Every engine needs whole 3x3 windows (closed-form "not positive definite", KNN and
        # large-kernel crash); a sliver of an image has no edge to matte anyway.
        raise MattestudioError(
            f"image is {w}x{h} pixels; matting needs at least {MIN_SIDE} pixels on each side"
        )
    if trimap.shape != image.shape[:2]:
        h, w = image.shape[:2]
        th, tw = trimap.shape
        raise TrimapError(
            f"trimap is {tw}x{th} but the image is {w}x{h}; they must be the same size"
        )
    start = time.perf_counter()
    if cancel is not None:
        cancel.raise_if_cancelled()
    if not prepared:
        engine.prepare(image)
    alpha, fg = engine.predict(
        trimap,
        progress=scaled(progress, 0.0, 0.9 if estimate_foreground else 1.0),
        cancel=cancel,
    )
    alpha = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)
    trimap_ops.force_known(alpha, trimap)
    if cancel is not None:
        cancel.raise_if_cancelled()
    if fg is None:
        if estimate_foreground:
            if progress is not None:
                progress(0.9, "estimating foreground colors")
            from mattestudio.engines.foreground import estimate_foreground as estimate

            fg = estimate(image, alpha)
        else:
            fg = image
    fg = np.asarray(fg, np.float32)
    if edges is not None:
        alpha, fg = edge_ops.apply(alpha, fg, image, edges)
    if progress is not None:
        progress(1.0, "done")
    return MattingResult(
        alpha=alpha,
        foreground=fg,
        engine=engine.info.name,
        params=dict(engine.params),
        seconds=time.perf_counter() - start,
        request_id=request_id,
        scale=scale,
    )


def changed_box(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (y0, y1, x0, x1) of the pixels where ``a`` and ``b`` differ; empty if none."""
    diff = a != b
    if diff.ndim == 3:
        diff = diff.any(axis=2)
    rows = np.flatnonzero(diff.any(axis=1))
    if rows.size == 0:
        return (0, 0, 0, 0)
    cols = np.flatnonzero(diff.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def rematte(
    engine,
    image: np.ndarray,
    trimap: np.ndarray,
    previous: MattingResult,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    request_id: int | None = None,
    margin: int = 24,
) -> tuple[MattingResult, tuple[int, int, int, int]]:
    """``run_matting`` after a trimap edit, for an engine already prepared on ``image`` whose last
    full-resolution result was ``previous``: the foreground colors are re-estimated only in the
    box where the alpha changed (plus ``margin`` pixels of context), the rest is kept.

    Returns the complete result and that box (y0, y1, x0, x1); an empty box when nothing changed.
    """
    start = time.perf_counter()
    if cancel is not None:
        cancel.raise_if_cancelled()
    alpha, fg = engine.predict(trimap, progress=scaled(progress, 0.0, 0.95), cancel=cancel)
    alpha = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)
    trimap_ops.force_known(alpha, trimap)
    if cancel is not None:
        cancel.raise_if_cancelled()
    box = changed_box(alpha, previous.alpha)
    if fg is not None:  # the engine's own colors: changed wherever they or the alpha changed
        fg = np.asarray(fg, np.float32)
        fy0, fy1, fx0, fx1 = changed_box(fg, previous.foreground)
        y0, y1, x0, x1 = box
        if fy1 > fy0:
            box = (
                (fy0, fy1, fx0, fx1)
                if y1 <= y0
                else (min(y0, fy0), max(y1, fy1), min(x0, fx0), max(x1, fx1))
            )
    elif box[1] > box[0]:
        from mattestudio.engines.foreground import update_foreground

        fg = previous.foreground.copy()
        update_foreground(image, alpha, fg, box, pad=margin)
    else:
        fg = previous.foreground
    if progress is not None:
        progress(1.0, "done")
    result = MattingResult(
        alpha=alpha,
        foreground=fg,
        engine=engine.info.name,
        params=dict(getattr(engine, "params", {})),
        seconds=time.perf_counter() - start,
        request_id=request_id,
    )
    return result, box
