"""SIM's inputs: Gaussian distance "click" channels and the 20-class semantic trimap (smap).

smap, as published: classify overlapping patches (sizes 320 and 800, stride half the size) that
contain unknown pixels, resize each class-activation map to its patch, average where patches
overlap, min-max normalise over the whole tensor, keep it only inside the unknown region.
Deviation: where an image side is shorter than the patch, the patch is clamped to the whole side
(the reference's negative-index slicing covers only part of it).
"""

from __future__ import annotations

import numpy as np

SIGMAS = (0.02 * 320, 0.08 * 320, 0.16 * 320)  # 6.4, 25.6, 51.2 px
PATCHES = (320, 800)


def two_channel(tri: np.ndarray) -> np.ndarray:
    return np.stack([tri == 0, tri == 255], axis=2).astype(np.float32)


def clicks(tri: np.ndarray) -> np.ndarray:
    """6 channels: exp(-d^2 / 2 sigma^2) of the exact distance to background, then foreground."""
    import cv2

    out = np.zeros((*tri.shape, 6), np.float32)
    for k, value in enumerate((0, 255)):
        mask = tri == value
        if not mask.any():
            continue
        d = cv2.distanceTransform((~mask).astype(np.uint8) * 255, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        d2 = d.astype(np.float32) ** 2
        for j, s in enumerate(SIGMAS):
            out[..., 3 * k + j] = np.exp(-d2 / (2 * s * s))
    return out


def starts(side: int, size: int) -> list[int]:
    if side <= size:
        return [0]
    s = list(range(0, side - size, size // 2))
    return s + [side - size]


def semantic_trimap(classifier, img_n: np.ndarray, tri: np.ndarray, run, progress=None, cancel=None) -> np.ndarray:
    """H x W x 20 smap. ``run(module, nchw_tensor) -> tensor`` applies device, precision and layout."""
    import torch
    import torch.nn.functional as F

    H, W = tri.shape
    unknown = tri == 128
    x = np.concatenate([img_n, (tri.astype(np.float32) / 255.0)[..., None]], axis=2)
    acc = torch.zeros(20, H, W)
    cover = torch.zeros(1, H, W)
    jobs = []
    for size in PATCHES:
        ph, pw = min(size, H), min(size, W)
        for y in starts(H, size):
            for xx in starts(W, size):
                if unknown[y:y + ph, xx:xx + pw].any():
                    jobs.append((y, xx, ph, pw))
    for i, (y, xx, ph, pw) in enumerate(jobs):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if progress is not None:
            progress(i / max(len(jobs), 1), f"SIM: classifying patch {i + 1} of {len(jobs)}")
        cam = run(classifier, x[y:y + ph, xx:xx + pw]).float()
        cam = F.interpolate(cam, size=(ph, pw), mode="bilinear", align_corners=False)[0].cpu()
        acc[:, y:y + ph, xx:xx + pw] += cam
        cover[:, y:y + ph, xx:xx + pw] += 1
    cam = acc / cover.clamp(min=1)
    lo, hi = cam.min(), cam.max()
    cam = (cam - lo) / (hi - lo) if hi > lo else torch.zeros_like(cam)
    smap = cam.numpy().transpose(1, 2, 0) * unknown[..., None]
    return np.ascontiguousarray(smap, np.float32)
