"""`mattestudio batch ... --workers N | --scheduler ADDRESS`: the batch on a Dask cluster."""

from __future__ import annotations

import sys

from mattestudio.errors import MattestudioError


def run_on_cluster(args, trimaps: str, options) -> int:
    from tqdm import tqdm

    try:
        from mattestudio import dask_batch
    except ImportError as exc:
        flag = "--scheduler" if args.scheduler else "--workers"
        raise MattestudioError(
            f"{flag} needs Dask ({exc}); install it with: pip install 'mattestudio[dask]'"
        ) from None

    from pathlib import Path

    from mattestudio import batching

    # Absolute paths: workers on other machines or in other folders see the same names.
    images, trimaps_dir, out = (Path(p).resolve() for p in (args.images, trimaps, args.out))
    plan = batching.plan(images, trimaps_dir, out, options)
    batching.check_output_folder(plan.out_dir)  # before a cluster is started
    dask_batch.check_engine(options)
    if args.scheduler:
        connect = dask_batch.remote_client(args.scheduler)
    else:
        connect = dask_batch.local_client(args.workers)
    bar = tqdm(
        total=len(plan.todo), desc="matting", unit="image", disable=args.quiet, file=sys.stderr
    )

    already = {job.image for job in plan.finished}

    def show(outcome: batching.ImageOutcome) -> None:
        if outcome.image in already:
            return  # finished before this run: not on the bar, like the plain batch
        bar.update(1)
        if outcome.status == "failed":
            bar.write(f"mattestudio: {outcome.message}", file=sys.stderr)

    try:
        with connect as client:
            try:
                summary = dask_batch.run_plan(plan, options, client, show)
            finally:
                bar.close()
    finally:  # claims left by killed workers (a held claim is kept)
        batching.sweep_claims(plan)
    print(summary.line())
    return summary.exit_code
