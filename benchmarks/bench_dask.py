"""Plain batch vs the batch on a Dask LocalCluster of 1 and 2 workers, side by side in one run.

    python benchmarks/bench_dask.py ../shared/data/alphamatting-dev [--trimap trimap1]
        [--engine closed-form] [--rounds 2] [--out FILE.md]

Every mode mattes the same images into its own folder; the outputs are checked byte for byte
against the plain run's. Two measures:

- warm, in one process: the plain batch (``batching.run``) and ``dask_batch.run`` on clusters
  started beforehand whose workers have matted the images once (engines created, JIT compiled);
  the modes alternate for ``--rounds`` rounds and the best round of each is kept. Overhead per
  image = (1 worker - plain) / images; speed-up = plain / 2 workers.
- cold, what a user sees: the ``mattestudio batch`` command end to end (Python start, imports,
  cluster start, first-image compilation), once per mode.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _cli(images: Path, trimaps: Path, out: Path, engine: str, extra: list[str]) -> float:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "mattestudio", "batch", str(images), "--trimaps", str(trimaps)]
    cmd += ["--out", str(out), "--engine", engine, "--quiet", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return seconds


def _spin(_: int = 0) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(6_000_000):
        x += i * i % 7
    return time.perf_counter() - t0


def _capacity() -> float:
    """How many cores this machine gives us now: the throughput of 2 processes running the same
    pure-CPU loop at once over 1 process running it alone (2.0 on an idle 2-core machine)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        alone = min(pool.map(_spin, [0]) + pool.map(_spin, [0]))
        together = max(pool.map(_spin, [0, 1], chunksize=1))
    return 2 * alone / together


def _tiny_images(folder: Path, count: int) -> None:
    import numpy as np

    from mattestudio.core import io

    folder.mkdir(parents=True)
    yy, xx = np.mgrid[:24, :24]
    disc = np.hypot(yy - 12, xx - 12)
    trimap = np.where(disc < 6, 255, np.where(disc < 9, 128, 0)).astype(np.uint8)
    for i in range(count):
        image = np.random.default_rng(i).random((24, 24, 3)).astype(np.float32)
        io.save_rgb(folder / f"t{i:03d}.png", image)
        io.save_trimap(folder / f"t{i:03d}_trimap.png", trimap)


def main(argv=None) -> int:
    from mattestudio import batching, dask_batch
    from mattestudio.machine import summary

    ap = argparse.ArgumentParser(
        prog="python benchmarks/bench_dask.py", description=__doc__.split("\n")[0]
    )
    ap.add_argument("dataset")
    ap.add_argument("--trimap", default="trimap1")
    ap.add_argument("--engine", default="closed-form")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", help="write the Markdown report here")
    ap.add_argument("--no-cold", action="store_true", help="skip the end-to-end commands")
    args = ap.parse_args(argv)

    images, trimaps = Path(args.dataset) / "input", Path(args.dataset) / args.trimap
    n = len(batching.plan(images, trimaps, tempfile.gettempdir()).todo)
    load_before = os.getloadavg()
    capacity_before = _capacity()
    work = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    options = batching.BatchOptions(engine=args.engine, overwrite=True)
    warm: dict[str, list[float]] = {"plain": [], "1 worker": [], "2 workers": []}
    inside: dict[str, list[float]] = {k: [] for k in warm}  # seconds per image in process_one
    spread: dict[str, str] = {}  # images per worker process
    try:
        # --- warm, in one process -------------------------------------------------------------
        startup = {}
        with contextlib.ExitStack() as stack:
            t0 = time.perf_counter()
            c1 = stack.enter_context(dask_batch.local_client(1))
            startup["1 worker"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            c2 = stack.enter_context(dask_batch.local_client(2))
            startup["2 workers"] = time.perf_counter() - t0
            runs = {
                "plain": lambda out: batching.run(images, trimaps, out, options),
                "1 worker": lambda out: dask_batch.run(images, trimaps, out, options, c1),
                "2 workers": lambda out: dask_batch.run(images, trimaps, out, options, c2),
            }
            for label, run in runs.items():  # warm-up: engines created, kernels compiled
                print(f"warm-up: {label}", file=sys.stderr, flush=True)
                run(work / f"warmup-{label}")
            for r in range(args.rounds):
                for label, run in runs.items():
                    out = work / f"{label}-{r}"
                    t0 = time.perf_counter()
                    result = run(out)
                    warm[label].append(time.perf_counter() - t0)
                    assert result.count("done") == n, result.line()
                    inside[label].append(sum(o.seconds for o in result.outcomes))
                    if label != "plain":
                        spread[label] = "/".join(map(str, result.images_per_worker.values()))
                    print(f"round {r}: {label}: {warm[label][-1]:.2f} s", file=sys.stderr)
            # --- overhead: images so small that matting costs nothing, so the time is the batch's
            tiny = work / "tiny"
            _tiny_images(tiny, 40)
            tiny_runs = {
                "plain": lambda out, t=tiny: batching.run(t, t, out, options),
                "1 worker": lambda out, t=tiny: dask_batch.run(t, t, out, options, c1),
            }
            tiny_s: dict[str, list[float]] = {k: [] for k in tiny_runs}
            for r in range(args.rounds + 1):
                for label, run in tiny_runs.items():
                    t0 = time.perf_counter()
                    run(work / f"tiny-{label}-{r}")
                    tiny_s[label].append(time.perf_counter() - t0)
            tiny_overhead = (min(tiny_s["1 worker"]) - min(tiny_s["plain"])) / 40
        reference = _files(work / "plain-0")
        for label in warm:
            for r in range(args.rounds):
                assert _files(work / f"{label}-{r}") == reference, f"{label} differs from plain"

        # --- cold, the command a user runs -----------------------------------------------------
        cold = dict.fromkeys(warm, float("nan"))
        for label, extra in (
            []
            if args.no_cold
            else (
                ("plain", []),
                ("1 worker", ["--workers", "1"]),
                ("2 workers", ["--workers", "2"]),
            )
        ):
            print(f"cold: {label}", file=sys.stderr, flush=True)
            out = work / f"cold-{label}"
            cold[label] = _cli(images, trimaps, out, args.engine, extra)
            assert _files(out) == reference, f"mattestudio batch {extra} differs from plain"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    capacity_after = _capacity()

    best = {k: min(v) for k, v in warm.items()}
    lines = [
        f"Dataset `{Path(args.dataset).name}` (`input`, `{args.trimap}`), {n} images, engine "
        f"`{args.engine}`, {args.rounds} warm rounds (best kept). Machine: "
        f"{summary('numpy', 'scipy', 'numba', 'dask', 'distributed')}. Load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (1 min). Outputs of every mode "
        "equal the plain run's byte for byte. Cores available to us (2 processes of a pure-CPU "
        f"loop vs 1): {capacity_before:.2f} before, {capacity_after:.2f} after.",
        "",
        "| mode | warm: s / batch | s / image | vs plain | matting s / image (inside) | "
        "images per worker | cold command: s | vs plain |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label in warm:
        i = warm[label].index(best[label])
        lines.append(
            f"| {label} | {best[label]:.2f} | {best[label] / n:.3f} | "
            f"{best['plain'] / best[label]:.2f}x | {inside[label][i] / n:.3f} | "
            f"{spread.get(label, '-')} | {cold[label]:.2f} | {cold['plain'] / cold[label]:.2f}x |"
        )
    overhead = (best["1 worker"] - best["plain"]) / n
    lines += [
        "",
        f"- Overhead per image of the Dask path, measured on 40 images of 24x24 pixels (matting "
        f"costs nothing): {tiny_overhead * 1000:+.1f} ms "
        f"(plain {min(tiny_s['plain']) / 40 * 1000:.1f} ms, 1 worker "
        f"{min(tiny_s['1 worker']) / 40 * 1000:.1f} ms per image).",
        f"- 1 worker vs plain on the dataset (warm): {overhead * 1000:+.0f} ms per image "
        f"({best['1 worker'] / best['plain']:.2f}x the plain batch's time).",
        f"- Speed-up with 2 workers: {best['plain'] / best['2 workers']:.2f}x warm, "
        f"{cold['plain'] / cold['2 workers']:.2f}x for the whole command.",
        f"- Starting the LocalCluster: {startup['1 worker']:.1f} s (1 worker), "
        f"{startup['2 workers']:.1f} s (2 workers), paid once per command.",
        "- Every warm round (s): "
        + "; ".join(f"{k}: {', '.join(f'{s:.2f}' for s in v)}" for k, v in warm.items()),
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        Path(args.out).write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
