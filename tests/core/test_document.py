import numpy as np
import pytest

from mattestudio.core.document import Document
from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN, MattingResult


def _doc(h=32, w=40):
    img = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    return Document(img)


def test_new_document_defaults():
    d = _doc()
    assert d.trimap.shape == (32, 40) and (d.trimap == UNKNOWN).all()
    assert d.result is None and d.result_is_stale
    assert not d.can_undo


def test_versions_and_signals():
    d = _doc()
    events = []
    d.trimap_changed.connect(lambda b: events.append(("t", b)))
    d.image_changed.connect(lambda: events.append(("i", None)))
    v = d.trimap_version
    d.begin_stroke()
    d.paint_segment((5, 5), (5, 5), 3, FOREGROUND)
    d.end_stroke()
    assert d.trimap_version > v and events[-1][0] == "t" and events[-1][1] is not None
    iv = d.image_version
    d.set_image(np.zeros((8, 8, 3), np.float32))
    assert d.image_version == iv + 1 and ("i", None) in events
    assert not d.can_undo


def test_result_staleness_and_previews():
    d = _doc()
    alpha = np.full((32, 40), 0.5, np.float32)
    d.set_result(
        MattingResult(alpha=alpha, foreground=np.ones((32, 40, 3), np.float32), engine="x")
    )
    assert not d.result_is_stale
    comp = d.composite((0.0, 0.0, 0.0))
    np.testing.assert_allclose(comp, 0.5, atol=1e-6)
    d.set_background("white")
    np.testing.assert_allclose(d.composite(), 1.0, atol=1e-6)
    d.fill(1, 1, BACKGROUND)
    assert d.result_is_stale


def test_coarse_result_is_upsampled():
    d = _doc()
    small = MattingResult(
        alpha=np.ones((16, 20), np.float32),
        foreground=np.ones((16, 20, 3), np.float32),
        engine="x",
        scale=0.5,
    )
    d.set_result(small)
    assert d.alpha().shape == (32, 40)
    assert d.composite("checker").shape == (32, 40, 3)


def test_set_trimap_undo_and_wrong_size():
    d = _doc()
    t = np.zeros((32, 40), np.uint8)
    t[10:20, 10:20] = FOREGROUND
    assert d.set_trimap(t, "load")
    np.testing.assert_array_equal(d.trimap, t)
    d.undo()
    assert (d.trimap == UNKNOWN).all()
    d.redo()
    np.testing.assert_array_equal(d.trimap, t)
    with pytest.raises(ValueError):
        d.set_trimap(np.zeros((3, 3), np.uint8))
    d.clear_trimap()
    assert (d.trimap == UNKNOWN).all()
    assert d.trimap_counts()["unknown"] == 32 * 40


def test_fill_bucket_one_step():
    d = _doc()
    t = np.zeros((32, 40), np.uint8)
    t[:, 20:] = UNKNOWN
    d.set_trimap(t)
    assert d.fill(2, 2, FOREGROUND)
    assert (d.trimap[:, :20] == FOREGROUND).all() and (d.trimap[:, 20:] == UNKNOWN).all()
    assert not d.fill(2, 2, FOREGROUND)  # nothing to change
    d.undo()
    assert (d.trimap[:, :20] == BACKGROUND).all()


def test_many_undo_steps():
    d = _doc(64, 64)
    for k in range(120):
        d.begin_stroke()
        d.paint_segment(
            (k % 60 + 0.5, 3),
            (k % 60 + 0.5, 60),
            1,
            FOREGROUND if (k + k // 60) % 2 else BACKGROUND,
        )
        d.end_stroke()
    n = 0
    while d.undo():
        n += 1
    assert n >= 100


def test_downscaled_keeps_only_agreeing_pixels():
    from mattestudio.core.trimap import downscaled

    img = np.zeros((40, 40, 3), np.float32)
    tri = np.zeros((40, 40), np.uint8)
    tri[:, 21:] = FOREGROUND
    small_img, small_tri = downscaled(img, tri, 0.25)
    assert small_img.shape == (10, 10, 3) and small_tri.shape == (10, 10)
    assert (small_tri[:, :5] == BACKGROUND).all() and (small_tri[:, 5] == UNKNOWN).all()
    assert (small_tri[:, 6:] == FOREGROUND).all()


def _paint(d, p0, p1, size, value):
    d.begin_stroke()
    d.paint_segment(p0, p1, size, value)
    return d.end_stroke()


def test_stroke_log_follows_undo_and_redo():
    d = _doc()
    assert d.strokes == []
    _paint(d, (5, 5), (15, 5), 3, FOREGROUND)
    assert d.fill(30.5, 20.5, BACKGROUND)
    t = np.full((32, 40), UNKNOWN, np.uint8)
    t[:4] = FOREGROUND
    d.set_trimap(t, "load trimap", source="loaded")
    d.clear_trimap()
    full = [
        {"tool": "brush", "value": FOREGROUND, "size": 3.0, "points": [[5.0, 5.0], [15.0, 5.0]]},
        {"tool": "fill", "value": BACKGROUND, "seed": [30.5, 20.5]},
        {"tool": "set", "source": "loaded"},
        {"tool": "set", "source": "clear"},
    ]
    assert d.strokes == full
    d.undo()
    d.undo()
    assert d.strokes == full[:2]
    d.redo()
    assert d.strokes == full[:3]
    d.undo()
    d.undo()
    assert d.strokes == full[:1]
    _paint(d, (1, 1), (1, 1), 1, BACKGROUND)  # a new edit drops the redo records
    assert not d.can_redo and d.strokes == full[:1] + [
        {"tool": "brush", "value": BACKGROUND, "size": 1.0, "points": [[1.0, 1.0]]}
    ]
    while d.undo():
        pass
    assert d.strokes == [] and (d.trimap == UNKNOWN).all()


def test_stroke_log_skips_no_ops_and_aborts():
    d = _doc()
    assert not _paint(d, (5, 5), (9, 9), 4, UNKNOWN)  # unknown over unknown: no change
    assert not d.fill(3, 3, UNKNOWN)
    assert not d.clear_trimap()
    d.begin_stroke()
    d.paint_segment((5, 5), (9, 9), 4, FOREGROUND)
    d.abort_stroke()
    assert d.strokes == [] and len(d.history) == 0 and (d.trimap == UNKNOWN).all()
    d.begin_stroke()
    d.paint_segment((5, 5), (9, 9), 4, FOREGROUND)
    assert d.fill(30, 30, BACKGROUND)  # closes the open stroke first: two steps, two records
    assert [r["tool"] for r in d.strokes] == ["brush", "fill"] and len(d.history) == 2


def test_stroke_log_outlives_trimmed_history_and_resets_with_image():
    img = np.zeros((16, 16, 3), np.float32)
    d = Document(img, history_steps=3)
    for k in range(6):
        _paint(d, (k + 0.5, 0), (k + 0.5, 15), 1, FOREGROUND)
    assert len(d.strokes) == 6 and len(d.history) == 3
    while d.undo():
        pass
    assert len(d.strokes) == 3  # the edits that can no longer be undone stay logged
    log = [{"tool": "fill", "value": 0, "seed": [1, 1]}]
    d.set_image(img, np.zeros((16, 16), np.uint8), strokes=log)
    assert d.strokes == log and d.strokes is not log and not d.can_undo
    d.set_image(img)
    assert d.strokes == []
