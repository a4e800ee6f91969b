"""The Python API: ``mattestudio.matte(image, trimap, engine="information-flow", **params)`` for one
image, ``mattestudio.batch(images_dir, out_dir, ...)`` for a folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mattestudio import batching
from mattestudio.core import io
from mattestudio.core import trimap as trimap_ops
from mattestudio.core.edges import LIMITS, EdgeAdjustments
from mattestudio.engines import registry
from mattestudio.pipeline import run_matting
from mattestudio.types import CancelToken, MattingResult, ProgressFn

ImageLike = str | Path | np.ndarray


def _edges(edges: EdgeAdjustments | Mapping | None, params: dict) -> EdgeAdjustments | None:
    """Edge adjustments from ``edges`` and the edge keywords, which are taken out of ``params``."""
    edge_kw = {k: params.pop(k) for k in list(params) if k in LIMITS}
    if edges is None or isinstance(edges, EdgeAdjustments):
        base = edges or EdgeAdjustments()
        return base.replace(**edge_kw) if edge_kw else edges
    return EdgeAdjustments.from_dict({**dict(edges), **edge_kw})


def matte(
    image: ImageLike,
    trimap: ImageLike,
    engine: str = registry.DEFAULT_ENGINE,
    *,
    estimate_foreground: bool = True,
    edges: EdgeAdjustments | Mapping | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    **params,
) -> MattingResult:
    """Estimate the alpha matte (and clean foreground colors) of ``image``.

    ``image``: a path, or an array (H x W x 3 RGB, uint8/uint16 or float in [0, 1]).
    ``trimap``: a path, or an H x W array: 0 background, 255 (or 1.0) foreground, anything in
    between unknown. ``engine``: a name from ``mattestudio engines``; ``params`` go to the engine
    (for deep engines, e.g. ``checkpoint="path"``, ``device="cpu"``).
    ``edges``: edge adjustments applied to the result, an EdgeAdjustments or a dict; the keywords
    ``smooth``, ``feather``, ``contrast``, ``shift_edge`` and ``decontaminate`` set them too, e.g.
    ``matte(img, tri, feather=2, decontaminate=0.5)``.

    Returns a MattingResult with ``.alpha`` (float32 H x W in [0, 1]) and ``.foreground``
    (float32 H x W x 3). Raises a MattestudioError subclass with a readable message on bad input.
    """
    edges = _edges(edges, params)
    if isinstance(image, np.ndarray):
        img = io.load_image(image)
        tri = trimap_ops.load(trimap, img.shape)
    else:  # the trimap first: it is refused before a huge image is decoded
        tri = trimap_ops.load(trimap, io.image_size(image), image_source=image)
        img = io.load_image(image)
    eng = registry.create(engine, **params)
    if edges is not None and edges.decontaminate == 0:
        estimate_foreground = False  # the photo's own colours: no estimate needed
    return run_matting(
        eng,
        img,
        tri,
        estimate_foreground=estimate_foreground,
        progress=progress,
        cancel=cancel,
        edges=edges,
    )


def trimap_from_prompts(
    image: ImageLike,
    clicks=(),
    exclude=(),
    box: tuple[float, float, float, float] | None = None,
    *,
    band: int = 12,
    model=None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """A first trimap from clicks on the subject (``clicks``: (x, y) image pixels), clicks off it
    (``exclude``) and/or a ``box`` (x, y, w, h). Uses SAM 2 (``model``: an imported name, a
    Hugging Face folder, or None for the first imported one) or, with none available, GrabCut
    with a RuntimeWarning saying so. Returns uint8 H x W {0, 128, 255} with an unknown band
    about ``band`` px wide. Raises PromptError (a MattestudioError) on clicks outside the image,
    a zero-size box or an empty selection."""
    import warnings

    from mattestudio.engines.segment.prompts import Prompts
    from mattestudio.engines.segment.select import trimap_from_prompts as make

    img = io.load_image(image)
    xyxy = None
    if box is not None:
        x, y, w, h = (float(v) for v in box)
        xyxy = (x, y, x + w, y + h)
    prompts = Prompts(
        tuple((float(x), float(y)) for x, y in clicks),
        tuple((float(x), float(y)) for x, y in exclude),
        xyxy,
    )
    tri, sel = make(img, prompts, band, model=model, progress=progress, cancel=cancel)
    if sel.method == "grabcut":
        warnings.warn(f"mattestudio: {sel.note}", RuntimeWarning, stacklevel=2)
    return tri


def batch(
    images_dir: str | Path,
    out_dir: str | Path,
    trimaps_dir: str | Path | None = None,
    engine: str = registry.DEFAULT_ENGINE,
    *,
    cutout: bool = False,
    alpha_bits: int = 8,
    overwrite: bool = False,
    edges: EdgeAdjustments | Mapping | None = None,
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
    ``edges`` and the edge keywords (``feather=2``, ...) work as in :func:`matte`.

    ``client``: a ``distributed.Client``; the images are then matted on its Dask cluster (each
    worker creates the engine once), with the same outputs as a local run (README, Many machines).
    """
    options = batching.BatchOptions(
        engine=engine,
        params=params,
        cutout=cutout,
        alpha_bits=alpha_bits,
        overwrite=overwrite,
        edges=_edges(edges, params),
    )
    trimaps = images_dir if trimaps_dir is None else trimaps_dir
    if client is not None:
        from mattestudio import dask_batch

        return dask_batch.run(images_dir, trimaps, out_dir, options, client)
    return batching.run(images_dir, trimaps, out_dir, options)
