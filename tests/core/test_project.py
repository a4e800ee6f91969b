"""Project files (.mattestudio) and autosave."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

from mattestudio.core import project
from mattestudio.core.project import ProjectError, ProjectState, load_project, save_project
from mattestudio.errors import ImageLoadError, MattestudioError, OutputError

H, W = 9, 13


def make_state(high_depth=False, with_result=True):
    rng = np.random.default_rng(3)
    if high_depth:
        image = rng.random((H, W, 3), dtype=np.float32)
    else:
        image = rng.integers(0, 256, (H, W, 3)).astype(np.float32) / 255.0
    trimap = rng.choice(np.array([0, 128, 255], np.uint8), size=(H, W))
    alpha = rng.random((H, W), dtype=np.float32) if with_result else None
    fg = rng.random((H, W, 3), dtype=np.float32) if with_result else None
    settings = {
        "engine": "closed-form",
        "params": {"eps": 1e-7, "levels": 2},
        "background": [0.1, 0.2, 0.3],
        "view": {"zoom": 2.5, "mode": "composite"},
        "brush_size": 24,
    }
    strokes = [{"value": 255, "radius": 12, "points": [[1, 2], [3.5, 4]]}]
    if high_depth:  # numpy values, as the editor may hand them over, are stored as plain JSON
        settings["params"]["eps"] = np.float32(0.5)
        strokes[0]["points"] = np.array([[1, 2], [3.5, 4]])
    return ProjectState(image, trimap, alpha, fg, settings, "/photos/cat.jpg", strokes)


def leftovers(folder):
    return [n for n in os.listdir(folder) if n.startswith(".") or n.endswith(".part")]


@pytest.mark.parametrize("high_depth", [False, True])
def test_round_trip(tmp_path, high_depth):
    state = make_state(high_depth)
    p = save_project(tmp_path / "cat.mattestudio", state)
    back = load_project(p)
    tol = 1e-6 if not high_depth else 0.5 / 65535 + 1e-6
    assert back.image.dtype == np.float32 and back.image.shape == (H, W, 3)
    assert np.abs(back.image - state.image).max() <= tol
    assert back.trimap.dtype == np.uint8 and np.array_equal(back.trimap, state.trimap)
    assert (
        back.alpha.dtype == np.float32
        and np.abs(back.alpha - state.alpha).max() <= 0.5 / 65535 + 1e-6
    )
    assert np.abs(back.foreground - state.foreground).max() <= 0.5 / 65535 + 1e-6
    assert back.settings == json.loads(json.dumps(state.settings, default=float))
    assert back.strokes == [{"value": 255, "radius": 12, "points": [[1, 2], [3.5, 4]]}]
    assert back.image_path == "/photos/cat.jpg"
    with zipfile.ZipFile(p) as zf:
        assert zf.infolist()[0].filename == "mimetype"
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["version"] == project.FORMAT_VERSION
    assert manifest["image_bits"] == (16 if high_depth else 8)
    assert leftovers(tmp_path) == []


def test_round_trip_minimal_and_suffix_added(tmp_path):
    state = ProjectState(np.zeros((H, W, 3), np.float32), np.full((H, W), 128, np.uint8))
    p = save_project(tmp_path / "untitled", state)
    assert p.name == "untitled.mattestudio" and p.is_file()
    back = load_project(p)
    assert back.alpha is None and back.foreground is None and back.strokes is None
    assert back.settings == {} and back.image_path is None
    assert np.array_equal(back.image, state.image) and np.array_equal(back.trimap, state.trimap)


# --- bad inputs --------------------------------------------------------------------------------


def test_save_bad_extension_and_folder(tmp_path):
    state = make_state()
    with pytest.raises(OutputError, match="unsupported file type") as info:
        save_project(tmp_path / "cat.png", state)
    assert "cat.png" in str(info.value)
    with pytest.raises(OutputError, match="does not exist"):
        save_project(tmp_path / "missing" / "cat.mattestudio", state)
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="cat.mattestudio"):
        save_project(tmp_path / "file" / "cat.mattestudio", state)
    assert os.listdir(tmp_path) == ["file"]


def test_save_mismatched_sizes(tmp_path):
    state = make_state()
    state.trimap = state.trimap[:4]
    with pytest.raises(OutputError, match="trimap"):
        save_project(tmp_path / "x.mattestudio", state)
    state = make_state()
    state.settings = {"bad": object()}
    with pytest.raises(OutputError, match="JSON"):
        save_project(tmp_path / "x.mattestudio", state)
    assert os.listdir(tmp_path) == []


def test_failed_save_keeps_previous_project(tmp_path, monkeypatch):
    p = save_project(tmp_path / "x.mattestudio", make_state())
    before = p.read_bytes()
    real = zipfile.ZipFile.writestr

    def failing(self, name, data, *a, **k):
        if getattr(name, "filename", name) == "alpha.png":
            raise OSError(28, "No space left on device")
        return real(self, name, data, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing)
    with pytest.raises(OutputError, match="No space left") as info:
        save_project(p, make_state(high_depth=True))
    assert "x.mattestudio" in str(info.value)
    assert p.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_load_not_found_and_not_a_zip(tmp_path):
    with pytest.raises(ProjectError, match="not found"):
        load_project(tmp_path / "none.mattestudio")
    junk = tmp_path / "junk.mattestudio"
    junk.write_bytes(b"\x89PNG not a zip at all")
    with pytest.raises(ImageLoadError, match="junk.mattestudio.*not a mattestudio project"):
        load_project(junk)


def test_load_truncated(tmp_path):
    p = save_project(tmp_path / "x.mattestudio", make_state())
    data = p.read_bytes()
    for cut in (len(data) // 2, len(data) - 30):
        t = tmp_path / f"cut{cut}.mattestudio"
        t.write_bytes(data[:cut])
        with pytest.raises(ProjectError, match="truncated") as info:
            load_project(t)
        assert t.name in str(info.value)


def test_load_corrupt_member(tmp_path):
    p = save_project(tmp_path / "x.mattestudio", make_state())
    data = bytearray(p.read_bytes())
    with zipfile.ZipFile(p) as zf:
        info = zf.getinfo("image.png")
    # flip bytes inside the stored PNG: the CRC check (or the PNG decoder) must catch it
    start = info.header_offset + 30 + len(info.filename) + 40
    data[start : start + 16] = bytes(16)
    bad = tmp_path / "bad.mattestudio"
    bad.write_bytes(bytes(data))
    with pytest.raises(ProjectError, match="bad.mattestudio.*corrupt"):
        load_project(bad)


def rewrite(src, dst, drop=(), replace=None):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            if item.filename in drop:
                continue
            data = zin.read(item.filename)
            if replace and item.filename in replace:
                data = replace[item.filename](data)
            zout.writestr(item, data)
    return dst


def test_load_missing_member(tmp_path):
    p = save_project(tmp_path / "x.mattestudio", make_state())
    for member in ("trimap.png", "alpha.png", "settings.json"):
        q = rewrite(p, tmp_path / "m.mattestudio", drop=(member,))
        with pytest.raises(ProjectError, match=f"m.mattestudio.*{member}.*missing"):
            load_project(q)
    q = rewrite(p, tmp_path / "n.mattestudio", drop=("manifest.json",))
    with pytest.raises(ProjectError, match="not a mattestudio project"):
        load_project(q)


def edit_manifest(**changes):
    def fn(data):
        m = json.loads(data)
        m.update(changes)
        return json.dumps(m).encode()

    return fn


def test_load_newer_version(tmp_path):
    p = save_project(tmp_path / "x.mattestudio", make_state())
    q = rewrite(
        p,
        tmp_path / "new.mattestudio",
        replace={"manifest.json": edit_manifest(version=project.FORMAT_VERSION + 1)},
    )
    with pytest.raises(MattestudioError, match="new.mattestudio.*newer mattestudio"):
        load_project(q)


def test_load_mismatched_sizes(tmp_path):
    p = save_project(tmp_path / "x.mattestudio", make_state())
    small = save_project(
        tmp_path / "small.mattestudio",
        ProjectState(np.zeros((4, 5, 3), np.float32), np.zeros((4, 5), np.uint8)),
    )
    with zipfile.ZipFile(small) as zf:
        small_trimap = zf.read("trimap.png")
    q = rewrite(p, tmp_path / "mix.mattestudio", replace={"trimap.png": lambda _: small_trimap})
    with pytest.raises(ProjectError, match="mix.mattestudio.*trimap.png.*5x4.*13x9"):
        load_project(q)
    q = rewrite(
        p,
        tmp_path / "huge.mattestudio",
        replace={"manifest.json": edit_manifest(width=10**6, height=10**6)},
    )
    with pytest.raises(ProjectError, match="over the limit"):
        load_project(q)


# --- autosave ----------------------------------------------------------------------------------


@pytest.fixture()
def autosave_env(tmp_path, monkeypatch):
    folder = tmp_path / "autosave"
    monkeypatch.setenv(project.AUTOSAVE_ENV, str(folder))
    return folder


def test_autosave_cycle(autosave_env, tmp_path):
    assert project.autosave_dir() == autosave_env and autosave_env.is_dir()
    image_path = tmp_path / "photos" / "my cat.jpg"
    state = make_state()
    state.image_path = str(image_path)
    assert project.find_autosave(image_path) is None
    p = project.autosave(state)
    assert p.parent == autosave_env
    key = project.autosave_key(image_path)
    assert p.name == f"{key}.mattestudio" and " " not in key
    assert project.find_autosave(image_path) == p
    assert project.find_autosave(tmp_path / "other.jpg") is None
    assert project.autosave_key(tmp_path / "a" / "x.jpg") != project.autosave_key(
        tmp_path / "b" / "x.jpg"
    )
    back = load_project(project.find_autosave(image_path), image=state.image)
    assert np.array_equal(back.trimap, state.trimap)
    project.autosave(state)  # overwriting is fine
    assert leftovers(autosave_env) == []
    project.clear_autosave(key)
    assert project.find_autosave(image_path) is None
    project.clear_autosave(key)  # no error when already gone


def test_autosave_untitled_and_bad_key(autosave_env):
    state = make_state()
    state.image_path = None
    p = project.autosave(state)
    assert p.name == "untitled.mattestudio" and project.find_autosave(None) == p
    with pytest.raises(OutputError):
        project.autosave(state, key="../escape")


def test_autosave_dir_default(monkeypatch):
    monkeypatch.delenv(project.AUTOSAVE_ENV, raising=False)
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_state_dir", lambda *a, **k: "/tmp/ms-state-test")
    assert str(project.autosave_dir()).startswith("/tmp/ms-state-test")


# --- strokes ------------------------------------------------------------------------------------


def test_document_strokes_round_trip_and_replay(tmp_path):
    from mattestudio.core import strokes
    from mattestudio.core.document import Document

    image = np.random.default_rng(1).random((20, 30, 3), dtype=np.float32)
    base = np.zeros((20, 30), np.uint8)
    base[:, 10:] = 128
    doc = Document(image, base)
    b = strokes.Brush(doc, 255, 4.5)
    b.press(12.25, 3.5)
    b.move(25.75, 16.125)
    b.release()
    e = strokes.Brush(doc, "erase", 3)
    e.press(20, 10)
    e.release()
    doc.fill(1, 1, 128)
    p = save_project(
        tmp_path / "s.mattestudio",
        ProjectState(doc.image, doc.trimap.copy(), strokes=list(doc.strokes)),
    )
    back = load_project(p)
    assert back.strokes == doc.strokes and len(back.strokes) == 3
    np.testing.assert_array_equal(back.trimap, doc.trimap)
    np.testing.assert_array_equal(strokes.replay(back.strokes, (20, 30), base), back.trimap)
    reopened = Document()
    reopened.set_image(back.image, back.trimap, strokes=back.strokes)
    assert reopened.strokes == doc.strokes and not reopened.can_undo
    # an empty log survives too (an empty list is not "no log")
    q = save_project(tmp_path / "e.mattestudio", ProjectState(doc.image, doc.trimap, strokes=[]))
    assert load_project(q).strokes == []


def test_load_bad_strokes(tmp_path):
    p = save_project(tmp_path / "x.mattestudio", make_state())
    for bad in (b'{"tool": "brush"}', b"[1, 2]", b"[{"):
        q = rewrite(p, tmp_path / "b.mattestudio", replace={"strokes.json": lambda _, bad=bad: bad})
        with pytest.raises(ProjectError, match="b.mattestudio.*strokes|JSON"):
            load_project(q)


def test_autosave_holds_trimap_and_strokes_not_the_image(autosave_env, tmp_path):
    from mattestudio.core import io

    state = make_state()
    import cv2

    source = tmp_path / "photo.png"
    rgb8 = np.clip(np.rint(state.image * 255), 0, 255).astype(np.uint8)
    assert cv2.imwrite(str(source), rgb8[:, :, ::-1])
    image = io.load_image(source)
    state.image, state.image_path = image, str(source)
    state.strokes = [{"kind": "segment", "value": 255}]
    p = project.autosave(state)
    with zipfile.ZipFile(p) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
    assert "image.png" not in names and {"trimap.png", "strokes.json"} <= names
    assert manifest["image"] == "external" and manifest["image_path"] == str(source)
    # With the image the editor has open, or read from the source file: the same state.
    for back in (load_project(p, image=image), load_project(p)):
        np.testing.assert_array_equal(back.image, image)
        np.testing.assert_array_equal(back.trimap, state.trimap)
        assert back.strokes == state.strokes
    with pytest.raises(ProjectError, match="belongs to a"):
        load_project(p, image=image[:-1])
    source.unlink()
    with pytest.raises(ProjectError, match="cannot be read"):
        load_project(p)
    # A full project still holds its image and loads without the source.
    full = save_project(tmp_path / "full.mattestudio", state)
    np.testing.assert_array_equal(load_project(full).image, image)
