"""The Python API: ``mattestudio.matte(image, trimap, engine="closed-form", **params)`` for one
image, ``mattestudio.batch(images_dir, out_dir, ...)`` for a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mattestudio import batching
from mattestudio.core import io
from mattestudio.core import trimap as trimap_ops
from mattestudio.engines import registry
from mattestudio.pipeline import run_matting
from mattestudio.types import CancelToken, MattingResult, ProgressFn

ImageLike = str | Path | np.ndarray


def matte(
    image: ImageLike,
    trimap: ImageLike,
    engine: str = registry.DEFAULT_ENGINE,
    *,
    estimate_foreground: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    **params,
) -> MattingResult:
    """Estimate the alpha matte (and clean foreground colors) of ``image``.

    ``image``: a path, or an array (H x W x 3 RGB, uint8/uint16 or float in [0, 1]).
    ``trimap``: a path, or an H x W array: 0 background, 255 (or 1.0) foreground, anything in
    between unknown. ``engine``: a name from ``mattestudio engines``; ``params`` go to the engine
    (for deep engines, e.g. ``checkpoint="path"``, ``device="cpu"``).

    Returns a MattingResult with ``.alpha`` (float32 H x W in [0, 1]) and ``.foreground``
    (float32 H x W x 3). Raises a MattestudioError subclass with a readable message on bad input.
    """
    if isinstance(image, np.ndarray):
        img = io.load_image(image)
        tri = trimap_ops.load(trimap, img.shape)
    else:  # the trimap first: it is refused before a huge image is decoded
        tri = trimap_ops.load(trimap, io.image_size(image), image_source=image)
        img = io.load_image(image)
    eng = registry.create(engine, **params)
    return run_matting(
        eng, img, tri, estimate_foreground=estimate_foreground, progress=progress, cancel=cancel
    )


def batch(
    images_dir: str | Path,
    out_dir: str | Path,
    trimaps_dir: str | Path | None = None,
    engine: str = registry.DEFAULT_ENGINE,
    *,
    cutout: bool = False,
    alpha_bits: int = 8,
    overwrite: bool = False,
    client=None,
    **params,
) -> batching.Summary:
    """Matte every image of ``images_dir`` with its trimap into ``out_dir`` (``NAME_alpha.png``,
    and ``NAME_cutout.png`` with ``cutout=True``), like ``mattestudio batch``.

    Trimaps are matched by file name stem in ``trimaps_dir`` (default: ``NAME_trimap.*`` next to
    the image). Images whose outputs exist are skipped unless ``overwrite``. A bad image does not
    stop the run: the returned Summary lists every outcome (``summary.failures`` name the files,
    ``summary.line()`` is the closing line). Raises MattestudioError only for problems that stop
    everything (a missing folder, an unwritable output folder, an unknown engine).

    ``client``: a ``distributed.Client``; the images are then matted on its Dask cluster (each
    worker creates the engine once), with the same outputs as a local run (README, Many machines).
    """
    options = batching.BatchOptions(
        engine=engine, params=params, cutout=cutout, alpha_bits=alpha_bits, overwrite=overwrite
    )
    trimaps = images_dir if trimaps_dir is None else trimaps_dir
    if client is not None:
        from mattestudio import dask_batch

        return dask_batch.run(images_dir, trimaps, out_dir, options, client)
    return batching.run(images_dir, trimaps, out_dir, options)
