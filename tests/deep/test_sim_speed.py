"""SIM's CPU speed-ups must not change results: batched classifier patches, the per-patch CAM cache,
bf16 weights converted once, and convolutions fused with their residual add and activation."""

import helpers
import numpy as np
import pytest
import torch
from conftest import scene

from mattestudio.engines.deep import inference as inf
from mattestudio.engines.deep.sim import network as N
from mattestudio.engines.deep.sim import semantic as S


def _counting_run(calls):
    def run(module, x):
        calls.append(x.shape[0])
        return module(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())

    return run


def _per_patch_reference(cls, img_n, tri):
    """The published loop: one classifier call per patch."""

    def run(module, x):
        return torch.cat(
            [
                module(torch.from_numpy(x[n : n + 1]).permute(0, 3, 1, 2).contiguous())
                for n in range(x.shape[0])
            ]
        )

    old = S.BATCH_PIXELS
    S.BATCH_PIXELS = 1  # every batch holds one patch
    try:
        return S.semantic_trimap(cls, img_n, tri, run)
    finally:
        S.BATCH_PIXELS = old


def test_batched_patches_and_cache_match_per_patch():
    torch.manual_seed(0)
    cls = N.SimClassifier().eval().finalize_()
    img, tri = scene(360, 352)
    img_n = inf.normalise(img)
    with torch.inference_mode():
        ref = _per_patch_reference(cls, img_n, tri)
        calls, cache = [], {}
        smap = S.semantic_trimap(cls, img_n, tri, _counting_run(calls), cache=cache)
        assert calls == [4, 1]  # four 320 px patches in one batch, then the clamped 800 px patch
        assert np.abs(smap - ref).max() < 1e-4  # fp32: batching changes only summation order

        calls.clear()
        again = S.semantic_trimap(cls, img_n, tri, _counting_run(calls), cache=cache)
        assert calls == [] and np.array_equal(again, smap)  # same trimap: no classifier run

        edited = tri.copy()
        edited[:30, :30] = 128  # touches only the top-left 320 px patch and the whole-image patch
        calls.clear()
        got = S.semantic_trimap(cls, img_n, edited, _counting_run(calls), cache=cache)
        assert calls == [1, 1]
        assert np.abs(got - _per_patch_reference(cls, img_n, edited)).max() < 1e-4


@pytest.mark.skipif(not inf.bf16_supported() or N._POINTWISE is None, reason="needs oneDNN bf16")
def test_fused_convolutions_match_eager_bf16():
    from mattestudio.engines.deep.build import load_module

    model = load_module(
        "sim", helpers.tame_sim(helpers.random_state("sim")), "tame", torch.device("cpu")
    )
    fast = inf.prepared(model, "bf16", torch.device("cpu"))
    assert inf.prepared(model, "bf16", torch.device("cpu")) is fast  # converted once
    assert (
        fast.encoder.conv1.weight.dtype == torch.bfloat16
        and model.encoder.conv1.weight.dtype == torch.float32
    )
    img, tri = scene(64, 64)
    ins = [
        img,
        S.two_channel(tri),
        inf.normalise(img),
        S.clicks(tri),
        np.random.rand(64, 64, 20).astype(np.float32),
    ]
    ts = [inf.to_tensor(a, torch.device("cpu"), torch.channels_last, torch.bfloat16) for a in ins]
    with torch.inference_mode():
        fused, _ = fast(*ts)
        pointwise, N._POINTWISE = N._POINTWISE, None
        try:
            eager, _ = fast(*ts)
        finally:
            N._POINTWISE = pointwise
        ref, _ = model(*[t.float().contiguous() for t in ts])
    # fused post-ops round once instead of after every op: bf16-level differences only
    assert 0.05 < ref.mean() < 0.95  # not saturated by the clamp
    # (measured: fused-eager 0.0098, fused-fp32 0.0110, eager-fp32 0.0103 on this tame checkpoint)
    assert (fused - eager).abs().max() < 0.02
    assert (fused - ref).abs().max() < 0.025
