"""The `mattestudio` command: outputs, batch, eval, engines, and every bad input of issue 3."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mattestudio.cli.main import main
from mattestudio.core import io, metrics


def _scene(h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    alpha = np.clip((16 - np.hypot(yy - h / 2, xx - w / 2)) / 5 + 0.5, 0, 1).astype(np.float32)
    fg = np.empty((h, w, 3), np.float32)
    fg[:] = (0.9, 0.4, 0.1)
    bg = np.dstack([xx / w, yy / h, np.full((h, w), 0.5)]).astype(np.float32)
    bg += rng.normal(0, 0.01, bg.shape).astype(np.float32)
    image = np.clip(alpha[..., None] * fg + (1 - alpha[..., None]) * bg, 0, 1)
    trimap = np.zeros((h, w), np.uint8)
    trimap[alpha > 0.0] = 128
    trimap[alpha >= 1.0] = 255
    return image, trimap, alpha


@pytest.fixture
def scene(tmp_path):
    image, trimap, alpha = _scene()
    img_p, tri_p = tmp_path / "photo.png", tmp_path / "photo_trimap.png"
    io.save_rgb(img_p, image)
    io.save_trimap(tri_p, trimap)
    return img_p, tri_p, alpha, trimap


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*")}


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_matte_writes_alpha_cutout_and_composite(scene, tmp_path, capsys):
    img_p, tri_p, alpha, trimap = scene
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, err = _run(
        [
            "matte",
            img_p,
            "--trimap",
            tri_p,
            "--engine",
            "large-kernel",
            "--alpha",
            out / "a.png",
            "--alpha-bits",
            "16",
            "--cutout",
            out / "c.png",
            "--composite",
            out / "comp.jpg",
            "--background",
            "#00ff00",
        ],
        capsys,
    )
    assert code == 0, err
    a = io.read_image_array(out / "a.png")
    assert a.dtype == np.uint16 and a.shape == alpha.shape
    assert metrics.sad(a.astype(np.float32) / 65535, alpha, trimap) < 0.05
    c = io.read_image_array(out / "c.png")
    assert c.shape == alpha.shape + (4,)
    assert np.array_equal(c[..., 3][trimap == 0], np.zeros((trimap == 0).sum(), np.uint8))
    comp = io.load_image(out / "comp.jpg")
    # Background pixels of the composite are the new green background.
    bgpix = comp[trimap == 0]
    assert bgpix[:, 1].mean() > 0.9 and bgpix[:, 0].mean() < 0.1
    assert str(out / "a.png") in stdout


def test_matte_default_output_in_cwd(scene, tmp_path, capsys, monkeypatch):
    img_p, tri_p, *_ = scene
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    code, _, err = _run(["matte", img_p, "--trimap", tri_p, "--engine", "large-kernel"], capsys)
    assert code == 0, err
    assert (work / "photo_alpha.png").exists()


def _assert_one_line_error(err: str, *needles: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("mattestudio: ")
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def _bad_inputs(tmp_path: Path, scene):
    img_p, tri_p, _, trimap = scene
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.png").write_bytes(b"")
    (bad / "notes.png").write_text("this is not an image")
    data = img_p.read_bytes()
    (bad / "truncated.png").write_bytes(data[: len(data) // 2])
    small = np.zeros((10, 12), np.uint8) + 128
    io.save_trimap(bad / "small_trimap.png", small)
    io.save_trimap(bad / "no_unknown.png", np.where(trimap > 0, 255, 0).astype(np.uint8))
    return {
        "missing image": ([bad / "missing.png", tri_p], ["missing.png", "not found"]),
        "empty image": ([bad / "empty.png", tri_p], ["empty.png", "empty"]),
        "not an image": ([bad / "notes.png", tri_p], ["notes.png", "not an image"]),
        "truncated image": ([bad / "truncated.png", tri_p], ["truncated.png", "truncated"]),
        "trimap size": ([img_p, bad / "small_trimap.png"], ["small_trimap.png", "12x10", "64x48"]),
        "no unknown": ([img_p, bad / "no_unknown.png"], ["no_unknown.png", "no unknown"]),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing image",
        "empty image",
        "not an image",
        "truncated image",
        "trimap size",
        "no unknown",
    ],
)
def test_bad_input_one_line_exit_1_nothing_written(case, scene, tmp_path, capsys):
    (image, trimap), needles = _bad_inputs(tmp_path, scene)[case]
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = _run(
        ["matte", image, "--trimap", trimap, "--alpha", out / "a.png", "--cutout", out / "c.png"],
        capsys,
    )
    assert code == 1
    _assert_one_line_error(err, *needles)
    assert _files(out) == set()


def test_enormous_image_refused(scene, tmp_path, capsys, monkeypatch):
    img_p, tri_p, *_ = scene
    monkeypatch.setenv("MATTESTUDIO_MAX_PIXELS", "1000")
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = _run(["matte", img_p, "--trimap", tri_p, "--alpha", out / "a.png"], capsys)
    assert code == 1
    _assert_one_line_error(err, "photo.png", "64x48", "limit")
    assert _files(out) == set()


def test_unwritable_output(scene, tmp_path, capsys):
    img_p, tri_p, *_ = scene
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, _, err = _run(["matte", img_p, "--trimap", tri_p, "--alpha", blocker / "a.png"], capsys)
    assert code == 1
    _assert_one_line_error(err, "a.png", "does not exist")
    code, _, err = _run(["matte", img_p, "--trimap", tri_p, "--alpha", tmp_path / "a.xyz"], capsys)
    assert code == 1
    _assert_one_line_error(err, "a.xyz", "unsupported")
    assert not (tmp_path / "a.xyz").exists()


def test_write_failure_midway_leaves_no_partial_file(scene, tmp_path, capsys, monkeypatch):
    """A failing write (disk full) reports the file and leaves neither the file nor a temp file."""
    img_p, tri_p, *_ = scene
    out = tmp_path / "out"
    out.mkdir()
    real_fsync = os.fsync

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    code, _, err = _run(
        ["matte", img_p, "--trimap", tri_p, "--engine", "large-kernel", "--alpha", out / "a.png"],
        capsys,
    )
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert code == 1
    _assert_one_line_error(err, "a.png", "No space left")
    assert _files(out) == set()


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["matte"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["matte", "x.png", "--trimap", "t.png", "--alpha-bits", "12"])
    assert exc.value.code == 2


def test_unknown_engine_and_bad_param(scene, tmp_path, capsys):
    img_p, tri_p, *_ = scene
    code, _, err = _run(
        ["matte", img_p, "--trimap", tri_p, "--engine", "magic", "--alpha", tmp_path / "a.png"],
        capsys,
    )
    assert code == 1
    _assert_one_line_error(err, "magic", "knn")
    code, _, err = _run(
        [
            "matte",
            img_p,
            "--trimap",
            tri_p,
            "--engine",
            "knn",
            "--param",
            "rtol=abc",
            "--alpha",
            tmp_path / "a.png",
        ],
        capsys,
    )
    assert code == 1
    _assert_one_line_error(err, "rtol")
    assert not (tmp_path / "a.png").exists()


def test_debug_shows_traceback(tmp_path):
    env = dict(os.environ)
    cmd = [
        sys.executable,
        "-m",
        "mattestudio",
        "matte",
        str(tmp_path / "nope.png"),
        "--trimap",
        "t.png",
    ]
    plain = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert "nope.png: file not found" in plain.stderr
    debug = subprocess.run(cmd[:3] + ["--debug"] + cmd[3:], capture_output=True, text=True, env=env)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def _batch_folders(tmp_path: Path):
    imgs, tris = tmp_path / "imgs", tmp_path / "tris"
    imgs.mkdir()
    tris.mkdir()
    for i in range(3):
        image, trimap, _ = _scene(seed=i)
        io.save_rgb(imgs / f"im{i}.png", image)
        io.save_trimap(tris / f"im{i}.png", trimap)
    (imgs / "broken.png").write_text("not a png")
    io.save_trimap(tris / "broken.png", trimap)
    return imgs, tris


def test_batch_reports_bad_image_and_skips_on_rerun(tmp_path, capsys):
    imgs, tris = _batch_folders(tmp_path)
    out = tmp_path / "out"
    args = ["batch", imgs, "--trimaps", tris, "--out", out, "--engine", "large-kernel"]
    args += ["--cutout", "--quiet"]
    code, stdout, err = _run(args, capsys)
    assert code == 1  # one image failed
    assert "broken.png" in err and "not an image" in err and "Traceback" not in err
    assert "3 done, 0 skipped (already done), 1 failed" in stdout
    assert _files(out) == {f"im{i}_{k}.png" for i in range(3) for k in ("alpha", "cutout")}
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    code, stdout, _ = _run(args, capsys)  # the same run again
    assert "0 done, 3 skipped (already done), 1 failed" in stdout
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_batch_missing_folder(tmp_path, capsys):
    code, _, err = _run(
        ["batch", tmp_path / "nope", "--trimaps", tmp_path, "--out", tmp_path / "o"], capsys
    )
    assert code == 1
    _assert_one_line_error(err, "nope", "not found")


def test_eval_on_a_synthetic_dataset(tmp_path, capsys):
    ds = tmp_path / "ds"
    for sub in ("input", "gt", "trimap1"):
        (ds / sub).mkdir(parents=True)
    for i in range(2):
        image, trimap, alpha = _scene(seed=i)
        io.save_rgb(ds / "input" / f"GT{i}.png", image)
        io.save_alpha(ds / "gt" / f"GT{i}.png", alpha)
        io.save_trimap(ds / "trimap1" / f"GT{i}.png", trimap)
    code, stdout, err = _run(
        ["eval", ds, "--engine", "large-kernel", "--json", tmp_path / "r.json"], capsys
    )
    assert code == 0, err
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert [r["image"] for r in report["images"]] == ["GT0.png", "GT1.png"]
    sads = [r["sad"] for r in report["images"]]
    assert report["mean"]["sad"] == pytest.approx(np.mean(sads))
    assert 0 <= report["mean"]["sad"] < 0.1
    assert "mean" in stdout and "GT1" in stdout


def test_engines_lists_availability(capsys):
    code, stdout, _ = _run(["engines", "--verbose"], capsys)
    assert code == 0
    for name in ("closed-form", "knn", "large-kernel", "random-walk"):
        assert any(
            line.startswith(name + " ") and "available" in line for line in stdout.splitlines()
        )
    assert "--param" in stdout


def test_sample_command(tmp_path, capsys):
    code, _, _ = _run(["sample", tmp_path / "s"], capsys)
    assert code == 0
    img = io.load_image(tmp_path / "s" / "sample.png")
    alpha = io.load_gray(tmp_path / "s" / "sample_alpha.png")
    assert img.shape[:2] == alpha.shape
    frac = ((alpha > 0.05) & (alpha < 0.95)).mean()
    assert frac > 0.01  # real soft edges and strands, not a hard mask


def test_matte_renders_an_editor_project_headless(tmp_path, capsys):
    """A project saved by the editor renders from the CLI with its own engine and parameters."""
    from mattestudio.core.project import ProjectState, save_project

    image, trimap, _alpha = _scene()
    image = (np.rint(image * 255) / 255).astype(
        np.float32
    )  # 8-bit exact, so the PNG copy below is identical
    proj = save_project(
        tmp_path / "shot.mattestudio",
        ProjectState(
            image=image,
            trimap=trimap,
            settings={"engine": "large-kernel", "params": {"radius": "5"}},
        ),
    )
    code, _, err = _run(["matte", proj, "--alpha", tmp_path / "p.png"], capsys)
    assert code == 0, err
    io.save_rgb(tmp_path / "i.png", image)
    io.save_trimap(tmp_path / "t.png", trimap)
    matte = [
        "matte",
        tmp_path / "i.png",
        "--trimap",
        tmp_path / "t.png",
        "--engine",
        "large-kernel",
    ]
    code, _, err = _run([*matte, "--param", "radius=5", "--alpha", tmp_path / "d.png"], capsys)
    assert code == 0, err
    from_project = io.read_image_array(tmp_path / "p.png")
    direct = io.read_image_array(tmp_path / "d.png")
    assert np.array_equal(from_project, direct)
    # The saved radius mattered: the default radius gives a different matte.
    code, _, _ = _run([*matte, "--alpha", tmp_path / "r10.png"], capsys)
    assert not np.array_equal(io.read_image_array(tmp_path / "r10.png"), direct)


def test_matte_needs_a_trimap_for_plain_images(scene, tmp_path, capsys):
    img_p, *_ = scene
    code, _, err = _run(["matte", img_p, "--alpha", tmp_path / "a.png"], capsys)
    assert code == 1
    _assert_one_line_error(err, "--trimap is required")
