"""Benchmark SAM 2 on the CPU: image-embedding time and per-click time at 1 MP, fp32 versus bf16
autocast, transformers' stock Sam2Model versus ours (engines/segment/cpu_speedups.py), with a
network the size of SAM 2.1 hiera-tiny (random weights: speed does not depend on them).

    python benchmarks/bench_sam2.py [--reps 3] [--clicks 12] [--size 1152x864] [--no-stock]

Every configuration runs in one process on the same image and the same prompts, alternating, so
a change in the machine's load hits all of them alike; the tables give medians. A click is the
mask decoder plus the upsampling of the chosen mask to the full image, i.e. what the editor
waits for after a click. The masks of our model are compared with the stock model's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def scene(w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    img = np.stack(
        [np.sin(xx / 9.0) * 0.4 + 0.5, np.cos(yy / 13.0) * 0.4 + 0.5, ((xx + yy) % 64) / 64.0], 2
    )
    disc = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (0.3 * min(w, h)) ** 2
    img[disc] = img[disc] * 0.3 + 0.6
    return img.astype(np.float32)


def prompts_for(w: int, h: int, n: int):
    from mattestudio.engines.segment.prompts import Prompts

    rng = np.random.default_rng(0)
    out, p = [], Prompts()
    for i in range(n):  # an editing session: clicks accumulate, a box now and then
        x, y = float(rng.uniform(0.3, 0.7) * w), float(rng.uniform(0.3, 0.7) * h)
        p = p.add_point(x, y, positive=i % 3 != 2)
        if i == n // 2:
            p = p.with_box((0.2 * w, 0.2 * h, 0.8 * w, 0.8 * h))
        out.append(p)
    return out


def parameter_counts() -> tuple[float, float, float]:
    """(image model, its image encoder, the video model of the same default config) in millions:
    transformers' default Sam2Config is hiera-tiny's image path; Sam2VideoModel adds the memory
    attention and memory encoder that tracking through video frames needs."""
    import torch
    from transformers import Sam2Config, Sam2Model

    def count(m) -> float:
        return sum(p.numel() for p in m.parameters()) / 1e6

    with torch.device("meta"):
        image = Sam2Model(Sam2Config())
        video = None
        try:
            from transformers import Sam2VideoConfig, Sam2VideoModel

            video = Sam2VideoModel(Sam2VideoConfig())
        except ImportError:
            pass
    return count(image), count(image.vision_encoder), count(video) if video else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3, help="embeddings per configuration")
    ap.add_argument("--clicks", type=int, default=12, help="clicks per configuration")
    ap.add_argument("--size", default="1152x864", help="image WxH (default about 1 MP)")
    ap.add_argument("--no-stock", action="store_true", help="only our model, not the stock one")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))

    import torch

    from mattestudio.engines.segment import sam2_store
    from mattestudio.engines.segment.predictor import Sam2Predictor
    from mattestudio.engines.segment.random_sam2 import write_folder
    from mattestudio.machine import summary

    load1 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_folder(Path(tmp) / "hiera-tiny-random", size="hiera-tiny")
        t0 = time.perf_counter()
        ours32 = Sam2Predictor.load(folder, precision="fp32")
        load_s = time.perf_counter() - t0
        stock_model = None if args.no_stock else sam2_store.load(folder)[0]
    spec = ours32.spec
    preds = {"ours fp32": ours32}
    preds["ours bf16"] = Sam2Predictor(ours32.model, spec, precision="bf16")
    if stock_model is not None:
        preds["stock fp32"] = Sam2Predictor(stock_model, spec, "fp32", speedups=False)
        preds["stock bf16"] = Sam2Predictor(stock_model, spec, "bf16", speedups=False)
    n_image, n_encoder, n_video = parameter_counts()
    image = scene(w, h)
    prompts = prompts_for(w, h, args.clicks)
    all_threads = torch.get_num_threads()
    threads = sorted({1, all_threads})
    embed: dict = {k: [] for k in preds}
    embed_cpu: dict = {k: [] for k in preds}
    click: dict = {(k, n): [] for k in preds for n in threads}
    click_cpu: dict = {(k, n): [] for k in preds for n in threads}
    masks: dict = {k: [] for k in preds}
    for k, p in preds.items():  # warm-up: first-call allocations and kernel selection
        p.set_image(image, key=f"warm-{k}")
        p.predict(prompts[0])
    for rep in range(args.reps):
        for k, p in preds.items():
            t0, c0 = time.perf_counter(), time.process_time()
            p.set_image(image, key=f"{k}-{rep}")  # a new key: the encoder runs
            embed[k].append(time.perf_counter() - t0)
            embed_cpu[k].append(time.process_time() - c0)
    for pr in prompts:  # alternate every configuration on every click
        for k, p in preds.items():
            for n in threads:
                p.click_threads = n
                t0, c0 = time.perf_counter(), time.process_time()
                r = p.predict(pr)
                click[k, n].append(time.perf_counter() - t0)
                click_cpu[k, n].append(time.process_time() - c0)
            masks[k].append(r.mask)
    load2 = os.getloadavg()[0]
    emb = {k: statistics.median(v) for k, v in embed.items()}
    emb_cpu = {k: statistics.median(v) for k, v in embed_cpu.items()}
    clk = {key: statistics.median(v) for key, v in click.items()}
    clk_cpu = {key: statistics.median(v) for key, v in click_cpu.items()}
    print(f"SAM 2 benchmark, {w}x{h} ({w * h / 1e6:.2f} MP)")
    print(
        f"network: hiera-tiny's image path, {n_image:.1f} M parameters ({n_encoder:.1f} M image "
        f"encoder); hiera-tiny's published {n_video:.1f} M add the video memory modules "
        "(memory attention and encoder), which a click on one image never runs"
    )
    print(f"machine: {summary('torch', 'transformers')}")
    print(f"torch threads {all_threads}; load average {load1:.2f} -> {load2:.2f}")
    print(f"our speed-ups: {', '.join(ours32.speedups) or 'none'}")
    print(f"model load (safetensors -> Sam2Model, speed-ups applied): {load_s:.2f} s")
    print()
    print("Wall time, with the process's CPU time (all its threads) in brackets: on a busy machine")
    print("the CPU time of a one-thread click is what it would take on an idle core.")
    print()
    base = "stock fp32" if "stock fp32" in preds else "ours fp32"
    head = " | ".join(f"click, {n} thread{'s' if n > 1 else ''} (ms)" for n in threads)
    print(f"| model | embedding, {all_threads} threads (s) | {head} | embedding vs {base} |")
    print("|---|---|" + "---|" * len(threads) + "---|")
    for k in preds:
        cells = " | ".join(f"{clk[k, n] * 1000:.0f} ({clk_cpu[k, n] * 1000:.0f})" for n in threads)
        print(f"| {k} | {emb[k]:.2f} ({emb_cpu[k]:.2f}) | {cells} | {emb[k] / emb[base]:.2f}x |")
    print()
    for k in preds:
        runs = " ".join(f"{t:.2f}" for t in embed[k])
        ratio = ", ".join(
            f"{n} thread(s) {clk[k, n] / clk[k, threads[0]]:.2f}x" for n in threads[1:]
        )
        print(f"{k}: embeddings {runs} s; click vs 1 thread: {ratio or '-'}")
    if "stock fp32" in preds:
        for prec in ("fp32", "bf16"):
            a, b = f"ours {prec}", f"stock {prec}"
            e = emb[a] / emb[b]
            c = clk[a, threads[0]] / clk[b, threads[0]]
            cc = clk_cpu[a, threads[0]] / clk_cpu[b, threads[0]]
            print(
                f"ours vs stock, {prec}: embedding {e:.2f}x, 1-thread click {c:.2f}x (CPU {cc:.2f}x)"
            )
    for a, b in (
        ("ours fp32", "stock fp32"),
        ("ours bf16", "stock bf16"),
        ("ours bf16", "ours fp32"),
    ):
        if a in masks and b in masks:
            diff = [int((x != y).sum()) for x, y in zip(masks[a], masks[b])]
            ious = [
                float((x & y).sum() / max((x | y).sum(), 1)) for x, y in zip(masks[a], masks[b])
            ]
            print(
                f"masks {a} vs {b} over the {len(diff)} clicks: differing pixels max {max(diff)}, "
                f"IoU min {min(ious):.4f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
