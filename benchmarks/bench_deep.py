"""Benchmark the deep engines on CPU: seconds and peak memory at 1 and 4 megapixels, fp32 versus
channels-last + bf16 autocast, with the largest alpha difference between the two.

    python benchmarks/bench_deep.py [--sizes 1024,2048] [--nets dim,sim,vitmatte-s,vitmatte-b]
        [--out docs/benchmarks-deep.md]

vitmatte-s / vitmatte-b are networks laid out as ViTMatte-S (25.8 M parameters) and ViTMatte-B
(96.7 M), run by transformers.

Weights are random (speed does not depend on them); each measurement runs in a fresh process so
its peak resident memory is its own. SIM's random decoder is given BatchNorm statistics that keep
its clamped alpha out of saturation, so the fp32/bf16 difference is measured on unclamped values.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _scene(size: int, band: int = 12, radius_frac: float = 0.3):
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    img = np.stack(
        [np.sin(xx / 9.0) * 0.4 + 0.5, np.cos(yy / 13.0) * 0.4 + 0.5, ((xx + yy) % 64) / 64.0], 2
    )
    r = np.hypot(yy - size / 2, xx - size / 2)
    rad = size * radius_frac
    tri = np.zeros((size, size), np.uint8)
    tri[r < rad] = 255
    tri[np.abs(r - rad) < band] = 128
    return img.astype(np.float32), tri


def _write_weights(kind: str, path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from mattestudio.engines.deep.build import build_module
    from mattestudio.engines.deep.random_weights import settle_sim_decoder

    torch.manual_seed(0)
    m = build_module(kind)
    sd = m.state_dict()
    if kind == "sim":  # see the module docstring
        settle_sim_decoder(sd)
        sd["decoder.conv_up4_alpha.4.weight"] = torch.rand(1, 16, 1, 1) * 1.7  # alpha mean ~0.5
    save_file(
        {k: v.contiguous() for k, v in sd.items()}, str(path), metadata={"mattestudio_kind": kind}
    )


def _one(args) -> None:
    """Child process: one measurement, printed as JSON."""
    from mattestudio.engines.deep.dim.engine import DimEngine
    from mattestudio.engines.deep.sim.engine import SimEngine

    wdir = Path(args.weights)
    img, tri = _scene(args.size, radius_frac=args.radius)
    common = {
        "precision": args.precision,
        "device": "cpu",
        "roi": args.roi,
        "tile": 0 if not args.roi else 2048,
    }
    if args.net.startswith("vitmatte"):
        from mattestudio.engines.deep.vitmatte.engine import VitMatteEngine

        eng = VitMatteEngine(checkpoint=str(wdir / args.net), **common)
    elif args.net == "dim":
        eng = DimEngine(checkpoint=str(wdir / "dim.safetensors"), **common)
    else:
        eng = SimEngine(
            checkpoint=str(wdir / "sim.safetensors"),
            classifier=str(wdir / "cls.safetensors"),
            **common,
        )
    warm_img, warm_tri = _scene(96)
    eng.prepare(warm_img)  # one-time costs (weight layout, thread pool) are not part of a run
    eng.predict(warm_tri)
    eng.prepare(img)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    load0 = os.getloadavg()[0]
    c0, w0 = time.process_time(), time.perf_counter()
    alpha, _ = eng.predict(tri)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if args.save:
        np.save(args.save, alpha)
    # the 1-minute load average before and after: other processes on the 2 cores inflate wall time
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": cpu,
                "peak_mb": peak / 1024,
                "prepared_mb": base_rss / 1024,
                "precision": eng.precision,
                "load": [load0, os.getloadavg()[0]],
            }
        )
    )


def _measure(net, size, precision, wdir, roi=False, radius=0.3, save=None) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--one",
        "--net",
        net,
        "--size",
        str(size),
        "--precision",
        precision,
        "--weights",
        str(wdir),
        "--radius",
        str(radius),
    ]
    if roi:
        cmd.append("--roi")
    if save:
        cmd += ["--save", str(save)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _machine() -> str:
    import torch

    from mattestudio.machine import summary

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{summary('torch')} ({torch.get_num_threads()} threads), load average at start {load:.1f}"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python benchmarks/bench_deep.py", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--sizes", default="1024,2048")
    ap.add_argument("--nets", default="dim,sim")
    ap.add_argument("--out", default=None, help="write the Markdown table here as well")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--net", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--roi", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--radius", type=float, default=0.3, help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        _one(args)
        return 0

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        wdir = Path(tmp)
        _write_weights("mmagic-stage3", wdir / "dim.safetensors")
        _write_weights("sim", wdir / "sim.safetensors")
        _write_weights("sim-classifier", wdir / "cls.safetensors")
        for net in args.nets.split(","):
            if net.startswith("vitmatte"):
                from mattestudio.engines.deep.random_weights import write_vitmatte_folder

                size = {"vitmatte-s": "small", "vitmatte-b": "base"}[net]
                write_vitmatte_folder(wdir / net, size)
        machine = _machine()
        print(machine, flush=True)
        for net in args.nets.split(","):
            for size in (int(s) for s in args.sizes.split(",")):
                res = {}
                for prec in ("fp32", "bf16"):
                    res[prec] = _measure(
                        net, size, prec, wdir, save=wdir / f"{net}{size}{prec}.npy"
                    )
                    print(net, size, prec, res[prec], flush=True)
                diff = (float("nan"), float("nan"))
                if all("error" not in r for r in res.values()):
                    a, b = (np.load(wdir / f"{net}{size}{p}.npy") for p in ("fp32", "bf16"))
                    _, tri = _scene(size)
                    d = np.abs(a - b)[tri == 128]
                    diff = (float(d.max()), float(d.mean()))
                roi = _measure(net, size, "bf16", wdir, roi=True, radius=0.12)
                print(net, size, "roi", roi, flush=True)
                rows.append((net, size, res, diff, roi))
    table = _table(rows, machine)
    print(table)
    if args.out:
        from mattestudio.core.atomic import write_bytes_atomic

        write_bytes_atomic(args.out, table.encode())
    return 0


def _fmt(r, key, fmt="{:.1f}"):
    return "error" if "error" in r else fmt.format(r[key])


def _load(r) -> str:
    return "-" if "load" not in r else "{:.1f}-{:.1f}".format(*r["load"])


def _table(rows, machine) -> str:
    lines = [
        f"Machine: {machine}",
        "",
        "| network | image | fp32 wall s | fp32 CPU s | fp32 peak MB | bf16+CL wall s | bf16+CL CPU s | "
        "bf16+CL peak MB | speed-up (wall) | memory ratio | bf16 alpha error max / mean | "
        "typical-trimap crop, bf16 wall s | "
        "load avg (fp32 / bf16 / crop runs) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for net, size, res, diff, roi in rows:
        f, b = res["fp32"], res["bf16"]
        ok = "error" not in f and "error" not in b
        ratio = f"{f['wall'] / b['wall']:.2f}x" if ok else "-"
        mem = f"{b['peak_mb'] / f['peak_mb']:.2f}" if ok else "-"
        lines.append(
            f"| {net.upper()} | {size}x{size} ({size * size / 1e6:.1f} MP) | {_fmt(f, 'wall')} | "
            f"{_fmt(f, 'cpu')} | {_fmt(f, 'peak_mb', '{:.0f}')} | {_fmt(b, 'wall')} | {_fmt(b, 'cpu')} | "
            f"{_fmt(b, 'peak_mb', '{:.0f}')} | {ratio} | {mem} | {diff[0]:.4f} / {diff[1]:.4f} | "
            f"{_fmt(roi, 'wall')} | "
            f"{' / '.join(_load(r) for r in (f, b, roi))} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
