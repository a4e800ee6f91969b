"""`mattestudio trimap` and `mattestudio.trimap_from_prompts`: SAM 2 or GrabCut, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import mattestudio
from mattestudio.cli.main import main
from mattestudio.core import io
from mattestudio.engines.segment.prompts import PromptError


@pytest.fixture
def photo(tmp_path):
    """An orange disc on a blue-green background, 160 x 120."""
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w]
    disc = (yy - 60) ** 2 + (xx - 75) ** 2 < 35**2
    img = np.empty((h, w, 3), np.float32)
    img[:] = (0.1, 0.45, 0.55)
    img[disc] = (0.9, 0.55, 0.2)
    path = tmp_path / "photo.png"
    io.save_rgb(path, img)
    return path, disc


def test_cli_with_sam2_writes_a_trimap_of_the_image_size(
    photo, sam2_dir, models_dir, tmp_path, capsys
):
    path, _ = photo
    out = tmp_path / "t.png"
    code = main(
        [
            "trimap",
            str(path),
            "--click",
            "75,60",
            "--exclude",
            "5,5",
            "--band",
            "6",
            "--model",
            str(sam2_dir),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "SAM 2 model" in capsys.readouterr().out
    tri = io.read_image_array(out)
    assert tri.shape == (120, 160) and tri.dtype == np.uint8
    assert set(np.unique(tri)) <= {0, 128, 255} and (tri == 128).any()


def test_cli_without_a_model_falls_back_to_grabcut(photo, models_dir, tmp_path, capsys):
    path, disc = photo
    out = tmp_path / "t.png"
    assert main(["trimap", str(path), "--box", "30,15,90,90", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "using GrabCut: no SAM 2 model" in captured.err
    tri = io.read_image_array(out)
    assert tri.shape == disc.shape and set(np.unique(tri)) == {0, 128, 255}
    # GrabCut finds the disc: foreground inside it, background well outside
    assert (tri[disc] != 0).mean() > 0.95 and (tri[~disc] == 255).mean() < 0.02


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--click", "160,10"], "outside the 160x120 image"),
        (["--box", "10,10,0,20"], "zero size"),
        (["--click", "abc"], "expected X,Y"),
        (["--exclude", "5,5"], "needs a box or at least one click on the subject"),
        (["--click", "75,60", "--model", "nothing-here"], "is neither a folder"),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(
    photo, models_dir, tmp_path, capsys, args, message
):
    path, _ = photo
    out = tmp_path / "t.png"
    assert main(["trimap", str(path), *args, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".t.png*"))


def test_cli_empty_sam2_mask_writes_nothing(
    photo, sam2_dir, models_dir, tmp_path, capsys, monkeypatch
):
    from mattestudio.engines.segment.predictor import MaskResult, Sam2Predictor

    monkeypatch.setattr(
        Sam2Predictor, "predict", lambda self, p: MaskResult(np.zeros((120, 160), bool), 0.1, 0.0)
    )
    out = tmp_path / "t.png"
    args = [
        "trimap",
        str(photo[0]),
        "--click",
        "75,60",
        "--model",
        str(sam2_dir),
        "--out",
        str(out),
    ]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "photo.png: the selection is empty" in err and err.count("\n") == 1
    assert not out.exists()


def test_api_grabcut_fallback_warns(photo, models_dir):
    path, disc = photo
    with pytest.warns(RuntimeWarning, match="using GrabCut"):
        tri = mattestudio.trimap_from_prompts(path, clicks=[(75, 60)], box=(30, 15, 90, 90), band=4)
    assert tri.shape == disc.shape and (tri[disc] != 0).mean() > 0.95
    with pytest.raises(PromptError, match="outside"):
        mattestudio.trimap_from_prompts(path, clicks=[(-1, 5)])


def test_api_with_sam2_and_band(photo, sam2_dir, models_dir):
    path, _ = photo
    narrow = mattestudio.trimap_from_prompts(path, clicks=[(75, 60)], band=2, model=sam2_dir)
    wide = mattestudio.trimap_from_prompts(path, clicks=[(75, 60)], band=16, model=sam2_dir)
    assert narrow.shape == wide.shape == (120, 160)
    assert (wide == 128).sum() > (narrow == 128).sum() > 0
