"""Where one ``mattestudio.matte`` call spends its time, stage by stage, for information-flow and
closed-form on the same image.

    python benchmarks/profile_infoflow.py DATASET [--images GT09,GT01] [--trimap trimap1] [--rounds 2]

Each stage function is wrapped with a timer (wall seconds, and CPU seconds of the thread that ran
it: stages on a second thread show CPU beside the main thread's wall). Calls nest (a stage's time
includes its sub-stages). The first round warms numba's cache and is not shown; the table is the
last round. Also prints each call's wall and process CPU (all threads) with and without the
foreground estimate.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

# (module, attribute, label); "Class.method" attributes wrap a method.
STAGES = [
    ("mattestudio.engines.infoflow.engine", "InformationFlowEngine.prepare", "prepare"),
    ("mattestudio.engines.fastcf.engine", "FastClosedFormEngine.prepare", "prepare"),
    ("mattestudio.engines.infoflow.flows", "known_to_unknown_rows", "flows: known-to-unknown"),
    ("mattestudio.engines.infoflow.flows", "_mix_rows", "flows: colour mixture"),
    ("mattestudio.engines.infoflow.flows", "_intra_rows", "flows: intra-unknown"),
    ("mattestudio.engines.infoflow.flows", "knn_with_reach", "  neighbour search"),
    ("mattestudio.engines.infoflow.flows", "lle_weights", "  LLE weights"),
    ("mattestudio.engines.infoflow.flows", "_mix_database", "flows: mixture database"),
    ("mattestudio.engines.infoflow.flows", "_mix_matrix", "flows: mixture matrix"),
    ("mattestudio.engines.infoflow.flows", "_intra_matrix", "flows: intra matrix"),
    ("mattestudio.engines.infoflow.flows", "search_rows", "flows: search rows"),
    ("mattestudio.engines.infoflow.system", "local_part", "local part"),
    ("mattestudio.engines.infoflow.system", "local_with_confidence", "local part (thread)"),
    ("mattestudio.engines.fastcf.laplacian", "assemble", "  Laplacian assembly"),
    ("mattestudio.engines.fastcf.regional", "assemble", "Laplacian assembly (closed-form)"),
    ("mattestudio.engines.fastcf.direct", "factorize", "  factorisation"),
    ("mattestudio.engines.fastcf.direct", "plan", "    ordering + symbolic"),
    ("mattestudio.engines.fastcf.tree_solve", "TreeSolver.__init__", "  tree split + float32"),
    ("mattestudio.engines.infoflow.engine", "_Background.get", "wait for a value"),
    ("mattestudio.engines.infoflow.engine", "_Background.result", "wait for the factor"),
    ("mattestudio.engines.infoflow.system", "build", "system build"),
    ("mattestudio.engines.infoflow.system", "Solver.solve", "CG solve"),
    ("mattestudio.engines.infoflow.system", "System.matvec", "  matvec"),
    ("mattestudio.engines.infoflow.system", "System.nonlocal_matvec", "  matvec, non-local part"),
    ("mattestudio.engines.infoflow.system", "System.mix_transpose", "  D^T (first product)"),
    ("mattestudio.engines.fastcf.tree_solve", "TreeSolver.solve", "  preconditioner solve"),
    ("mattestudio.engines.fastcf.direct", "Factor.solve", "factor solve (closed-form)"),
    ("mattestudio.engines.infoflow.engine", "InformationFlowEngine._output", "output levels"),
    ("mattestudio.engines.foreground", "estimate_foreground", "foreground estimate"),
]

_records: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
_lock = threading.Lock()


def _wrap(label, fn):
    def timed(*args, **kwargs):
        w, c = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            w, c = time.perf_counter() - w, time.thread_time() - c
            with _lock:
                rec = _records[label]
                rec[0] += w
                rec[1] += c
                rec[2] += 1

    return timed


def _install() -> None:
    for module, attr, label in STAGES:
        mod = importlib.import_module(module)
        if "." in attr:
            cls_name, meth = attr.split(".")
            cls = getattr(mod, cls_name)
            setattr(cls, meth, _wrap(label, getattr(cls, meth)))
        else:
            setattr(mod, attr, _wrap(label, getattr(mod, attr)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/profile_infoflow.py")
    ap.add_argument("dataset")
    ap.add_argument("--images", default="GT09,GT01")
    ap.add_argument("--trimap", default="trimap1")
    ap.add_argument("--engines", default="closed-form,information-flow")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    _install()
    import mattestudio

    ds = Path(args.dataset)
    for image in args.images.split(","):
        for engine in args.engines.split(","):
            for fg in (False, True):
                for _ in range(args.rounds):
                    _records.clear()
                    w, c = time.perf_counter(), time.process_time()
                    mattestudio.matte(
                        ds / "input" / f"{image}.png",
                        ds / args.trimap / f"{image}.png",
                        engine,
                        estimate_foreground=fg,
                    )
                    w, c = time.perf_counter() - w, time.process_time() - c
                print(
                    f"\n{image} {args.trimap} {engine} foreground={fg}: wall {w:.3f} s, "
                    f"process CPU {c:.3f} s (load {_load():.1f})"
                )
                if fg:
                    continue
                print(f"  {'stage':<30} {'calls':>5} {'wall s':>8} {'thread CPU s':>12}")
                for _, _, label in STAGES:
                    if label in _records:
                        rw, rc, n = _records[label]
                        print(f"  {label:<30} {n:>5} {rw:8.3f} {rc:12.3f}")
    return 0


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


if __name__ == "__main__":
    sys.exit(main())
