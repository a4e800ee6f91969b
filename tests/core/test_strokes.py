import numpy as np

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
    np.testing.assert_array_equal(t == 255, _expected_capsule(t.shape, (5.0, 10.0), (90.0, 40.0), 4)
                                  | _endpoints(t.shape, [(5.0, 10.0), (90.0, 40.0)]))
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
    b.press(10, 10); b.release()
    e = strokes.Brush(doc, "erase", 20)
    e.press(10, 10); e.release()
    assert (doc.trimap == BACKGROUND).all()
    assert len(doc.history) == 2


def test_brush_cancel_restores():
    doc = Document(np.zeros((20, 20, 3), np.float32))
    b = strokes.Brush(doc, BACKGROUND, 6)
    b.press(10, 10); b.move(15, 15); b.cancel()
    assert (doc.trimap == UNKNOWN).all() and len(doc.history) == 0
