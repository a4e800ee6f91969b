"""File menu: exports re-read and checked, projects, bad input, recent files, autosave recovery."""

import os
import zipfile

import numpy as np
import pytest

from mattestudio.core import io, layered, project
from mattestudio.types import FOREGROUND, UNKNOWN, MattingResult


def test_export_alpha_8_and_16_bit(solved, tmp_path, dialogs):
    alpha = solved.document.alpha()
    assert solved.files.export("alpha8", str(tmp_path / "a8.png")) and solved.files.wait_writes()
    assert solved.files.export("alpha16", str(tmp_path / "a16.png")) and solved.files.wait_writes()
    a8, a16 = io.read_image_array(tmp_path / "a8.png"), io.read_image_array(tmp_path / "a16.png")
    assert a8.dtype == np.uint8 and a16.dtype == np.uint16 and a8.shape == alpha.shape
    np.testing.assert_array_equal(a8, io.to_uint(alpha, 8))
    np.testing.assert_array_equal(a16, io.to_uint(alpha, 16))
    assert dialogs.calls == []


def test_export_cutout_composite_trimap(solved, tmp_path, synthetic_matte):
    doc = solved.document
    assert solved.files.export("cutout", str(tmp_path / "c.png")) and solved.files.wait_writes()
    rgba = io.read_image_array(tmp_path / "c.png")
    assert rgba.shape == doc.shape + (4,)
    np.testing.assert_array_equal(rgba[:, :, 3], io.to_uint(doc.alpha()))
    doc.set_background((0.0, 0.0, 1.0))
    assert (
        solved.files.export("composite", str(tmp_path / "comp.png")) and solved.files.wait_writes()
    )
    comp = io.read_image_array(tmp_path / "comp.png")
    np.testing.assert_array_equal(comp, io.to_uint(doc.composite()))
    assert comp[0, 0, 2] == 255 and comp[0, 0, 0] == 0  # blue where alpha is 0
    assert (
        solved.files.export("composite", str(tmp_path / "comp.jpg")) and solved.files.wait_writes()
    )
    assert io.read_image_array(tmp_path / "comp.jpg").shape == doc.shape + (3,)
    assert solved.files.export("trimap", str(tmp_path / "t.png")) and solved.files.wait_writes()
    np.testing.assert_array_equal(io.read_image_array(tmp_path / "t.png"), doc.trimap)


def test_export_ora_layers(solved, tmp_path):
    doc = solved.document
    path = tmp_path / "out.ora"
    assert solved.files.export("ora", str(path)) and solved.files.wait_writes()
    layers = layered.read_ora(path)
    names = [n for n, _, _ in layers]
    assert set(names) >= {"Original", "Background", "Cutout", "Trimap"}
    by = {n: (vis, px) for n, vis, px in layers}
    assert all(px.shape == doc.shape + (4,) for _, px in by.values())
    assert not by["Trimap"][0] and by["Cutout"][0]
    np.testing.assert_array_equal(by["Cutout"][1][:, :, 3], io.to_uint(doc.alpha()))
    np.testing.assert_array_equal(by["Trimap"][1][:, :, 0], doc.trimap)


@pytest.mark.parametrize("kind", ["psd", "ora"])
def test_layered_export_reports_its_layers_and_cancels(solved, tmp_path, qtbot, dialogs, kind):
    import threading

    win = solved
    seen: list[tuple[float, str]] = []
    win.files.progress.connect(lambda f, t: seen.append((f, t)))
    assert win.files.export(kind, str(tmp_path / f"a.{kind}")) and win.files.wait_writes()
    layer_steps = [t for _, t in seen if "layer" in t]
    assert len(layer_steps) >= 4 and seen[-1][0] == 1.0
    assert (tmp_path / f"a.{kind}").is_file()
    # Esc while a write is under way: no file, no dialog, the status says so.
    real = getattr(layered, f"save_{kind}")
    go = threading.Event()

    def held(*args, **kwargs):
        go.wait(30)
        return real(*args, **kwargs)

    import unittest.mock

    with unittest.mock.patch.object(layered, f"save_{kind}", held):
        assert win.files.export(kind, str(tmp_path / f"b.{kind}"))
        qtbot.waitUntil(lambda: win.cancel_button.isVisible() and win.cancel_action.isEnabled())
        win.cancel_action.trigger()
        go.set()
        assert win.files.wait_writes()
    assert not (tmp_path / f"b.{kind}").exists()
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []
    assert "cancelled" in win.message.text() and dialogs.calls == []
    assert not win.cancel_button.isVisible()


def test_export_psd_layers(solved, tmp_path):
    from psd_tools import PSDImage

    doc = solved.document
    path = tmp_path / "out.psd"
    assert solved.files.export("psd", str(path)) and solved.files.wait_writes()
    psd = PSDImage.open(path)
    assert (psd.height, psd.width) == doc.shape
    names = [layer.name for layer in psd]
    assert set(names) >= {"Original", "Background", "Cutout", "Trimap"}
    cut = next(layer for layer in psd if layer.name == "Cutout")
    assert cut.size == (doc.shape[1], doc.shape[0])
    assert cut.mask is not None  # the alpha as a layer mask


def test_export_without_result_explains(window, tmp_path, dialogs):
    assert not window.files.export("psd", str(tmp_path / "x.psd"))
    assert dialogs.kinds() == ["information"] and "Run" in dialogs.texts()
    assert not (tmp_path / "x.psd").exists()


def test_project_round_trip(solved, make_window, tmp_path):
    doc = solved.document
    doc.begin_stroke()
    doc.paint_segment((5, 5), (20, 5), 3, UNKNOWN)
    doc.end_stroke()
    solved.tools.set_size(33)
    solved.engine_panel.set_engine("knn")
    doc.set_background((1.0, 0.0, 0.0))
    path = tmp_path / "work.mattestudio"
    assert solved.files.save_project(str(path))
    assert not doc.modified
    other = make_window(open_files=False)
    assert other.files.open_project(str(path))
    d2 = other.document
    np.testing.assert_array_equal(d2.trimap, doc.trimap)
    np.testing.assert_allclose(d2.image, doc.image, atol=1 / 255)
    np.testing.assert_allclose(d2.alpha(), doc.alpha(), atol=1 / 65535 + 1e-6)
    assert other.engine_panel.engine == "knn" and other.tools.size == 33
    assert tuple(d2.background) == (1.0, 0.0, 0.0)
    # the status bar says what was opened, also with Live off (it used to stay empty)
    assert not other.control.live
    text = other.message.text()
    assert "work.mattestudio" in text and "older than the trimap" in text


def test_status_bar_says_what_was_opened(solved, make_window, tmp_path):
    path = tmp_path / "done.mattestudio"
    assert solved.files.save_project(str(path))  # saved with its current result
    other = make_window(open_files=False)
    assert other.files.open_project(str(path))
    assert "done.mattestudio" in other.message.text() and "restored" in other.message.text()
    img = tmp_path / "photo.png"
    io.save_rgb(img, solved.document.image)
    assert other.files.open_image(str(img))
    h, w = solved.document.shape
    assert f"photo.png ({w}x{h})" in other.message.text() and "Run" in other.message.text()


def test_corrupt_image_keeps_open_work(window, tmp_path, dialogs):
    before_image, before_trimap = window.document.image, window.document.trimap.copy()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    assert not window.files.open_any(str(bad))
    assert dialogs.kinds() == ["warning"] and "broken.png" in dialogs.texts()
    assert window.document.image is before_image
    np.testing.assert_array_equal(window.document.trimap, before_trimap)


def test_unsupported_and_missing_files(window, tmp_path, dialogs):
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    assert not window.files.open_any(str(txt))
    assert not window.files.open_any(str(tmp_path / "missing.png"))
    assert dialogs.kinds() == ["warning", "warning"]
    assert "not found" in dialogs.texts()


def test_wrong_size_trimap_is_refused(window, tmp_path, dialogs):
    doc = window.document
    before = doc.trimap.copy()
    small = tmp_path / "small.png"
    io.save_trimap(small, np.full((10, 12), 128, np.uint8))
    assert not window.files.open_trimap(str(small))
    assert "12x10" in dialogs.texts() and "same size" in dialogs.texts()
    np.testing.assert_array_equal(doc.trimap, before)
    assert not doc.can_undo


def test_oversize_image_is_refused(window, tmp_path, dialogs, monkeypatch, synthetic_files):
    before = window.document.image
    monkeypatch.setenv("MATTESTUDIO_MAX_PIXELS", "1000")
    assert not window.files.open_image(str(synthetic_files["image"]))
    assert "over the limit" in dialogs.texts()
    assert window.document.image is before


def test_corrupt_project_is_refused(window, tmp_path, dialogs):
    bad = tmp_path / "bad.mattestudio"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    before = window.document.image
    assert not window.files.open_any(str(bad))
    assert dialogs.kinds() == ["warning"]
    assert window.document.image is before


def test_bad_background_image_is_refused(window, tmp_path, dialogs):
    bad = tmp_path / "bg.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    before = window.document.background
    assert not window.set_background_image(str(bad))
    assert dialogs.kinds() == ["warning"] and window.document.background is before


def test_good_trimap_load_is_undoable(window, tmp_path, synthetic_matte):
    doc = window.document
    before = doc.trimap.copy()
    new = np.full(doc.shape, UNKNOWN, np.uint8)
    new[20:40, 20:40] = FOREGROUND
    path = tmp_path / "new_trimap.png"
    io.save_trimap(path, new)
    assert window.files.open_trimap(str(path))
    np.testing.assert_array_equal(doc.trimap, new)
    window.undo_action.trigger()
    np.testing.assert_array_equal(doc.trimap, before)


def test_recent_files_and_drop(window, make_window, synthetic_files, tmp_path):
    from mattestudio.ui import settings

    assert str(synthetic_files["image"].resolve()) in settings.recent_files()
    other = make_window(open_files=False)
    acts = other.recent_menu.actions()
    assert acts and acts[0].text() == synthetic_files["image"].name
    acts[0].trigger()
    assert other.document.image_path == synthetic_files["image"]
    copy = tmp_path / "dropped.png"
    copy.write_bytes(synthetic_files["image"].read_bytes())
    other.canvas.files_dropped.emit([str(copy)])
    assert other.document.image_path == copy


def test_autosave_and_recovery(window, make_window, dialogs, synthetic_files):
    from PySide6.QtWidgets import QMessageBox

    doc = window.document
    doc.begin_stroke()
    doc.paint_segment((2, 2), (30, 2), 5, FOREGROUND)
    doc.end_stroke()
    window.files.autosave(wait=True)
    painted = doc.trimap.copy()
    saved = project.find_autosave(doc.image_path)
    assert saved is not None
    with zipfile.ZipFile(saved) as zf:  # trimap and strokes, not the image
        assert "image.png" not in zf.namelist() and "strokes.json" in zf.namelist()
    stamp = saved.stat().st_mtime_ns
    window.files.autosave(wait=True)  # nothing changed since: nothing written
    assert saved.stat().st_mtime_ns == stamp
    # Simulate a crash: the window never closes normally, so the autosave stays.
    dialogs.answer = QMessageBox.StandardButton.Yes
    other = make_window(open_files=False)
    assert other.files.open_image(str(synthetic_files["image"]), str(synthetic_files["trimap"]))
    assert "question" in dialogs.kinds()
    np.testing.assert_array_equal(other.document.trimap, painted)
    other.undo_action.trigger()  # the recovery itself is undoable
    assert not np.array_equal(other.document.trimap, painted)


def test_export_runs_off_the_gui_thread_and_writes_atomically(solved, tmp_path, qtbot, monkeypatch):
    """The write waits on a gate inside the writer: the event loop keeps turning meanwhile and
    the target keeps its old content until the complete file is renamed over it."""
    import threading

    from psd_tools import PSDImage
    from PySide6.QtCore import QTimer

    from mattestudio.core import layered

    path = tmp_path / "out.psd"
    path.write_bytes(b"old")
    before = set(tmp_path.iterdir())
    gate, reached = threading.Event(), threading.Event()
    real = layered._fsync

    def gated(p):
        reached.set()
        if not gate.wait(30):
            raise OSError("the GUI thread never opened the gate")
        real(p)

    monkeypatch.setattr(layered, "_fsync", gated)
    ticks: list[int] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(solved.files.writing))
    timer.start()
    progress: list[str] = []
    solved.files.progress.connect(lambda f, text: progress.append(text))
    assert solved.files.export("psd", str(path))  # returns while the file is being written
    qtbot.waitUntil(reached.is_set, timeout=30000)
    n = len(ticks)
    qtbot.waitUntil(lambda: len(ticks) >= n + 3, timeout=5000)  # the event loop is free
    assert all(w == 1 for w in ticks[n:])
    assert path.read_bytes() == b"old"  # never a half-written file under the final name
    gate.set()
    qtbot.waitUntil(lambda: solved.files.writing == 0, timeout=30000)
    timer.stop()
    psd = PSDImage.open(path)
    assert (psd.height, psd.width) == solved.document.shape
    assert set(tmp_path.iterdir()) == before  # no temp file left behind
    assert progress[0].startswith("Exporting") and progress[-1].startswith("Exported")


def test_failed_background_export_explains_and_keeps_the_old_file(solved, tmp_path, dialogs):
    from mattestudio.core import layered

    path = tmp_path / "out.ora"
    path.write_bytes(b"old")
    before = set(tmp_path.iterdir())

    def full_disk(p):
        raise OSError(28, "No space left on device")

    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(layered, "_fsync", full_disk)
        assert solved.files.export("ora", str(path))
        assert solved.files.wait_writes()
    assert dialogs.kinds() == ["warning"] and "space" in dialogs.texts()
    assert path.read_bytes() == b"old" and set(tmp_path.iterdir()) == before


def test_an_approximate_live_result_is_never_exported(solved, tmp_path, qtbot):
    """A Live result that still has approximate regions makes the export run the engine first."""
    doc, m = solved.document, solved.document.result
    approx = MattingResult(m.alpha.copy(), m.foreground.copy(), "test", approximate=((0, 8, 0, 8),))
    doc.set_result(approx, doc.revision)
    runs: list[bool] = []
    solved.files.run_requested.connect(lambda: runs.append(True))
    out = tmp_path / "a.png"
    assert not solved.files.export("alpha8", str(out))
    assert runs == [True] and solved.files.pending_export is not None and not out.exists()
    # The exact result (a Run) arrives: now it is written.
    doc.set_result(MattingResult(m.alpha.copy(), m.foreground.copy(), "test"), doc.revision)
    assert solved.files.wait_writes() and out.exists()
