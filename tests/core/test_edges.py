"""Edge adjustments (mattestudio.core.edges): known answers on synthetic mattes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mattestudio.core import edges
from mattestudio.core.edges import EdgeAdjustmentError, EdgeAdjustments


def step(h=40, w=100, at=50) -> np.ndarray:
    """Alpha 1 for columns >= ``at``, 0 left of it: the edge lies at x = at - 0.5 (pixel centres)."""
    a = np.zeros((h, w), np.float32)
    a[:, at:] = 1.0
    return a


def disc(h=120, w=120, r=30.0, ss=8) -> np.ndarray:
    yy, xx = (np.mgrid[0 : h * ss, 0 : w * ss] + 0.5) / ss
    inside = np.hypot(yy - h / 2, xx - w / 2) <= r
    return inside.reshape(h, ss, w, ss).mean(axis=(1, 3)).astype(np.float32)


def soft_matte(seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = disc()
    a = np.clip(a + rng.normal(0, 0.05, a.shape).astype(np.float32) * (a > 0) * (a < 1), 0, 1)
    return a.astype(np.float32)


# -- validation ---------------------------------------------------------------------------------------


def test_defaults_and_all_zero_leave_the_matte_untouched():
    a = soft_matte()
    e = EdgeAdjustments()
    assert e.decontaminate == 1.0 and not e.changes_alpha and e.is_default
    assert edges.adjust_alpha(a, e) is a
    assert edges.adjust_alpha(a, EdgeAdjustments(decontaminate=0.3)) is a


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"feather": -1}, "feather cannot be negative (got -1 px)"),
        ({"contrast": 101}, "contrast must be between 0 and 100 % (got 101 %)"),
        ({"smooth": -0.5}, "smooth must be between 0 and 50 px"),
        ({"shift_edge": 500}, "shift edge must be between -100 and 100 px"),
        ({"decontaminate": 1.5}, "decontaminate must be between 0 and 1"),
        ({"feather": float("nan")}, "feather must be a finite number"),
        ({"feather": "abc"}, "feather must be a number, not 'abc'"),
    ],
)
def test_out_of_range_values_are_refused_with_a_clear_message(kwargs, words):
    with pytest.raises(EdgeAdjustmentError) as info:
        EdgeAdjustments(**kwargs)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_dict_round_trip_and_bad_project_values_name_the_file(tmp_path):
    e = EdgeAdjustments(smooth=2, feather=1.5, contrast=30, shift_edge=-2.25, decontaminate=0.4)
    assert EdgeAdjustments.from_dict(e.to_dict()) == e
    assert EdgeAdjustments.from_dict(None) == EdgeAdjustments()
    assert EdgeAdjustments.from_dict({"feather": 3}).feather == 3.0
    src = tmp_path / "shot.mattestudio"
    with pytest.raises(EdgeAdjustmentError, match="shot.mattestudio: feather cannot be negative"):
        EdgeAdjustments.from_dict({"feather": -2}, src)
    with pytest.raises(EdgeAdjustmentError, match="unknown edge adjustment.*fether"):
        EdgeAdjustments.from_dict({"fether": 2}, src)
    with pytest.raises(EdgeAdjustmentError, match="mapping"):
        EdgeAdjustments.from_dict([1, 2], src)


# -- Shift Edge --------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 7, 2.5, 0.25, 12.75])
def test_shift_edge_grows_a_step_edge_by_k_pixels(k):
    a = step()
    out = edges.adjust_alpha(a, EdgeAdjustments(shift_edge=k))
    # Coverage per row grew by exactly k pixels (the fraction lands on the new edge pixel).
    np.testing.assert_allclose(out.sum(axis=1), a.sum(axis=1) + k, atol=1e-4)
    n = int(math.floor(k))
    assert np.all(out[:, 50 - n :] == 1.0)
    assert np.all(out[:, : 50 - n - 1] == 0.0)
    np.testing.assert_allclose(out[:, 50 - n - 1], k - n, atol=1e-6)


@pytest.mark.parametrize("k", [1, 4, 2.5])
def test_shift_edge_negative_shrinks_by_k_pixels(k):
    a = step()
    out = edges.adjust_alpha(a, EdgeAdjustments(shift_edge=-k))
    np.testing.assert_allclose(out.sum(axis=1), a.sum(axis=1) - k, atol=1e-4)


def test_shift_edge_grows_a_disc_radius_by_about_k_in_every_direction():
    a = disc(r=30.0)
    for k in (4, 9.5):
        out = edges.shift_edge(a, k)
        r_new = math.sqrt(out.sum() / math.pi)
        assert abs(r_new - (30.0 + k)) < 0.06 * k + 0.3
        # Along the axes and the diagonals alike (a near-disc, not a square or a diamond).
        cy = cx = 60
        right = np.sum(out[cy, cx:] > 0.5)
        diag = np.sum(np.diagonal(out[cy:, cx:]) > 0.5) * math.sqrt(2)
        assert abs(right - diag) < 2.0


def test_shift_edge_moves_every_level_of_a_soft_ramp():
    x = np.arange(100, dtype=np.float32)
    a = np.tile(np.clip((x - 40) / 10, 0, 1), (5, 1)).astype(np.float32)  # ramp from 40 to 50
    out = edges.shift_edge(a, 3)
    np.testing.assert_allclose(out[:, 10:90], a[:, 13:93], atol=1e-6)


# -- Feather -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [1.0, 3.0, 8.0, 20.0, 60.0])
def test_feather_of_a_step_matches_a_gaussian_cdf(sigma):
    w = int(12 * sigma) + 40
    a = step(h=8, w=w, at=w // 2)
    out = edges.adjust_alpha(a, EdgeAdjustments(feather=sigma))
    x = np.arange(w) - (w // 2 - 0.5)  # signed distance of each pixel centre to the edge
    cdf = 0.5 * (1 + np.vectorize(math.erf)(x / (math.sqrt(2) * sigma)))
    # Small sigmas are sampled exactly; large ones are blurred at a lower resolution.
    tol = 0.02 if sigma <= 1.0 else 0.003
    np.testing.assert_allclose(out[4], cdf, atol=tol)


# -- Contrast ----------------------------------------------------------------------------------------


def test_contrast_100_gives_a_binary_matte_and_keeps_the_half_level_contour():
    a = soft_matte()
    out = edges.adjust_alpha(a, EdgeAdjustments(contrast=100))
    assert set(np.unique(out)) <= {0.0, 1.0}
    np.testing.assert_array_equal(out, (a > 0.5).astype(np.float32))


def test_contrast_hardens_soft_transitions_monotonically():
    x = np.arange(100, dtype=np.float32)
    a = np.tile(np.clip((x - 30) / 40, 0, 1), (3, 1)).astype(np.float32)  # a 40 px ramp
    widths = []
    for c in (0, 50, 75, 90):
        out = edges.adjust_alpha(a, EdgeAdjustments(contrast=c))
        widths.append(int(np.sum((out[0] > 0) & (out[0] < 1))))
    assert widths[0] == 39 and widths == sorted(widths, reverse=True)
    assert widths[1] == pytest.approx(20, abs=1) and widths[3] == pytest.approx(4, abs=1)


# -- Smooth ------------------------------------------------------------------------------------------


def test_smooth_straightens_a_jagged_edge_and_keeps_a_straight_one_in_place():
    h, w = 64, 64
    jag = np.zeros((h, w), np.float32)
    for i in range(h):
        jag[i, 30 + (2 if (i // 2) % 2 else -2) :] = 1.0  # +-2 px teeth every 2 rows
    out = edges.adjust_alpha(jag, EdgeAdjustments(smooth=6))
    rows = out.sum(axis=1)[8:-8]
    assert np.std(jag.sum(axis=1)) == pytest.approx(2.0)
    assert np.std(rows) < 0.25  # the teeth are gone
    assert abs(rows.mean() - jag.sum(axis=1).mean()) < 0.3  # the edge stays where it was
    straight = step(w=64, at=30)
    np.testing.assert_allclose(edges.smooth(straight, 6).sum(axis=1), 34, atol=0.05)


def test_smooth_removes_specks_narrower_than_the_radius():
    a = np.zeros((40, 40), np.float32)
    a[20, 20] = 1.0  # a one-pixel speck
    a[:, 30:] = 1.0
    out = edges.smooth(a, 4)
    assert out[20, 20] < 0.05 and out[:, 32:].min() > 0.95


# -- Decontaminate -----------------------------------------------------------------------------------


def test_decontaminate_0_keeps_the_photos_colours_and_1_the_estimate():
    rng = np.random.default_rng(1)
    image = rng.random((10, 12, 3), dtype=np.float32)
    fg = rng.random((10, 12, 3), dtype=np.float32)
    alpha = rng.random((10, 12), dtype=np.float32)
    a0, f0 = edges.apply(alpha, fg, image, EdgeAdjustments(decontaminate=0))
    assert f0 is image and a0 is alpha
    _, f1 = edges.apply(alpha, fg, image, EdgeAdjustments())
    assert f1 is fg
    _, half = edges.apply(alpha, fg, image, EdgeAdjustments(decontaminate=0.25))
    np.testing.assert_allclose(half, image + 0.25 * (fg - image), atol=1e-6)


def test_adjustments_chain_in_order_and_stay_in_range():
    a = soft_matte()
    e = EdgeAdjustments(smooth=2, feather=1.5, contrast=40, shift_edge=-1.5)
    out = edges.adjust_alpha(a, e)
    assert out.dtype == np.float32 and out.shape == a.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    expected = edges.shift_edge(edges.contrast(edges.gaussian(edges.smooth(a, 2), 1.5), 40), -1.5)
    np.testing.assert_allclose(out, np.clip(expected, 0, 1), atol=1e-6)
    assert edges.adjust_alpha(a, e.replace(shift_edge=0)).sum() > out.sum()
