"""The Python API: mattestudio.matte(image, trimap, engine=..., **params)."""

from __future__ import annotations

import numpy as np
import pytest

import mattestudio
from mattestudio.core import metrics
from mattestudio.errors import ImageLoadError, MattestudioError, TrimapError, UnknownEngine
from mattestudio.types import CancelToken, MattingResult


def _check_result(result, shape):
    assert isinstance(result, MattingResult)
    assert isinstance(result.alpha, np.ndarray) and isinstance(result.foreground, np.ndarray)
    assert result.alpha.dtype == np.float32 and result.alpha.shape == shape
    assert result.foreground.dtype == np.float32 and result.foreground.shape == shape + (3,)
    assert result.alpha.min() >= 0.0 and result.alpha.max() <= 1.0
    assert result.shape == shape


def test_top_level_exports():
    from mattestudio.api import matte

    assert mattestudio.matte is matte
    assert mattestudio.MattingResult is MattingResult
    assert mattestudio.MattestudioError is MattestudioError
    with pytest.raises(AttributeError):
        mattestudio.no_such_thing  # noqa: B018


def test_matte_with_arrays(synthetic_matte):
    s = synthetic_matte
    result = mattestudio.matte(s.image, s.trimap)
    _check_result(result, s.alpha.shape)
    assert result.engine == "information-flow"  # the default (issue 12)
    assert np.all(result.alpha[s.trimap == 255] == 1) and np.all(result.alpha[s.trimap == 0] == 0)
    assert metrics.sad(result.alpha, s.alpha, s.trimap) < 0.0095  # its bound in test_engines


def test_matte_with_uint8_image_and_float_trimap(synthetic_matte):
    s = synthetic_matte
    img8 = np.rint(s.image * 255).astype(np.uint8)
    tri_f = s.trimap / 255.0  # 0, 0.502, 1
    result = mattestudio.matte(img8, tri_f, engine="knn")
    _check_result(result, s.alpha.shape)
    assert result.engine == "knn"
    assert np.all(result.alpha[s.trimap == 255] == 1)


def test_matte_with_paths(synthetic_files, synthetic_matte):
    s = synthetic_matte
    by_path = mattestudio.matte(synthetic_files["image"], str(synthetic_files["trimap"]))
    _check_result(by_path, s.alpha.shape)
    img8 = np.rint(s.image * 255).astype(np.uint8)
    by_array = mattestudio.matte(img8, s.trimap)
    np.testing.assert_allclose(by_path.alpha, by_array.alpha, atol=1e-4)


def test_params_reach_the_engine(synthetic_matte):
    s = synthetic_matte
    result = mattestudio.matte(
        s.image, s.trimap, engine="closed-form-pymatting", radius=2, estimate_foreground=False
    )
    assert result.params["radius"] == 2
    np.testing.assert_array_equal(result.foreground, s.image)


def test_trimap_size_mismatch_names_both_sizes(synthetic_matte, synthetic_files):
    s = synthetic_matte
    with pytest.raises(TrimapError) as info:
        mattestudio.matte(s.image, s.trimap[:, :50])
    msg = str(info.value)
    assert "50x64" in msg and "80x64" in msg
    # From files, the message also names them.
    import cv2

    small = synthetic_files["trimap"].with_name("small_trimap.png")
    cv2.imwrite(str(small), s.trimap[:32, :40])
    with pytest.raises(TrimapError) as info:
        mattestudio.matte(synthetic_files["image"], small)
    msg = str(info.value)
    assert "40x32" in msg and "80x64" in msg
    assert "small_trimap.png" in msg and "image.png" in msg


def test_trimap_without_unknown(synthetic_matte):
    s = synthetic_matte
    with pytest.raises(TrimapError, match="no unknown"):
        mattestudio.matte(s.image, np.where(s.alpha > 0.5, 255, 0).astype(np.uint8))


def test_missing_image_file(tmp_path, synthetic_matte):
    missing = tmp_path / "missing.png"
    with pytest.raises(ImageLoadError) as info:
        mattestudio.matte(missing, synthetic_matte.trimap)
    assert str(missing) in str(info.value) and "not found" in str(info.value)


def test_unknown_engine(synthetic_matte):
    with pytest.raises(UnknownEngine, match="available engines: .*closed-form"):
        mattestudio.matte(synthetic_matte.image, synthetic_matte.trimap, engine="magic")


def test_bad_param(synthetic_matte):
    with pytest.raises(MattestudioError, match="no parameter 'bogus'"):
        mattestudio.matte(synthetic_matte.image, synthetic_matte.trimap, bogus=1)


def test_progress_and_cancel(synthetic_matte):
    s = synthetic_matte
    seen = []
    mattestudio.matte(s.image, s.trimap, progress=lambda f, m: seen.append(f))
    assert seen and seen[-1] == 1.0
    token = CancelToken()
    token.cancel()
    from mattestudio.errors import Cancelled

    with pytest.raises(Cancelled):
        mattestudio.matte(s.image, s.trimap, cancel=token)
