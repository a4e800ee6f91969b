"""Results and images cross between the editor and its engine process as files in shared memory
(mattestudio.ui.shared_arrays), and no file or folder is left behind on any path: read, cancel,
engine killed, editor gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mattestudio.errors import Cancelled
from mattestudio.types import CancelToken, MattingResult
from mattestudio.ui import shared_arrays
from mattestudio.ui.engine_process import EngineProcess
from mattestudio.ui.protocol import MattingJob, Progress, Result


def _mine() -> set[Path]:
    """This test process's folders (the session's shared engine process may have one too)."""
    return set(shared_arrays.ROOT.glob(f"{shared_arrays.PREFIX}{os.getpid()}-*"))


def _mapped(arr: np.ndarray) -> bool:
    """Whether ``arr``'s memory is a mapped file."""
    import mmap

    base: object = arr
    while base is not None and not isinstance(base, mmap.mmap):
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return base is not None


def _scene(h=240, w=400):
    """An image whose float32 arrays are over MIN_BYTES (so they go through files)."""
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (h, w, 3)).astype(np.float32)
    trimap = np.zeros((h, w), np.uint8)
    trimap[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 128
    trimap[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = 255
    assert image.nbytes >= shared_arrays.MIN_BYTES
    return image, trimap


def test_pack_moves_big_arrays_to_files_and_unpack_brings_them_back(tmp_path):
    tmp_path = tmp_path / "drop"
    tmp_path.mkdir()
    alpha = np.random.default_rng(1).uniform(0, 1, (600, 500)).astype(np.float32)
    fg = np.random.default_rng(2).uniform(0, 1, (600, 500, 3)).astype(np.float32)
    value = MattingResult(alpha=alpha, foreground=fg, engine="x", approximate=((0, 1, 0, 1),))
    wire, shared = shared_arrays.pack(value, tmp_path)
    assert {name for name, _ in shared} == {"alpha", "foreground"}
    assert wire.alpha.size == 0 and wire.foreground.size == 0 and wire.approximate
    assert len(list(tmp_path.iterdir())) == 2
    back = shared_arrays.unpack(wire, shared)
    assert list(tmp_path.iterdir()) == []  # unlinked on arrival
    np.testing.assert_array_equal(back.alpha, alpha)
    np.testing.assert_array_equal(back.foreground, fg)
    back.alpha[0, 0] = 5.0  # private (copy-on-write), like an unpickled array
    assert back.alpha[0, 0] == 5.0
    wire, shared = shared_arrays.pack(value, tmp_path)
    copied = shared_arrays.unpack(wire, shared, copy=True)  # read into fresh arrays
    assert list(tmp_path.iterdir()) == []
    assert _mapped(back.foreground) and not _mapped(copied.foreground)
    np.testing.assert_array_equal(copied.foreground, fg)


def test_small_arrays_and_a_missing_folder_stay_in_the_pickle(tmp_path):
    tmp_path = tmp_path / "drop"
    tmp_path.mkdir()
    small = MattingResult(
        alpha=np.zeros((8, 8), np.float32), foreground=np.zeros((8, 8, 3)), engine="x"
    )
    assert shared_arrays.pack(small, tmp_path)[1] == ()
    big = MattingResult(
        alpha=np.zeros((600, 500), np.float32), foreground=np.zeros((1, 1, 3)), engine="x"
    )
    wire, shared = shared_arrays.pack(big, tmp_path / "gone")
    assert shared == () and wire.alpha.shape == (600, 500)


def test_results_come_through_files_and_leave_nothing(tmp_path):
    from mattestudio.engines import registry
    from mattestudio.pipeline import run_matting

    image, trimap = _scene()
    before = _mine()
    proc = EngineProcess()
    try:
        seen: list = []
        job = MattingJob("closed-form", {}, image, 1, trimap, revision=1, job_id=1)
        proc.run(job, CancelToken(), seen.append)
        results = [e for e in seen if isinstance(e, Result)]
        assert results and all(r.shared == () for r in results)
        folder = proc.folder
        assert folder is not None and folder.is_dir() and list(folder.iterdir()) == []
        direct = run_matting(registry.create("closed-form"), image, trimap)
        np.testing.assert_allclose(results[-1].value.alpha, direct.alpha, atol=1e-5)
        # A second job on the same image: the image does not travel again, results do.
        job2 = MattingJob("closed-form", {}, image, 1, trimap, revision=2, job_id=2)
        proc.run(job2, CancelToken(), seen.append)
        assert list(folder.iterdir()) == []
    finally:
        proc.stop()
    assert not folder.exists() and _mine() == before


def test_cancel_and_a_killed_engine_leave_no_file():
    image, trimap = _scene()
    before = _mine()
    proc = EngineProcess(grace_seconds=0.0)  # a cancel ends the process at once
    try:
        token = CancelToken()

        def on_event(ev):
            if isinstance(ev, Progress):
                token.cancel()

        job = MattingJob("closed-form", {}, image, 1, trimap, revision=1, job_id=1)
        with pytest.raises(Cancelled):
            proc.run(job, token, on_event)
        assert _mine() == before  # the engine was killed: its folder went with it
        # An engine killed from outside with a message nobody read (a file in its folder).
        proc.run(
            MattingJob("closed-form", {}, image, 1, trimap, revision=2, job_id=2),
            CancelToken(),
            lambda ev: None,
        )
        old = proc.folder
        assert old is not None
        (old / "stranded.bin").write_bytes(b"\0" * 1024)
        proc._proc.kill()
        proc._proc.join(5)
        proc.run(
            MattingJob("closed-form", {}, image, 1, trimap, revision=3, job_id=3),
            CancelToken(),
            lambda ev: None,
        )
        assert not old.exists() and proc.folder != old
    finally:
        proc.stop()
    assert _mine() == before


def test_folders_of_a_gone_editor_are_removed():
    # An editor that exits without stopping its engine: atexit removes its folder.
    code = (
        "from mattestudio.ui import shared_arrays as s; f = s.new_folder();"
        " (f / 'x.bin').write_bytes(b'1'); print(f)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert not Path(out.stdout.strip()).exists()
    # One killed outright (no atexit): the next editor's new folder sweeps it.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    orphan = shared_arrays.ROOT / f"{shared_arrays.PREFIX}{child.pid}-test"
    orphan.mkdir()
    (orphan / "x.bin").write_bytes(b"1")
    folder = shared_arrays.new_folder()
    try:
        assert not orphan.exists()
    finally:
        shared_arrays.remove_folder(folder)
