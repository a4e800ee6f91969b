"""`mattestudio eval DATASET_DIR`: SAD, MSE, Gradient and Connectivity per image and their mean.

The folder is laid out like alphamatting.com's training set: input/, gt/ and one or more trimap
folders (trimap1/, trimap2/) holding files of the same names. As in the published protocol the
prediction is quantised to 8 bits before scoring.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from mattestudio.cli.common import add_engine_options, make_engine


def register(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="score an engine on a dataset with ground truth",
        description="Run an engine on DATASET_DIR/input with DATASET_DIR/TRIMAP and score it against "
        "DATASET_DIR/gt: SAD and Grad and Conn (/1000), MSE, seconds per image.",
    )
    p.add_argument("dataset", help="folder with input/, gt/ and trimap folders")
    p.add_argument("--trimap", default="trimap1", help="trimap folder name (default trimap1)")
    add_engine_options(p)
    p.add_argument("--limit", type=int, help="only the first N images")
    p.add_argument("--json", dest="json_out", help="also write the scores as JSON here")
    p.add_argument("--save-alpha", help="folder to write the predicted alphas into")
    p.set_defaults(func=run)


def evaluate(
    engine, dataset: Path, trimap_folder: str = "trimap1", limit=None, save_alpha=None, echo=None
) -> dict:
    """Score ``engine`` on ``dataset``. Returns {"images": [...], "mean": {...}}."""
    import numpy as np

    from mattestudio.core import io, metrics
    from mattestudio.core import trimap as trimap_ops
    from mattestudio.errors import MattestudioError, is_interrupt, naming_file
    from mattestudio.pipeline import run_matting

    inputs, gts, tris = dataset / "input", dataset / "gt", dataset / trimap_folder
    for folder in (inputs, gts, tris):
        if not folder.is_dir():
            raise MattestudioError(
                f"dataset folder {folder.name}/ not found (expected input/, gt/, {trimap_folder}/)",
                dataset,
            )
    names = sorted(p.name for p in inputs.iterdir() if p.suffix.lower() in io.IMAGE_SUFFIXES)
    if limit:
        names = names[:limit]
    if not names:
        raise MattestudioError("no images in input/", dataset)
    rows = []
    for name in names:
        tri = trimap_ops.load(tris / name, io.image_size(inputs / name), image_source=inputs / name)
        image = io.load_image(inputs / name)
        gt = io.load_gray(gts / name)
        start = time.perf_counter()
        try:
            result = run_matting(engine, image, tri, estimate_foreground=False)
        except Exception as exc:  # every engine error names the file
            if is_interrupt(exc):
                raise KeyboardInterrupt from None
            raise naming_file(exc, inputs / name, engine.info.name) from exc
        seconds = time.perf_counter() - start
        engine.reset()
        pred8 = io.to_uint(result.alpha)
        gt8 = io.to_uint(gt)
        row = {"image": name, **metrics.all_metrics(pred8, gt8, tri), "seconds": seconds}
        rows.append(row)
        if save_alpha:
            io.save_alpha(Path(save_alpha) / name, result.alpha)
        if echo:
            echo(row)
    keys = ("sad", "mse", "grad", "conn", "seconds")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    return {"engine": engine.info.name, "trimap": trimap_folder, "images": rows, "mean": mean}


def _fmt(row: dict, label: str) -> str:
    return (
        f"{label:<12} {row['sad']:9.3f} {row['mse'] * 1000:9.3f} {row['grad']:9.3f} {row['conn']:9.3f} "
        f"{row['seconds']:8.2f}"
    )


def run(args) -> int:
    from mattestudio.core.atomic import write_bytes_atomic

    engine = make_engine(args)
    if args.save_alpha:
        Path(args.save_alpha).mkdir(parents=True, exist_ok=True)
    print(f"engine {args.engine}, trimaps {args.trimap}")
    print(f"{'image':<12} {'SAD':>9} {'MSE(e-3)':>9} {'Grad':>9} {'Conn':>9} {'seconds':>8}")
    report = evaluate(
        engine,
        Path(args.dataset),
        args.trimap,
        args.limit,
        args.save_alpha,
        echo=lambda r: (print(_fmt(r, Path(r["image"]).stem)), sys.stdout.flush()),
    )
    print(_fmt(report["mean"], "mean"))
    if args.json_out:
        write_bytes_atomic(args.json_out, json.dumps(report, indent=2).encode())
    return 0
