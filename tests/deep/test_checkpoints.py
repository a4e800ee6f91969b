"""Checkpoint reading, recognition, strict loading, import and the safety of the FOAM converter."""

import os
from collections import OrderedDict

import helpers
import pytest
import torch

from mattestudio.engines.deep import checkpoints as C
from mattestudio.engines.deep import kinds as K
from mattestudio.engines.deep.build import build_module, load_module
from mattestudio.errors import CheckpointError

ALL_KINDS = [
    "mmagic-stage3",
    "mmagic-stage1",
    "huo-stage1",
    "huo-stage3",
    "foam",
    "sim",
    "sim-classifier",
]


def _files(d):
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_published_layout_imports_and_loads_strictly(kind, published, models_dir):
    src = published(kind)
    res = C.import_checkpoint(src)
    assert res.kind == kind  # recognised from keys and shapes, no --kind needed
    assert res.path == models_dir / f"{kind}.safetensors"
    assert K.read_safetensors_metadata(res.path)["mattestudio_kind"] == kind
    state, _meta = C.read_state(res.path)
    expected = [k for k, _, _ in helpers.published_keys(kind)]
    assert sorted(state) == sorted(expected)  # safetensors stores keys sorted
    module = build_module(kind, state)
    module.load_state_dict(state, strict=True)  # the published layout, exactly
    assert list(module.state_dict()) == expected
    load_module(kind, state, res.path, torch.device("cpu"))  # + standardisation and BN folding
    ref = helpers.random_state(kind)
    name = expected[0]
    assert torch.equal(state[name], ref[name])


@pytest.mark.parametrize("kind", ["mmagic-stage3", "huo-stage1", "sim-classifier", "sim"])
def test_missing_key_is_named(kind, tmp_path, models_dir):
    sd = helpers.random_state(kind)
    victim = list(sd)[len(sd) // 2]
    del sd[victim]
    src = helpers.write_published(kind, tmp_path / "bad.pth", state=sd)
    with pytest.raises(CheckpointError) as err:
        C.import_checkpoint(src, kind=kind)
    assert (
        victim in str(err.value)
        and "missing keys" in str(err.value)
        and "bad.pth" in str(err.value)
    )
    assert _files(models_dir) == []


def test_renamed_key_names_both_sides(tmp_path):
    sd = helpers.random_state("huo-stage3")
    sd = OrderedDict(
        ("refine_convX.weight" if k == "refine_conv2.weight" else k, v) for k, v in sd.items()
    )
    src = helpers.write_published("huo-stage3", tmp_path / "renamed.pth", state=sd)
    with pytest.raises(
        CheckpointError, match=r"missing keys: refine_conv2\.weight.*unexpected keys: refine_convX"
    ):
        C.import_checkpoint(src)


def test_wrong_shape_is_named(tmp_path):
    sd = helpers.random_state("mmagic-stage3")
    sd["backbone.decoder.deconv1.weight"] = torch.zeros(2, 64, 5, 5)
    src = helpers.write_published("mmagic-stage3", tmp_path / "shape.pth", state=sd)
    with pytest.raises(
        CheckpointError, match=r"deconv1\.weight is \(2, 64, 5, 5\), expected \(1, 64, 5, 5\)"
    ):
        C.import_checkpoint(src)


def test_wrong_kind_given(published):
    with pytest.raises(CheckpointError, match="not a valid sim checkpoint: missing keys"):
        C.import_checkpoint(published("sim-classifier"), kind="sim")


def test_unrecognised_keys(tmp_path):
    torch.save({"state_dict": {"foo.weight": torch.zeros(3)}}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="cannot tell which network.*--kind"):
        C.import_checkpoint(tmp_path / "x.pth")


def test_huo_old_conv6_variant_loads(tmp_path):
    sd = helpers.random_state("huo-stage1")
    sd["conv6_1.weight"] = torch.randn(512, 512, 1, 1) * 0.05  # files released before 2019-09-09
    src = helpers.write_published("huo-stage1", tmp_path / "old.pth", state=sd)
    assert C.import_checkpoint(src).kind == "huo-stage1"


def test_import_names_and_collisions(published, models_dir):
    a = C.import_checkpoint(published("huo-stage1"))
    b = C.import_checkpoint(published("huo-stage1"))
    assert (a.name, b.name) == ("huo-stage1", "huo-stage1-2")
    c = C.import_checkpoint(published("huo-stage1"), name="mine")
    assert c.path.name == "mine.safetensors"
    with pytest.raises(CheckpointError, match="already exists"):
        C.import_checkpoint(published("huo-stage1"), name="mine")
    with pytest.raises(CheckpointError, match="must be letters"):
        C.import_checkpoint(published("huo-stage1"), name="../evil")
    assert next(m.name for m in K.installed("huo-stage1")) == "huo-stage1"  # oldest import first
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("legacy", [False, True])
def test_foam_full_model_pickle_is_converted(legacy, tmp_path, models_dir):
    sd = helpers.random_state("foam")
    src = helpers.write_foam_pickle(tmp_path / "BEST_checkpoint.tar", sd, legacy=legacy)
    res = C.import_checkpoint(src)
    assert res.kind == "foam"
    state, _ = C.read_state(res.path)
    assert all(torch.equal(state[k], sd[k]) for k in sd)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_pickle_is_refused_without_running(legacy, tmp_path, models_dir):
    marker = tmp_path / "pwned"
    src = tmp_path / "evil.pth"
    torch.save(
        {"model": _Evil(marker), "state_dict": {}}, src, _use_new_zipfile_serialization=not legacy
    )
    with pytest.raises(CheckpointError, match=r"refused: .*system.*never runs code"):
        C.import_checkpoint(src)
    with pytest.raises(CheckpointError, match="refused"):
        C.read_state(src)
    assert not marker.exists()
    assert _files(models_dir) == []


def test_malicious_object_inside_foam_like_file_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    sd = helpers.random_state("foam")
    src = helpers.write_foam_pickle(tmp_path / "foam.tar", sd)
    obj_path = tmp_path / "foam_evil.tar"
    import sys

    sys.modules["models"] = helpers._fake_foam_module()
    try:
        model = sys.modules["models"].DIMModel()
        torch.save({"model": torch.nn.DataParallel(model), "extra": _Evil(marker)}, obj_path)
    finally:
        del sys.modules["models"]
    assert C.read_state(src)[0]  # the clean one converts
    with pytest.raises(CheckpointError, match="refused"):
        C.read_state(obj_path)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "missing", "directory"])
def test_corrupt_checkpoint_clear_error_and_nothing_written(
    damage, published, tmp_path, models_dir
):
    src = tmp_path / "broken.pth"
    if damage == "truncate":
        data = published("mmagic-stage3").read_bytes()
        src.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        src.write_bytes(os.urandom(4096))
    elif damage == "empty":
        src.write_bytes(b"")
    elif damage == "directory":
        src.mkdir()
    with pytest.raises(CheckpointError) as err:
        C.import_checkpoint(src)
    msg = str(err.value)
    assert "broken.pth" in msg and "\n" not in msg
    assert _files(models_dir) == []


def test_truncated_safetensors(published, tmp_path, models_dir):
    res = C.import_checkpoint(published("huo-stage1"))
    data = res.path.read_bytes()
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError, match="truncated, corrupt"):
        C.read_state(bad)


def test_resolve_and_role_checks(published, models_dir):
    with pytest.raises(CheckpointError, match="no DIM checkpoint found.*mattestudio models import"):
        C.resolve("dim")
    with pytest.raises(CheckpointError, match="neither a file nor an imported model name"):
        C.resolve("dim", "nope")
    C.import_checkpoint(published("sim-classifier"))
    with pytest.raises(CheckpointError, match="is a sim-classifier checkpoint"):
        C.load_for("dim", published("sim-classifier"))
    assert C.resolve("sim", role="classifier").name == "sim-classifier.safetensors"
    assert C.resolve("dim", str(published("foam"))) == published("foam")


def test_dataparallel_prefix_is_stripped(tmp_path):
    """foam_dim_dp.tsv: the same model's keys as saved through nn.DataParallel (module. prefix)."""
    sd = helpers.random_state("foam")
    dp_keys = [
        line.split("\t")[0] for line in (helpers.DATA / "foam_dim_dp.tsv").read_text().splitlines()
    ]
    assert dp_keys == ["module." + k for k in sd]
    torch.save(OrderedDict(zip(dp_keys, sd.values())), tmp_path / "dp.pth")
    state, _ = C.read_state(tmp_path / "dp.pth")
    assert list(state) == list(sd)
    assert C.identify(state, tmp_path / "dp.pth") == "foam"
