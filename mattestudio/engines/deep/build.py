"""Kind -> torch module, strict loading with messages that name the offending keys."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mattestudio.engines.deep.kinds import KINDS
from mattestudio.errors import CheckpointError


def build_module(kind: str, state: dict | None = None) -> nn.Module:
    """A randomly initialised module of ``kind``; ``state`` picks layout variants (HUO's conv6)."""
    from mattestudio.engines.deep.dim.network import FoamDIM, HuoDIM, MMagicDIM
    from mattestudio.engines.deep.sim.network import SimClassifier, SimMatting

    if kind in ("huo-stage1", "huo-stage1-noskip", "huo-stage3"):
        k = 3
        w = (state or {}).get("conv6_1.weight")
        if w is not None and tuple(w.shape[-2:]) == (1, 1):
            k = 1  # files before 2019-09-09: 1x1 conv6 and no encoder skips
        # v1.4 (stage1_sad_54.4.pth) has V1.5's shapes but no skips: kinds.variant tells them apart
        skip = k == 3 and kind != "huo-stage1-noskip"
        return HuoDIM(refine=kind == "huo-stage3", conv6_k=k, skip=skip)
    if kind == "mmagic-stage3":
        return MMagicDIM(refine=True)
    if kind == "mmagic-stage1":
        return MMagicDIM(refine=False)
    if kind == "foam":
        return FoamDIM()
    if kind == "sim":
        return SimMatting()
    if kind == "sim-classifier":
        return SimClassifier()
    if kind == "sam2":
        raise CheckpointError(
            "this is a SAM 2 checkpoint: import the Hugging Face folder that holds it and its "
            "config.json (`mattestudio models import DIR`)"
        )
    if kind == "fba":
        raise CheckpointError(
            "this is an FBA Matting checkpoint; the FBA engine is not available in this version"
        )
    raise CheckpointError(f"unknown checkpoint kind {kind!r}; known kinds: {', '.join(KINDS)}")


def _short(items, n=6) -> str:
    items = list(items)
    more = f" (and {len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def check_state(kind: str, state: dict, source) -> None:
    """Raise CheckpointError naming missing, unexpected and mis-shaped keys (strict, as published)."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in build_module(kind, state).state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} is {tuple(state[k].shape)}, expected {expected[k]}"
        for k in expected
        if k in state and tuple(state[k].shape) != expected[k]
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_short(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_short(unexpected)}")
    if shapes:
        problems.append(f"wrong shapes: {_short(shapes, 3)}")
    if problems:
        raise CheckpointError(f"not a valid {kind} checkpoint: " + "; ".join(problems), source)


def load_module(kind: str, state: dict, source, device: torch.device) -> nn.Module:
    check_state(kind, state, source)
    with torch.device("meta"):  # no random initialisation: the weights are assigned from ``state``
        module = build_module(kind, state)
    # copies: finalize_ rewrites weights in place and must not alter the caller's state dict
    module.load_state_dict(
        {k: v.float().clone() if v.is_floating_point() else v.clone() for k, v in state.items()},
        strict=True,
        assign=True,
    )
    if hasattr(module, "finalize_"):
        module.finalize_()
    return module.eval().to(device)


def source_name(source) -> str:
    return Path(str(source)).name
