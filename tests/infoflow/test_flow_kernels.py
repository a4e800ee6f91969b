"""The flows' numba kernels against the formulas written out in numpy (Aksoy et al. Sec. 3.2-3.3).

Known-to-unknown: w^F = sum of the foreground weights, eta = |F - B|^2 / 3 clipped to [0, 1] with
F, B the two sides' weighted mean colours, eta = 0 where either share is within 1e-6 of 0.
Intra-unknown: max(1 - |f_p - f_q|, 0). Both to 1e-12.
"""

import numpy as np

from mattestudio.engines.infoflow import flows


def test_known_to_unknown_values_match_the_formula():
    rng = np.random.default_rng(3)
    n_pix, n, kf = 400, 60, 4
    colours = rng.random((n_pix, 3))
    neigh = rng.integers(0, n_pix, (n, 2 * kf))
    wts = rng.normal(0.12, 0.2, (n, 2 * kf))
    wts[5, :kf] = 0.0  # no foreground share: eta 0
    wts[6, :kf] = 0.25  # all of it foreground
    wts[6, kf:] = 0.0
    out = np.empty((n, 2))
    flows._ku_values(wts, neigh, kf, colours, out)

    wf = wts[:, :kf].sum(axis=1)
    wb = 1.0 - wf
    col_f = np.einsum("ik,ikc->ic", wts[:, :kf], colours[neigh[:, :kf]])
    col_b = np.einsum("ik,ikc->ic", wts[:, kf:], colours[neigh[:, kf:]])
    ok = (np.abs(wf) > 1e-6) & (np.abs(wb) > 1e-6)
    eta = np.zeros(n)
    diff = col_f[ok] / wf[ok, None] - col_b[ok] / wb[ok, None]
    eta[ok] = np.clip((diff**2).sum(axis=1) / 3.0, 0.0, 1.0)
    np.testing.assert_allclose(out[:, 0], wf, atol=1e-12)
    np.testing.assert_allclose(out[:, 1], eta, atol=1e-12)
    assert out[5, 1] == 0.0 and out[6, 1] == 0.0
    assert 0.0 < eta[ok].max() <= 1.0


def test_intra_weights_match_the_formula():
    rng = np.random.default_rng(4)
    feat = rng.random((300, 5)) * np.array([1, 1, 1, 0.05, 0.05])
    query = np.sort(rng.choice(300, 50, replace=False)).astype(np.int64)
    neigh = rng.integers(0, 300, (50, 5))
    out = np.empty((50, 5))
    flows._intra_weights(feat, query, neigh, out)
    dist = np.sqrt(((feat[neigh] - feat[query][:, None, :]) ** 2).sum(axis=2))
    np.testing.assert_allclose(out, np.maximum(1.0 - dist, 0.0), atol=1e-12)
    assert (out == 0.0).any() and (out > 0.0).any()  # both sides of the clamp are exercised
