"""Information-flow after a brush stroke: full solve (before) vs incremental re-solve (after).

    python benchmarks/bench_infoflow_strokes.py DATASET [--image GT09.png] [--trimap trimap1]
        [--strokes 6] [--radius 8] [--knn-eps E]

One process, two engines with the default parameters on the same image: one with
``incremental=False`` (every stroke rebuilds all flows and solves every unknown pixel: what a
stroke cost before the flows were kept) and one as shipped. Strokes are squares painted on unknown
pixels with the ground truth's side (foreground where alpha > 0.5), one after another, each applied
to both engines in turn; per stroke: wall and process CPU seconds (all threads), the mode, the
solved variables and the largest alpha difference between the two.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--image", default="GT09.png")
    ap.add_argument("--trimap", default="trimap1")
    ap.add_argument("--strokes", type=int, default=6)
    ap.add_argument("--radius", type=int, default=8)
    ap.add_argument("--knn-eps", type=float, default=None, help="else the engine's default")
    args = ap.parse_args()

    from mattestudio.core import io
    from mattestudio.core import trimap as trimap_ops
    from mattestudio.engines.infoflow.engine import InformationFlowEngine

    ds = args.dataset
    img = io.load_image(ds / "input" / args.image)
    tri = trimap_ops.load(
        ds / args.trimap / args.image,
        io.image_size(ds / "input" / args.image),
        image_source=ds / "input" / args.image,
    )
    gt = io.load_image(ds / "gt" / args.image)
    gt = gt[..., 0] if gt.ndim == 3 else gt
    extra = {} if args.knn_eps is None else {"knn_eps": args.knn_eps}
    before = InformationFlowEngine(incremental=False, **extra)
    after = InformationFlowEngine(**extra)
    for engine in (before, after):
        engine.prepare(img)
        engine.predict(tri)
    rng = np.random.default_rng(0)
    ys, xs = np.nonzero(tri == 128)
    r = args.radius
    load = Path("/proc/loadavg").read_text().split()[0]
    print(
        f"{args.image} {tri.shape[1]}x{tri.shape[0]}, {int((tri == 128).sum())} unknown, "
        f"load {load}"
    )
    print(
        "| stroke | full s (CPU s) | incremental s (CPU s) | wall ratio | CPU ratio | mode | "
        "solved / unknown | max diff |"
    )
    print("|---|---|---|---|---|---|---|---|")
    tw = [0.0, 0.0]
    tc = [0.0, 0.0]
    for i in range(args.strokes):
        j = int(rng.integers(len(ys)))
        y, x = int(ys[j]), int(xs[j])
        value = 255 if gt[y, x] > 0.5 else 0
        tri = tri.copy()
        tri[max(y - r, 0) : y + r, max(x - r, 0) : x + r] = value
        out = []
        for k, engine in enumerate((before, after)):
            c, w = time.process_time(), time.perf_counter()
            alpha, _ = engine.predict(tri)
            w, c = time.perf_counter() - w, time.process_time() - c
            tw[k] += w
            tc[k] += c
            out.append((w, c, alpha))
        (w0, c0, a0), (w1, c1, a1) = out
        print(
            f"| {i + 1} | {w0:.2f} ({c0:.2f}) | {w1:.2f} ({c1:.2f}) | {w0 / w1:.1f}x | "
            f"{c0 / c1:.1f}x | {after.last_mode} | {after.solved} / {int((tri == 128).sum())} | "
            f"{float(np.abs(a0 - a1).max()):.3f} |"
        )
    print(
        f"| all | {tw[0]:.2f} ({tc[0]:.2f}) | {tw[1]:.2f} ({tc[1]:.2f}) | "
        f"{tw[0] / tw[1]:.1f}x | {tc[0] / tc[1]:.1f}x | | | |"
    )
    print("load", Path("/proc/loadavg").read_text().split()[0])


if __name__ == "__main__":
    main()
