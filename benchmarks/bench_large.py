"""Camera-size photos (12 and 24 MP, a 40 % hair band): Run, Live strokes, peak memory and the CLI,
the code before (a checkout of main) and after (this tree) side by side in one run.

    python benchmarks/bench_large.py --before /tmp/main-checkout --out /tmp/large.md

Each version runs in its own subprocess per size (PYTHONPATH = that tree) and drives the editor
worker's path: ``pipeline.run_matting`` for Run (fresh engine, foreground estimation included),
then brush strokes on the same warm engine as the editor's engine process keeps it:

- before: the editor's Live job, a coarse downscaled run (first change) then the full-resolution
  incremental run (final), each through ``run_matting`` with foreground estimation;
- after: ``predict_live`` (first change) then ``refine()`` calls until nothing is queued (final),
  each followed by ``foreground.update_foreground`` on the box that changed.

Run is reported as wall and CPU time (the process's, all threads: the machine is shared, so CPU
time is the steadier figure), with foreground estimation's share and the load average at its start
and end. Peak memory: VmHWM of the subprocess (reset before Run and before the strokes). The CLI
(`mattestudio matte IMG --trimap T --alpha A`) runs in its own process; its peak is ru_maxrss.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


# -- child ----------------------------------------------------------------------------------


def _hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_hwm() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def strokes(trimap: np.ndarray, count: int, seed: int = 1) -> list[np.ndarray]:
    """Cumulative brush strokes in the band: unknown -> foreground near the subject, unknown ->
    background outside, foreground -> unknown at the core's rim; 300-500 px long, radius scaled
    with the image (24 px at 12 MP)."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = trimap.shape
    radius = int(round(24 * (h * w / 12e6) ** 0.5))
    unknown = np.argwhere(trimap == 128)
    fg = np.argwhere(trimap == 255)
    out, tri = [], trimap.copy()
    for k in range(count):
        kind = k % 3
        starts = fg if kind == 2 and len(fg) else unknown  # so that every stroke changes pixels
        y, x = starts[rng.integers(len(starts))]
        ang = rng.uniform(0, np.pi)
        length = rng.uniform(300, 500) * (h * w / 12e6) ** 0.5
        p0 = (int(x), int(y))
        p1 = (int(x + length * np.cos(ang)), int(y + length * np.sin(ang)))
        mask = np.zeros((h, w), np.uint8)
        cv2.line(mask, p0, p1, 1, 2 * radius)
        mask = mask.astype(bool)
        new = tri.copy()
        if kind == 0:
            new[mask & (tri == 128)] = 255
        elif kind == 1:
            new[mask & (tri == 128)] = 0
        else:
            new[mask & (tri != 0)] = 128
        tri = new
        out.append(tri)
    return out


def _child(args) -> None:
    import cv2

    try:
        from mattestudio.core.trimap import downscaled
    except ImportError:  # older checkouts
        from mattestudio.core.document import downscaled  # type: ignore[attr-defined,no-redef]
    from mattestudio.engines import foreground, registry
    from mattestudio.pipeline import run_matting

    image = cv2.imread(args.image, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
    image = np.ascontiguousarray(image)
    trimap = cv2.imread(args.trimap, cv2.IMREAD_GRAYSCALE)
    gt = np.load(args.alpha) if args.alpha else None
    # Compile / load numba kernels first, so no run pays for it.
    warm = registry.create("closed-form")
    small = np.ascontiguousarray(image[:200, :200])
    tri_s = np.zeros((200, 200), np.uint8)
    tri_s[:, 100:] = 255
    tri_s[40:160, 40:160] = 128
    run_matting(warm, small, tri_s)
    report: dict = {"pixels": int(trimap.size), "unknown": int((trimap == 128).sum())}
    # Foreground estimation's share of Run: its wall and CPU time, summed over calls.
    fg_time = {"s": 0.0, "cpu_s": 0.0}
    real_estimate = foreground.estimate_foreground

    def timed_estimate(*a, **k):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return real_estimate(*a, **k)
        finally:
            fg_time["s"] += time.perf_counter() - t0
            fg_time["cpu_s"] += time.process_time() - c0

    foreground.estimate_foreground = timed_estimate
    _reset_hwm()
    engine = registry.create("closed-form")
    report["load_run_start"] = os.getloadavg()
    t, c = time.perf_counter(), time.process_time()
    result = run_matting(engine, image, trimap)
    report["run_s"] = time.perf_counter() - t
    report["run_cpu_s"] = time.process_time() - c  # all threads of the process
    report["load_run_end"] = os.getloadavg()
    report["run_fg_s"] = fg_time["s"]
    report["run_fg_cpu_s"] = fg_time["cpu_s"]
    foreground.estimate_foreground = real_estimate
    report["run_mode"] = engine.last_mode
    report["run_solve"] = getattr(engine, "last_solve", {})
    report["run_peak_mb"] = _hwm_mb()
    alpha = result.alpha
    np.save(args.save_alpha, alpha)
    if gt is not None:
        u = trimap == 128
        report["sad"] = float(np.abs(alpha[u] - gt[u]).sum() / 1000)
    fg = result.foreground.copy()
    del result
    _reset_hwm()
    seq = strokes(trimap, args.strokes)
    firsts, finals, extra = [], [], []
    live_api = hasattr(engine, "predict_live")
    h, w = trimap.shape
    coarse = None
    for tri in seq:
        t = time.perf_counter()
        if live_api:
            from mattestudio.engines.foreground import update_foreground

            r = engine.predict_live(tri)
            if r.changed is not None:
                update_foreground(image, r.alpha, fg, r.changed)
            firsts.append(time.perf_counter() - t)
            n_first = len(r.approximate_regions)
            calls = 0
            while True:
                q = engine.refine(seconds=0.5)
                if q is None:
                    break
                calls += 1
                r = q
                if r.changed is not None:
                    update_foreground(image, r.alpha, fg, r.changed)
            finals.append(time.perf_counter() - t)
            extra.append(
                {
                    "first_mode": r.mode,
                    "approximate_after_first": n_first,
                    "refine_calls": calls,
                    "unsettled_after_final": len(r.approximate_regions),
                }
            )
        else:  # the editor's Live job before this change: coarse run, then full resolution
            scale = min(0.5, (60_000 / (h * w)) ** 0.5)
            if coarse is None:
                coarse = registry.create("closed-form")
            img_s, tri_small = downscaled(image, tri, scale)
            run_matting(coarse, img_s, tri_small, prepared=coarse._image is not None)
            firsts.append(time.perf_counter() - t)
            run_matting(engine, image, tri, prepared=True)
            finals.append(time.perf_counter() - t)
            extra.append({"mode": engine.last_mode})
    report["first_s"] = firsts
    report["final_s"] = finals
    report["strokes"] = extra
    report["live_peak_mb"] = _hwm_mb()
    print(json.dumps(report))


# -- parent ---------------------------------------------------------------------------------


def _scene(mp: int, folder: Path) -> dict:
    import cv2

    sys.path.insert(0, str(HERE))
    from large_scene import SIZES, make_scene

    h, w = SIZES[mp]
    paths = {k: folder / f"scene{mp}_{k}" for k in ("image.png", "trimap.png", "alpha.npy")}
    if not all(p.exists() for p in paths.values()):
        image, trimap, alpha = make_scene(h, w)
        cv2.imwrite(str(paths["image.png"]), (image[..., ::-1] * 255 + 0.5).astype(np.uint8))
        cv2.imwrite(str(paths["trimap.png"]), trimap)
        np.save(paths["alpha.npy"], alpha)
    return {k.split(".")[0]: str(p) for k, p in paths.items()}


def _env(root: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root)
    return env


def _run_child(root: Path, scene: dict, strokes_n: int, out_alpha: Path) -> dict:
    cmd = [
        sys.executable,
        str(HERE / "bench_large.py"),
        "--child",
        "--image",
        scene["image"],
        "--trimap",
        scene["trimap"],
        "--alpha",
        scene["alpha"],
        "--strokes",
        str(strokes_n),
        "--save-alpha",
        str(out_alpha),
    ]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=_env(root))
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    rep = json.loads(p.stdout.strip().splitlines()[-1])
    rep["process_s"] = time.perf_counter() - t
    return rep


def _run_cli(root: Path, scene: dict, out: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "mattestudio",
        "matte",
        scene["image"],
        "--trimap",
        scene["trimap"],
    ]
    cmd += ["--alpha", str(out)]
    t = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=_env(root), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    err = proc.stderr.read() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        return {"error": (err.strip().splitlines() or ["failed"])[-1]}
    return {"cli_s": seconds, "cli_peak_mb": usage.ru_maxrss / 1024}


nan = float("nan")


def _num(x: float, fmt: str) -> str:
    """``x`` formatted, or "-" where it was not measured (NaN)."""
    return "-" if x != x else format(x, fmt)


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def render(report: dict) -> str:
    m = report["machine"]
    lines = [
        "### Machine",
        "",
        f"- {m['cpu']}, {m['nproc']} cores, {m['memory']}, {m['os']}, Python {m['python']}",
        f"- load average before / after: {report['load_before']} / {report['load_after']}",
        f"- command: `{report['command']}`",
        "",
        "| size | version | Run s | Run CPU s | of which foreground s (CPU) | load at Run start / end "
        "| Run peak MB | SAD vs truth | Live first change p50 / p95 s | Live final p50 / p95 s "
        "| Live peak MB | CLI matte s | CLI peak MB | strokes |",
        "|---|---|---:|---:|---|---|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for size in report["sizes"]:
        for ver in ("before", "after"):
            r = size[ver]
            if "error" in r:
                lines.append(f"| {size['mp']} MP | {ver} | error: {r['error']} ||||||||||||")
                continue
            f, g = r["first_s"], r["final_s"]
            load0, load1 = r.get("load_run_start", [nan]), r.get("load_run_end", [nan])
            lines.append(
                f"| {size['mp']} MP | {ver} | {r['run_s']:.1f} | {r.get('run_cpu_s', nan):.1f} | "
                f"{r.get('run_fg_s', nan):.1f} ({r.get('run_fg_cpu_s', nan):.1f}) | "
                f"{load0[0]:.1f} / {load1[0]:.1f} | {r['run_peak_mb']:.0f} | "
                f"{r.get('sad', nan):.1f} | "
                f"{_num(_pct(f, 50), '.2f')} / {_num(_pct(f, 95), '.2f')} | "
                f"{_num(_pct(g, 50), '.2f')} / {_num(_pct(g, 95), '.2f')} | "
                f"{_num(r['live_peak_mb'] if f else nan, '.0f')} | "
                f"{_num(r.get('cli_s', nan), '.1f')} | "
                f"{_num(r.get('cli_peak_mb', nan), '.0f')} | {len(f)} |"
            )
        b, a = size["before"], size["after"]
        if "error" not in b and "error" not in a:
            ratio = b["run_s"] / a["run_s"]
            cpu = b.get("run_cpu_s", nan) / a.get("run_cpu_s", nan)
            lines.append(
                f"| {size['mp']} MP | before / after | {ratio:.2f}x | {cpu:.2f}x | | | "
                f"{b['run_peak_mb'] / a['run_peak_mb']:.2f}x | | "
                f"{_num(_pct(b['first_s'], 50) / _pct(a['first_s'], 50), '.1f')}x (p50) | "
                f"{_num(_pct(b['final_s'], 50) / _pct(a['final_s'], 50), '.1f')}x (p50) | | "
                f"{_num(b.get('cli_s', nan) / a.get('cli_s', nan), '.2f')}x | | |"
            )
    lines.append("")
    for size in report["sizes"]:
        a = size["after"]
        for ver in ("before", "after"):
            if size[ver].get("run_solve"):
                lines.append(
                    f"{ver}, {size['mp']} MP, Run solve: " + json.dumps(size[ver]["run_solve"])
                )
        if "strokes" in a:
            lines.append(f"After, {size['mp']} MP, per stroke: " + json.dumps(a["strokes"]))
        if "alpha_diff" in size:
            d = size["alpha_diff"]
            lines.append(
                f"Run alpha after vs before, {size['mp']} MP: max abs {d['max']:.3g}, "
                f"mean abs over unknown {d['mean']:.2e}"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", help="a checkout of the code before (e.g. main)")
    ap.add_argument("--sizes", default="12,24")
    ap.add_argument("--strokes", type=int, default=8)
    ap.add_argument("--before-strokes", type=int, default=2)
    ap.add_argument("--work", default="/tmp/bench_large")
    ap.add_argument("--out")
    ap.add_argument("--json")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument(
        "--before-run-only",
        action="store_true",
        help="the code before only does Run (no strokes, no CLI): it needs minutes per step",
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--image", help=argparse.SUPPRESS)
    ap.add_argument("--trimap", help=argparse.SUPPRESS)
    ap.add_argument("--alpha", help=argparse.SUPPRESS)
    ap.add_argument("--save-alpha", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    from mattestudio import machine

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    after_root = HERE.parent
    versions = {"after": after_root}
    if args.before:
        versions["before"] = Path(args.before)
    report = {
        "machine": machine.describe("numpy", "scipy", "numba", "pymatting"),
        "load_before": os.getloadavg(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "sizes": [],
    }
    for mp in (int(s) for s in args.sizes.split(",")):
        scene = _scene(mp, work)
        entry: dict = {"mp": mp}
        for v in ("before", "after"):
            (work / f"alpha{mp}_{v}.npy").unlink(missing_ok=True)
        for ver in ("before", "after"):
            if ver not in versions:
                entry[ver] = {"error": "not run"}
                continue
            n = args.strokes
            if ver == "before":  # each takes about a whole Run: fewer, halved again at 24 MP
                n = args.before_strokes if mp <= 12 else args.before_strokes // 2
            if ver == "before" and args.before_run_only:
                n = 0
            print(f"{mp} MP {ver}: Run + {n} strokes ...", file=sys.stderr, flush=True)
            rep = _run_child(versions[ver], scene, n, work / f"alpha{mp}_{ver}.npy")
            rep["load"] = os.getloadavg()
            if (
                not args.skip_cli
                and "error" not in rep
                and (ver == "after" or not args.before_run_only)
            ):
                print(f"{mp} MP {ver}: CLI ...", file=sys.stderr, flush=True)
                rep.update(_run_cli(versions[ver], scene, work / f"cli{mp}_{ver}.png"))
            print(json.dumps(rep), file=sys.stderr, flush=True)
            entry[ver] = rep
        if all((work / f"alpha{mp}_{v}.npy").exists() for v in ("before", "after")):
            import cv2

            a = np.load(work / f"alpha{mp}_after.npy")
            b = np.load(work / f"alpha{mp}_before.npy")
            u = cv2.imread(scene["trimap"], cv2.IMREAD_GRAYSCALE) == 128
            entry["alpha_diff"] = {
                "max": float(np.abs(a - b).max()),
                "mean": float(np.abs(a - b)[u].mean()),
            }
        report["sizes"].append(entry)
    report["load_after"] = os.getloadavg()
    text = render(report)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
