import numpy as np

from mattestudio.core.history import History, Patch


def _paint(h, target, y0, y1, x0, x1, v):
    h.before_change(target, (y0, y1, x0, x1))
    target[y0:y1, x0:x1] = v


def test_stroke_is_one_step_and_round_trips():
    t = np.zeros((50, 60), np.uint8)
    h = History()
    h.begin("brush")
    _paint(h, t, 0, 10, 0, 10, 255)
    _paint(h, t, 5, 15, 5, 15, 128)  # overlaps the first dab
    step = h.commit(t)
    after = t.copy()
    assert len(h) == 1 and len(step.patches) == 1
    assert step.bbox == (0, 15, 0, 15)
    assert h.undo(t) is not None
    assert not t.any()
    assert h.redo(t) is not None
    np.testing.assert_array_equal(t, after)


def test_patch_stores_only_changed_pixels():
    t = np.zeros((1000, 1000), np.uint8)
    h = History()
    h.begin()
    _paint(h, t, 100, 900, 100, 900, 0)  # touches a big area, changes nothing
    _paint(h, t, 500, 502, 500, 503, 255)
    step = h.commit(t)
    assert step.bbox == (500, 502, 500, 503)
    assert step.nbytes < 100


def test_no_change_pushes_nothing():
    t = np.zeros((10, 10), np.uint8)
    h = History()
    h.begin()
    _paint(h, t, 0, 5, 0, 5, 0)
    assert h.commit(t) is None
    assert len(h) == 0


def test_at_least_100_steps_and_bounded():
    t = np.zeros((64, 64), np.uint8)
    h = History(max_steps=150)
    for k in range(300):
        h.begin()
        _paint(h, t, k % 64, k % 64 + 1, 0, 64, (k % 250) + 1)
        h.commit(t)
    assert len(h) == 150
    for _ in range(120):
        assert h.undo(t) is not None


def test_byte_bound_drops_oldest():
    t = np.zeros((200, 200), np.uint8)
    h = History(max_steps=1000, max_bytes=200 * 200 * 3)
    for k in range(10):
        h.begin()
        _paint(h, t, 0, 200, 0, 200, k + 1)
        h.commit(t)
    assert h.nbytes <= 200 * 200 * 3
    assert 1 <= len(h) < 10


def test_new_edit_clears_redo_and_abort_restores():
    t = np.zeros((10, 10), np.uint8)
    h = History()
    h.begin()
    _paint(h, t, 0, 2, 0, 2, 9)
    h.commit(t)
    h.undo(t)
    assert h.can_redo
    h.begin()
    _paint(h, t, 3, 4, 3, 4, 7)
    h.commit(t)
    assert not h.can_redo
    h.begin()
    _paint(h, t, 0, 10, 0, 10, 5)
    assert h.abort(t) == (0, 10, 0, 10)
    assert t[3, 3] == 7 and t.sum() == 7


def test_record_replace():
    t = np.zeros((10, 10), np.uint8)
    h = History()
    new = t.copy()
    new[2:4, 2:4] = 255
    h.record_replace(t, new, "load")
    np.testing.assert_array_equal(t, new)
    h.undo(t)
    assert not t.any()
    assert Patch.diff(t, t.copy(), (0, 10, 0, 10)) is None
