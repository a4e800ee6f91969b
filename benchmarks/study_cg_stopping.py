"""How many conjugate-gradient iterations information-flow needs for a given alpha error, under
several stopping rules and under a perfect error oracle.

    python benchmarks/study_cg_stopping.py DATASET [--trimaps trimap1,trimap2] [--limit N]

Every full solve the engine makes (its defaults, each dataset image and the three synthetic cases
the tolerance was chosen on: the tests' composite, the tests' 280 x 360 matte and core/sample.py's
furry ball) is re-run from the engine's own start to a relative residual of 1e-10, keeping every
iterate; the errors are against that solution, on alpha clipped to [0, 1] as the engine outputs
it. Each rule is then applied to the recorded iterates: the iteration it stops at, the largest
alpha error there (any pixel, any image) and the largest mean error (any image).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _record(store: dict[str, dict], name: list[str]):
    """A Solver.solve that first records a tight solve's iterates under name[0]."""
    from mattestudio.engines.infoflow import kernels
    from mattestudio.engines.infoflow.system import Solver

    solve = Solver.solve

    def recording(self, x0=None, **kwargs):
        sysm = self.system
        b = sysm.rhs
        bnorm = float(np.sqrt(kernels.dot(b, b))) or 1.0
        x = np.array(x0, np.float64)
        r = b - sysm.matvec(x)
        z = self.factor.solve(r)
        p = z.copy()
        rz, rr = float(kernels.dot(r, z)), float(kernels.dot(r, r))
        xs, res = [x.astype(np.float32)], [np.sqrt(rr) / bnorm]
        while np.sqrt(rr) > 1e-10 * bnorm and len(xs) < 400:
            ap = sysm.matvec(p)
            a = rz / float(kernels.dot(p, ap))
            x += a * p
            r -= a * ap
            rr = float(kernels.dot(r, r))
            z = self.factor.solve(r)
            rz_new = float(kernels.dot(r, z))
            p = z + (rz_new / rz) * p
            rz = rz_new
            xs.append(x.astype(np.float32))
            res.append(np.sqrt(rr) / bnorm)
        exact = np.clip(x, 0.0, 1.0)
        it = [np.clip(v.astype(np.float64), 0.0, 1.0) for v in xs]
        steps = [np.abs(it[k] - it[k - 1]) for k in range(1, len(it))]
        store[name[0]] = {
            "max": np.array([np.abs(v - exact).max() for v in it]),
            "mean": np.array([np.abs(v - exact).mean() for v in it]),
            "residual": np.array(res),
            "step_max": np.array([np.inf] + [s.max() for s in steps]),
            "step_rms": np.array([np.inf] + [np.sqrt((s * s).mean()) for s in steps]),
        }
        print(name[0], len(xs) - 1, "iterations to 1e-10", file=sys.stderr, flush=True)
        return solve(self, x0, **kwargs)

    Solver.solve = recording  # type: ignore[method-assign]


def _cases(dataset: Path, trimaps: list[str], limit: int | None):
    from mattestudio.core import io
    from mattestudio.core import trimap as trimap_ops
    from mattestudio.core.sample import make_sample
    from tests.conftest import make_synthetic_matte

    s = make_synthetic_matte()
    yield "synthetic composite", s.image, s.trimap
    s = make_synthetic_matte(h=280, w=360, seed=5, band=10)
    yield "synthetic 280x360", s.image, s.trimap
    image, trimap, _, _ = make_sample()
    yield "furry ball", image, trimap
    names = sorted(p.name for p in (dataset / "input").iterdir())[:limit]
    for folder in trimaps:
        for name in names:
            src = dataset / "input" / name
            tri = trimap_ops.load(dataset / folder / name, io.image_size(src), image_source=src)
            yield f"{folder} {Path(name).stem}", io.load_image(src), tri


def _first(values: np.ndarray, goal: float) -> int:
    hit = np.flatnonzero(values <= goal)
    return int(hit[0]) if len(hit) else len(values) - 1


RULES = {
    "relative residual <=": lambda d, t: _first(d["residual"], t),
    "last step, max-norm <=": lambda d, t: _first(d["step_max"], t),
    "last two steps, max-norm <=": lambda d, t: _first(
        np.maximum(d["step_max"], np.r_[np.inf, d["step_max"][:-1]]), t
    ),
    "last step, RMS <=": lambda d, t: _first(d["step_rms"], t),
    "oracle: max error <=": lambda d, t: _first(d["max"], t),
    "oracle: mean error <=": lambda d, t: _first(d["mean"], t),
}
GOALS = {
    "relative residual <=": (1e-3, 3e-3, 1e-2, 3e-2),
    "last step, max-norm <=": (0.002, 0.01, 0.02),
    "last two steps, max-norm <=": (0.004, 0.01, 0.02),
    "last step, RMS <=": (5e-4, 1e-3, 2e-3),
    "oracle: max error <=": (0.002, 0.01, 0.02, 0.05),
    "oracle: mean error <=": (1e-4, 3e-4, 8e-4),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python benchmarks/study_cg_stopping.py", description=__doc__.split("\n")[0]
    )
    ap.add_argument("dataset")
    ap.add_argument("--trimaps", default="trimap1,trimap2")
    ap.add_argument("--limit", type=int)
    args = ap.parse_args(argv)
    from mattestudio.engines.infoflow.engine import InformationFlowEngine

    store: dict[str, dict] = {}
    current = [""]
    _record(store, current)
    trimaps = args.trimaps.split(",")
    for name, image, trimap in _cases(Path(args.dataset), trimaps, args.limit):
        current[0] = name
        engine = InformationFlowEngine()
        engine.prepare(image)
        engine.predict(trimap)
    synthetic = ["synthetic composite", "synthetic 280x360", "furry ball"]
    head = " | ".join(f"iterations, {t}" for t in trimaps)
    print(
        f"| rule | goal | {head} | largest error (where) | largest mean error | "
        "synthetic: iterations / largest error (composite, 280x360, ball) |"
    )
    print("|---|---|" + "---|" * len(trimaps) + "---|---|---|")
    for rule, stop in RULES.items():
        for goal in GOALS[rule]:
            at = {n: stop(d, goal) for n, d in store.items()}
            its = " | ".join(
                str(sum(k for n, k in at.items() if n.startswith(t + " "))) for t in trimaps
            )
            worst = max(at, key=lambda n: store[n]["max"][at[n]])
            mean = max(store[n]["mean"][at[n]] for n in at)
            syn = ", ".join(f"{at[n]} / {store[n]['max'][at[n]]:.3f}" for n in synthetic)
            print(
                f"| {rule} | {goal:g} | {its} | {store[worst]['max'][at[worst]]:.4f} ({worst}) | "
                f"{mean:.5f} | {syn} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
