"""How far bf16 alpha is from fp32 for each deep network (accuracy, not speed).

    python benchmarks/bench_precision.py [--size 512] [--seeds 2]

Random weights in two recipes, because the error depends on them: "default" = PyTorch's own
initialisation (what bench_deep.py uses; small activations, alpha near 0.5) and "fan-in" =
He-scaled weights with norm scales near 1 (what the tests use; larger activations, sharper
alpha; for ViTMatte only its detail decoder, the transformer keeps transformers' own
initialisation). Trained weights were not available here. Each network runs on the whole image (no crop),
fp32 then bf16, in one process; the error is over the trimap's unknown pixels.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from bench_deep import _scene

NETS = ("mmagic-stage3", "huo-stage1", "huo-stage1-noskip", "foam", "sim", "vitmatte-s")


def _weights(net: str, recipe: str, seed: int, wdir: Path) -> dict:
    """Engine constructor arguments for ``net`` with weights of ``recipe``."""
    import torch
    from safetensors.torch import save_file

    from mattestudio.engines.deep import random_weights as R
    from mattestudio.engines.deep.build import build_module

    torch.manual_seed(seed)
    if net == "vitmatte-s":
        from transformers import VitMatteForImageMatting

        folder = wdir / f"{net}-{recipe}-{seed}"
        if recipe == "fan-in":  # the detail decoder only (see random_weights.write_vitmatte_folder)
            R.write_vitmatte_folder(folder, "small", seed)
        else:
            VitMatteForImageMatting(R.vitmatte_config("small")).eval().save_pretrained(str(folder))
        return {"engine": "vitmatte", "checkpoint": str(folder)}

    def write(kind):
        m = build_module(kind)
        if recipe == "fan-in":
            R.randomise_(m, seed)
        sd = m.state_dict()
        if kind == "sim":  # keep the clamped alpha out of saturation (see bench_deep.py)
            R.settle_sim_decoder(sd)
            sd["decoder.conv_up4_alpha.4.weight"] = torch.rand(1, 16, 1, 1) * 1.7
        path = wdir / f"{kind}-{recipe}-{seed}.safetensors"
        tensors = {k: v.contiguous() for k, v in sd.items()}
        save_file(tensors, str(path), metadata={"mattestudio_kind": kind})
        return str(path)

    if net == "sim":
        cls = write("sim-classifier")
        return {"engine": "sim", "checkpoint": write("sim"), "classifier": cls}
    return {"engine": "dim", "checkpoint": write(net)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--nets", default=",".join(NETS))
    args = ap.parse_args(argv)

    from mattestudio.engines import registry
    from mattestudio.engines.deep.inference import bf16_supported
    from mattestudio.machine import summary

    if not bf16_supported():
        print("this CPU has no bf16 support: precision=bf16 falls back to fp32 here")
        return 1
    img, tri = _scene(args.size)
    u = tri == 128
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for net in args.nets.split(","):
            for recipe in ("default", "fan-in"):
                worst, means, spread = 0.0, [], []
                for seed in range(args.seeds):
                    kw = _weights(net, recipe, seed, Path(tmp))
                    name = kw.pop("engine")
                    out = {}
                    for prec in ("fp32", "bf16"):
                        eng = registry.create(name, precision=prec, device="cpu", roi=False, **kw)
                        eng.prepare(img)
                        out[prec], _ = eng.predict(tri)
                    d = np.abs(out["fp32"] - out["bf16"])[u]
                    worst = max(worst, float(d.max()))
                    means.append(float(d.mean()))
                    spread.append(float(out["fp32"][u].std()))
                rows.append((net, recipe, worst, max(means), float(np.mean(spread))))
                print(rows[-1], flush=True)
    print(f"\n{summary('torch')}; {args.size}x{args.size} px, {args.seeds} seeds per row\n")
    print("| network | weights | max abs error | mean abs error (worst seed) | fp32 alpha std |")
    print("|---|---|---|---|---|")
    for net, recipe, mx, mean, std in rows:
        note = " (alpha nearly constant or clamped: not informative)" if std < 0.02 else ""
        print(f"| {net} | {recipe} | {mx:.4f} | {mean:.4f} | {std:.3f}{note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
