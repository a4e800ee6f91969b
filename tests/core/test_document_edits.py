"""The Document's one ``edited`` event: once per finished trimap change, with box and revision."""

import numpy as np

from mattestudio.core.document import Document
from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN, MattingResult


def _doc():
    tri = np.full((40, 50), BACKGROUND, np.uint8)
    tri[10:30, 10:40] = UNKNOWN
    tri[15:25, 20:30] = FOREGROUND
    doc = Document(np.zeros((40, 50, 3), np.float32), tri)
    edits = []
    doc.edited.connect(edits.append)
    return doc, edits


def test_every_kind_of_edit_emits_once_with_box_and_revision():
    doc, edits = _doc()
    doc.begin_stroke()
    doc.paint_segment((12, 12), (16, 12), 3, FOREGROUND)
    doc.paint_segment((16, 12), (20, 12), 3, FOREGROUND)
    assert edits == []  # mid-stroke: nothing to react to yet
    doc.end_stroke()
    doc.fill(1, 1, UNKNOWN)
    doc.undo()
    doc.redo()
    doc.set_trimap(np.full((40, 50), UNKNOWN, np.uint8), "load trimap")
    doc.clear_trimap(BACKGROUND)
    kinds = [e.kind for e in edits]
    assert kinds == ["stroke", "fill", "undo", "redo", "set", "set"]
    assert [e.revision for e in edits] == sorted({e.revision for e in edits})
    assert edits[-1].revision == doc.revision
    y0, y1, x0, x1 = edits[0].box
    assert y0 <= 12 < y1 and x0 <= 12 and 20 <= x1 <= 23
    assert edits[1].box == edits[2].box == edits[3].box  # fill, its undo and redo: the same pixels
    doc.set_image(np.zeros((8, 8, 3), np.float32))
    assert edits[-1].kind == "load" and edits[-1].box is None


def test_no_change_no_event_and_repainting_equal_values_catches_up():
    doc, edits = _doc()
    assert not doc.fill(22, 20, FOREGROUND)  # already foreground
    assert not doc.set_trimap(doc.trimap.copy())
    assert edits == []
    doc.set_result(MattingResult(np.zeros((40, 50), np.float32), doc.image, "t"))
    doc.begin_stroke()
    doc.paint_segment((22, 20), (24, 20), 2, FOREGROUND)  # paints foreground over foreground
    assert doc.result_is_stale
    assert not doc.end_stroke()
    assert len(edits) == 1 and edits[0].revision == doc.revision  # a re-run can catch up
