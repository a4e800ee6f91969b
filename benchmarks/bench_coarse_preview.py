"""Live's coarse preview brought to full size: bilinear resize vs the engine process's guided
upsampling (`ui.engine_process.full_size_preview`), against the full-resolution solve.

    python benchmarks/bench_coarse_preview.py ../shared/data/alphamatting-dev [--trimap trimap1]

SAD (x1000 as the field reports it) over the trimap's unknown pixels, known pixels exact in all
three; the coarse scale is the one the editor picks for Live (`ui.run_control.coarse_scale`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> int:
    import cv2

    import mattestudio
    from mattestudio.core.trimap import downscaled
    from mattestudio.ui.engine_process import full_size_preview
    from mattestudio.ui.run_control import coarse_scale

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dataset")
    ap.add_argument("--trimap", default="trimap1")
    ap.add_argument("--engine", default="closed-form")
    args = ap.parse_args()
    root = Path(args.dataset)
    rows = []
    for path in sorted((root / "input").glob("*.png")):
        image = cv2.imread(str(path))[:, :, ::-1].astype(np.float32) / 255
        trimap = cv2.imread(str(root / args.trimap / path.name), cv2.IMREAD_GRAYSCALE)
        gt = cv2.imread(str(root / "gt" / path.name), cv2.IMREAD_GRAYSCALE) / 255.0
        h, w = trimap.shape
        scale = coarse_scale(h, w) or 1.0
        small_image, small_trimap = downscaled(image, trimap, scale)
        small = mattestudio.matte(small_image, small_trimap, engine=args.engine)
        t0 = time.perf_counter()
        guided = full_size_preview(small, small_image, image, trimap).alpha
        seconds = time.perf_counter() - t0
        bilinear = np.clip(cv2.resize(small.alpha, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)
        full = mattestudio.matte(image, trimap, engine=args.engine).alpha
        unknown = trimap == 128

        def sad(alpha, unknown=unknown, gt=gt):
            return float(np.abs(alpha - gt)[unknown].sum()) / 1000

        rows.append((path.stem, scale, sad(bilinear), sad(guided), sad(full), seconds))
    print(f"| image | scale | bilinear | guided | full solve | guided ms |  ({args.trimap})")
    print("|---|---|---|---|---|---|")
    for name, scale, b, g, f, s in rows:
        print(f"| {name} | {scale:.2f} | {b:.2f} | {g:.2f} | {f:.2f} | {1000 * s:.0f} |")
    mean = np.mean([r[2:] for r in rows], axis=0)
    print(f"| **mean** | | {mean[0]:.2f} | {mean[1]:.2f} | {mean[2]:.2f} | {mean[3] * 1000:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
