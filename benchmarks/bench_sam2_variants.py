"""What each idea for SAM 2 on the CPU is worth, one thread, measured in CPU seconds (steadier
than wall time on a shared machine): the image embedding and a click at 1 MP with a random
network of SAM 2.1 hiera-tiny's size, for variants of the same model.

    python benchmarks/bench_sam2_variants.py [--reps 3] [--clicks 8] [--threads 1]
        [--variants sdpa,eager,cl,no1,ours]

Variants: transformers' stock Sam2Model with its SDPA attention (the default) and with eager
attention; the stock model fed channels-last pixels; ours without oneDNN (only the structural
changes: no discarded attention, cached encodings, a decoder without copies); ours in full
(engines/segment/cpu_speedups.py). All run in one process on the same image and prompts,
alternating per repetition. torch.compile is measured separately (its compile time is the
question): see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3, help="embeddings per variant")
    ap.add_argument("--clicks", type=int, default=8, help="clicks per variant")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (clicks too)")
    ap.add_argument(
        "--variants", default="sdpa,eager,cl,no1,ours", help="which of sdpa,eager,cl,no1,ours"
    )
    args = ap.parse_args()
    chosen = [v.strip() for v in args.variants.split(",")]
    if "sdpa" not in chosen or any(v not in ("sdpa", "eager", "cl", "no1", "ours") for v in chosen):
        ap.error("--variants: a comma list of sdpa,eager,cl,no1,ours that includes sdpa")

    import torch
    from bench_sam2 import prompts_for, scene

    from mattestudio.engines.segment import preprocess as pp
    from mattestudio.engines.segment import sam2_store
    from mattestudio.engines.segment.cpu_speedups import accelerate
    from mattestudio.engines.segment.predictor import Sam2Predictor
    from mattestudio.engines.segment.random_sam2 import write_folder
    from mattestudio.machine import summary

    torch.set_num_threads(args.threads)
    w, h = 1152, 864
    load1 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_folder(Path(tmp) / "hiera-tiny-random", size="hiera-tiny")
        models = {name: sam2_store.load(folder) for name in chosen}
    spec = models["sdpa"][1]
    if "eager" in models:
        eager = models["eager"][0]
        eager.config._attn_implementation = "eager"
        for sub in (eager.vision_encoder.config, eager.vision_encoder.backbone.config):
            sub._attn_implementation = "eager"
        eager.config.mask_decoder_config._attn_implementation = "eager"
    if "no1" in models:
        accelerate(models["no1"][0], onednn=False)
    if "ours" in models:
        accelerate(models["ours"][0])
    names = {
        "sdpa": "stock Sam2Model (SDPA attention)",
        "eager": "stock, eager attention",
        "cl": "stock, channels-last pixels",
        "no1": "ours without oneDNN",
        "ours": "ours (all of cpu_speedups)",
    }
    preds = {
        k: Sam2Predictor(m, spec, speedups=False, click_threads=1) for k, (m, _) in models.items()
    }
    image = scene(w, h)
    pv = pp.pixel_values(image, spec)
    prompts = prompts_for(w, h, args.clicks)
    emb: dict = {k: [] for k in preds}
    clk: dict = {k: [] for k in preds}
    emb_wall: dict = {k: [] for k in preds}
    clk_wall: dict = {k: [] for k in preds}
    with torch.inference_mode():
        for m, _ in models.values():  # warm-up
            m.get_image_embeddings(pv)
        for _ in range(args.reps):
            for k, (m, _) in models.items():
                x = pv.contiguous(memory_format=torch.channels_last) if k == "cl" else pv
                c0, t0 = time.process_time(), time.perf_counter()
                m.get_image_embeddings(x)
                emb[k].append(time.process_time() - c0)
                emb_wall[k].append(time.perf_counter() - t0)
    for k, p in preds.items():
        p.set_image(image, key=k)
        p.predict(prompts[0])
    for pr in prompts:
        for k, p in preds.items():
            c0, t0 = time.process_time(), time.perf_counter()
            p.predict(pr)
            clk[k].append(time.process_time() - c0)
            clk_wall[k].append(time.perf_counter() - t0)
    load2 = os.getloadavg()[0]
    e = {k: statistics.median(v) for k, v in emb.items()}
    c = {k: statistics.median(v) for k, v in clk.items()}
    ew = {k: statistics.median(v) for k, v in emb_wall.items()}
    cw = {k: statistics.median(v) for k, v in clk_wall.items()}
    print(
        f"SAM 2 variants, {args.threads} thread(s), {w}x{h}; CPU time (wall time), medians of "
        f"{args.reps} embeddings / {args.clicks} clicks"
    )
    print(f"machine: {summary('torch', 'transformers')}; load {load1:.2f} -> {load2:.2f}")
    print()
    print("| variant | embedding CPU (wall) (s) | vs stock | click CPU (wall) (ms) | vs stock |")
    print("|---|---|---|---|---|")
    for k in preds:
        print(
            f"| {names[k]} | {e[k]:.2f} ({ew[k]:.2f}) | {e[k] / e['sdpa']:.2f}x "
            f"| {c[k] * 1000:.0f} ({cw[k] * 1000:.0f}) | {c[k] / c['sdpa']:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
