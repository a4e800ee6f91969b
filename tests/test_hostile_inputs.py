"""Hostile and odd inputs (issue 10): zip bombs in project files, a huge image with a useless
trimap, images under 3 px on a side, pymatting's prints. Memory is measured in a subprocess (the
growth of its peak resident size, VmHWM, over what the imports took)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import mattestudio
from mattestudio.cli.main import main
from mattestudio.core import io, project
from mattestudio.core.project import ProjectError, ProjectState, load_project, save_project
from mattestudio.engines import registry
from mattestudio.errors import MattestudioError

REPO = Path(__file__).resolve().parents[1]
MB = 1 << 20

needs_procfs = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="peak memory is read from /proc (Linux)"
)

# Runs `mattestudio ARGS` in a fresh interpreter and prints its exit status and how much the peak
# resident size grew during the command (after the imports), in MB.
_MEASURE = """
import json, sys
import cv2, numpy, PIL.Image
from mattestudio.cli.main import main
import mattestudio.core.project, mattestudio.pipeline, mattestudio.engines.fastcf.engine

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
before = hwm()
code = main(sys.argv[1:])
print(json.dumps({"code": code, "grew_mb": hwm() - before}))
"""


def _measured(args, tmp_path) -> tuple[int, float, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return report["code"], report["grew_mb"], proc.stderr


def _small_project(path: Path) -> Path:
    rng = np.random.default_rng(0)
    trimap = np.full((16, 16), 128, np.uint8)
    trimap[:4] = 0
    trimap[-4:] = 255
    return save_project(path, ProjectState(rng.random((16, 16, 3)).astype(np.float32), trimap))


def _with_bomb(src: Path, dst: Path, member: str, extra: bytes, repeat: int) -> Path:
    """Copy a project, appending ``extra * repeat`` to ``member`` (deflated: a few hundred KB on
    disk that inflate to ``len(extra) * repeat`` bytes)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename != member:
                zout.writestr(item, data)
                continue
            info = zipfile.ZipInfo(member)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zout.open(info, "w", force_zip64=True) as f:
                f.write(data)
                for _ in range(repeat):
                    f.write(extra)
    return dst


@needs_procfs
@pytest.mark.parametrize(
    ("member", "extra"),
    [("image.png", bytes(4 * MB)), ("settings.json", b" " * (4 * MB))],
    ids=["image-member", "json-member"],
)
def test_zip_bomb_in_project_is_refused_before_inflating(tmp_path, member, extra):
    # Issue 10 case 2: a 2.6 MB project whose image member inflated to 2.5 GB took 5.1 GB and
    # ended in "internal error: OpenCV ... imdecode"; a bomb in the JSON took 5.1 GB too.
    bomb = _with_bomb(
        _small_project(tmp_path / "ok.mattestudio"),
        tmp_path / "bomb.mattestudio",
        member,
        extra,
        40,
    )
    assert bomb.stat().st_size < 2 * MB  # 160 MB inflated
    code, grew, err = _measured(["matte", bomb, "--alpha", tmp_path / "a.png"], tmp_path)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"mattestudio: {bomb}: {member} in the project inflates to")
    assert grew < 40, f"memory grew by {grew:.0f} MB while refusing the file"
    assert not (tmp_path / "a.png").exists()


def test_project_member_sizes_and_nesting(tmp_path):
    ok = _small_project(tmp_path / "ok.mattestudio")
    assert load_project(ok).image.shape == (16, 16, 3)
    # the zip directory's size is checked; a member is never inflated past its limit either
    bomb = _with_bomb(ok, tmp_path / "b.mattestudio", "manifest.json", b" " * MB, 2)
    with pytest.raises(ProjectError, match="manifest.json in the project inflates to"):
        load_project(bomb)
    with zipfile.ZipFile(ok) as zf:
        assert project._read_member(zf, "settings.json", ok, 10**6) == zf.read("settings.json")
        with pytest.raises(ProjectError, match="inflates to"):
            project._read_member(zf, "image.png", ok, 10)
    deep = tmp_path / "deep.mattestudio"
    with zipfile.ZipFile(ok) as zin, zipfile.ZipFile(deep, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            zout.writestr(item, b"[" * 100_000 if item.filename == "settings.json" else data)
    with pytest.raises(ProjectError, match="deep.mattestudio.*JSON"):
        load_project(deep)


@needs_procfs
def test_useless_trimap_refused_before_decoding_a_huge_image(tmp_path):
    # Issue 10 case 7: a valid 14100x14100 PNG with a trimap without unknown pixels cost 5 GB
    # before the refusal. Here 5000x5000 (a 300 MB float image) shows the same order of work.
    from PIL import Image

    side = 5000
    Image.new("RGB", (side, side), (200, 100, 50)).save(tmp_path / "big.png", compress_level=1)
    Image.new("L", (side, side), 255).save(tmp_path / "tri.png", compress_level=1)
    code, grew, err = _measured(
        ["matte", tmp_path / "big.png", "--trimap", tmp_path / "tri.png"], tmp_path
    )
    assert code == 1
    assert err.strip() == (
        f"mattestudio: {tmp_path / 'tri.png'}: trimap has no unknown (gray) pixels, so there is "
        "nothing to solve; paint an unknown band over the edges"
    )
    assert grew < 150, f"memory grew by {grew:.0f} MB before the refusal"


def test_image_size_reads_the_header_only(tmp_path):
    from PIL import Image

    im = Image.new("RGB", (7, 3))
    exif = im.getexif()
    exif[0x0112] = 6  # rotated: loads as 3 wide, 7 high
    im.save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert io.image_size(tmp_path / "r.jpg") == io.read_image_array(tmp_path / "r.jpg").shape[:2]
    assert io.image_size(tmp_path / "r.jpg") == (7, 3)
    (tmp_path / "x.png").write_bytes(b"junk")
    with pytest.raises(MattestudioError, match="x.png: not an image"):
        io.image_size(tmp_path / "x.png")


def _available() -> list[str]:
    return [n for n in registry.names() if registry.unavailable_reason(n) is None]


@pytest.mark.parametrize("name", _available())
def test_tiny_images_are_handled_or_refused_in_one_line(name):
    # Issue 10 case 4: under 3 px on a side crashed closed-form ("front 0 is not positive
    # definite"), KNN (ValueError) and large-kernel (AssertionError).
    rng = np.random.default_rng(0)
    for h, w in ((1, 4), (2, 50), (50, 2), (3, 3), (3, 40), (4, 4), (6, 5)):
        image = rng.random((h, w, 3)).astype(np.float32)
        trimap = np.full((h, w), 128, np.uint8)
        trimap[0, 0], trimap[-1, -1] = 0, 255
        try:
            result = mattestudio.matte(image, trimap, engine=name)
        except MattestudioError as exc:
            message = str(exc)
            assert "\n" not in message
            if min(h, w) < 3:
                assert f"{w}x{h} pixels; matting needs at least 3" in message
            else:  # only large-kernel refuses an image its smallest window does not fit
                assert name == "large-kernel" and "at least 5 pixels" in message, message
            continue
        assert min(h, w) >= 3, f"{name} solved a {w}x{h} image"
        assert result.alpha.shape == (h, w) and np.isfinite(result.alpha).all()


def test_tiny_image_on_the_command_line_names_the_file(tmp_path, capsys):
    io.save_rgb(tmp_path / "thin.png", np.full((2, 30, 3), 0.5, np.float32))
    tri = np.full((2, 30), 128, np.uint8)
    tri[:, 0] = 0
    io.save_trimap(tmp_path / "t.png", tri)
    code = main(["matte", str(tmp_path / "thin.png"), "--trimap", str(tmp_path / "t.png")])
    _, err = capsys.readouterr()
    assert code == 1
    assert err.strip() == (
        f"mattestudio: {tmp_path / 'thin.png'}: image is 30x2 pixels; matting needs at least 3 "
        "pixels on each side"
    )


def test_pymatting_prints_stay_off_stdout(tmp_path, capsys, monkeypatch):
    # pymatting prints "PERFORMANCE WARNING:" when its incomplete Cholesky needs a larger shift;
    # stdout is where `mattestudio matte` lists the files it wrote.
    import pymatting

    real = pymatting.estimate_alpha_cf

    def noisy(*args, **kwargs):
        print("PERFORMANCE WARNING:")
        print("Thresholded incomplete Cholesky decomposition failed ...")
        return real(*args, **kwargs)

    monkeypatch.setattr(pymatting, "estimate_alpha_cf", noisy)
    rng = np.random.default_rng(1)
    io.save_rgb(tmp_path / "p.png", rng.random((20, 24, 3)))
    tri = np.full((20, 24), 128, np.uint8)
    tri[:5], tri[-5:] = 0, 255
    io.save_trimap(tmp_path / "t.png", tri)
    out = tmp_path / "a.png"
    code = main(
        ["matte", str(tmp_path / "p.png"), "-t", str(tmp_path / "t.png"), "-a", str(out)]
        + ["--engine", "closed-form-pymatting"]
    )
    stdout, _ = capsys.readouterr()
    assert code == 0 and out.exists()
    assert "PERFORMANCE" not in stdout and "Cholesky" not in stdout
    assert stdout.splitlines()[0] == str(out)


def test_eval_engine_error_names_the_file(tmp_path, capsys):
    ds = tmp_path / "ds"
    for sub in ("input", "gt", "trimap1"):
        (ds / sub).mkdir(parents=True)
    tri = np.full((2, 30), 128, np.uint8)
    tri[:, 0] = 0
    io.save_rgb(ds / "input" / "thin.png", np.full((2, 30, 3), 0.5, np.float32))
    io.save_alpha(ds / "gt" / "thin.png", np.full((2, 30), 0.5, np.float32))
    io.save_trimap(ds / "trimap1" / "thin.png", tri)
    code = main(["eval", str(ds), "--engine", "closed-form"])
    _, err = capsys.readouterr()
    assert code == 1
    assert err.strip() == (
        f"mattestudio: {ds / 'input' / 'thin.png'}: image is 30x2 pixels; matting needs at "
        "least 3 pixels on each side"
    )
