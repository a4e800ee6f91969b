"""`mattestudio batch IMAGES_DIR --trimaps DIR --out DIR`: many images; re-runs skip finished work."""

from __future__ import annotations

import sys

from mattestudio.cli.common import (
    add_edge_options,
    add_engine_options,
    edge_adjustments,
)


def register(sub) -> None:
    p = sub.add_parser(
        "batch",
        help="matte every image of a folder",
        description="Matte every image in IMAGES_DIR with the trimap of the same name (any image "
        "extension) in --trimaps. Trimaps and outputs of earlier runs (NAME_trimap, NAME_alpha, "
        "NAME_cutout) are not matted; editor projects (NAME.mattestudio) render with the engine "
        "and parameters saved in them. Finished outputs are skipped on a re-run, and batches "
        "sharing an output folder share the work; a bad image is reported with its file name, "
        "the rest go on, and the exit status is 1 if any failed.",
    )
    p.add_argument("images", help="folder of input images")
    p.add_argument(
        "--trimaps",
        help="folder of trimaps, matched to images by file name stem (NAME.png or "
        "NAME_trimap.png); default: the image folder (NAME_trimap.png next to NAME.png)",
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
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="matte on N local worker processes (a Dask LocalCluster; pip install mattestudio[dask])",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="matte on an existing Dask cluster, e.g. tcp://host:8786 (see README, Many machines)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from mattestudio import batching as batch
    from mattestudio.cli.common import engine_params

    options = batch.BatchOptions(
        engine=args.engine,
        params=engine_params(args),
        cutout=args.cutout,
        alpha_bits=args.alpha_bits,
        overwrite=args.overwrite,
        edges=edge_adjustments(args),
    )
    trimaps = args.trimaps if args.trimaps is not None else args.images
    if args.workers is not None or args.scheduler:
        from mattestudio.cli.batch_dask import run_on_cluster

        return run_on_cluster(args, trimaps, options)
    plan = batch.plan(args.images, trimaps, args.out, options)
    batch.check_output_folder(plan.out_dir)  # before any solve
    engines = batch.Engines()
    engines.get(options)  # an unknown or unavailable engine stops the run before any image
    summary = batch.Summary(ignored=len(plan.ignored))
    for job in plan.finished:
        summary.add(batch.ImageOutcome(job.image, "skipped"))
    bar = tqdm(plan.todo, desc="matting", unit="image", disable=args.quiet, file=sys.stderr)
    try:
        for job in bar:
            outcome = batch.process_job(job, engines, options)
            summary.add(outcome)
            if outcome.status == "failed":
                bar.write(f"mattestudio: {outcome.message}", file=sys.stderr)
    finally:
        bar.close()
        batch.sweep_claims(plan)  # an interrupted claim leaves no file behind
    print(summary.line())
    return summary.exit_code
