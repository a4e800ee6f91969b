"""`.mattestudio` projects in a batch folder render with their own engine and settings, like
`mattestudio matte PROJECT`; a broken project is named and the rest go on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scenes import disc_scene

from mattestudio import batching
from mattestudio.cli.main import main
from mattestudio.core import io
from mattestudio.core.project import ProjectState, save_project
from mattestudio.engines.registry import DEFAULT_ENGINE


def _scene(h=40, w=48, seed=0):
    return disc_scene(h, w, seed, colour=(0.8, 0.3, 0.6), noise=0.4, eight_bit=True)


def project_folder(folder: Path) -> Path:
    """photo.png + trimap, a project saved with large-kernel radius 5, one saved with no engine,
    and a project next to a same-named image (the project is the one matted)."""
    folder.mkdir(parents=True)
    image, trimap = _scene(seed=1)
    io.save_rgb(folder / "photo.png", image)
    io.save_trimap(folder / "photo_trimap.png", trimap)
    image, trimap = _scene(seed=2)
    settings = {"engine": "large-kernel", "params": {"radius": "5"}, "brush_size": 12}
    save_project(folder / "shot.mattestudio", ProjectState(image, trimap, settings=settings))
    image, trimap = _scene(seed=3)
    save_project(folder / "plain.mattestudio", ProjectState(image, trimap, settings={}))
    image, trimap = _scene(seed=4)
    io.save_rgb(folder / "twin.png", np.zeros_like(image))  # no trimap: would fail if matted
    save_project(folder / "twin.mattestudio", ProjectState(image, trimap, settings={}))
    return folder


def _direct(tmp_path: Path, name: str, seed: int, engine: str, *params: str) -> bytes:
    """The alpha `mattestudio matte` writes for the same image, trimap, engine and params."""
    image, trimap = _scene(seed=seed)
    io.save_rgb(tmp_path / f"{name}-i.png", image)
    io.save_trimap(tmp_path / f"{name}-t.png", trimap)
    out = tmp_path / f"{name}-direct.png"
    argv = ["matte", tmp_path / f"{name}-i.png", "--trimap", tmp_path / f"{name}-t.png"]
    argv += ["--engine", engine, "--alpha", out] + [x for p in params for x in ("--param", p)]
    assert main([str(a) for a in argv]) == 0
    return out.read_bytes()


def test_projects_render_with_their_own_engine(tmp_path, capsys):
    src = project_folder(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["batch", str(src), "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().startswith("4 done, 0 skipped (already done), 0 failed")
    assert sorted(p.name for p in out.iterdir()) == [
        "photo_alpha.png",
        "plain_alpha.png",
        "shot_alpha.png",
        "twin_alpha.png",
    ]
    shot = (out / "shot_alpha.png").read_bytes()
    assert shot == _direct(tmp_path, "shot", 2, "large-kernel", "radius=5")
    assert shot != _direct(tmp_path, "shot-cf", 2, "closed-form")  # the saved engine mattered
    # no engine saved: the batch's engine, the default
    assert (out / "plain_alpha.png").read_bytes() == _direct(tmp_path, "plain", 3, DEFAULT_ENGINE)
    assert (out / "twin_alpha.png").read_bytes() == _direct(tmp_path, "twin", 4, DEFAULT_ENGINE)
    # resume: the projects' outputs count as finished
    capsys.readouterr()
    assert main(["batch", str(src), "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out.strip().startswith("0 done, 4 skipped")


def test_a_broken_project_is_named_and_the_rest_go_on(tmp_path, capsys):
    src = project_folder(tmp_path / "in")
    (src / "broken.mattestudio").write_bytes(b"PK\x03\x04 not really a zip")
    image, trimap = _scene(seed=5)
    settings = {"engine": "no-such-engine"}
    save_project(src / "odd.mattestudio", ProjectState(image, trimap, settings=settings))
    summary = batching.run(src, src, tmp_path / "out")
    failed = sorted(o.message for o in summary.failures)
    assert len(failed) == 2 and summary.count("done") == 4
    assert failed[0].startswith(f"{src / 'broken.mattestudio'}: ")
    assert failed[1].startswith(f"{src / 'odd.mattestudio'}: unknown engine 'no-such-engine'")


def test_a_projects_edge_adjustments_render_in_batch_as_with_matte(tmp_path):
    """Saved edge adjustments apply in a batch as in `mattestudio matte PROJECT`; a batch flag
    overrides the saved value of the same adjustment only."""
    folder = tmp_path / "in"
    folder.mkdir()
    image, trimap = _scene(seed=5)
    settings = {"engine": "closed-form", "edges": {"feather": 2.0, "shift_edge": 1.0}}
    shot = save_project(folder / "edgy.mattestudio", ProjectState(image, trimap, settings=settings))
    for extra, name in (([], "saved"), (["--feather", "0.5"], "flag")):
        out = tmp_path / f"out-{name}"
        assert main(["batch", str(folder), "--out", str(out), "--quiet", *extra]) == 0
        direct = tmp_path / f"direct-{name}.png"
        assert main(["matte", str(shot), "--alpha", str(direct), "--quiet", *extra]) == 0
        assert (out / "edgy_alpha.png").read_bytes() == direct.read_bytes()
    plain = tmp_path / "plain.png"
    assert main(["matte", str(shot), "--alpha", str(plain), "--quiet", "--feather", "0"]) == 0
    assert (tmp_path / "out-saved" / "edgy_alpha.png").read_bytes() != plain.read_bytes()
