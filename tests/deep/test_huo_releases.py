"""Every HUO (huochaitiantang) release layout builds the network it was trained as.

V1.5 and v1.4 stage-1 files have the same keys and shapes but differ in architecture (skips or
not), so the published file name decides. The reference below is written from the layer table in
shared/reference/deep-models.md §2.3.1 with plain functional ops, independently of
mattestudio's modules.
"""

import helpers
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mattestudio.engines.deep import checkpoints as C
from mattestudio.engines.deep import kinds as K
from mattestudio.engines.deep.build import load_module

STAGES = (("1_1", "1_2"), ("2_1", "2_2"), ("3_1", "3_2", "3_3"), ("4_1", "4_2", "4_3"))
STAGES += (("5_1", "5_2", "5_3"),)


def reference(sd, x, skip: bool, refine: bool):
    """VGG-16 encoder (pool indices and pre-pool maps kept), conv6, 1x1 deconv6, five
    unpool [+ skip] -> 5x5 conv steps, sigmoid; refinement adds a residual in logit space."""

    def conv(h, name, pad):
        return F.conv2d(h, sd[name + ".weight"], sd[name + ".bias"], padding=pad)

    h, kept, idx = x, [], []
    for names in STAGES:
        for n in names:
            h = F.relu(conv(h, "conv" + n, 1))
        kept.append(h)
        h, i = F.max_pool2d(h, 2, 2, return_indices=True)
        idx.append(i)
    h = F.relu(conv(h, "conv6_1", sd["conv6_1.weight"].shape[-1] // 2))
    h = F.relu(conv(h, "deconv6_1", 0))
    for s in (5, 4, 3, 2, 1):
        h = F.max_unpool2d(h, idx[s - 1], 2, 2)
        if skip:
            h = h + kept[s - 1]
        h = F.relu(conv(h, f"deconv{s}_1", 2))
    raw = conv(h, "deconv1", 2)
    if not refine:
        return torch.sigmoid(raw)
    r = torch.cat([x[:, :3], torch.sigmoid(raw)], 1)
    for n in ("refine_conv1", "refine_conv2", "refine_conv3"):
        r = F.relu(conv(r, n, 1))
    return torch.sigmoid(raw + conv(r, "refine_pred", 1))


def _state(stage: str, conv6: int, seed=0):
    sd = helpers.random_state("huo-stage3" if stage == "3" else "huo-stage1", seed)
    if conv6 == 1:  # releases before 2019-09-09
        g = torch.Generator().manual_seed(seed + 1)
        sd["conv6_1.weight"] = torch.randn(512, 512, 1, 1, generator=g) * (2 / 512) ** 0.5
    return sd


# (published file name, stage, conv6 kernel, expected kind, skips in the architecture)
RELEASES = [
    ("stage1_skip_sad_52.9.pth", "1", 3, "huo-stage1", True),  # V1.5
    ("stage1_sad_54.4.pth", "1", 3, "huo-stage1-noskip", False),  # v1.4 (2020)
    ("stage1_sad_57.1.pth", "1", 1, "huo-stage1", False),  # v1.3
    ("stage2_norm_balance_sad_57.9.pth", "3", 1, "huo-stage3", False),  # v1.2, refinement
]


def _x(seed=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 4, 64, 96, generator=g)
    x[:, 3] = torch.rand(1, 64, 96, generator=g)
    return x


@pytest.mark.parametrize("fname,stage,conv6,kind,skip", RELEASES)
def test_release_builds_its_own_architecture(fname, stage, conv6, kind, skip, tmp_path):
    sd = _state(stage, conv6)
    src = helpers.write_published(f"huo-stage{stage}", tmp_path / fname, state=sd)
    imp = C.import_checkpoint(src)
    assert imp.kind == kind, imp.why
    found, state = C.load_for("dim", imp.path)
    assert found == kind
    x = _x()
    with torch.inference_mode():
        ours = load_module(found, state, imp.path, torch.device("cpu"))(x)
        want = reference(sd, x, skip=skip, refine=stage == "3")
        other = reference(sd, x, skip=not skip, refine=stage == "3")
    assert (ours - want).abs().max().item() < 1e-5
    # the test can fail: the other architecture gives a clearly different matte
    assert (ours - other).abs().max().item() > 0.05


def test_v14_end_to_end_through_the_api(tmp_path):
    import mattestudio

    sd = _state("1", 3, seed=5)
    src = helpers.write_published("huo-stage1", tmp_path / "stage1_sad_54.4.pth", state=sd)
    rng = np.random.default_rng(0)
    img = rng.random((64, 96, 3), dtype=np.float32)
    tri = np.full((64, 96), 128, np.uint8)
    tri[:, :8], tri[:, -8:] = 0, 255
    res = mattestudio.matte(img, tri, engine="dim", checkpoint=str(src), roi=False)
    from mattestudio.engines.deep.inference import normalise

    x = np.concatenate([normalise(img), (tri / 255.0)[..., None]], 2).astype(np.float32)
    with torch.inference_mode():
        want = reference(sd, torch.from_numpy(x).permute(2, 0, 1)[None], False, False)[0, 0]
    u = tri == 128
    assert np.abs(res.alpha - want.numpy())[u].max() < 1e-5


def test_kind_override_and_unknown_names(tmp_path):
    sd = _state("1", 3)
    renamed = helpers.write_published("huo-stage1", tmp_path / "dim_model.pth", state=sd)
    imp = C.import_checkpoint(renamed)
    assert imp.kind == "huo-stage1" and imp.why.startswith("ASSUMED")
    assert "--kind huo-stage1-noskip" in imp.why
    imp = C.import_checkpoint(renamed, kind="huo-stage1-noskip")
    assert imp.kind == "huo-stage1-noskip" and imp.why == "given with --kind"
    # a browser's duplicate suffix does not hide the release
    dup = helpers.write_published("huo-stage1", tmp_path / "stage1_sad_54.4 (1).pth", state=sd)
    assert C.import_checkpoint(dup).kind == "huo-stage1-noskip"
    # used directly, without importing, the file name decides the same way
    eng_kind, _ = C.load_for("dim", dup)
    assert eng_kind == "huo-stage1-noskip"


def test_older_import_is_decided_again_from_its_source_name(tmp_path, models_dir):
    """Imports made before variants were told apart carry kind huo-stage1 and no reason."""
    from safetensors.torch import save_file

    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / "huo-stage1.safetensors"
    meta = {"mattestudio_kind": "huo-stage1", "source": "stage1_sad_54.4.pth", "sha256": "0"}
    save_file(dict(_state("1", 3)), str(path), metadata=meta)
    (m,) = K.installed()
    kind, why = K.explain(m)
    assert kind == "huo-stage1-noskip" and "stage1_sad_54.4.pth" in why
    assert C.load_for("dim", path)[0] == "huo-stage1-noskip"


def test_kind_recorded_in_the_file_is_kept(tmp_path):
    """A safetensors file whose metadata names the no-skip kind (written by a tool, no source
    name) runs as that kind: only huo-stage1 from older imports is decided again."""
    from safetensors.torch import save_file

    path = tmp_path / "bench.safetensors"
    save_file(dict(_state("1", 3)), str(path), metadata={"mattestudio_kind": "huo-stage1-noskip"})
    assert C.load_for("dim", path)[0] == "huo-stage1-noskip"
