"""Prompts -> subject mask -> trimap, with SAM 2 when a model is available and GrabCut otherwise.

torch and transformers are imported only when a SAM 2 model is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mattestudio.core import trimap as trimap_ops
from mattestudio.engines.segment.prompts import PromptError, Prompts
from mattestudio.errors import EngineUnavailable, TrimapError
from mattestudio.types import CancelToken, ProgressFn

DEFAULT_BAND = 12


@dataclass(frozen=True)
class Selection:
    mask: np.ndarray  # bool H x W
    method: str  # "sam2" or "grabcut"
    note: str  # one line: which model, or why GrabCut


def check_mask(mask: np.ndarray) -> np.ndarray:
    """PromptError for a mask that selects nothing or everything (no trimap can come of it)."""
    if not mask.any():
        raise PromptError("the selection is empty: click on the subject, or draw a box around it")
    if mask.all():
        raise PromptError(
            "the selection covers the whole image: add exclude clicks on the background"
        )
    return mask


def click_radius(shape) -> int:
    """Clicks become small disks of definite foreground/background for GrabCut."""
    return max(3, min(int(shape[0]), int(shape[1])) // 100)


def _disks(points, shape, radius: int) -> np.ndarray | None:
    import cv2

    if not points:
        return None
    m = np.zeros(shape[:2], np.uint8)
    for x, y in points:
        cv2.circle(m, (int(round(x)), int(round(y))), radius, 1, -1)
    return m.astype(bool)


def grabcut_select(image: np.ndarray, prompts: Prompts) -> np.ndarray:
    """GrabCut from the box (probable subject inside, background outside) and the clicks."""
    prompts = prompts.check(image.shape)
    if prompts.box is None and not prompts.positive:
        raise PromptError("GrabCut needs a box or at least one click on the subject")
    r = click_radius(image.shape)
    h, w = image.shape[:2]
    if prompts.box is not None:
        x0, y0, x1, y1 = prompts.box
        rect = (int(x0), int(y0), int(round(x1 - x0)), int(round(y1 - y0)))
    else:
        # Clicks only: the subject is somewhere inside, the image's border is background.
        m = max(2, min(h, w) // 50)
        rect = (m, m, w - 2 * m, h - 2 * m)
    fg = _disks(prompts.positive, image.shape, r)
    bg = _disks(prompts.negative, image.shape, r)
    try:
        mask = trimap_ops.grabcut_segment(image, rect, fg, bg)
    except TrimapError as exc:
        raise PromptError(exc.reason) from None
    return check_mask(mask)


def sam2_unavailable(model=None) -> str | None:
    """None when a SAM 2 model can be used; else the reason, in words (no torch import)."""
    import importlib.util

    if importlib.util.find_spec("transformers") is None:
        return "transformers is not installed (pip install 'mattestudio[sam2]')"
    if model:
        return None  # named explicitly: a missing one is an error, not a fallback
    from mattestudio.engines.deep import kinds as K

    if not K.installed("sam2"):
        return (
            "no SAM 2 model imported (mattestudio models pull sam2.1-hiera-tiny, "
            "or mattestudio models import DIR)"
        )
    return None


def select(
    image: np.ndarray,
    prompts: Prompts,
    model=None,
    predictor=None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Selection:
    """The subject's mask from ``prompts``: SAM 2 (``predictor``, or ``model``: a folder, file or
    imported name, or the first imported one), or GrabCut when no SAM 2 model is available.
    A ``model`` that is named but unusable is an error, never a silent fallback."""
    prompts = prompts.check(image.shape)
    if predictor is None:
        why = sam2_unavailable(model)
        if why is not None:
            if model:
                raise EngineUnavailable(f"cannot use SAM 2 model {model!r}: {why}")
            return Selection(grabcut_select(image, prompts), "grabcut", f"using GrabCut: {why}")
        from mattestudio.engines.segment.predictor import Sam2Predictor

        predictor = Sam2Predictor.load(model)
    predictor.set_image(image, progress=progress, cancel=cancel)
    result = predictor.predict(prompts)
    note = f"SAM 2 model {predictor.name} (predicted IoU {result.score:.2f})"
    return Selection(check_mask(result.mask), "sam2", note)


def mask_to_trimap(
    mask: np.ndarray,
    band: int = DEFAULT_BAND,
    *,
    image: np.ndarray | None = None,
    smart: bool = False,
) -> np.ndarray:
    """Trimap with an unknown band about ``band`` px wide centred on the mask's edge; ``smart``
    (needs ``image``): the band follows the edge, thin on hard edges and wide on hair
    (core.trimap.smart_band)."""
    if band < 1:
        raise PromptError(f"band {band}: the unknown band must be at least 1 pixel wide")
    return trimap_ops.from_segmentation(check_mask(mask), band, image=image, smart=smart)


def trimap_from_prompts(
    image: np.ndarray,
    prompts: Prompts,
    band: int = DEFAULT_BAND,
    model=None,
    predictor=None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, Selection]:
    """(uint8 {0, 128, 255} trimap of the image's size, the Selection it came from)."""
    if band < 1:
        raise PromptError(f"band {band}: the unknown band must be at least 1 pixel wide")
    sel = select(image, prompts, model, predictor, progress, cancel)
    return mask_to_trimap(sel.mask, band), sel
