"""Information-flow, before (another checkout) vs after (this tree): whole call and stage by stage,
over several rounds, medians.

    python benchmarks/bench_infoflow_stages.py DATASET --before CHECKOUT [--trimap trimap1]
        [--images GT01,GT03] [--rounds 4]

Each round runs every image in one subprocess per version (PYTHONPATH = that tree, numba's cache
in a folder of its own), the two versions in turn, their order swapped every round. Each image is
matted twice and the second (warm) call kept: wall and process CPU seconds, and the stages of
that tree's ``benchmarks/profile_infoflow.py`` (wall and the CPU of the thread that ran them).
The tables give the median over rounds of each image's times and of each stage's sum over the
images. On a shared machine single runs move by 10-20 %; the medians of alternating rounds less.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
import profile_infoflow as P
P._install()
from mattestudio.core import io
from mattestudio.core import trimap as trimap_ops
from mattestudio.engines import registry
from mattestudio.pipeline import run_matting

ds, folder = Path(sys.argv[1]), sys.argv[2]
out = {}
for name in sys.argv[4].split(","):
    tri = trimap_ops.load(ds / folder / name, io.image_size(ds / "input" / name),
                          image_source=ds / "input" / name)
    img = io.load_image(ds / "input" / name)
    engine = registry.create("information-flow")
    for _ in range(2):
        P._records.clear()
        load = float(Path("/proc/loadavg").read_text().split()[0])
        c, w = time.process_time(), time.perf_counter()
        run_matting(engine, img, tri, estimate_foreground=False)
        engine.reset()
        c, w = time.process_time() - c, time.perf_counter() - w
    stages = {k: list(v) for k, v in P._records.items()}
    out[name] = {"wall": w, "cpu": c, "load": load, "stages": stages}
print(json.dumps(out))
"""


def _round(tree: Path, cache: Path, dataset: Path, folder: str, names: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), NUMBA_CACHE_DIR=str(cache))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave the other checkout untouched
    args = [str(dataset), folder, str(tree / "benchmarks"), ",".join(names)]
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        env=env,
        cwd=cache,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _tables(res: dict[str, list[dict]], names: list[str]) -> str:
    med = statistics.median
    loads = [r[n]["load"] for v in res.values() for r in v for n in names]
    lines = [
        f"{len(res['before'])} rounds, load average (1 min) {min(loads):.1f}-{max(loads):.1f}.",
        "",
        "| image | before: wall s | after: wall s | wall ratio | before: CPU s | after: CPU s "
        "| CPU ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    total = {v: [0.0, 0.0] for v in res}
    for n in names:
        row = {}
        for v in res:
            row[v] = (med(r[n]["wall"] for r in res[v]), med(r[n]["cpu"] for r in res[v]))
            total[v][0] += row[v][0]
            total[v][1] += row[v][1]
        b, a = row["before"], row["after"]
        lines.append(
            f"| {n} | {b[0]:.2f} | {a[0]:.2f} | {b[0] / a[0]:.2f}x | {b[1]:.2f} | {a[1]:.2f} "
            f"| {b[1] / a[1]:.2f}x |"
        )
    b, a = total["before"], total["after"]
    lines += [
        f"| **sum of medians** | {b[0]:.2f} | {a[0]:.2f} | **{b[0] / a[0]:.2f}x** | {b[1]:.2f} "
        f"| {a[1]:.2f} | **{b[1] / a[1]:.2f}x** |",
        "",
        "| stage (sum over the images) | calls before / after | before: wall s | after: wall s "
        "| before: thread CPU s | after: thread CPU s |",
        "|---|---|---|---|---|---|",
    ]
    labels: list[str] = []
    for v in res.values():
        for r in v:
            for n in names:
                labels += [k for k in r[n]["stages"] if k not in labels]
    for k in labels:
        cells = {}
        for v in res:
            sums = [
                [sum(r[n]["stages"].get(k, [0, 0, 0])[j] for n in names) for j in range(3)]
                for r in res[v]
            ]
            cells[v] = (med(s[0] for s in sums), med(s[1] for s in sums), int(sums[0][2]))
        b, a = cells["before"], cells["after"]
        lines.append(
            f"| {k} | {b[2]} / {a[2]} | {b[0]:.3f} | {a[0]:.3f} | {b[1]:.3f} | {a[1]:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python benchmarks/bench_infoflow_stages.py", description=__doc__.split("\n")[0]
    )
    ap.add_argument("dataset")
    ap.add_argument("--before", required=True, help="checkout of the code to compare against")
    ap.add_argument("--trimap", default="trimap1")
    ap.add_argument("--images", help="comma-separated stems (default: every image)")
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args(argv)
    dataset = Path(args.dataset)
    if args.images:
        names = [f"{s}.png" for s in args.images.split(",")]
    else:
        names = sorted(p.name for p in (dataset / "input").iterdir())
    trees = {"before": Path(args.before), "after": Path(__file__).resolve().parent.parent}
    res: dict[str, list[dict]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        for v in trees:
            (Path(tmp) / v).mkdir()
        for r in range(args.rounds):
            for v in ("before", "after") if r % 2 == 0 else ("after", "before"):
                res[v].append(_round(trees[v], Path(tmp) / v, dataset, args.trimap, names))
                print(f"round {r + 1} {v} done", file=sys.stderr, flush=True)
    print(_tables(res, names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
