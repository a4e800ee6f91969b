"""The dim and sim engines end to end on tiny images with random weights in the published layout."""

import itertools
import subprocess
import sys

import helpers
import numpy as np
import pytest
import torch
from conftest import scene

from mattestudio.engines import registry
from mattestudio.engines.deep import checkpoints as C
from mattestudio.pipeline import run_matting

DIM_KINDS = ["mmagic-stage3", "mmagic-stage1", "huo-stage1", "huo-stage3", "foam"]


def test_listing_engines_does_not_import_torch(tmp_path):
    code = (
        "import sys, mattestudio.engines.registry as r\n"
        "print([r.unavailable_reason(n) for n in ('dim', 'sim')], [r.info(n).name for n in ('dim', 'sim')])\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    env = {"MATTESTUDIO_MODELS": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr


def test_unavailable_without_weights_then_available_after_import(published, models_dir):
    for name in ("dim", "sim"):
        reason = registry.unavailable_reason(name)
        assert "mattestudio models import PATH" in reason and "--checkpoint" in reason
    with pytest.raises(Exception, match="engine dim is not available"):
        registry.create("dim")
    C.import_checkpoint(published("huo-stage1"))
    assert registry.unavailable_reason("dim") is None
    # availability reads only the safetensors header, so small stand-ins are enough here
    from safetensors.torch import save_file

    save_file(
        {"x": torch.zeros(1)},
        str(models_dir / "sim.safetensors"),
        metadata={"mattestudio_kind": "sim"},
    )
    assert "classifier" in registry.unavailable_reason("sim")
    save_file(
        {"x": torch.zeros(1)},
        str(models_dir / "c.safetensors"),
        metadata={"mattestudio_kind": "sim-classifier"},
    )
    assert registry.unavailable_reason("sim") is None
    # an explicit checkpoint path works without any import
    assert registry.unavailable_reason("dim", checkpoint=str(published("foam"))) is None
    assert "neither a file" in registry.unavailable_reason("dim", checkpoint="missing-name")


@pytest.mark.parametrize("kind", DIM_KINDS)
def test_dim_end_to_end(kind, published):
    img, tri = scene(64, 72)
    eng = registry.create("dim", checkpoint=str(published(kind)), precision="fp32")
    res = run_matting(eng, img, tri, estimate_foreground=False)
    a = res.alpha
    assert a.shape == (64, 72) and a.dtype == np.float32
    assert np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1
    assert (a[tri == 0] == 0).all() and (a[tri == 255] == 1).all()
    assert a[tri == 128].std() > 0  # the network really ran


def test_sim_end_to_end_with_fb_head(published):
    img, tri = scene(64, 56)
    eng = registry.create(
        "sim",
        checkpoint=str(published("sim")),
        classifier=str(published("sim-classifier")),
        precision="fp32",
        fb_head=True,
    )
    steps = []
    res = run_matting(eng, img, tri, progress=lambda f, m: steps.append((f, m)))
    assert res.alpha.shape == (64, 56) and res.foreground.shape == (64, 56, 3)
    assert (
        res.alpha.min() >= 0
        and res.alpha.max() <= 1
        and 0 <= res.foreground.min() <= res.foreground.max() <= 1
    )
    assert any("classifying patch" in m for _, m in steps)
    assert all(b >= a for (a, _), (b, _) in itertools.pairwise(steps))


def test_semantic_trimap_as_published():
    from mattestudio.engines.deep.sim import semantic as S
    from mattestudio.engines.deep.sim.network import SimClassifier

    assert S.starts(1000, 320) == [0, 160, 320, 480, 640, 680] and S.starts(200, 320) == [0]
    _, tri = scene(48, 40)
    clk = S.clicks(tri)
    assert (
        clk.shape == (48, 40, 6)
        and np.allclose(clk[tri == 0, 0], 1)
        and np.allclose(clk[tri == 255, 3], 1)
    )
    cls = SimClassifier().eval()
    with torch.inference_mode():
        smap = S.semantic_trimap(
            cls,
            np.zeros((48, 40, 3), np.float32),
            tri,
            lambda m, a: m(torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()),
        )
    assert smap.shape == (48, 40, 20) and smap.min() >= 0 and smap.max() <= 1
    assert (smap[tri != 128] == 0).all()


def _dim(published, kind="mmagic-stage3", **kw):
    kw.setdefault("precision", "fp32")
    return registry.create("dim", checkpoint=str(published(kind)), **kw)


def _corner_scene(h, w):
    img, _ = scene(h, w)
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - 30, xx - 30)
    tri = np.zeros((h, w), np.uint8)
    tri[r < 24] = 255
    tri[(r >= 18) & (r < 30)] = 128
    return img, tri


# Stated tolerances (docs/benchmarks-deep.md): DIM crops start on the 32-px pooling grid, so with
# context >= the receptive field (the default 192 px) the crop equals whole-image inference up to
# float rounding (1e-5). Tiles and SIM (global ASPP pooling) agree within the bounds below.
DIM_EXACT = 1e-5


def test_dim_roi_crop_equals_whole_image(published):
    img, tri = _corner_scene(320, 288)
    u = tri == 128
    whole = _dim(published, roi=False, tile=0)
    whole.prepare(img)
    a_whole, _ = whole.predict(tri)
    crop = _dim(published)  # default roi=True, context=192: runs on 224 x 224 instead of 320 x 288
    crop.prepare(img)
    a_crop, _ = crop.predict(tri)
    assert np.abs(a_crop - a_whole)[u].max() < DIM_EXACT


def test_dim_tiles_agree_with_whole_image(published):
    img, tri = scene(192, 192)
    u = tri == 128
    ref = _dim(published, roi=False, tile=0)
    ref.prepare(img)
    a_ref, _ = ref.predict(tri)
    tiled = _dim(published, roi=False, tile=160, context=32)  # 2 x 2 overlapping tiles
    tiled.prepare(img)
    msgs = []
    a_tiled, _ = tiled.predict(tri, progress=lambda f, m: msgs.append(m))
    assert sum("tile" in m for m in msgs) == 4
    d = np.abs(a_tiled - a_ref)[u]
    assert d.mean() < 0.02 and d.max() < 0.15  # random weights: a deliberately small context


def test_sim_roi_agrees_with_whole_image(published, tmp_path):
    ck = helpers.write_published(
        "sim", tmp_path / "tame.pth", state=helpers.tame_sim(helpers.random_state("sim"))
    )
    img, tri = _corner_scene(136, 136)
    u = tri == 128
    out = {}
    for roi in (False, True):
        eng = registry.create(
            "sim",
            checkpoint=str(ck),
            classifier=str(published("sim-classifier")),
            precision="fp32",
            roi=roi,
            context=64,
        )
        eng.prepare(img)
        out[roi], _ = eng.predict(tri)
    assert 0.05 < out[False][u].mean() < 0.95 and out[False][u].std() > 0.02
    d = np.abs(out[True] - out[False])[u]
    print(
        f"SIM roi vs whole: mean {d.mean():.4f} max {d.max():.4f} (alpha std {out[False][u].std():.3f})"
    )
    # ASPP's image-pooling branch sees the whole input, so a crop can never be exact for SIM.
    assert d.mean() < 0.04 and d.max() < 0.25


def test_sim_tiles_agree_with_whole_image_and_cancel(published, tmp_path):
    """SIM at camera sizes takes the same crop/tile path as DIM: forced small tiles on a small
    image give the tiles' progress, agree with one pass, and a cancel stops between tiles."""
    ck = helpers.write_published(
        "sim", tmp_path / "tame.pth", state=helpers.tame_sim(helpers.random_state("sim"))
    )
    img, tri = scene(256, 256)
    u = tri == 128

    def sim(**kw):
        eng = registry.create(
            "sim",
            checkpoint=str(ck),
            classifier=str(published("sim-classifier")),
            precision="fp32",
            roi=False,
            **kw,
        )
        eng.prepare(img)
        return eng

    a_ref, _ = sim(tile=0).predict(tri)
    msgs: list[tuple[float, str]] = []
    # 4 x 4 overlapping tiles; SIM needs more context than DIM (ASPP's image pooling sees the
    # whole input: with 32 px the tiles are off by 0.12 on average, with 96 px by 0.01).
    tiled = sim(tile=224, context=96)
    a_tiled, _ = tiled.predict(tri, progress=lambda f, m: msgs.append((f, m)))
    assert sum("tile" in m for _, m in msgs) == 16
    assert all(b >= a for (a, _), (b, _) in itertools.pairwise(msgs))
    d = np.abs(a_tiled - a_ref)[u]
    print(f"SIM tiles vs whole: mean {d.mean():.4f} max {d.max():.4f}")
    assert d.mean() < 0.04 and d.max() < 0.25  # the roi bound: ASPP pooling sees the input
    helpers.assert_cancels_after_tile_2(sim(tile=96, context=16), tri)


def test_cancel_between_tiles(published):
    img, tri = scene(160, 160)
    eng = _dim(published, "foam", roi=False, tile=96, context=16)
    eng.prepare(img)
    helpers.assert_cancels_after_tile_2(eng, tri)


def test_model_cache_shared_between_sessions(published):
    a = _dim(published, "huo-stage1")
    b = _dim(published, "huo-stage1")
    a.load()
    b.load()
    assert a._model is b._model
    assert a.device == "cpu"


def test_bf16_close_to_fp32(published):
    from mattestudio.engines.deep.inference import bf16_supported

    if not bf16_supported():
        pytest.skip("no bf16 support on this CPU")
    img, tri = scene(64, 64)
    out = {}
    for prec in ("fp32", "bf16"):
        eng = _dim(published, "mmagic-stage3", precision=prec)
        eng.prepare(img)
        out[prec], _ = eng.predict(tri)
    assert np.abs(out["fp32"] - out["bf16"]).max() < 0.05
