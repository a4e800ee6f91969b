"""SAM 2 through transformers' Sam2Model with our own pre- and post-processing."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mattestudio.engines.segment import preprocess as pp
from mattestudio.engines.segment.predictor import Sam2Predictor
from mattestudio.engines.segment.prompts import PromptError, Prompts
from mattestudio.engines.segment.sam2_files import preprocess_from_dict
from mattestudio.errors import CheckpointError


def _image(h=90, w=120, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.random((h, w, 3)).astype(np.float32) * 0.3
    img[20:70, 30:90] += 0.6  # a bright block: something to select
    return np.clip(img, 0, 1)


def _reference_mask(model, spec, image, prompts: Prompts, multimask: bool):
    """What Sam2Model gives for the same prompt when driven as Sam2Processor drives it:
    the full forward from pixel values, coordinates scaled to the target size, the best
    candidate upsampled bilinearly (align_corners=False) and thresholded at 0."""
    h, w = image.shape[:2]
    s = spec.target_size
    kwargs = {}
    pts, labels = prompts.points_and_labels()
    if pts:
        kwargs["input_points"] = torch.tensor([[[[x * s / w, y * s / h] for x, y in pts]]])
        kwargs["input_labels"] = torch.tensor([[labels]])
    if prompts.box is not None:
        x0, y0, x1, y1 = prompts.box
        kwargs["input_boxes"] = torch.tensor([[[x0 * s / w, y0 * s / h, x1 * s / w, y1 * s / h]]])
    with torch.no_grad():
        out = model(pixel_values=pp.pixel_values(image, spec), multimask_output=multimask, **kwargs)
    best = int(out.iou_scores[0, 0].argmax())
    up = F.interpolate(
        out.pred_masks[0, 0, best][None, None], size=(h, w), mode="bilinear", align_corners=False
    )
    return (up[0, 0] > 0).numpy()


@pytest.fixture(scope="module")
def predictor(sam2_dir):
    return Sam2Predictor.load(sam2_dir)  # with the CPU speed-ups (cpu_speedups.py)


@pytest.fixture(scope="module")
def stock_model(sam2_dir):
    """Sam2Model exactly as transformers builds it: the reference for our outputs."""
    from mattestudio.engines.segment.sam2_store import load

    model, _spec = load(sam2_dir)
    return model


@pytest.mark.parametrize(
    "prompts",
    [
        Prompts(((40.0, 30.0),)),
        Prompts(((40.0, 30.0), (80.5, 60.25)), ((5.0, 5.0),)),
        Prompts(box=(25.0, 15.0, 95.0, 75.0)),
        Prompts(((60.0, 45.0),), box=(25.0, 15.0, 95.0, 75.0)),
    ],
    ids=["one-click", "clicks-and-exclude", "box", "box-and-click"],
)
def test_masks_equal_sam2model_outputs(predictor, stock_model, prompts):
    image = _image()
    predictor.set_image(image)
    multimask = len(prompts.positive) + len(prompts.negative) == 1 and prompts.box is None
    ref = _reference_mask(stock_model, predictor.spec, image, prompts, multimask)
    ours = predictor.predict(prompts).mask
    assert ours.shape == image.shape[:2] and ours.dtype == bool
    assert 0 < ref.sum() < ref.size  # a random network still selects part of the image
    np.testing.assert_array_equal(ours, ref)


def test_speedups_keep_sam2model_results(sam2_dir, stock_model):
    """The accelerated model (oneDNN matmuls, no discarded attention, cached encodings) gives
    the stock model's embeddings and mask logits to float rounding, and is applied once."""
    from mattestudio.engines.segment.cpu_speedups import accelerate, onednn_available

    fast = Sam2Predictor.load(sam2_dir)
    if onednn_available():
        assert any(s.startswith("onednn-linear") for s in fast.speedups)
    assert any(s.startswith("hiera-attention") for s in fast.speedups)
    assert accelerate(fast.model) == fast.speedups  # a second call patches nothing more
    image = _image(seed=3)
    pv = pp.pixel_values(image, fast.spec)
    with torch.inference_mode():
        for _ in range(2):  # the second run uses the cached position encodings
            ours = fast.model.get_image_embeddings(pv)
            ref = stock_model.get_image_embeddings(pv)
            for a, b in zip(ours, ref):
                assert a.shape == b.shape
                assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    stock = Sam2Predictor(stock_model, fast.spec, speedups=False)
    assert stock.speedups == []
    prompts = [
        Prompts(((40.0, 30.0),)),
        Prompts(((40.0, 30.0),), ((100.0, 80.0),), box=(20.0, 10.0, 100.0, 80.0)),
    ]
    # Two clicks per image (the second reuses the decoder's per-image part), then a new image
    # (which must not).
    for img in (image, _image(seed=5)):
        fast.set_image(img)
        stock.set_image(img)
        for p in prompts:
            for multimask in (True, False):
                logits, scores = fast.low_res(p, multimask=multimask)
                ref_logits, ref_scores = stock.low_res(p, multimask=multimask)
                assert torch.allclose(logits, ref_logits, rtol=1e-4, atol=1e-4)
                assert torch.allclose(scores, ref_scores, rtol=1e-4, atol=1e-5)


def test_long_attention_equals_torch_attention():
    """The global-attention path (oneDNN matmuls over query chunks) on a sequence long enough
    to take it, against torch's scaled_dot_product_attention."""
    from mattestudio.engines.segment import cpu_speedups as cs

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 1100, 16, generator=g) for _ in range(3))
    assert cs.ONEDNN_ATTENTION_MIN <= 1100 * 1100  # the chunked path, not the fallback
    ref = F.scaled_dot_product_attention(q, k, v, scale=0.25)
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):  # the chunked path on one thread, torch's with more
            torch.set_num_threads(threads)
            ours = cs.attention(q, k, v, 0.25, onednn=cs.onednn_available())
            assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-6)
    finally:
        torch.set_num_threads(before)


def test_embedding_cached_across_prompts(sam2_dir):
    p = Sam2Predictor.load(sam2_dir)
    image = _image()
    seen = []
    assert p.set_image(image, progress=lambda f, msg: seen.append(f)) is True
    assert p.embeddings_computed == 1 and seen[-1] == 1.0 and len(seen) >= 5
    first = p.predict(Prompts(((40.0, 30.0),)))
    assert p.set_image(image.copy()) is False  # same pixels: cache hit
    second = p.predict(Prompts(((40.0, 30.0),), ((100.0, 80.0),)))
    assert p.embeddings_computed == 1
    assert first.mask.shape == second.mask.shape
    p.set_image(_image(seed=1))
    assert p.embeddings_computed == 2


def test_embedding_cancel(sam2_dir):
    from mattestudio.errors import Cancelled
    from mattestudio.types import CancelToken

    p = Sam2Predictor.load(sam2_dir)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        p.set_image(_image(), cancel=token)
    assert p.embeddings_computed == 0 and p.image_shape is None


def test_pixel_values_match_an_independent_resize(sam2_dir):
    """The resize is torchvision's antialiased bilinear on uint8, which Pillow's BILINEAR resample
    also implements (torch's antialias kernels follow Pillow's): equal within one grey level
    (Pillow rounds in fixed point)."""
    from PIL import Image

    spec = preprocess_from_dict(json.loads((sam2_dir / "preprocessor_config.json").read_text()))
    image = _image(70, 150, seed=4)
    u8 = pp.to_uint8(image)
    pil = np.asarray(
        Image.fromarray(u8).resize((spec.width, spec.height), Image.Resampling.BILINEAR), np.float32
    )
    mean, std = np.array(spec.mean) * 255, np.array(spec.std) * 255
    ours = pp.pixel_values(image, spec)[0].numpy().transpose(1, 2, 0) * std + mean
    assert ours.shape == (spec.height, spec.width, 3)
    assert np.abs(ours - pil).max() <= 1.0 + 1e-3
    assert (np.abs(ours - pil) < 1e-3).mean() > 0.7  # rounding differs on the rest


def test_normalisation_follows_the_config():
    spec = preprocess_from_dict(
        {
            "size": {"height": 32, "width": 32},
            "image_mean": [0.5, 0.5, 0.5],
            "image_std": [0.25, 0.5, 1.0],
        }
    )
    image = np.full((32, 32, 3), 200 / 255, np.float32)
    pv = pp.pixel_values(image, spec)[0]
    for c, s in enumerate((0.25, 0.5, 1.0)):
        assert torch.allclose(pv[c], torch.full((32, 32), (200 / 255 - 0.5) / s), atol=1e-5)


def test_bad_prompts_are_one_clear_error(predictor):
    predictor.set_image(_image())
    with pytest.raises(PromptError, match="outside the 120x90 image"):
        predictor.predict(Prompts(((120.0, 10.0),)))
    with pytest.raises(PromptError, match="zero size"):
        predictor.predict(Prompts(box=(10.0, 10.0, 10.0, 40.0)))
    with pytest.raises(PromptError, match="nothing to select"):
        predictor.predict(Prompts())


def test_import_folder_then_load_by_name(sam2_dir, models_dir, capsys):
    from mattestudio.cli.main import main
    from mattestudio.engines.deep import kinds as K

    assert main(["models", "import", str(sam2_dir), "--name", "tiny"]) == 0
    assert "kind sam2" in capsys.readouterr().out
    (found,) = K.installed("sam2")
    assert found.name == "tiny" and found.path.parent == models_dir
    image = _image()
    a, b = Sam2Predictor.load("tiny"), Sam2Predictor.load(sam2_dir)
    a.set_image(image)
    b.set_image(image)
    prompts = Prompts(((50.0, 40.0),), ((3.0, 3.0),))
    np.testing.assert_array_equal(a.predict(prompts).mask, b.predict(prompts).mask)
    assert Sam2Predictor.load().name == "tiny"  # the first imported one by default


def test_import_refuses_bad_folders(sam2_dir, models_dir, tmp_path, capsys):
    from mattestudio.cli.main import main
    from mattestudio.engines.segment.sam2_store import import_folder

    assert main(["models", "import", str(sam2_dir / "model.safetensors")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "SAM 2 checkpoint" in err and "models import DIR" in err

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((sam2_dir / "config.json").read_text())
    with pytest.raises(CheckpointError, match="no weights"):
        import_folder(bad)
    (bad / "model.safetensors").write_bytes((sam2_dir / "model.safetensors").read_bytes())
    (bad / "preprocessor_config.json").write_text(
        json.dumps({"size": {"height": 1024, "width": 1024}})
    )
    with pytest.raises(
        CheckpointError, match="resizes to 1024x1024 but the network expects 128x128"
    ):
        import_folder(bad)
    assert not models_dir.exists() or not list(models_dir.iterdir())


def test_pull_without_internet_is_one_line(models_dir, monkeypatch, capsys):
    import huggingface_hub

    from mattestudio.cli.main import main

    def offline(**kwargs):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    assert main(["models", "pull", "sam2.1-hiera-tiny"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot download facebook/sam2.1-hiera-tiny" in err
    assert main(["models", "pull", "sam3"]) == 1
    assert "unknown model 'sam3'" in capsys.readouterr().err


def test_import_mattestudio_stays_light():
    code = (
        "import sys, mattestudio, mattestudio.engines.segment.select, mattestudio.cli.trimap\n"
        "f = mattestudio.trimap_from_prompts\n"
        "bad = [m for m in ('torch', 'transformers', 'PySide6') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""  # none of torch, transformers, PySide6
