"""Engines on the worker: results, cancel, newer requests superseding older ones, errors, Live."""

import time

import numpy as np
import pytest

from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN


@pytest.fixture
def runner(qtbot):
    from mattestudio.ui.runner import MattingRunner

    r = MattingRunner()
    yield r
    r.shutdown()


def _job(engine, params, image, trimap, revision):
    from mattestudio.ui.protocol import MattingJob

    return MattingJob(engine, params, image, 1, trimap.copy(), revision)


def _collect(runner):
    got = {"results": [], "failed": [], "cancelled": 0}
    runner.result_ready.connect(lambda ev: got["results"].append((ev.value, ev.revision)))
    runner.failed.connect(got["failed"].append)
    runner.cancelled.connect(lambda: got.__setitem__("cancelled", got["cancelled"] + 1))
    return got


def test_run_gives_result_signal(window, qtbot, idle):
    window.engine_panel.set_engine("knn")
    with qtbot.waitSignal(window.runner.result_ready, timeout=60000) as blocker:
        job = window.run()
    assert job is not None
    (event,) = blocker.args
    result = event.value
    assert result.request_id == job and event.revision == window.document.revision
    idle(window)
    doc = window.document
    assert doc.result is result and not doc.result_is_stale
    alpha = doc.alpha()
    assert alpha.shape == doc.shape and alpha.dtype == np.float32
    assert (alpha[doc.trimap == FOREGROUND] == 1).all() and (
        alpha[doc.trimap == BACKGROUND] == 0
    ).all()
    assert window.last_error is None
    assert not window.progress.isVisible()


def test_newer_request_supersedes_older(runner, synthetic_matte, qtbot):
    got = _collect(runner)
    m = synthetic_matte
    first = runner.submit(_job("closed-form-pymatting", {}, m.image, m.trimap, 1))
    second_tri = m.trimap.copy()
    second_tri[:4] = UNKNOWN
    second = runner.submit(_job("closed-form-pymatting", {}, m.image, second_tri, 2))
    assert second > first
    qtbot.waitUntil(lambda: bool(got["results"]) and not runner.busy, timeout=60000)
    assert [r.request_id for r, _ in got["results"]] == [second]
    assert got["results"][0][1] == 2
    assert got["failed"] == []


def test_stale_results_are_dropped(runner, synthetic_matte, qtbot):
    got = _collect(runner)
    m = synthetic_matte
    from mattestudio.ui.protocol import Result

    runner.submit(_job("closed-form-pymatting", {}, m.image, m.trimap, 1))
    # The job is running; simulate a result arriving after a newer submit replaced it.
    runner.handle(Result(runner.latest_id - 1, 0, object()))
    assert runner.dropped == 1 and got["results"] == []
    qtbot.waitUntil(lambda: not runner.busy, timeout=60000)
    assert len(got["results"]) == 1


def test_cancel_while_running(runner, qtbot):
    got = _collect(runner)
    rng = np.random.default_rng(0)
    image = rng.random((160, 160, 3), dtype=np.float32)
    tri = np.full((160, 160), UNKNOWN, np.uint8)
    tri[:10] = BACKGROUND
    tri[-10:] = FOREGROUND
    progressed = []
    runner.progress.connect(lambda f, m: progressed.append(f))
    runner.submit(_job("closed-form-pymatting", {"rtol": 1e-12, "maxiter": 100000}, image, tri, 1))
    qtbot.waitUntil(lambda: bool(progressed), timeout=60000)
    t0 = time.monotonic()
    runner.cancel()
    qtbot.waitUntil(lambda: not runner.busy, timeout=10000)
    assert time.monotonic() - t0 < 5
    assert got["results"] == [] and got["cancelled"] == 1 and got["failed"] == []


def test_engine_error_is_shown_not_raised(window, qtbot, idle):
    doc = window.document
    doc.set_trimap(np.full(doc.shape, UNKNOWN, np.uint8))  # nothing known: the engine refuses
    window.engine_panel.set_engine("closed-form")
    with qtbot.waitSignal(window.runner.failed, timeout=60000):
        window.run()
    idle(window)
    assert "foreground or background" in window.last_error
    assert "Error" in window.message.text()
    assert window.document.result is None


def test_bad_parameter_and_no_unknown_are_reported(window):
    window.engine_panel.set_engine("closed-form")
    field = next(f for f in window.engine_panel.fields if f.param.name == "epsilon")
    field.set("not a number")
    assert window.run() is None and "epsilon" in window.last_error
    field.set(field.param.default)
    doc = window.document
    doc.set_trimap(np.where(doc.trimap == UNKNOWN, FOREGROUND, doc.trimap).astype(np.uint8))
    assert window.run() is None and "unknown" in window.last_error


def test_live_mode_slow_engine_coarse_then_full_after_stroke(window, qtbot, idle, monkeypatch):
    from mattestudio.ui import run_control

    # the 64 x 80 test image gets a coarse pass
    monkeypatch.setattr(run_control, "COARSE_ABOVE", 1000)
    window.engine_panel.set_engine("knn")
    window.set_live(True)
    idle(window)
    scales = []
    window.runner.result_ready.connect(lambda ev: scales.append(ev.value.scale))
    doc = window.document
    doc.begin_stroke()
    doc.paint_segment((3, 3), (10, 3), 3, UNKNOWN)
    assert doc.end_stroke()
    qtbot.waitUntil(lambda: 1.0 in scales, timeout=60000)
    idle(window)
    assert len(scales) == 2 and scales[0] < 1.0
    assert window.document.result.scale == 1.0 and not doc.result_is_stale


def test_event_loop_never_stalls_during_a_run(window, qtbot, idle, synthetic_matte, no_stall):
    """The event loop keeps ticking every 5 ms while an engine runs (conftest.check_no_stall)."""
    import cv2

    doc = window.document
    big = cv2.resize(synthetic_matte.image, (320, 256))
    tri = cv2.resize(synthetic_matte.trimap, (320, 256), interpolation=cv2.INTER_NEAREST)
    doc.set_image(big, tri)
    window.engine_panel.set_engine("closed-form")
    window.runner.warm_up()
    qtbot.wait(1500)

    def run(_round: int) -> None:
        window.document.mark_result_outdated()
        with qtbot.waitSignal(window.runner.result_ready, timeout=60000):
            window.run()
        qtbot.waitUntil(lambda: not window.canvas.preview_pending, timeout=10000)
        qtbot.wait(200)

    no_stall(run)


def test_loop_probe_counts_work_on_the_gui_thread_as_a_stall(qtbot, no_stall):
    """The check behind the no-stall tests can fail: 80 ms of blocking on the GUI thread on every
    round shows, with the stack that held it."""
    from PySide6.QtCore import QTimer

    def block(_round: int) -> None:
        QTimer.singleShot(20, lambda: time.sleep(0.08))
        qtbot.wait(300)

    with pytest.raises(pytest.fail.Exception) as failed:
        no_stall(block)
    assert "both rounds" in str(failed.value)
    assert "test_runner.py" in str(failed.value)  # the watchdog shows where it was held


def test_results_waiting_for_the_main_thread_are_merged_not_piled_up():
    """A busy main thread holds at most one full-resolution result per job (each is ~200 MB at
    12 MP): a newer one replaces it, its box grown to cover both changes."""
    from mattestudio.types import MattingResult
    from mattestudio.ui.engine_process import EngineProcess
    from mattestudio.ui.protocol import Done, Progress, Result
    from mattestudio.ui.runner import _Worker

    def result(job, box, basis, tag):
        value = MattingResult(
            alpha=np.full((4, 4), tag, np.float32),
            foreground=np.zeros((4, 4, 3), np.float32),
            engine="t",
            request_id=job,
        )
        return Result(job, tag, value, box, basis)

    w = _Worker(lambda: None, EngineProcess())
    w._post(result(1, (0, 10, 0, 10), 0, 1))
    w._post(Progress(1, 0.5, "refining"))
    w._post(result(1, (20, 30, 5, 8), 1, 2))
    w._post(result(1, (0, 0, 0, 0), 1, 3))  # an empty change
    w._post(Done(1))
    first = w.take_event()
    assert isinstance(first, Result) and first.revision == 3 and first.value.alpha[0, 0] == 3
    assert first.box == (0, 30, 0, 10) and first.basis == 0  # relative to what was shown
    assert isinstance(w.take_event(), Progress) and isinstance(w.take_event(), Done)
    assert w.take_event() is None and w.merged == 2
    # A full result (no box) in between: the merged one is compared in full.
    w._post(result(2, (0, 5, 0, 5), 1, 4))
    w._post(result(2, None, None, 5))
    merged = w.take_event()
    assert merged.revision == 5 and merged.box is None and merged.basis is None
    # Results of different jobs are never merged; once taken, the next one waits on its own.
    w._post(result(3, (0, 5, 0, 5), 2, 6))
    w._post(result(4, (0, 5, 0, 5), 3, 7))
    assert [w.take_event().revision, w.take_event().revision] == [6, 7]
    w._post(result(4, (0, 5, 0, 5), 4, 8))
    assert w.take_event().revision == 8 and w.take_event() is None
