"""ViTMatte through transformers: import of Hugging Face folders, equality with transformers' own
processor + model, crop and tile tolerances, trimap levels, cancel, and refusals of bad folders.

Everything runs on a tiny random VitMatteConfig saved with save_pretrained in the test."""

import json
import pickle
import shutil
import subprocess
import sys

import helpers
import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from mattestudio.engines import registry
from mattestudio.engines.deep import checkpoints as C
from mattestudio.engines.deep import kinds as K
from mattestudio.engines.deep.random_weights import write_vitmatte_folder
from mattestudio.errors import CheckpointError


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    """(folder, the transformers model saved in it)."""
    folder = tmp_path_factory.mktemp("hf") / "vitmatte-tiny"
    model = write_vitmatte_folder(folder, "tiny", seed=0)
    return folder, model


def _scene(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([np.sin(xx / 7.0), np.cos(yy / 5.0), np.sin((xx + yy) / 11.0)], 2) * 0.4 + 0.5
    img = (np.clip(img + 0.1 * rng.random((h, w, 3)), 0, 1) * 255).astype(np.uint8)
    r = np.hypot(yy - h / 2, xx - w / 2)
    rad = min(h, w) / 3
    tri = np.zeros((h, w), np.uint8)
    tri[r < rad] = 255
    tri[np.abs(r - rad) < 6] = 128
    return img, tri


def _reference(model, img_u8, tri_u8):
    """transformers' own processor (the PIL/numpy one: the default class needs torchvision)
    and model; returns the alpha on the padded canvas."""
    from transformers import VitMatteImageProcessorPil

    inputs = VitMatteImageProcessorPil()(images=img_u8, trimaps=tri_u8, return_tensors="pt")
    with torch.inference_mode():
        return model(**inputs).alphas[0, 0].numpy()


def _engine(folder, **kw):
    kw.setdefault("device", "cpu")
    return registry.create("vitmatte", checkpoint=str(folder), **kw)


def test_equals_transformers_processor_and_model_over_the_whole_image(hf):
    folder, model = hf
    img, tri = _scene(50, 70)  # not a multiple of 32: the padding is part of the check
    ref = _reference(model, img, tri)
    assert ref.shape == (64, 96)
    u = tri == 128
    assert ref[:50, :70][u].std() > 0.02  # random weights that really vary the alpha
    eng = _engine(folder, roi=False)
    eng.prepare(img.astype(np.float32) / 255)
    alpha, fg = eng.predict(tri)
    assert fg is None and alpha.shape == (50, 70) and alpha.dtype == np.float32
    want = np.where(u, ref[:50, :70], tri / 255.0)
    assert np.abs(alpha - want).max() < 1e-4
    # the raw network output over the whole padded canvas, known pixels included
    h, w = tri.shape
    ph, pw, mode = eng.canvas_pad(h, w)
    from mattestudio.engines.deep import inference as inf

    feeds = eng.whole_inputs(
        None,
        inf.pad_to(eng._image_n, ph, pw, mode),
        inf.pad_to(inf.quantise(tri), ph, pw, mode),
        None,
        None,
    )
    with torch.inference_mode():
        raw = eng.run_window(feeds, (0, h + ph, 0, w + pw))[..., 0]
    assert np.abs(raw - ref).max() < 1e-4


def test_import_folder_then_run_by_name(hf, models_dir, capsys):
    folder, model = hf
    res = C.import_checkpoint(folder)
    assert (res.name, res.kind) == ("vitmatte-tiny", "vitmatte")
    assert "model_type 'vitmatte'" in res.why
    (m,) = K.installed("vitmatte")
    assert m.meta["source"] == "vitmatte-tiny" and json.loads(m.meta["hf_config"])["model_type"]
    assert registry.unavailable_reason("vitmatte") is None
    img, tri = _scene(40, 40)
    eng = registry.create("vitmatte", roi=False)  # the first imported model
    eng.prepare(img.astype(np.float32) / 255)
    alpha, _ = eng.predict(tri)
    ref = _reference(model, img, tri)[:40, :40]
    assert np.abs(alpha - np.where(tri == 128, ref, tri / 255.0)).max() < 1e-4
    # the CLI shows it
    from test_device_cli import _cli

    args = _cli().parse_args(["models", "list"])
    assert args.func(args) == 0
    assert "vitmatte-tiny" in capsys.readouterr().out
    args = _cli().parse_args(["models", "info", "vitmatte-tiny"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "kind:       vitmatte" in out and "why:" in out


def test_pickled_bin_loads_weights_only(hf, tmp_path, models_dir):
    folder, model = hf
    binf = tmp_path / "vitmatte-bin"
    binf.mkdir()
    shutil.copy(folder / "config.json", binf / "config.json")
    torch.save(model.state_dict(), binf / "pytorch_model.bin")
    res = C.import_checkpoint(binf)
    assert res.kind == "vitmatte"
    img, tri = _scene(40, 40)
    eng = _engine(str(binf), roi=False)  # a folder used directly, without importing
    eng.prepare(img.astype(np.float32) / 255)
    alpha, _ = eng.predict(tri)
    ref = _reference(model, img, tri)[:40, :40]
    assert np.abs(alpha - np.where(tri == 128, ref, tri / 255.0)).max() < 1e-4


class _Boom:
    def __reduce__(self):
        return (__import__("os").system, ("touch PWNED",))


def test_bad_folders_are_refused_with_one_line(hf, tmp_path, models_dir):
    folder, model = hf

    def make(name, config=True, weights=True):
        d = tmp_path / name
        d.mkdir()
        if config:
            shutil.copy(folder / "config.json", d / "config.json")
        if weights:
            shutil.copy(folder / "model.safetensors", d / "model.safetensors")
        return d

    cases = []
    cases.append((make("noconfig", config=False), "without config.json"))
    cases.append((make("noweights", weights=False), "holds no weights"))
    d = make("badjson")
    (d / "config.json").write_text("{not json")
    cases.append((d, "config.json is not valid JSON"))
    d = make("othertype")
    (d / "config.json").write_text(json.dumps({"model_type": "bert"}))
    cases.append((d, "model_type 'bert'"))
    d = make("badfield")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["hidden_size"] = "wide"
    (d / "config.json").write_text(json.dumps(cfg))
    cases.append((d, "not a valid ViTMatte config"))
    d = make("truncated")
    raw = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    cases.append((d, "truncated, corrupt or unsafe"))
    d = make("missing", weights=False)
    from safetensors.torch import save_file

    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    sd.pop("decoder.matting_head.matting_convs.3.weight")
    save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
    cases.append((d, "decoder.matting_head.matting_convs.3.weight"))
    d = make("malicious", weights=False)
    (d / "pytorch_model.bin").write_bytes(pickle.dumps({"x": _Boom()}))
    cases.append((d, "truncated, corrupt or unsafe"))
    for d, msg in cases:
        with pytest.raises(CheckpointError, match=msg) as err:
            C.import_checkpoint(d)
        assert "\n" not in str(err.value) and str(d.name) in str(err.value)
    assert not (tmp_path / "PWNED").exists() and not list(models_dir.glob("*.safetensors"))
    # the weights alone cannot be imported: the architecture is in config.json
    with pytest.raises(CheckpointError, match="need their config.json"):
        C.import_checkpoint(folder / "model.safetensors")
    with pytest.raises(CheckpointError, match="is a vitmatte model folder, not sim"):
        C.import_checkpoint(folder, kind="sim")


def test_trimap_levels_are_quantised(hf):
    """The processor feeds trimap / 255 as is; the engine snaps to {0, 128, 255} first, so an
    anti-aliased or 102-valued unknown region gives exactly the 128 result."""
    folder, _ = hf
    img, tri = _scene(48, 48)
    eng = _engine(folder, roi=False)
    eng.prepare(img.astype(np.float32) / 255)
    a128, _ = eng.predict(tri)
    soft = tri.copy()
    soft[tri == 128] = 102
    soft[tri == 255] = 250
    soft[tri == 0] = 5
    a_soft, _ = eng.predict(soft)
    assert np.array_equal(a128, a_soft)
    assert (a128[tri == 0] == 0).all() and (a128[tri == 255] == 1).all()


def test_roi_and_tiles_within_stated_tolerance(hf):
    """Global attention sees the whole input, so neither a crop nor tiles can be exact; the
    stated bounds (docs/benchmarks-deep.md) are checked here with random weights."""
    folder, _ = hf
    img, _ = _scene(192, 224)
    yy, xx = np.mgrid[:192, :224]
    r = np.hypot(yy - 40, xx - 44)  # a small subject in a corner: the crop is much smaller
    tri = np.where(r < 24, 255, 0).astype(np.uint8)
    tri[np.abs(r - 24) < 5] = 128
    u = tri == 128
    out = {}
    for label, kw in {
        "whole": {"roi": False},
        "roi": {"roi": True, "context": 64},
        "tiles": {"roi": False, "tile": 128, "context": 32},
    }.items():
        eng = _engine(folder, **kw)
        eng.prepare(img.astype(np.float32) / 255)
        msgs = []
        out[label], _ = eng.predict(tri, progress=lambda f, m, msgs=msgs: msgs.append(m))
        if label == "tiles":
            assert sum("tile" in m for m in msgs) >= 4
    for label in ("roi", "tiles"):
        d = np.abs(out[label] - out["whole"])[u]
        print(f"vitmatte {label} vs whole: mean {d.mean():.4f} max {d.max():.4f}")
        assert d.mean() < 0.04 and d.max() < 0.25  # measured: mean 0.014-0.019, max 0.08-0.09


def test_cancel_between_tiles(hf):
    folder, _ = hf
    img, tri = _scene(160, 160)
    eng = _engine(folder, roi=False, tile=96, context=16)
    eng.prepare(img.astype(np.float32) / 255)
    helpers.assert_cancels_after_tile_2(eng, tri)


def test_fp32_default_and_run_order_independence(hf):
    from mattestudio.engines.deep.inference import bf16_supported

    folder, _ = hf
    assert registry.info("vitmatte").param("precision").default == "fp32"
    img, tri = _scene(64, 64)

    def run(prec):
        eng = _engine(folder, roi=False, precision=prec)
        eng.prepare(img.astype(np.float32) / 255)
        return eng.predict(tri)[0]

    first = run("fp32")
    low = run("bf16")
    assert np.array_equal(first, run("fp32"))
    if bf16_supported():
        d = np.abs(first - low)[tri == 128]
        assert 0 < d.max() < 0.5  # bf16 really ran; its error is measured in the docs


def test_pull_offline_is_one_clear_line(tmp_path, monkeypatch, models_dir):
    from huggingface_hub import constants
    from test_device_cli import _cli

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # an empty hub cache, even where a developer has the model cached (read at call time)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    args = _cli().parse_args(["models", "pull", "vitmatte-small-composition-1k"])
    with pytest.raises(CheckpointError, match="cannot download hustvl/vitmatte-small") as err:
        args.func(args)
    assert "models import DIR" in str(err.value) and "\n" not in str(err.value)
    args = _cli().parse_args(["models", "pull", "vitmatte-huge"])
    with pytest.raises(CheckpointError, match="unknown model 'vitmatte-huge'; known: vitmatte-"):
        args.func(args)


def test_listing_and_import_mattestudio_do_not_import_transformers(tmp_path):
    code = (
        "import sys, mattestudio, mattestudio.engines.registry as r\n"
        "print(r.unavailable_reason('vitmatte'), r.info('vitmatte').name)\n"
        "assert 'transformers' not in sys.modules and 'torch' not in sys.modules\n"
    )
    import os
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])  # this checkout, not an installed copy
    env = {"MATTESTUDIO_MODELS": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": root}
    env.update({k: v for k, v in os.environ.items() if k.startswith("VIRTUAL_ENV")})
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert "mattestudio models import PATH" in out.stdout
