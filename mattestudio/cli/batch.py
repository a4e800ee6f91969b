"""`mattestudio batch IMAGES_DIR --trimaps DIR --out DIR`: many images; re-runs skip finished work."""

from __future__ import annotations

import sys
from pathlib import Path

from mattestudio.cli.common import (
    add_edge_options,
    add_engine_options,
    edge_adjustments,
    make_engine,
)


def register(sub) -> None:
    p = sub.add_parser(
        "batch",
        help="matte every image of a folder",
        description="Matte every image in IMAGES_DIR with the trimap of the same name (any image "
        "extension) in --trimaps. Finished outputs are skipped on a re-run; a bad image "
        "is reported and the rest go on.",
    )
    p.add_argument("images", help="folder of input images")
    p.add_argument(
        "--trimaps", required=True, help="folder of trimaps, matched to images by file name stem"
    )
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    add_engine_options(p)
    p.add_argument(
        "--cutout", action="store_true", help="also write NAME_cutout.png (RGBA, clean colors)"
    )
    p.add_argument("--alpha-bits", type=int, choices=(8, 16), default=8)
    p.add_argument(
        "--overwrite", action="store_true", help="redo images whose outputs already exist"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_edge_options(p)
    p.set_defaults(func=run)


def _index(folder: Path) -> dict[str, Path]:
    from mattestudio.core.io import IMAGE_SUFFIXES

    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    }


def run(args) -> int:
    from tqdm import tqdm

    from mattestudio.core import io
    from mattestudio.core import trimap as trimap_ops
    from mattestudio.errors import MattestudioError
    from mattestudio.pipeline import run_matting

    images_dir, trimaps_dir, out_dir = Path(args.images), Path(args.trimaps), Path(args.out)
    for folder, what in ((images_dir, "image folder"), (trimaps_dir, "trimap folder")):
        if not folder.is_dir():
            raise MattestudioError(f"{what} not found", folder)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MattestudioError(f"cannot create the output folder: {exc.strerror}", out_dir) from exc
    images = _index(images_dir)
    if not images:
        raise MattestudioError("no images (png, jpg, tif, webp, bmp) in this folder", images_dir)
    trimaps = _index(trimaps_dir)
    engine = make_engine(args)

    done = skipped = 0
    failures: list[str] = []
    bar = tqdm(images.items(), desc="matting", unit="image", disable=args.quiet, file=sys.stderr)
    for stem, image_path in bar:
        outs = [out_dir / f"{stem}_alpha.png"] + (
            [out_dir / f"{stem}_cutout.png"] if args.cutout else []
        )
        if not args.overwrite and all(o.exists() for o in outs):
            skipped += 1
            continue
        try:
            if stem not in trimaps:
                raise MattestudioError(f"no trimap named {stem}.* in {trimaps_dir}", image_path)
            image = io.load_image(image_path)
            tri = trimap_ops.load(trimaps[stem], image.shape, image_source=image_path)
            result = run_matting(
                engine, image, tri, estimate_foreground=args.cutout, edges=edge_adjustments(args)
            )
            io.save_alpha(outs[0], result.alpha, bits=args.alpha_bits)
            if args.cutout:
                io.save_rgba(outs[1], result.foreground, result.alpha)
            done += 1
        except MattestudioError as exc:
            failures.append(str(exc))
            bar.write(f"mattestudio: {exc}", file=sys.stderr)
        finally:
            engine.reset()  # free the per-image cache before the next image
    bar.close()
    print(f"{done} done, {skipped} skipped (already done), {len(failures)} failed")
    for f in failures:
        print(f"  failed: {f}")
    return 1 if failures else 0
