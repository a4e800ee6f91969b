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
        d = cv2.distanceTransform(
            (~mask).astype(np.uint8) * 255, cv2.DIST_L2, cv2.DIST_MASK_PRECISE
        )
        d2 = d.astype(np.float32) ** 2
        for j, s in enumerate(SIGMAS):
            out[..., 3 * k + j] = np.exp(-d2 / (2 * s * s))
    return out


def starts(side: int, size: int) -> list[int]:
    if side <= size:
        return [0]
    s = list(range(0, side - size, size // 2))
    return s + [side - size]


#: Pixels per classifier batch: 36 patches of 320 px or 5 of 800 px. Same-size patches share one
#: forward (one set of larger GEMMs instead of many tiny ones); the cap bounds activation memory
#: (about 0.6 GB of bf16 activations at the cap).
BATCH_PIXELS = 3_700_000


def _patch_key(tri: np.ndarray, y: int, x: int, ph: int, pw: int) -> tuple:
    """A patch's classifier input is the fixed image plus this trimap crop: equal crops, equal CAMs."""
    import hashlib

    return (y, x, ph, pw), hashlib.blake2b(
        np.ascontiguousarray(tri[y : y + ph, x : x + pw]).tobytes(), digest_size=16
    ).digest()


def semantic_trimap(
    classifier,
    img_n: np.ndarray,
    tri: np.ndarray,
    run,
    progress=None,
    cancel=None,
    cache: dict | None = None,
) -> np.ndarray:
    """H x W x 20 smap. ``run(module, n_h_w_4_array) -> N x 20 x h x w CAM tensor`` applies device,
    precision and layout.

    ``cache`` (optional, owned by the caller and valid for one image, classifier and precision)
    maps each patch window to (hash of its trimap crop, its low-resolution CAM): when the trimap
    changes, only patches whose crop changed run the classifier again."""
    import torch
    import torch.nn.functional as F

    H, W = tri.shape
    unknown = tri == 128
    jobs = []
    for size in PATCHES:
        ph, pw = min(size, H), min(size, W)
        for y in starts(H, size):
            for xx in starts(W, size):
                if unknown[y : y + ph, xx : xx + pw].any():
                    jobs.append((y, xx, ph, pw))
    keys = [_patch_key(tri, *job) for job in jobs]
    cams: dict[int, torch.Tensor] = {}
    if cache is not None:
        for i, (where, digest) in enumerate(keys):
            hit = cache.get(where)
            if hit is not None and hit[0] == digest:
                cams[i] = hit[1]
    todo = [i for i in range(len(jobs)) if i not in cams]
    # batches of same-size patches, in job order
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in todo:
        if cur and (
            jobs[i][2:] != jobs[cur[0]][2:]
            or (len(cur) + 1) * jobs[i][2] * jobs[i][3] > BATCH_PIXELS
        ):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    if todo:
        tri_f = tri.astype(np.float32) / 255.0
        done = 0
        for batch in batches:
            if cancel is not None:
                cancel.raise_if_cancelled()
            if progress is not None:
                progress(
                    done / len(todo),
                    f"SIM: classifying patch {done + 1} of {len(todo)}"
                    + (f" (+{len(jobs) - len(todo)} unchanged)" if len(todo) < len(jobs) else ""),
                )
            _, _, ph, pw = jobs[batch[0]]
            x = np.empty((len(batch), ph, pw, 4), np.float32)
            for n, i in enumerate(batch):
                y, xx = jobs[i][:2]
                x[n, ..., :3] = img_n[y : y + ph, xx : xx + pw]
                x[n, ..., 3] = tri_f[y : y + ph, xx : xx + pw]
            out = run(classifier, x).float().cpu()
            for n, i in enumerate(batch):
                # channels-last: the resized CAM is then already H x W x 20, the stitching layout
                cams[i] = out[n : n + 1].contiguous(memory_format=torch.channels_last)
                if cache is not None:
                    cache[keys[i][0]] = (keys[i][1], cams[i])
            done += len(batch)
    # Stitch in job order (the published order) in H x W x 20, the layout the network reads.
    acc = torch.zeros(H, W, 20)
    cover = torch.zeros(H, W, 1)
    for i, (y, xx, ph, pw) in enumerate(jobs):
        up = F.interpolate(cams[i], size=(ph, pw), mode="bilinear", align_corners=False)
        acc[y : y + ph, xx : xx + pw] += up[0].permute(1, 2, 0)
        cover[y : y + ph, xx : xx + pw] += 1
    acc /= cover.clamp_(min=1)
    lo, hi = acc.min(), acc.max()
    if hi > lo:
        acc -= lo
        acc /= hi - lo
    else:
        acc.zero_()
    acc *= torch.from_numpy(unknown)[..., None]
    return acc.numpy()
