"""Our replacement for Sam2ImageProcessor (which needs torchvision): the same resize, rescale
and normalisation, coordinate scaling and mask upsampling, from the processor's config.

The processor resizes the uint8 image with torchvision's ``resize(antialias=True)``. torchvision
runs that natively on uint8 on CPUs whose capability string contains "AVX2"; elsewhere it
interpolates in float32 and rounds back to uint8. We do the same, so pixel values match.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mattestudio.engines.segment.sam2_files import Preprocess


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [0, 1] H x W x 3 (our convention) or uint8 -> uint8 H x W x 3."""
    if image.dtype == np.uint8:
        return image
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _resize_u8(chw: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if mode == "nearest":
        return F.interpolate(chw[None], size=size, mode="nearest")[0]
    native = mode == "bilinear" and "AVX2" in torch.backends.cpu.get_cpu_capability()
    if native:
        return F.interpolate(chw[None], size=size, mode=mode, align_corners=False, antialias=True)[
            0
        ]
    out = F.interpolate(
        chw[None].float(), size=size, mode=mode, align_corners=False, antialias=True
    )[0]
    if mode == "bicubic":
        out = out.clamp_(0, 255)
    return out.round_().to(torch.uint8)


def pixel_values(image: np.ndarray, spec: Preprocess) -> torch.Tensor:
    """1 x 3 x height x width float32, as Sam2ImageProcessor would return for this image."""
    u8 = to_uint8(image)
    chw = torch.from_numpy(np.ascontiguousarray(u8.transpose(2, 0, 1)))
    if spec.do_resize and tuple(chw.shape[1:]) != (spec.height, spec.width):
        chw = _resize_u8(chw, (spec.height, spec.width), spec.resample)
    x = chw.float()
    if spec.do_rescale and spec.do_normalize:
        # The processor fuses the two: (x - mean / factor) / (std / factor).
        mean = torch.tensor(spec.mean) * (1.0 / spec.rescale_factor)
        std = torch.tensor(spec.std) * (1.0 / spec.rescale_factor)
        x = (x - mean[:, None, None]) / std[:, None, None]
    elif spec.do_normalize:
        x = (x - torch.tensor(spec.mean)[:, None, None]) / torch.tensor(spec.std)[:, None, None]
    elif spec.do_rescale:
        x = x * spec.rescale_factor
    return x[None].contiguous()


def scale_points(points, shape, spec: Preprocess) -> np.ndarray:
    """Image-pixel (x, y) -> the processor's square of side target_size (N x 2 float32)."""
    h, w = shape[:2]
    pts = np.asarray(points, np.float32).reshape(-1, 2).copy()
    pts[:, 0] *= spec.target_size / w
    pts[:, 1] *= spec.target_size / h
    return pts


def upsample_logits(low_res: torch.Tensor, shape) -> torch.Tensor:
    """Low-resolution mask logits (... x h x w) -> H x W logits, bilinear, align_corners=False,
    as post_process_masks does."""
    x = low_res.reshape(1, 1, *low_res.shape[-2:]).float()
    return F.interpolate(x, size=tuple(shape[:2]), mode="bilinear", align_corners=False)[0, 0]
