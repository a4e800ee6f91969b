"""Foreground estimation in parallel strips and in a box after a Live stroke.

Stated tolerance: strips that overlap by STRIP_OVERLAP rows give the whole-image estimate to
within 0.02 mean alpha-weighted color difference over the semi-transparent pixels (the multilevel
estimator's coarsest levels see less of the image in a strip); the opaque pixels are exact.
"""

import numpy as np

from mattestudio.engines import foreground
from tests.conftest import make_synthetic_matte


def test_strips_match_the_whole_image(monkeypatch):
    m = make_synthetic_matte(h=240, w=200, seed=2, band=12)
    whole = foreground.estimate_foreground(m.image, m.alpha, workers=1)
    monkeypatch.setattr(foreground, "STRIP_OVERLAP", 24)
    monkeypatch.setattr(foreground, "STRIP_PIXELS", 10_000)
    assert len(foreground._strips(240, 200, 2)) > 1
    strips = foreground.estimate_foreground(m.image, m.alpha, workers=2)
    assert strips.shape == whole.shape and strips.dtype == np.float32
    soft = (m.alpha > 0.02) & (m.alpha < 0.98)
    weighted = m.alpha[..., None] * np.abs(strips - whole)
    assert weighted[soft].mean() < 0.02
    opaque = m.alpha >= 0.999
    assert np.array_equal(strips[opaque], m.image[opaque])


def test_update_changes_only_the_box():
    m = make_synthetic_matte(h=160, w=200, seed=4, band=10)
    fg = foreground.estimate_foreground(m.image, m.alpha, workers=1)
    alpha = m.alpha.copy()
    alpha[60:100, 80:140] = np.clip(alpha[60:100, 80:140] * 0.5, 0, 1)
    out = fg.copy()
    foreground.update_foreground(m.image, alpha, out, (60, 100, 80, 140))
    outside = np.ones(alpha.shape, bool)
    outside[60:100, 80:140] = False
    assert np.array_equal(out[outside], fg[outside])
    assert not np.array_equal(out[60:100, 80:140], fg[60:100, 80:140])
