import numpy as np
import pytest

from mattestudio.core import strokes
from mattestudio.core.document import Document
from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN


def _expected_capsule(shape, p0, p1, size):
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    r = size / 2
    d = np.array(p1, float) - np.array(p0, float)
    n2 = d @ d
    t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / n2, 0, 1) if n2 else 0
    return (xx - p0[0] - t * d[0]) ** 2 + (yy - p0[1] - t * d[1]) ** 2 <= r * r


def test_disc_paints_pixels_within_radius():
    t = np.zeros((40, 40), np.uint8)
    bbox = strokes.paint_segment(t, (20.5, 20.5), (20.5, 20.5), 9, 255)
    expected = _expected_capsule(t.shape, (20.5, 20.5), (20.5, 20.5), 9)
    np.testing.assert_array_equal(t == 255, expected)
    assert expected.sum() == 69  # pixel centres within 4.5 px
    assert bbox is not None


def test_segment_has_no_gaps():
    t = np.zeros((50, 100), np.uint8)
    strokes.paint_segment(t, (5.0, 10.0), (90.0, 40.0), 4, 255)
    np.testing.assert_array_equal(
        t == 255,
        _expected_capsule(t.shape, (5.0, 10.0), (90.0, 40.0), 4)
        | _endpoints(t.shape, [(5.0, 10.0), (90.0, 40.0)]),
    )
    # every column between the end points is hit
    assert all((t[:, c] == 255).any() for c in range(5, 91))


def _endpoints(shape, pts):
    m = np.zeros(shape, bool)
    for x, y in pts:
        m[int(y), int(x)] = True
    return m


def test_one_pixel_brush_paints_pixel_under_cursor():
    t = np.zeros((10, 10), np.uint8)
    strokes.paint_segment(t, (3.9, 7.1), (3.9, 7.1), 1, 255)
    assert t[7, 3] == 255 and t.sum() == 255


def test_outside_image_is_clipped():
    t = np.zeros((10, 10), np.uint8)
    assert strokes.paint_segment(t, (-50, -50), (-40, -40), 5, 255) is None
    bbox = strokes.paint_segment(t, (-1.0, 5.0), (0.5, 5.0), 4, 255)
    assert bbox[2] == 0 and t[:, 0].any()


def test_fill_region_is_connected_equal_value():
    t = np.zeros((20, 20), np.uint8)
    t[:, 10] = 128  # a wall
    bbox, mask = strokes.fill_region(t, 2, 2)
    assert bbox == (0, 20, 0, 10)
    assert mask.all()
    assert strokes.fill_region(t, -1, 2) is None


def test_brush_on_document_is_one_undo_step():
    doc = Document(np.zeros((30, 30, 3), np.float32))
    seen = []
    doc.trimap_changed.connect(seen.append)
    brush = strokes.Brush(doc, FOREGROUND, 5)
    brush.press(5, 5)
    for x in range(6, 25):
        brush.move(x, 5)
    brush.release()
    assert len(doc.history) == 1 and len(seen) >= 2
    assert (doc.trimap == FOREGROUND).sum() > 0
    doc.undo()
    assert (doc.trimap == UNKNOWN).all()
    doc.redo()
    assert doc.trimap[5, 15] == FOREGROUND


def test_eraser_restores_base_trimap():
    base = np.full((20, 20), BACKGROUND, np.uint8)
    doc = Document(np.zeros((20, 20, 3), np.float32), base)
    b = strokes.Brush(doc, FOREGROUND, 6)
    b.press(10, 10)
    b.release()
    e = strokes.Brush(doc, "erase", 20)
    e.press(10, 10)
    e.release()
    assert (doc.trimap == BACKGROUND).all()
    assert len(doc.history) == 2


def test_brush_cancel_restores():
    doc = Document(np.zeros((20, 20, 3), np.float32))
    b = strokes.Brush(doc, BACKGROUND, 6)
    b.press(10, 10)
    b.move(15, 15)
    b.cancel()
    assert (doc.trimap == UNKNOWN).all() and len(doc.history) == 0


# -- stroke records and replay -------------------------------------------------------------------------


def test_brush_stroke_is_logged_as_one_vector_record():
    doc = Document(np.zeros((30, 30, 3), np.float32))
    b = strokes.Brush(doc, FOREGROUND, 5)
    b.press(5, 5.25)
    b.move(5, 5.25)  # no movement: no extra point
    b.move(12.5, 7)
    b.move(20, 7)
    b.release()
    assert doc.strokes == [
        {
            "tool": "brush",
            "value": 255,
            "size": 5.0,
            "points": [[5.0, 5.25], [12.5, 7.0], [20.0, 7.0]],
        }
    ]
    e = strokes.Brush(doc, "erase", 3)
    e.press(1, 1)
    e.release()  # erasing unknown over unknown changes nothing: no step, no record
    assert len(doc.strokes) == 1 and len(doc.history) == 1


def test_discontinuous_segments_start_new_records():
    records = []
    strokes.extend_brush_records(records, (1, 1), (4, 1), 3, 255)
    strokes.extend_brush_records(records, (4, 1), (4, 6), 3, 255)  # continues
    strokes.extend_brush_records(records, (9, 9), (9, 9), 3, 255)  # jumps
    strokes.extend_brush_records(records, (9, 9), (12, 9), 5, 255)  # other size
    strokes.extend_brush_records(records, (12, 9), (12, 12), 5, "erase")
    assert [r["points"] for r in records] == [
        [[1, 1], [4, 1], [4, 6]],
        [[9, 9]],
        [[9, 9], [12, 9]],
        [[12, 9], [12, 12]],
    ]
    assert [(r["size"], r["value"]) for r in records] == [
        (3, 255),
        (3, 255),
        (5, 255),
        (5, "erase"),
    ]


def _random_session(doc, rng, n=40):
    h, w = doc.shape
    for _k in range(n):
        kind = rng.integers(0, 6)
        if kind == 0:
            doc.fill(rng.uniform(-2, w + 2), rng.uniform(-2, h + 2), int(rng.choice([0, 128, 255])))
        elif kind == 1 and doc.can_undo:
            doc.undo()
            if rng.random() < 0.5:
                doc.redo()
        else:
            value = "erase" if kind == 2 else int(rng.choice([0, 128, 255]))
            b = strokes.Brush(doc, value, float(rng.choice([1, 2.5, 4, 9])))
            b.press(rng.uniform(-5, w + 5), rng.uniform(-5, h + 5))  # partly off the image too
            for _ in range(rng.integers(0, 6)):
                b.move(rng.uniform(-5, w + 5), rng.uniform(-5, h + 5))
            if rng.random() < 0.1:
                b.cancel()
            else:
                b.release()


def test_replay_reproduces_a_painted_document_exactly():
    import json

    rng = np.random.default_rng(7)
    base = rng.choice(np.array([0, 128, 255], np.uint8), size=(37, 53))
    base[:, 20:] = UNKNOWN
    doc = Document(np.zeros((37, 53, 3), np.float32), base)
    _random_session(doc, rng, 60)
    assert len(doc.strokes) > 10 and {r["tool"] for r in doc.strokes} == {"brush", "fill"}
    records = json.loads(json.dumps(doc.strokes))  # as stored in a project
    np.testing.assert_array_equal(strokes.replay(records, doc.shape, base), doc.trimap)
    assert (doc.trimap != base).any() and any(r.get("value") == "erase" for r in doc.strokes)


def test_replay_default_base_and_bad_records():
    t = strokes.replay([{"tool": "brush", "value": 0, "size": 3, "points": [[2, 2]]}], (6, 6))
    assert t[2, 2] == BACKGROUND and (t == UNKNOWN).sum() == 36 - (t == BACKGROUND).sum()
    t = strokes.replay([{"tool": "fill", "value": 255, "seed": [0.5, 0.5]}], (4, 5))
    assert (t == FOREGROUND).all()
    with pytest.raises(ValueError, match="replaces the whole trimap"):
        strokes.replay([{"tool": "set", "source": "grabcut"}], (4, 5))
    with pytest.raises(ValueError, match="unknown tool"):
        strokes.replay([{"tool": "lasso"}], (4, 5))
    with pytest.raises(ValueError, match="shape"):
        strokes.replay([], (4, 5), np.zeros((5, 4), np.uint8))
