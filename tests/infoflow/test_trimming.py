"""Trimap trimming before the information-flow solve (infoflow/trimming.py)."""

from __future__ import annotations

import numpy as np

from mattestudio.engines.infoflow.engine import InformationFlowEngine
from mattestudio.engines.infoflow.trimming import trim
from tests.conftest import make_synthetic_matte

FG = (0.9, 0.5, 0.2)
BG = (0.1, 0.3, 0.6)


def _scene():
    """Foreground left, background right, a 30 px unknown band between them (columns 20-49)
    filled with background colour, and marked pixels in it."""
    h, w = 40, 70
    image = np.empty((h, w, 3))
    image[:] = BG
    image[:, :20] = FG
    trimap = np.full((h, w), 128, np.uint8)
    trimap[:, :20] = 255
    trimap[:, 50:] = 0
    image[5, 22] = FG  # 3 px from the foreground: labelled foreground
    image[6, 22] = np.add(FG, 0.01)  # within the tolerance
    image[7, 22] = np.add(FG, 0.1)  # too far in colour: left to the solve
    image[8, 35] = FG  # 16 px from any known pixel: left
    image[10, 22] = (0.5, 0.4, 0.4)  # between the two: left
    return image, trimap


def test_labels_only_near_and_alike():
    image, trimap = _scene()
    before = trimap.copy()
    out = trim(image, trimap, radius=5, tolerance=0.025)
    assert np.array_equal(trimap, before)  # the input is not changed
    assert out[5, 22] == 255 and out[6, 22] == 255
    assert out[7, 22] == 128 and out[8, 35] == 128 and out[10, 22] == 128
    # Background-coloured unknown pixels within 5 px of the background become background, those
    # farther in stay unknown, and none near the foreground (its colour is far) change.
    assert (out[:, 45:50] == 0).all()
    assert (out[:, 25:45] == 128).all()
    assert not (out[:, :45] == 0).any()
    # Nothing known changes.
    known = trimap != 128
    assert np.array_equal(out[known], trimap[known])


def test_ambiguous_colours_are_left_to_the_solve():
    """A pixel whose colour both regions have nearby (within four times the tolerance) stays
    unknown, even if one region matches it exactly."""
    image, trimap = _scene()
    image[:, 50:] = np.add(FG, 0.05)  # the background now looks almost like the foreground
    out = trim(image, trimap, radius=40, tolerance=0.025)
    assert out[5, 22] == 128


def test_off_is_a_copy():
    image, trimap = _scene()
    for radius, tol in ((0, 0.025), (5, 0.0)):
        out = trim(image, trimap, radius, tol)
        assert out is not trimap and np.array_equal(out, trimap)


def test_engine_solves_the_trimmed_trimap():
    """The default engine is the untrimmed engine run on the trimmed trimap: trimmed pixels come
    out exactly 0 or 1, everything else as that solve gives it."""
    m = make_synthetic_matte(h=120, w=150, seed=2, band=8)
    engine = InformationFlowEngine(knn_eps=0.0)
    engine.prepare(m.image)
    got = engine.predict(m.trimap)[0]
    trimmed = trim(m.image.astype(np.float64), m.trimap, 5, 0.025)
    assert 0 < (trimmed != m.trimap).sum() < (m.trimap == 128).sum()
    plain = InformationFlowEngine(knn_eps=0.0, trim_radius=0)
    plain.prepare(m.image)
    want = plain.predict(trimmed)[0]
    np.testing.assert_allclose(got, want, atol=1e-6)
    labelled = trimmed != m.trimap
    assert np.array_equal(got[labelled], (trimmed[labelled] == 255).astype(np.float32))
