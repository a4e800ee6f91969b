"""Information-flow engine, before (another checkout) vs after (this tree), alternating per image.

    python benchmarks/bench_infoflow.py DATASET --before /tmp/main-checkout [--trimap trimap1]

On a shared machine the load changes from minute to minute, so the two versions run one after the
other on each image (each in its own subprocess, PYTHONPATH = that tree, numba's cache in a
temporary folder of its own) and the table gives per-image ratios. Each subprocess mattes the
image twice and reports the second (warm) run: wall seconds and process CPU seconds (all threads),
for the whole call and for the conjugate-gradient solve alone (``Solver.solve``), and the solve's
iterations.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_ONE = """
import sys, time
from pathlib import Path
from mattestudio.core import io
from mattestudio.core import trimap as trimap_ops
from mattestudio.engines import registry
from mattestudio.engines.infoflow import system
from mattestudio.pipeline import run_matting

ds, folder, name = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
tri = trimap_ops.load(ds / folder / name, io.image_size(ds / "input" / name),
                      image_source=ds / "input" / name)
img = io.load_image(ds / "input" / name)
engine = registry.create("information-flow")
solve = system.Solver.solve
spent = [0.0, 0.0, 0]  # the conjugate-gradient solve: wall, process CPU, iterations


def timed(self, *args, **kwargs):
    c, w = time.process_time(), time.perf_counter()
    try:
        return solve(self, *args, **kwargs)
    finally:
        spent[0] += time.perf_counter() - w
        spent[1] += time.process_time() - c
        spent[2] += self.iterations


system.Solver.solve = timed
for _ in range(2):
    spent[:] = [0.0, 0.0, 0]
    c, w = time.process_time(), time.perf_counter()
    run_matting(engine, img, tri, estimate_foreground=False)
    engine.reset()
    c, w = time.process_time() - c, time.perf_counter() - w
print(f"{w:.4f} {c:.4f} {spent[0]:.4f} {spent[1]:.4f} {spent[2]}")
"""


def _run(tree: Path, cache: Path, dataset: Path, folder: str, name: str) -> list[float]:
    env = dict(os.environ, PYTHONPATH=str(tree), NUMBA_CACHE_DIR=str(cache))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave the other checkout untouched
    out = subprocess.run(
        [sys.executable, "-c", _ONE, str(dataset), folder, name],
        env=env,
        cwd=cache,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [float(v) for v in out]


def _load() -> float:
    return (
        float(Path("/proc/loadavg").read_text().split()[0])
        if Path("/proc/loadavg").exists()
        else 0.0
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python benchmarks/bench_infoflow.py", description=__doc__.split("\n")[0]
    )
    ap.add_argument("dataset")
    ap.add_argument("--before", required=True, help="checkout of the code to compare against")
    ap.add_argument("--trimap", default="trimap1")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--out", help="write the Markdown table here")
    args = ap.parse_args(argv)
    dataset = Path(args.dataset)
    after = Path(__file__).resolve().parent.parent
    names = sorted(p.name for p in (dataset / "input").iterdir())[: args.limit]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        caches = {v: Path(tmp) / v for v in ("before", "after")}
        for c in caches.values():
            c.mkdir()
        for name in names:
            load = _load()
            b = _run(Path(args.before), caches["before"], dataset, args.trimap, name)
            a = _run(after, caches["after"], dataset, args.trimap, name)
            rows.append((name, b, a, load))
            print(name, b, a, load, file=sys.stderr, flush=True)
    lines = [
        f"`{dataset.name}`, `{args.trimap}`, {len(rows)} images, information-flow, before = "
        f"`{args.before}`, after = this tree; load average (1 min) {min(r[3] for r in rows):.1f}"
        f"-{max(r[3] for r in rows):.1f}.",
        "",
        "| image | wall s: before / after | ratio | CPU s: before / after | ratio | CG wall s: "
        "before / after | ratio | CG CPU s: before / after | ratio | CG iterations |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cells(b, a) -> str:
        return " | ".join(f"{b[i]:.2f} / {a[i]:.2f} | {b[i] / a[i]:.2f}x" for i in range(4))

    for name, b, a, _ in rows:
        lines.append(f"| {name} | {cells(b, a)} | {b[4]:.0f} / {a[4]:.0f} |")
    tb = [sum(r[1][i] for r in rows) for i in range(5)]
    ta = [sum(r[2][i] for r in rows) for i in range(5)]
    lines.append(f"| **total** | {cells(tb, ta)} | {tb[4]:.0f} / {ta[4]:.0f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        Path(args.out).write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
