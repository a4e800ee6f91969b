"""Coarse-to-fine closed-form or information-flow (the Run path of camera-size photos) against the
exact solve on real photos: a dataset's images (alphamatting-dev, about 0.5 MP) with the memory
budget forced below each image's exact need, so the engine takes the path it takes at 12-24 MP.

    python benchmarks/bench_coarse_to_fine.py DATASET --trimap trimap1 --ratios 0.4,0.1 [--engine information-flow]

``--ratios``: budget / the exact solve's factor size (information-flow: its memory need); 0.4 gives a coarse solve at about half the
size per side, 0.1 about a quarter (12 MP with the default 2 GB: about 0.22). SAD is the field's
(8-bit prediction, / 1000, over the trimap's unknown pixels), summed over images then averaged;
CPU time is the process's (all threads).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def _load(path: Path, gray: bool = False) -> np.ndarray:
    import cv2

    if gray:
        return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0


def main(argv=None) -> int:
    from mattestudio.engines.fastcf import regional
    from mattestudio.engines.fastcf.engine import FastClosedFormEngine
    from mattestudio.engines.infoflow.engine import InformationFlowEngine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--trimap", default="trimap1")
    ap.add_argument("--ratios", default="0.4,0.1")
    ap.add_argument("--residuals", default="0.01,0", help="fine_residual values to compare")
    ap.add_argument("--engine", default="closed-form", choices=("closed-form", "information-flow"))
    args = ap.parse_args(argv)
    root = Path(args.dataset)
    ratios = [float(r) for r in args.ratios.split(",")]
    residuals = [float(r) for r in args.residuals.split(",")]
    rows: dict[str, dict[str, float]] = {}
    names = sorted(p.name for p in (root / "input").glob("*.png"))
    load0 = os.getloadavg()

    def add(key: str, sad: float, cpu: float, extra: float = 0.0) -> None:
        row = rows.setdefault(key, {"sad": 0.0, "cpu": 0.0, "fine": 0.0, "scale": 0.0})
        row["sad"] += sad / len(names)
        row["cpu"] += cpu / len(names)
        row["fine"] += extra / len(names)

    for name in names:
        image = _load(root / "input" / name)
        trimap = _load(root / args.trimap / name, gray=True)
        gt = _load(root / "gt" / name, gray=True).astype(np.float64) / 255.0
        unknown = trimap == 128
        n = int(unknown.sum())

        def sad(alpha: np.ndarray) -> float:
            q = np.round(np.clip(alpha, 0, 1) * 255) / 255
            return float(np.abs(q - gt)[unknown].sum() / 1000)  # noqa: B023

        infoflow = args.engine == "information-flow"
        kind = InformationFlowEngine if infoflow else FastClosedFormEngine
        exact = kind(incremental=False, memory_gb=64)
        exact.prepare(image)
        c = time.process_time()
        a = exact.predict(trimap)[0]
        add("exact", sad(a), time.process_time() - c, 1.0)
        for ratio in ratios:
            for res in residuals:
                if infoflow:
                    e = InformationFlowEngine(incremental=False, fine_residual=res)
                    e.prepare(image)
                    need = e._need_bytes
                    # The 2 GB budget is `ratio` times this image's need.
                    grow = 2e9 / (ratio * need(n))
                    e._need_bytes = lambda c, need=need, g=grow: need(c) * g  # type: ignore[method-assign]
                else:
                    e = FastClosedFormEngine(incremental=False, fine_residual=res)
                    e.prepare(image)
                    budget = ratio * regional.factor_entries(n)
                    e._budget_entries = lambda b=budget: b  # type: ignore[method-assign]
                c = time.process_time()
                a = e.predict(trimap)[0]
                key = f"coarse-to-fine, budget x{ratio}, fine_residual {res}"
                add(key, sad(a), time.process_time() - c, e.last_solve["fine_unknowns"] / n)
                rows[key]["scale"] += e.last_solve["scale"] / len(names)
        print(name, flush=True)
    base = rows["exact"]
    print(f"\nDataset `{root.name}`, trimaps `{args.trimap}`, {len(names)} images; load {load0}")
    print(
        "\n| solve | mean coarse scale | unknowns re-solved at full size | SAD | vs exact | CPU s / image |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for key, r in rows.items():
        scale = f"{r['scale']:.2f}" if r["scale"] else "1"
        print(
            f"| {key} | {scale} | {100 * r['fine']:.0f} % | {r['sad']:.2f} | "
            f"{100 * (r['sad'] / base['sad'] - 1):+.1f} % | {r['cpu']:.2f} |"
        )
    print(f"\nload after {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
