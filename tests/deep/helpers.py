"""Random-weight checkpoints with exactly the published keys and shapes (tests/deep/data/*.tsv),
and checks shared by the deep engines' tests."""

from __future__ import annotations

import ast
import sys
import types
import warnings
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from mattestudio.errors import Cancelled
from mattestudio.types import CancelToken

DATA = Path(__file__).parent / "data"

TSV = {
    "sim": "sim_model.tsv",
    "sim-classifier": "sim_classifier.tsv",
    "huo-stage1": "huo_stage1.tsv",
    "huo-stage3": "huo_stage3.tsv",
    "mmagic-stage3": "mmagic_dim_stage3.tsv",
    "foam": "foam_dim.tsv",
}


def published_keys(kind: str) -> list[tuple[str, tuple, str]]:
    if kind == "mmagic-stage1":  # the stage-1 file is the stage-3 list without refiner.*
        return [e for e in published_keys("mmagic-stage3") if not e[0].startswith("refiner.")]
    out = []
    for line in (DATA / TSV[kind]).read_text().splitlines():
        key, shape, dtype = line.split("\t")
        out.append((key, tuple(ast.literal_eval(shape)), dtype))
    return out


def random_state(kind: str, seed: int = 0) -> OrderedDict:
    """He-scaled conv weights, identity BatchNorm statistics: outputs stay in a sensible range."""
    g = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    for key, shape, dtype in published_keys(kind):
        if dtype == "torch.int64":
            sd[key] = torch.zeros(shape, dtype=torch.int64)
        elif key.endswith("running_var"):
            sd[key] = 1 + 0.1 * torch.rand(shape, generator=g)
        elif key.endswith("running_mean"):
            sd[key] = 0.05 * torch.randn(shape, generator=g)
        elif len(shape) >= 2:
            fan_in = int(torch.tensor(shape[1:]).prod())
            sd[key] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif key.endswith("weight"):  # norm scale
            sd[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            sd[key] = 0.05 * torch.randn(shape, generator=g)
    return sd


def write_published(kind: str, path: Path, state=None, seed: int = 0) -> Path:
    """Write ``state`` in the container layout the published file uses."""
    sd = random_state(kind, seed) if state is None else state
    if kind == "sim":
        obj = {"state_dict": sd}
    elif kind == "sim-classifier":
        obj = {
            "state_dict": OrderedDict(("module." + k, v) for k, v in sd.items()),
            "best_acc": 0.9,
        }
    elif kind.startswith("huo"):
        obj = {"epoch": 7, "state_dict": sd, "best_sad": 52.9}
    elif kind.startswith("mmagic"):
        obj = {"meta": {"mmedit_version": "0.1"}, "state_dict": sd}
    elif kind == "foam":
        return write_foam_pickle(path, sd)
    else:
        raise ValueError(kind)
    torch.save(obj, path)
    return path


def _fake_foam_module() -> types.ModuleType:
    """A stand-in for FOAM's ``models`` module, so torch.save pickles classes under those names."""
    mod = types.ModuleType("models")

    class conv2DBatchNormRelu(nn.Module):
        def __init__(self, cin, cout, k, relu=True):
            super().__init__()
            layers = [nn.Conv2d(cin, cout, k, padding=k // 2), nn.BatchNorm2d(cout)]
            self.cbr_unit = nn.Sequential(*(layers + [nn.ReLU(inplace=True)] if relu else layers))

    class segnetDown2(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv1 = conv2DBatchNormRelu(cin, cout, 3)
            self.conv2 = conv2DBatchNormRelu(cout, cout, 3)
            self.maxpool_with_argmax = nn.MaxPool2d(2, 2, return_indices=True)

    class segnetDown3(segnetDown2):
        def __init__(self, cin, cout):
            super().__init__(cin, cout)
            self.conv3 = conv2DBatchNormRelu(cout, cout, 3)

    class segnetUp1(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.unpool = nn.MaxUnpool2d(2, 2)
            self.conv = conv2DBatchNormRelu(cin, cout, 5, relu=False)

    class DIMModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.down1, self.down2 = segnetDown2(4, 64), segnetDown2(64, 128)
            self.down3, self.down4, self.down5 = (
                segnetDown3(128, 256),
                segnetDown3(256, 512),
                segnetDown3(512, 512),
            )
            self.up5, self.up4, self.up3 = (
                segnetUp1(512, 512),
                segnetUp1(512, 256),
                segnetUp1(256, 128),
            )
            self.up2, self.up1 = segnetUp1(128, 64), segnetUp1(64, 1)

    for cls in (conv2DBatchNormRelu, segnetDown2, segnetDown3, segnetUp1, DIMModel):
        cls.__module__ = "models"
        cls.__qualname__ = cls.__name__
        setattr(mod, cls.__name__, cls)
    return mod


def write_foam_pickle(path: Path, state, legacy: bool = False) -> Path:
    """Like FOAM's BEST_checkpoint.tar: a dict holding a whole DataParallel model and optimizer."""
    mod = _fake_foam_module()
    sys.modules["models"] = mod
    try:
        model = mod.DIMModel()
        model.load_state_dict(state, strict=True)
        dp = nn.DataParallel(model)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        obj = {
            "epoch": 3,
            "epochs_since_improvement": 0,
            "loss": 0.05,
            "model": dp,
            "optimizer": opt,
        }
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # "couldn't retrieve source code" for the stand-in classes
            torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    finally:
        del sys.modules["models"]
    return path


def tame_sim(state: OrderedDict) -> OrderedDict:
    """SIM's decoder convs are weight-standardised (unit-variance filters, not fan-in scaled) and
    its alpha head ends in a clamp, not a sigmoid: with random weights every pixel clamps to 0 or 1
    and comparisons mean nothing. Setting each following BatchNorm's running_var to the conv's
    fan-in (what training would learn) and using a small positive last layer keeps alpha in (0, 1)."""
    from mattestudio.engines.deep.random_weights import settle_sim_decoder

    settle_sim_decoder(state)
    g = torch.Generator().manual_seed(1)
    state["decoder.conv_up4_alpha.4.weight"] = torch.rand((1, 16, 1, 1), generator=g) * 0.012
    return state


def assert_cancels_after_tile_2(eng, tri) -> None:
    """A prepared tiled engine, cancelled from its progress callback at tile 2, raises Cancelled
    before it starts tile 3."""
    token = CancelToken()
    seen = []

    def progress(f, m):
        seen.append(m)
        if "tile 2" in m:
            token.cancel()

    with pytest.raises(Cancelled):
        eng.predict(tri, progress=progress, cancel=token)
    assert not any("tile 3" in m for m in seen)
