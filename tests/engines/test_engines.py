"""Every registered engine that can run here: contract, quality bound, progress, cancellation, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mattestudio.core import metrics
from mattestudio.engines import registry
from mattestudio.engines.base import EngineInfo, Param
from mattestudio.errors import (
    Cancelled,
    EngineUnavailable,
    MattestudioError,
    TrimapError,
    UnknownEngine,
)
from mattestudio.pipeline import run_matting
from mattestudio.types import CancelToken

# SAD (Composition-1K units: sum over unknown / 1000) on the conftest synthetic composite, 64 x 80,
# measured with the default parameters, with about 30 % headroom. A quality regression fails here.
# Measured: closed-form 0.00231, knn 0.0401, large-kernel 0.00565, random-walk 0.0572,
# learning-based 0.00220, shared-sampling 0.00384.
SAD_BOUNDS = {
    "closed-form": 0.0030,
    "closed-form-pymatting": 0.0030,
    # measured 0.0088; 0.0061 without trimming, 0.0021 without trimming and levels: both label
    # the faintest anti-aliased edge pixels (alpha under ~0.03) 0, which the dataset scores gain
    # from (docs/benchmarks.md)
    "information-flow": 0.0095,
    "knn": 0.052,
    "large-kernel": 0.0075,
    "random-walk": 0.075,
    "learning-based": 0.0029,
    "shared-sampling": 0.0050,
}

ALL_NAMES = registry.names()


def _require_available(name):
    reason = registry.unavailable_reason(name)
    if reason is not None:
        pytest.skip(f"{name} unavailable here: {reason}")


class _Recorder:
    def __init__(self):
        self.calls: list[tuple[float, str]] = []

    def __call__(self, fraction, message):
        assert isinstance(message, str)
        self.calls.append((float(fraction), message))

    @property
    def fractions(self):
        return [f for f, _ in self.calls]


_RUNS: dict = {}


@pytest.fixture
def engine_run(_synthetic_matte_cached):
    """run(name) -> (result, progress recorder), computed once per engine per session."""

    def run(name):
        _require_available(name)
        if name not in _RUNS:
            rec = _Recorder()
            s = _synthetic_matte_cached
            result = run_matting(registry.create(name), s.image, s.trimap, progress=rec)
            _RUNS[name] = (result, rec)
        return _RUNS[name]

    return run


@pytest.mark.parametrize("name", ALL_NAMES)
def test_output_contract(name, engine_run, synthetic_matte):
    result, _ = engine_run(name)
    s = synthetic_matte
    assert result.alpha.dtype == np.float32 and result.alpha.shape == s.alpha.shape
    assert result.foreground.dtype == np.float32 and result.foreground.shape == s.image.shape
    assert np.isfinite(result.alpha).all() and np.isfinite(result.foreground).all()
    assert result.alpha.min() >= 0.0 and result.alpha.max() <= 1.0
    assert result.foreground.min() >= 0.0 and result.foreground.max() <= 1.0
    assert result.engine == name
    assert result.seconds > 0


@pytest.mark.parametrize("name", ALL_NAMES)
def test_known_regions_exactly_0_and_1(name, engine_run, synthetic_matte):
    result, _ = engine_run(name)
    tri = synthetic_matte.trimap
    assert np.all(result.alpha[tri == 255] == 1.0)
    assert np.all(result.alpha[tri == 0] == 0.0)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_sad_under_stored_bound(name, engine_run, synthetic_matte):
    result, _ = engine_run(name)
    if name not in SAD_BOUNDS:
        pytest.fail(
            f"engine {name!r} has no stored SAD bound: measure it on the synthetic composite "
            f"and add it to SAD_BOUNDS (measured now: "
            f"{metrics.sad(result.alpha, synthetic_matte.alpha, synthetic_matte.trimap):.5f})"
        )
    s = synthetic_matte
    value = metrics.sad(result.alpha, s.alpha, s.trimap)
    assert value < SAD_BOUNDS[name], f"{name}: SAD {value:.5f} over its bound {SAD_BOUNDS[name]}"
    # And it really solved something: far better than a flat 0.5 guess in the unknown region.
    flat = np.where(s.trimap == 128, 0.5, s.trimap / 255.0)
    assert value < 0.5 * metrics.sad(flat, s.alpha, s.trimap)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_progress_fractions_increase_to_one(name, engine_run):
    _, rec = engine_run(name)
    fractions = rec.fractions
    assert len(fractions) >= 2
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert all(b >= a for a, b in itertools.pairwise(fractions)), fractions
    assert fractions[-1] == 1.0
    assert fractions[0] < 1.0


@pytest.mark.parametrize("name", ALL_NAMES)
def test_cancel_before_start(name, synthetic_matte):
    _require_available(name)
    token = CancelToken()
    token.cancel()
    engine = registry.create(name)
    with pytest.raises(Cancelled):
        run_matting(engine, synthetic_matte.image, synthetic_matte.trimap, cancel=token)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_cancel_during_run(name, synthetic_matte):
    """Cancelling from the first progress report stops the run with Cancelled, no result."""
    _require_available(name)
    token = CancelToken()
    rec = _Recorder()

    def progress(fraction, message):
        rec(fraction, message)
        token.cancel()

    with pytest.raises(Cancelled):
        run_matting(
            registry.create(name),
            synthetic_matte.image,
            synthetic_matte.trimap,
            progress=progress,
            cancel=token,
        )
    assert rec.calls  # it had started
    assert 1.0 not in rec.fractions  # and never finished


@pytest.mark.parametrize("name", ["knn", "random-walk"])
def test_cancel_stops_the_iterative_solver(name, synthetic_matte):
    """A cancel set mid-solve unwinds out of the conjugate-gradient loop at the next iteration."""
    _require_available(name)
    token = CancelToken()
    iterations = []

    def progress(fraction, message):
        if "iteration" in message:
            iterations.append(message)
            token.cancel()

    engine = registry.create(name)
    with pytest.raises(Cancelled):
        run_matting(
            engine, synthetic_matte.image, synthetic_matte.trimap, progress=progress, cancel=token
        )
    assert len(iterations) == 1


def test_registry_lists_the_classical_engines():
    for name in (
        "closed-form",
        "knn",
        "large-kernel",
        "random-walk",
        "learning-based",
        "shared-sampling",
    ):
        assert name in ALL_NAMES
        assert registry.unavailable_reason(name) is None
        assert registry.info(name).name == name
        assert isinstance(registry.info(name), EngineInfo)


def test_unknown_engine_lists_names(synthetic_matte):
    for call in (
        lambda: registry.create("nope"),
        lambda: registry.engine_class("nope"),
        lambda: registry.unavailable_reason("nope"),
    ):
        with pytest.raises(UnknownEngine) as info:
            call()
        msg = str(info.value)
        assert "'nope'" in msg
        for name in ("closed-form", "knn", "random-walk"):
            assert name in msg


def test_unavailable_engine_says_why(monkeypatch):
    monkeypatch.setitem(
        registry.ENTRIES,
        "needs-missing",
        registry.Entry(
            "needs-missing",
            "mattestudio.engines.classical:KnnEngine",
            ("a_package_that_is_not_installed_xyz",),
        ),
    )
    reason = registry.unavailable_reason("needs-missing")
    assert "a_package_that_is_not_installed_xyz" in reason and "pip install" in reason
    with pytest.raises(EngineUnavailable, match="needs-missing.*not installed"):
        registry.create("needs-missing")


def test_alias_keeps_the_chosen_name(synthetic_matte):
    engine = registry.create("closed-form")
    assert engine.info.name == "closed-form"


@pytest.mark.parametrize(
    "params, words",
    [
        ({"radius": "abc"}, ["radius", "'abc'", "not a valid int"]),
        ({"radius": 99}, ["radius", "above the maximum"]),
        ({"epsilon": 0.0}, ["epsilon", "below the minimum"]),
        ({"colour": 1}, ["no parameter 'colour'", "epsilon", "radius"]),
    ],
)
def test_bad_param_clear_error(params, words):
    # Pinned to the pymatting implementation, whose parameters are known here ("closed-form" may
    # point at another implementation with other parameters).
    with pytest.raises(MattestudioError) as info:
        registry.create("closed-form-pymatting", **params)
    msg = str(info.value)
    for word in words:
        assert word in msg, msg


def test_params_coerced_from_strings():
    engine = registry.create("closed-form-pymatting", radius="2", epsilon="1e-6")
    assert engine.params["radius"] == 2 and engine.params["epsilon"] == pytest.approx(1e-6)


def test_param_coerce_bool_and_choices():
    flag = Param("flag", False, "a flag")
    assert flag.coerce("yes") is True and flag.coerce("off") is False
    with pytest.raises(MattestudioError, match="not a valid bool"):
        flag.coerce("maybe")
    mode = Param("mode", "fast", "a mode", choices=("fast", "exact"))
    assert mode.coerce("exact") == "exact"
    with pytest.raises(MattestudioError, match="not one of fast, exact"):
        mode.coerce("slow")


def test_random_walk_sigma_changes_the_result(synthetic_matte):
    """sigma is a real parameter (pymatting's own rw_laplacian ignores it)."""
    s = synthetic_matte
    a = run_matting(
        registry.create("random-walk", sigma=0.05), s.image, s.trimap, estimate_foreground=False
    ).alpha
    b = run_matting(
        registry.create("random-walk", sigma=0.2), s.image, s.trimap, estimate_foreground=False
    ).alpha
    assert np.abs(a - b).max() > 0.05


def test_solver_that_does_not_converge_gives_clear_error(synthetic_matte):
    s = synthetic_matte
    with pytest.raises(MattestudioError, match="did not converge within 10 iterations") as info:
        run_matting(registry.create("knn", maxiter=10), s.image, s.trimap)
    assert "KNN" in str(info.value)


def test_trimap_without_known_pixels(synthetic_matte):
    tri = np.full(synthetic_matte.trimap.shape, 128, np.uint8)
    with pytest.raises(TrimapError, match="needs some foreground or background"):
        run_matting(registry.create("knn"), synthetic_matte.image, tri)


def test_pipeline_trimap_size_mismatch(synthetic_matte):
    with pytest.raises(TrimapError) as info:
        run_matting(registry.create("knn"), synthetic_matte.image, synthetic_matte.trimap[:10])
    assert "80x10" in str(info.value) and "80x64" in str(info.value)


def test_predict_before_prepare():
    engine = registry.create("closed-form")
    with pytest.raises(RuntimeError, match="before prepare"):
        engine.predict(np.full((4, 4), 128, np.uint8))


def test_prepared_engine_is_reused(synthetic_matte):
    """prepared=True: the editor keeps an engine warm and only sends new trimaps."""
    s = synthetic_matte
    engine = registry.create("closed-form")
    engine.prepare(s.image)
    first = run_matting(engine, s.image, s.trimap, prepared=True, estimate_foreground=False)
    tri2 = s.trimap.copy()
    tri2[s.alpha > 0.99] = 255
    second = run_matting(engine, s.image, tri2, prepared=True, estimate_foreground=False)
    assert np.all(second.alpha[tri2 == 255] == 1.0)
    assert not np.array_equal(first.alpha, second.alpha)
    engine.reset()
    with pytest.raises(RuntimeError):
        engine.predict(s.trimap)


def test_without_foreground_estimation_the_image_is_the_foreground(synthetic_matte):
    s = synthetic_matte
    result = run_matting(
        registry.create("closed-form"), s.image, s.trimap, estimate_foreground=False
    )
    np.testing.assert_array_equal(result.foreground, s.image)


def test_foreground_estimation_removes_the_background_color(synthetic_matte):
    from mattestudio.engines.foreground import estimate_foreground

    s = synthetic_matte
    fg = estimate_foreground(s.image, s.alpha)
    assert fg.dtype == np.float32 and fg.shape == s.image.shape
    soft = (s.alpha > 0.2) & (s.alpha < 0.98)
    error = np.abs(fg - s.foreground)[soft].mean()
    contaminated = np.abs(s.image - s.foreground)[soft].mean()
    assert error < 0.1 * contaminated
    opaque = s.alpha >= 0.999
    np.testing.assert_array_equal(fg[opaque], s.image[opaque])


def test_shared_sampling_gives_its_own_foreground(engine_run, synthetic_matte):
    result, _ = engine_run("shared-sampling")
    assert registry.info("shared-sampling").produces_foreground
    s = synthetic_matte
    opaque_unknown = (s.trimap == 128) & (s.alpha > 0.9)
    assert np.abs(result.foreground - s.foreground)[opaque_unknown].mean() < 0.05


def test_random_walk_laplacian_by_hand():
    """Two pixels whose colors differ by 0.1 in red, sigma 0.1: w = exp(-0.01 / 0.01) = 1/e, and the
    Laplacian D - W is symmetric, as conjugate gradients needs."""
    from mattestudio.engines.classical import _rw_laplacian

    img = np.zeros((1, 2, 3))
    img[0, 1, 0] = 0.1
    w = np.exp(-1.0)
    np.testing.assert_allclose(
        _rw_laplacian(img, 0.1, regularization=0.0).toarray(), [[w, -w], [-w, w]]
    )
    # 2 x 2: every pixel is an 8-neighbour of the others; equal colors give weight 1.
    L = _rw_laplacian(np.zeros((2, 2, 3)), 0.1, regularization=0.0).toarray()
    np.testing.assert_allclose(L, 4 * np.eye(4) - np.ones((4, 4)))
