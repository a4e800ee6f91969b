"""Benchmark of the fast closed-form engine against pymatting's closed-form and KNN matting.

    python benchmarks/bench_closed_form.py DATASET_DIR [--trimap trimap1] [--out docs/benchmarks-closed-form.md]

DATASET_DIR has the alphamatting-dev layout: input/, trimap1/, trimap2/, gt/ with matching names.
One run measures, side by side: seconds (wall and CPU), SAD and MSE per image for the three engines;
stroke-to-preview latency of the fast engine (a brush disc painted near the edge, then predict())
on 1- and 4-megapixel upscales, with its difference to a full solve; peak memory of one solve per
engine in a fresh subprocess, a 12-megapixel solve, and the first-use numba compile time.
Not a test: numbers depend on the machine and its load (the load average is recorded).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ENGINES = ("closed-form", "closed-form-pymatting", "knn")


def _load(dataset: Path, name: str, trimap_dir: str):
    from mattestudio.core import trimap as trimap_ops
    from mattestudio.core.io import load_gray, load_image

    image = load_image(dataset / "input" / name)
    trimap = trimap_ops.load(dataset / trimap_dir / name, image.shape)
    gt_path = dataset / "gt" / name
    gt = load_gray(gt_path) if gt_path.exists() else None
    return image, trimap, gt


def _upscale(image, trimap, pixels: float):
    import cv2

    h, w = trimap.shape
    s = (pixels / (h * w)) ** 0.5
    size = (int(round(w * s)), int(round(h * s)))
    img = np.clip(cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), 0, 1).astype(np.float32)
    return img, cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST)


def _solve(name: str, image, trimap, **params):
    """One cold solve (prepare + predict) through the pipeline; (alpha, wall s, cpu s)."""
    from mattestudio.engines import registry
    from mattestudio.pipeline import run_matting

    engine = registry.create(name, **params)
    w0, c0 = time.perf_counter(), time.process_time()
    result = run_matting(engine, image, trimap, estimate_foreground=False)
    return result.alpha, time.perf_counter() - w0, time.process_time() - c0


def _warm_up() -> None:
    """Load every engine's compiled kernels once so no timing includes numba compilation."""
    for name in ENGINES:
        _warm_up_one(name)


# -- strokes --------------------------------------------------------------------------------


def _stroke(trimap, rng, radius: int, kind: str):
    """A disc near the edge: unknown -> foreground, or foreground -> unknown (widening the band)."""
    import cv2

    unknown = trimap == 128
    if kind == "to_fg":
        ys, xs = np.nonzero(unknown)
        target, value = unknown, 255
    else:  # foreground pixels next to the unknown band
        near = cv2.dilate(unknown.astype(np.uint8), np.ones((2 * radius + 1,) * 2, np.uint8)) > 0
        ys, xs = np.nonzero(near & (trimap == 255))
        target, value = trimap == 255, 128
        if len(ys) == 0:
            ys, xs = np.nonzero(unknown)
    i = rng.integers(len(ys))
    out = trimap.copy()
    y0, x0 = ys[i], xs[i]
    h, w = trimap.shape
    yy, xx = np.ogrid[
        max(0, y0 - radius) : min(h, y0 + radius + 1), max(0, x0 - radius) : min(w, x0 + radius + 1)
    ]
    disc = (yy - y0) ** 2 + (xx - x0) ** 2 <= radius * radius
    view = out[yy.min() : yy.max() + 1, xx.min() : xx.max() + 1]
    view[disc & target[yy.min() : yy.max() + 1, xx.min() : xx.max() + 1]] = value
    return out


def stroke_latency(
    image, trimap, gt, strokes: int, checks: int, radius: int, seed: int = 0
) -> dict:
    from mattestudio.core.metrics import sad
    from mattestudio.engines import registry

    engine = registry.create("closed-form")
    w0 = time.perf_counter()
    engine.prepare(image)
    engine.predict(trimap)
    first = time.perf_counter() - w0
    rng = np.random.default_rng(seed)
    times, modes, diffs, sad_rel = [], [], [], []
    tri = trimap
    check_at = set(np.linspace(0, strokes - 1, checks).astype(int).tolist()) if checks else set()
    for k in range(strokes):
        tri = _stroke(tri, rng, radius, "to_fg" if k % 2 == 0 else "to_unknown")
        t = time.perf_counter()
        alpha, _ = engine.predict(tri)
        times.append(time.perf_counter() - t)
        modes.append(engine.last_mode)
        if k in check_at:
            full, _, _ = _solve("closed-form", image, tri, incremental=False)
            diffs.append(float(np.abs(alpha - full)[tri == 128].max(initial=0.0)))
            if gt is not None:
                a, b = sad(alpha, gt, tri), sad(full, gt, tri)
                sad_rel.append(abs(a - b) / max(b, 1e-12))
    ms = np.array(times) * 1000
    return {
        "pixels": int(trimap.size),
        "shape": list(trimap.shape),
        "unknown": int((trimap == 128).sum()),
        "first_solve_s": first,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
        "strokes": strokes,
        "radius": radius,
        "incremental": sum(m == "incremental" for m in modes),
        "full": sum(m == "full" for m in modes),
        "max_diff_vs_full": max(diffs, default=0.0),
        "max_sad_rel_vs_full": max(sad_rel, default=0.0),
    }


# -- memory (subprocess) --------------------------------------------------------------------


def _hwm_mb() -> float:
    """Peak RSS of this process (VmHWM, MB); ru_maxrss would also count the parent's pages before exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _probe(args) -> None:
    """Child: one solve, report peak RSS. Run as python benchmarks/bench_closed_form.py --probe ..."""
    from mattestudio.engines import registry
    from mattestudio.pipeline import run_matting

    image, trimap, _ = _load(Path(args.dataset), args.probe_image, args.trimap)
    if args.megapixels:
        image, trimap = _upscale(image, trimap, args.megapixels * 1e6)
    params = dict(kv.split("=", 1) for kv in args.param)
    engine = registry.create(args.probe, **params)
    _warm_up_one(args.probe)
    # restart the high-water mark so the peak is the solve's, not the upscaling's
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    base = _hwm_mb()
    t = time.perf_counter()
    run_matting(engine, image, trimap, estimate_foreground=False)
    seconds = time.perf_counter() - t
    print(
        json.dumps(
            {
                "engine": args.probe,
                "pixels": int(trimap.size),
                "unknown": int((trimap == 128).sum()),
                "base_mb": base,
                "peak_mb": _hwm_mb(),
                "seconds": seconds,
                "mode": getattr(engine, "last_mode", ""),
            }
        )
    )


def _warm_up_one(name: str) -> None:
    """A solve big enough to have large fronts too, so every compiled kernel is loaded."""
    rng = np.random.default_rng(0)
    image = rng.random((160, 160, 3)).astype(np.float32)
    trimap = np.zeros((160, 160), np.uint8)
    trimap[:, 80:] = 255
    trimap[20:140, 30:130] = 128
    _solve(name, image, trimap)


def _run_probe(
    dataset: Path,
    trimap_dir: str,
    engine: str,
    image: str,
    megapixels: float = 0.0,
    params: tuple[str, ...] = (),
    env: dict | None = None,
) -> dict:
    cmd = [
        sys.executable,
        __file__,
        str(dataset),
        "--trimap",
        trimap_dir,
        "--probe",
        engine,
        "--probe-image",
        image,
        "--megapixels",
        str(megapixels),
    ]
    for p in params:
        cmd += ["--param", p]
    w0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"engine": engine, "error": out.stderr.strip().splitlines()[-1:] or ["failed"]}
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process_s"] = time.perf_counter() - w0
    return res


def first_use_compile(dataset: Path, trimap_dir: str, image: str) -> dict:
    """Time a tiny solve in a fresh process with an empty numba cache (first run on a new machine)."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        code = (
            "import time, numpy as np; t=time.perf_counter();"
            "from mattestudio.engines.fastcf.engine import FastClosedFormEngine as E;"
            "im=np.random.default_rng(0).random((24,24,3)).astype(np.float32);"
            "tr=np.zeros((24,24),np.uint8); tr[:,12:]=255; tr[:,9:15]=128;"
            "e=E(); e.prepare(im); e.predict(tr); tr[2:5,2:5]=128; e.predict(tr); e.predict_coarse(tr,0.5);"
            "print(time.perf_counter()-t)"
        )
        cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        warm = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    get = lambda r: float(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else float("nan")  # noqa: E731
    return {"cold_s": get(cold), "cached_s": get(warm)}


# -- report ---------------------------------------------------------------------------------


def machine() -> dict:
    from mattestudio.machine import describe

    return {
        **describe("numpy", "scipy", "numba", "pymatting"),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "(unset)"),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python benchmarks/bench_closed_form.py", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--trimap", default="trimap1")
    ap.add_argument("--out", type=Path, default=None, help="write the markdown tables here")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images")
    ap.add_argument("--strokes", type=int, default=20)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="time each closed-form solve this many times (engines alternating) and keep the best",
    )
    ap.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--probe-image", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--megapixels", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--param", action="append", default=[], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.probe:
        _probe(args)
        return 0
    report = run(args)
    text = render(report, args)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def run(args) -> dict:
    from mattestudio.core.metrics import mse, sad

    dataset: Path = args.dataset
    names = sorted(
        p.name for p in (dataset / "input").iterdir() if (dataset / args.trimap / p.name).exists()
    )
    if args.limit:
        names = names[: args.limit]
    report = {
        "machine": machine(),
        "load_before": os.getloadavg(),
        "trimap": args.trimap,
        "images": [],
        "repeat": max(1, args.repeat),
    }
    _warm_up()
    for name in names:
        image, trimap, gt = _load(dataset, name, args.trimap)
        row = {"name": name, "pixels": int(trimap.size), "unknown": int((trimap == 128).sum())}
        alphas = {}
        # Engines alternate (fast, pymatting cf, KNN, then again) so that all see the same load;
        # each time is the best of --repeat cold solves (KNN once: it is only a reference).
        for rep in range(max(1, args.repeat)):
            for engine in ENGINES:
                if rep and engine == "knn":
                    continue
                alpha, wall, cpu = _solve(engine, image, trimap)
                alphas[engine] = alpha
                if rep == 0:
                    row[engine] = {"wall": wall, "cpu": cpu}
                else:
                    row[engine]["wall"] = min(row[engine]["wall"], wall)
                    row[engine]["cpu"] = min(row[engine]["cpu"], cpu)
        for engine in ENGINES:
            if gt is not None:
                row[engine].update(
                    sad=sad(alphas[engine], gt, trimap), mse=mse(alphas[engine], gt, trimap)
                )
        row["max_diff_fast_vs_pymatting"] = float(
            np.abs(alphas["closed-form"] - alphas["closed-form-pymatting"]).max()
        )
        print(name, json.dumps(row), flush=True)
        report["images"].append(row)
    first = names[0]
    image, trimap, gt = _load(dataset, first, args.trimap)
    report["strokes"] = []
    for mp, radius, checks in ((1.0, 10, 4), (4.0, 20, 2)):
        img_u, tri_u = _upscale(image, trimap, mp * 1e6)
        gt_u = (
            _upscale(np.repeat(gt[:, :, None], 3, 2), trimap, mp * 1e6)[0][:, :, 0]
            if gt is not None
            else None
        )
        res = stroke_latency(img_u, tri_u, gt_u, args.strokes, checks, radius)
        res.update(image=first, megapixels=mp)
        print("strokes", json.dumps(res), flush=True)
        report["strokes"].append(res)
    # Coarse-to-fine tiles (the path above the memory budget) against the direct solve, at 4 MP.
    img_u, tri_u = _upscale(image, trimap, 4e6)
    direct_alpha, wall_d, _ = _solve("closed-form", img_u, tri_u)
    tiled_alpha, wall_t, _ = _solve("closed-form", img_u, tri_u, memory_gb=0.1)
    report["tiled_4mp"] = {
        "direct_s": wall_d,
        "tiled_s": wall_t,
        "max_diff": float(np.abs(direct_alpha - tiled_alpha).max()),
        "mean_diff_unknown": float(np.abs(direct_alpha - tiled_alpha)[tri_u == 128].mean()),
    }
    print("tiled", json.dumps(report["tiled_4mp"]), flush=True)
    if not args.skip_memory:
        report["memory"] = [_run_probe(dataset, args.trimap, e, first) for e in ENGINES]
        report["memory"] += [
            _run_probe(dataset, args.trimap, "closed-form", first, mp) for mp in (4.0, 12.0)
        ]
        print("memory", json.dumps(report["memory"]), flush=True)
        report["compile"] = first_use_compile(dataset, args.trimap, first)
    report["load_after"] = os.getloadavg()
    return report


def render(report: dict, args) -> str:
    m = report["machine"]
    lines = [
        "## Machine",
        "",
        f"- {m['nproc']} cores: {m['cpu']}; memory {m['memory']}",
        f"- Python {m['python']}, numpy {m['numpy']}, scipy {m['scipy']}, numba {m['numba']}, "
        f"pymatting {m['pymatting']}; OPENBLAS_NUM_THREADS={m['OPENBLAS_NUM_THREADS']}",
        f"- load average before / after: {', '.join(f'{v:.1f}' for v in report['load_before'])} / "
        f"{', '.join(f'{v:.1f}' for v in report.get('load_after', ()))}",
        f"- command: `python benchmarks/bench_closed_form.py {args.dataset} --trimap {args.trimap}"
        f"{' --repeat ' + str(args.repeat) if getattr(args, 'repeat', 1) > 1 else ''}"
        f"{' --out ' + str(args.out) if args.out else ''}`",
        "",
        f"## Full solves, {report['trimap']} (prepare + predict, wall seconds; CPU seconds in brackets"
        f"{'; best of ' + str(report.get('repeat', 1)) + ', KNN once' if report.get('repeat', 1) > 1 else ''})",
        "",
        "| image | unknown px | fast s | pymatting cf s | KNN s | speed-up vs cf | SAD fast | SAD cf | SAD KNN "
        "| MSE fast | MSE cf | MSE KNN | max abs diff fast-cf |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    tot = {e: [0.0, 0.0, 0.0, 0.0] for e in ENGINES}
    for r in report["images"]:
        f, c, k = (r[e] for e in ENGINES)
        for e in ENGINES:
            tot[e][0] += r[e]["wall"]
            tot[e][1] += r[e]["cpu"]
            tot[e][2] += r[e].get("sad", 0.0)
            tot[e][3] += r[e].get("mse", 0.0)
        lines.append(
            f"| {r['name']} | {r['unknown']} | {f['wall']:.2f} ({f['cpu']:.2f}) | {c['wall']:.2f} ({c['cpu']:.2f}) "
            f"| {k['wall']:.2f} ({k['cpu']:.2f}) | {c['wall'] / f['wall']:.1f}x | {f.get('sad', 0):.3f} "
            f"| {c.get('sad', 0):.3f} | {k.get('sad', 0):.3f} | {f.get('mse', 0):.5f} | {c.get('mse', 0):.5f} "
            f"| {k.get('mse', 0):.5f} | {r['max_diff_fast_vs_pymatting']:.1e} |"
        )
    n = max(len(report["images"]), 1)
    f, c, k = (tot[e] for e in ENGINES)
    lines += [
        f"| **total** | | **{f[0]:.2f}** ({f[1]:.2f}) | **{c[0]:.2f}** ({c[1]:.2f}) | {k[0]:.2f} ({k[1]:.2f}) "
        f"| **{c[0] / f[0]:.1f}x** (CPU {c[1] / f[1]:.1f}x) | {f[2]:.3f} | {c[2]:.3f} | {k[2]:.3f} "
        f"| {f[3] / n:.5f} | {c[3] / n:.5f} | {k[3] / n:.5f} | |",
        "",
        f"SAD of the fast engine relative to pymatting's closed-form over the set: "
        f"{(f[2] - c[2]) / max(c[2], 1e-12) * 100:+.3f} % (MSE columns in the total row are means).",
        "",
        "## Stroke to preview (fast engine, `predict()` after one brush disc)",
        "",
        "| image | size | unknown px | first full solve s | p50 ms | p95 ms | max ms | incremental / full "
        "| max abs diff vs full solve | max SAD change vs full |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for s in report.get("strokes", []):
        lines.append(
            f"| {s['image']} x{s['megapixels']:.0f} MP | {s['shape'][1]}x{s['shape'][0]} | {s['unknown']} "
            f"| {s['first_solve_s']:.2f} | {s['p50_ms']:.0f} | {s['p95_ms']:.0f} | {s['max_ms']:.0f} "
            f"| {s['incremental']} / {s['full']} | {s['max_diff_vs_full']:.1e} "
            f"| {s['max_sad_rel_vs_full'] * 100:.3f} % |"
        )
    t = report.get("tiled_4mp")
    if t:
        lines += [
            "",
            f"Coarse-to-fine tiles (used above the memory budget) vs the direct solve at 4 MP: "
            f"direct {t['direct_s']:.1f} s, tiled {t['tiled_s']:.1f} s, max abs diff {t['max_diff']:.1e}, "
            f"mean abs diff over unknown {t['mean_diff_unknown']:.1e}.",
        ]
    if report.get("memory"):
        lines += [
            "",
            "## Peak memory (one solve in a fresh process; RSS includes Python and the libraries)",
            "",
            "| engine | pixels | unknown px | RSS at start of solve MB | peak RSS during solve MB | solve s | path |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in report["memory"]:
            if "error" in r:
                lines.append(f"| {r['engine']} | failed: {r['error']} | | | | | |")
                continue
            lines.append(
                f"| {r['engine']} | {r['pixels']} | {r['unknown']} | {r['base_mb']:.0f} | {r['peak_mb']:.0f} "
                f"| {r['seconds']:.1f} | {r.get('mode', '')} |"
            )
    if report.get("compile"):
        cc = report["compile"]
        lines += [
            "",
            f"First use of the fast engine in a fresh process: {cc['cold_s']:.1f} s with an empty numba "
            f"cache (compiling), {cc['cached_s']:.1f} s with the cache filled (import + tiny solve).",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
