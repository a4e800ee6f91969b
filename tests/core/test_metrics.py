"""SAD, MSE, Gradient and Connectivity errors on small cases worked by hand.

Definitions: the Composition-1K MATLAB code (compute_sad_loss.m, compute_mse_loss.m,
compute_gradient_loss.m with gaussgradient.m, compute_connectivity_error.m): pred and gt in [0, 1],
sums over trimap == 128, SAD/Grad/Conn divided by 1000, MSE the plain mean.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mattestudio.core import metrics as M

U = 128  # unknown


def _all_unknown(shape):
    return np.full(shape, U, np.uint8)


# ---------------------------------------------------------------------------------------------
# SAD and MSE

PRED = np.array([[0.0, 0.5], [1.0, 0.25]])
GT = np.array([[0.0, 1.0], [0.0, 0.25]])
TRI = np.array([[U, U], [U, 0]], np.uint8)  # the bottom-right pixel is known: not counted


def test_sad_by_hand():
    # |0-0| + |0.5-1| + |1-0| = 1.5, / 1000
    assert M.sad(PRED, GT, TRI) == pytest.approx(0.0015)


def test_mse_by_hand():
    # (0 + 0.25 + 1) / 3 unknown pixels
    assert M.mse(PRED, GT, TRI) == pytest.approx(1.25 / 3)


def test_only_exactly_128_is_unknown():
    tri = np.array([[U, 127], [129, 255]], np.uint8)  # only the top-left pixel counts
    pred = np.array([[0.2, 1.0], [1.0, 1.0]])
    gt = np.zeros((2, 2))
    assert M.sad(pred, gt, tri) == pytest.approx(0.0002)
    assert M.mse(pred, gt, tri) == pytest.approx(0.04)


def test_uint8_inputs_are_divided_by_255():
    pred = np.array([[255, 51]], np.uint8)
    gt = np.array([[0.0, 0.0]])
    tri = _all_unknown((1, 2))
    assert M.sad(pred, gt, tri) == pytest.approx(1.2 / 1000)
    assert M.mse(pred, gt, tri) == pytest.approx((1 + 0.04) / 2)
    # The same alpha as uint8 and as float scores the same.
    assert M.sad(pred, np.zeros((1, 2), np.uint8), tri) == pytest.approx(
        M.sad(pred / 255.0, gt, tri)
    )


def test_mse_empty_unknown_is_zero():
    assert M.mse(PRED, GT, np.zeros((2, 2), np.uint8)) == 0.0
    assert M.sad(PRED, GT, np.zeros((2, 2), np.uint8)) == 0.0


def test_3x3_sad_mse_by_hand():
    pred = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]])
    gt = np.array([[0.0, 0.2, 0.5], [0.4, 0.9, 0.6], [0.7, 0.8, 0.0]])
    tri = np.array([[U, U, U], [255, U, 0], [0, 0, U]], np.uint8)
    # unknown diffs: 0.1, 0, 0.2, 0.4, 0.9
    assert M.sad(pred, gt, tri) == pytest.approx(1.6 / 1000)
    assert M.mse(pred, gt, tri) == pytest.approx((0.01 + 0 + 0.04 + 0.16 + 0.81) / 5)


# ---------------------------------------------------------------------------------------------
# Gradient

SIGMA = 1.4


def _g(x):
    return math.exp(-x * x / (2 * SIGMA**2)) / (SIGMA * math.sqrt(2 * math.pi))


def _dg(x):
    return -x * _g(x) / SIGMA**2


def test_gradient_kernel_size_and_norm():
    hx = M.gaussian_gradient_kernel(SIGMA)
    # half size = ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) * 1.4 * 0.01))) = ceil(3.62) = 4
    assert hx.shape == (9, 9)
    assert np.sqrt((hx**2).sum()) == pytest.approx(1.0)


def test_gradient_kernel_values_by_hand():
    hx = M.gaussian_gradient_kernel(SIGMA)
    # hx(i, j) = g(u_i) g'(u_j), u = -4..4: Gaussian down the rows, derivative across the columns.
    raw = np.array([[_g(ui) * _dg(uj) for uj in range(-4, 5)] for ui in range(-4, 5)])
    np.testing.assert_allclose(hx, raw / np.sqrt((raw**2).sum()), rtol=1e-12, atol=1e-15)
    assert np.all(hx[:, 4] == 0)  # g'(0) = 0
    np.testing.assert_allclose(hx, -hx[:, ::-1])  # odd across columns
    np.testing.assert_allclose(hx, hx[::-1, :])  # even down rows
    assert hx[4, 5] < 0 < hx[4, 3]
    # hx(0, 1) / hx(0, 2) = g(1) / (2 g(2)) = exp(3 / (2 sigma^2)) / 2
    assert hx[4, 5] / hx[4, 6] == pytest.approx(math.exp(3 / (2 * SIGMA**2)) / 2)


def test_gradient_identical_is_zero(synthetic_matte):
    s = synthetic_matte
    assert M.gradient_error(s.alpha, s.alpha, s.trimap) == 0.0


def _step(h, w, c, top=1.0):
    a = np.zeros((h, w))
    a[:, c:] = top
    return a


def _step_gradient_magnitude(w, c):
    """|grad| along a row of a vertical step at column c (0 left, 1 from c on), worked out in 1-D:
    the image is constant down the columns, so gy = 0 and gx = (sum_i g(u_i)) / N * sum_j g'(u_j) I(x + u_j),
    N the kernel's L2 norm = sqrt(sum g^2) * sqrt(sum g'^2). Borders replicate."""
    u = range(-4, 5)
    s = sum(_g(k) for k in u)
    n = math.sqrt(sum(_g(k) ** 2 for k in u)) * math.sqrt(sum(_dg(k) ** 2 for k in u))
    out = []
    for x in range(w):
        acc = sum(_dg(k) * (1.0 if min(max(x + k, 0), w - 1) >= c else 0.0) for k in u)
        out.append(abs(s / n * acc))
    return np.array(out)


def test_gradient_step_edge_vs_its_shift_by_hand():
    h, w = 3, 20
    gt, pred = _step(h, w, 10), _step(h, w, 11)
    tri = _all_unknown((h, w))
    g_gt = _step_gradient_magnitude(w, 10)
    g_pred = _step_gradient_magnitude(w, 11)
    expected = h * ((g_pred - g_gt) ** 2).sum() / 1000
    assert expected > 0
    assert M.gradient_error(pred, gt, tri) == pytest.approx(expected, rel=1e-9)
    # A horizontal edge (the transposed case) goes through hy = hx' and gives the same number.
    assert M.gradient_error(pred.T.copy(), gt.T.copy(), tri.T.copy()) == pytest.approx(
        expected, rel=1e-9
    )


def test_gradient_sums_over_unknown_only():
    h, w = 3, 20
    gt, pred = _step(h, w, 10), _step(h, w, 11)
    g_gt = _step_gradient_magnitude(w, 10)
    g_pred = _step_gradient_magnitude(w, 11)
    tri = np.zeros((h, w), np.uint8)
    tri[:, 9:12] = U
    expected = h * ((g_pred - g_gt)[9:12] ** 2).sum() / 1000
    assert M.gradient_error(pred, gt, tri) == pytest.approx(expected, rel=1e-9)


def test_gradient_rescales_each_input_by_its_own_min_max():
    """MATLAB's mat2gray: a step from 0 to 0.5 has the same normalised gradient as 0 to 1."""
    h, w = 3, 20
    tri = _all_unknown((h, w))
    assert M.gradient_error(_step(h, w, 10, top=0.5), _step(h, w, 10), tri) == pytest.approx(
        0.0, abs=1e-15
    )
    assert M.gradient_error(_step(h, w, 11, top=0.5), _step(h, w, 10), tri) == pytest.approx(
        M.gradient_error(_step(h, w, 11), _step(h, w, 10), tri), rel=1e-9
    )


def test_gradient_constant_prediction():
    h, w = 3, 20
    gt = _step(h, w, 10)
    tri = _all_unknown((h, w))
    expected = h * (_step_gradient_magnitude(w, 10) ** 2).sum() / 1000
    assert M.gradient_error(np.full((h, w), 0.7), gt, tri) == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# Connectivity (worked by hand following compute_connectivity_error.m)


def test_connectivity_identical_is_zero(synthetic_matte):
    s = synthetic_matte
    assert M.connectivity_error(s.alpha, s.alpha, s.trimap) == 0.0


def test_connectivity_largest_component_excludes_background():
    """gt = [1 1 0], pred = [1 0 1]. For every threshold the mask (p>=t & g>=t) is [1 0 0]: its one
    component is pixel 0 (the two background pixels must not count as a component).
    Pixels 1, 2 get level 0 at the first threshold, pixel 0 ends at 1: l = [1 0 0].
    d_p = [0 0 1] -> phi_p = [1 1 0]; d_t = [0 1 0] -> phi_t = [1 0 1]; sum |diff| = 2."""
    pred = np.array([[1.0, 0.0, 1.0]])
    gt = np.array([[1.0, 1.0, 0.0]])
    assert M.connectivity_error(pred, gt, _all_unknown((1, 3))) == pytest.approx(0.002)


def test_connectivity_intermediate_levels_and_islands():
    """p = [.95 .75 0 .35 .35], t = [.95 .55 0 .35 .05] (one row, 4-connected).
    theta 0.1..0.5: mask [1 1 0 1 0] (0.1-0.3) or [1 1 0 0 0]; the largest component {0, 1};
    at 0.1 pixels 2, 3, 4 get level 0. theta 0.6: mask [1 0 0 0 0] -> pixel 1 gets 0.5.
    theta 1.0: empty mask -> pixel 0 gets 0.9. l = [.9 .5 0 0 0].
    d_p = [.05 .25 0 .35 .35] -> phi_p = [1 .75 1 .65 .65]
    d_t = [.05 .05 0 .35 .05] -> phi_t = [1 1 1 .65 1]; sum |diff| = .25 + .35 = 0.6."""
    pred = np.array([[0.95, 0.75, 0.0, 0.35, 0.35]])
    gt = np.array([[0.95, 0.55, 0.0, 0.35, 0.05]])
    assert M.connectivity_error(pred, gt, _all_unknown((1, 5))) == pytest.approx(0.0006)


def test_connectivity_uses_4_connectivity():
    """t = 1 on a diagonal (0,0),(1,1),(2,2) and a horizontal pair (3,0),(3,1); p = t except
    p(1,1) = 0.65. With 4-connectivity the pair is the largest component at every threshold, so the
    diagonal pixels get level 0 at theta 0.1: at (1,1) phi_p = 1 - 0.65 = 0.35, phi_t = 0 -> 0.35.
    (8-connectivity would chain the diagonal to the pair, give (1,1) level 0.6 and 0.4.)"""
    gt = np.zeros((4, 4))
    for y, x in [(0, 0), (1, 1), (2, 2), (3, 0), (3, 1)]:
        gt[y, x] = 1.0
    pred = gt.copy()
    pred[1, 1] = 0.65
    assert M.connectivity_error(pred, gt, _all_unknown((4, 4))) == pytest.approx(0.00035)


def test_connectivity_sums_over_unknown_only():
    pred = np.array([[1.0, 0.0, 1.0]])
    gt = np.array([[1.0, 1.0, 0.0]])
    tri = np.array([[U, U, 0]], np.uint8)  # phi differs at pixels 1 and 2; only pixel 1 counts
    assert M.connectivity_error(pred, gt, tri) == pytest.approx(0.001)


def test_connectivity_uint8_matches_float():
    pred = np.array([[255, 191, 0, 89, 89]], np.uint8)
    gt = np.array([[255, 140, 0, 89, 13]], np.uint8)
    tri = _all_unknown((1, 5))
    assert M.connectivity_error(pred, gt, tri) == pytest.approx(
        M.connectivity_error(pred / 255.0, gt / 255.0, tri)
    )


def test_all_metrics_keys(synthetic_matte):
    s = synthetic_matte
    blurred = np.clip(s.alpha * 0.9 + 0.05, 0, 1)
    out = M.all_metrics(blurred, s.alpha, s.trimap)
    assert set(out) == {"sad", "mse", "grad", "conn"}
    assert out["sad"] == pytest.approx(M.sad(blurred, s.alpha, s.trimap))
    assert all(v > 0 for v in out.values())
