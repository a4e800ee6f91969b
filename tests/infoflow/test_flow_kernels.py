"""The flows' numba kernels against the formulas written out in numpy (Aksoy et al. Sec. 3.2-3.3).

Known-to-unknown: w^F = sum of the foreground weights, eta = |F - B|^2 / 3 clipped to [0, 1] with
F, B the two sides' weighted mean colours, eta = 0 where either share is within 1e-6 of 0.
Intra-unknown: max(1 - |f_p - f_q|, 0). Both to 1e-12.
Colour-mixture (LLE) weights: the regularised Gram system, to 1e-7. The search rows: exactly
the features rounded once to float32. The mixture matrix: the residual rows 1 at p, -w_pq at q. The intra-unknown matrix: exactly
scipy's COO form it replaces.
"""

import numpy as np
import pytest
import scipy.sparse

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


def _features(image, spatial):
    """The flows' features as an H*W x 5 float64 array, written out with numpy."""
    h, w = image.shape[:2]
    ys, xs = np.mgrid[:h, :w]
    pos = np.stack([(spatial / w) * xs, (spatial / h) * ys], axis=2)
    return np.concatenate([image, pos], axis=2).reshape(h * w, 5)


def _image(seed, h=23, w=31):
    return np.random.default_rng(seed).random((h, w, 3))


@pytest.mark.parametrize("spatial", [flows.MIX_SPATIAL, flows.KU_SPATIAL, flows.INTRA_SPATIAL])
def test_search_rows_are_the_features_rounded_once(spatial):
    image = _image(1)
    pixels = flows.pixels_where(np.random.default_rng(2).random(image.shape[:2]) < 0.4)
    got = flows.search_rows(image, spatial, pixels)
    assert got.dtype == np.float32 and pixels.dtype == np.int32
    assert np.array_equal(got, _features(image, spatial)[pixels].astype(np.float32))


def test_intra_weights_match_the_formula():
    image = _image(4, 15, 20)
    feat = _features(image, flows.INTRA_SPATIAL)
    rng = np.random.default_rng(4)
    query = np.sort(rng.choice(300, 50, replace=False)).astype(np.int32)
    neigh = rng.integers(0, 300, (50, 5)).astype(np.int32)
    neigh[0, 0] = query[0]  # distance 0: weight 1
    out = np.empty((50, 5))
    h, w = image.shape[:2]
    sx, sy = flows.INTRA_SPATIAL / w, flows.INTRA_SPATIAL / h
    flows._intra_weights(image.reshape(-1, 3), w, sx, sy, query, neigh, out)
    dist = np.sqrt(((feat[neigh] - feat[query][:, None, :]) ** 2).sum(axis=2))
    np.testing.assert_allclose(out, np.maximum(1.0 - dist, 0.0), atol=1e-12)
    assert out[0, 0] == 1.0
    assert (out == 0.0).any() and (out > 0.0).any()  # both sides of the clamp are exercised


@pytest.mark.parametrize("spatial", [flows.MIX_SPATIAL, None])
def test_lle_weights_solve_the_regularised_system(spatial):
    """Each row: (G + eps I) w = 1 normalised to sum 1, G the neighbours' Gram matrix around the
    query, eps = 1e-3 trace(G), features with positions (d = 5) or colours only (d = 3)."""
    image = _image(5)
    feat = _features(image, spatial or 1.0)[:, : 3 if spatial is None else 5]
    rng = np.random.default_rng(6)
    n, k = feat.shape[0], 9
    query = rng.choice(n, 40, replace=False).astype(np.int32)
    neigh = np.stack([rng.choice(np.delete(np.arange(n), q), k, replace=False) for q in query])
    got = flows.lle_weights(image, spatial, query, neigh.astype(np.int32), 1e-3)
    for i, q in enumerate(query):
        z = feat[neigh[i]] - feat[q]
        g = z @ z.T
        want = np.linalg.solve(g + 1e-3 * np.trace(g) * np.eye(k), np.ones(k))
        np.testing.assert_allclose(got[i], want / want.sum(), rtol=1e-7, atol=1e-9)


def _rows(seed, n=400, nq=120, k=5):
    """Rows as a search makes them: sorted distinct queries, distinct neighbours, not the query;
    some mutual (both directions), some weights 0."""
    rng = np.random.default_rng(seed)
    query = np.sort(rng.choice(n, nq, replace=False)).astype(np.int32)
    neigh = np.stack([rng.choice(np.delete(query, i), k, replace=False) for i in range(nq)])
    values = rng.random((nq, k))
    values[rng.random((nq, k)) < 0.2] = 0.0
    return flows.Rows(query, neigh.astype(np.int32), values, np.zeros((nq, 1)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_intra_matrix_equals_the_coo_form(seed):
    """W's CSR made directly from the rows gives, entry for entry and bit for bit, what the COO
    form before it gave for (W + W^T) / 2: sorted columns, zero sums left out, int32 indices."""
    rows, n = _rows(seed), 400
    r = np.repeat(rows.query.astype(np.int64), rows.neigh.shape[1])
    c = rows.neigh.astype(np.int64).ravel()
    m = scipy.sparse.csr_matrix((rows.values.ravel(), (r, c)), shape=(n, n))
    want = ((m + m.T) * 0.5).tocsr()
    got = flows._intra_matrix(rows, n)
    assert got.has_canonical_format
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
        assert getattr(got, name).dtype == getattr(want, name).dtype, name
    assert (got.multiply(got.T) > 0).nnz > 0 and (rows.values == 0).any()  # mutual pairs, zeros


@pytest.mark.parametrize("known_rows", [False, True])
def test_mix_matrix_rows_are_the_residuals(known_rows):
    """Row of pixel p: 1 at p, -w_pq at its K distinct neighbours (w summing to 1), over the kept
    rows' own arrays (no copy)."""
    image = _image(7, 30, 40)
    trimap = np.full((30, 40), 255, np.uint8)
    trimap[:, :12] = 0
    trimap[8:22, 10:30] = 128
    f = flows.compute(image, trimap, k_mix=6, known_rows=known_rows)
    rows = f.rows[0]
    assert f.mix.indices.dtype == np.int32 and f.mix.shape == (len(rows.query), trimap.size)
    assert np.shares_memory(f.mix.data, rows.values) and np.shares_memory(f.mix.indices, rows.neigh)
    dense = f.mix.toarray()
    at = np.arange(len(rows.query))
    assert (dense[at, rows.query] == 1.0).all()
    neigh, w = rows.neigh[:, 1:], -rows.values[:, 1:]
    assert all(len(set(r)) == 6 for r in neigh) and not (neigh == rows.query[:, None]).any()
    assert np.array_equal(dense[at[:, None], neigh], -w)
    assert (np.count_nonzero(dense, axis=1) <= 7).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
