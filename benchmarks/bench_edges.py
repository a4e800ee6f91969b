"""Edge adjustments at 1 MP: what a slider change costs, side by side with re-running the engine.

    python benchmarks/bench_edges.py [--size 1000] [--repeat 7] [--no-engine] [--out FILE.md]

A slider change in the editor recomputes the adjusted alpha (and the composite shown) from the
engine's result; the engine itself does not run. This times each adjustment alone, typical and
extreme combinations, the adjusted preview composite, and (once) the fast closed-form engine on the
same image, all in one run, and reports medians and ratios. The machine is described in the output.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def scene(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The built-in sample (hair-like strands) scaled to size x size: image, trimap, alpha, fg."""
    import cv2

    from mattestudio.core.sample import make_sample

    image, trimap, alpha, fg = make_sample()

    def up(a, interp=cv2.INTER_LINEAR):
        return cv2.resize(np.ascontiguousarray(a), (size, size), interpolation=interp)

    return up(image), up(trimap, cv2.INTER_NEAREST), np.clip(up(alpha), 0, 1), up(fg)


def timed(fn, repeat: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds (CPU time of all threads: less sensitive to other jobs on
    a shared machine than the wall time, but counts OpenCV's worker threads too)."""
    fn()  # warm-up (first-call allocations, OpenCV dispatch)
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall) * 1000.0, statistics.median(cpu) * 1000.0


def main(argv=None) -> int:
    from mattestudio.core import compositing, edges
    from mattestudio.core.edges import EdgeAdjustments
    from mattestudio.machine import summary

    ap = argparse.ArgumentParser(
        prog="python benchmarks/bench_edges.py", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--size", type=int, default=1000, help="image side in pixels (default 1000)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-engine", action="store_true", help="skip the engine reference run")
    ap.add_argument("--out", help="write the Markdown table here")
    args = ap.parse_args(argv)

    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    image, trimap, alpha, fg = scene(args.size)
    bg = compositing.background_array("white", *alpha.shape)
    cases = [
        ("Smooth 3 px", EdgeAdjustments(smooth=3)),
        ("Feather 2 px", EdgeAdjustments(feather=2)),
        ("Feather 12 px", EdgeAdjustments(feather=12)),
        ("Feather 60 px", EdgeAdjustments(feather=60)),
        ("Contrast 40 %", EdgeAdjustments(contrast=40)),
        ("Shift Edge +2.5 px", EdgeAdjustments(shift_edge=2.5)),
        ("Shift Edge -10 px", EdgeAdjustments(shift_edge=-10)),
        ("Decontaminate 0.5", EdgeAdjustments(decontaminate=0.5)),
        (
            "typical: Smooth 2, Feather 1, Contrast 20, Shift -1.5, Decont. 0.8",
            EdgeAdjustments(smooth=2, feather=1, contrast=20, shift_edge=-1.5, decontaminate=0.8),
        ),
        (
            "extreme: Smooth 20, Feather 60, Contrast 50, Shift +30",
            EdgeAdjustments(smooth=20, feather=60, contrast=50, shift_edge=30),
        ),
    ]
    rows = []
    for label, e in cases:
        ms = timed(lambda e=e: edges.apply(alpha, fg, image, e), args.repeat)

        def preview(e=e):  # what a slider change costs in the composite view
            a, f = edges.apply(alpha, fg, image, e)
            return compositing.composite(f, a, bg)

        rows.append((label, *ms, *timed(preview, args.repeat)))
    base_preview, base_cpu = timed(lambda: compositing.composite(fg, alpha, bg), args.repeat)

    def textbook():  # the composite as it was computed before (alpha F + (1 - alpha) B)
        a = alpha[:, :, None]
        return (a * fg + (1.0 - a) * bg).astype(np.float32)

    old_preview, old_cpu = timed(textbook, args.repeat)

    engine_ms = None
    if not args.no_engine:
        from mattestudio.engines import registry
        from mattestudio.pipeline import run_matting

        print("running the closed-form engine once for reference ...", file=sys.stderr)
        t = time.perf_counter()
        run_matting(registry.create("closed-form"), image, trimap)
        engine_ms = (time.perf_counter() - t) * 1000.0

    h, w = alpha.shape
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"{w}x{h} ({w * h / 1e6:.1f} MP), median of {args.repeat} runs. "
        f"Machine: {summary('numpy', 'cv2')}; load average {load0:.1f} at the start, "
        f"{load:.1f} at the end.",
        "",
        "| adjustment | adjust, wall (ms) | adjust, CPU (ms) | adjust + composite preview, "
        "wall / CPU (ms) | preview vs re-running the engine (wall) |",
        "|---|---|---|---|---|",
    ]
    for label, ms, cpu, pv, pv_cpu in rows:
        ratio = f"{engine_ms / pv:.0f}x faster" if engine_ms else "-"
        lines.append(f"| {label} | {ms:.1f} | {cpu:.1f} | {pv:.1f} / {pv_cpu:.1f} | {ratio} |")
    lines.append(
        f"| (no adjustment: composite only) | 0 | 0 | {base_preview:.1f} / {base_cpu:.1f} | - |"
    )
    lines.append(
        f"| (composite only, textbook form as before) | 0 | 0 | {old_preview:.1f} / "
        f"{old_cpu:.1f} | {old_preview / base_preview:.2f}x the in-place wall time |"
    )
    if engine_ms:
        lines.append(f"| closed-form engine run (reference) | - | - | {engine_ms:.0f} | 1x |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        Path(args.out).write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
