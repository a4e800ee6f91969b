"""Edge adjustments on the command line and in the API: flags, ranges, projects, batch."""

from __future__ import annotations

import numpy as np
import pytest

import mattestudio
from mattestudio.cli.main import main
from mattestudio.core import edges, io, project
from mattestudio.core.edges import EdgeAdjustmentError, EdgeAdjustments


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def files(synthetic_files):
    return synthetic_files["image"], synthetic_files["trimap"]


def test_flags_apply_the_adjustments_to_alpha_and_cutout(files, tmp_path, capsys):
    img, tri = files
    code, _, err = _run(["matte", img, "-t", tri, "-a", tmp_path / "plain.png", "-q"], capsys)
    assert code == 0, err
    code, _, err = _run(
        ["matte", img, "-t", tri, "-a", tmp_path / "a.png", "-c", tmp_path / "c.png"]
        + ["--shift-edge", "2.5", "--feather", "1", "--decontaminate", "0", "-q"],
        capsys,
    )
    assert code == 0, err
    plain = io.load_gray(tmp_path / "plain.png")
    adjusted = io.load_gray(tmp_path / "a.png")
    expected = edges.adjust_alpha(plain, EdgeAdjustments(shift_edge=2.5, feather=1))
    assert np.abs(adjusted - expected).max() <= 2.5 / 255  # 8-bit rounding of the input alpha
    assert adjusted.sum() > plain.sum() + 50  # the matte really grew
    # Decontaminate 0: the cut-out carries the photo's own colours.
    rgba = io.read_image_array(tmp_path / "c.png")
    np.testing.assert_array_equal(rgba[:, :, :3], io.read_image_array(img))


@pytest.mark.parametrize(
    "flag, value, words",
    [
        ("--feather", "-2", "--feather: feather cannot be negative (got -2 px)"),
        ("--contrast", "150", "--contrast: contrast must be between 0 and 100 % (got 150 %)"),
        ("--shift-edge", "abc", "--shift-edge: shift edge must be a number, not 'abc'"),
        ("--decontaminate", "2", "--decontaminate: decontaminate must be between 0 and 1"),
        ("--smooth", "nan", "--smooth: smooth must be a finite number"),
    ],
)
def test_out_of_range_flags_are_one_line_and_exit_2(files, tmp_path, capsys, flag, value, words):
    img, tri = files
    with pytest.raises(SystemExit) as info:
        main(["matte", str(img), "-t", str(tri), flag, value])
    _, err = capsys.readouterr()
    assert info.value.code == 2
    assert err.startswith("mattestudio: ") and words in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not list(tmp_path.glob("*_alpha.png"))


def test_batch_takes_the_same_flags(files, tmp_path, capsys):
    img, tri = files
    (tmp_path / "in").mkdir()
    (tmp_path / "tri").mkdir()
    (tmp_path / "in" / "x.png").write_bytes(img.read_bytes())
    (tmp_path / "tri" / "x.png").write_bytes(tri.read_bytes())
    args = ["batch", tmp_path / "in", "--trimaps", tmp_path / "tri", "-q"]
    assert _run(args + ["--out", tmp_path / "o1"], capsys)[0] == 0
    assert _run(args + ["--out", tmp_path / "o2", "--contrast", "100"], capsys)[0] == 0
    plain = io.load_gray(tmp_path / "o1" / "x_alpha.png")
    binary = io.load_gray(tmp_path / "o2" / "x_alpha.png")
    assert set(np.unique(binary)) == {0.0, 1.0}
    np.testing.assert_array_equal(binary, (plain > 0.5).astype(np.float32))
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args + ["--out", tmp_path / "o3", "--feather", "-1"]])
    assert info.value.code == 2 and "feather cannot be negative" in capsys.readouterr().err


def test_project_edges_render_headless_and_flags_override_them(synthetic_matte, tmp_path, capsys):
    m = synthetic_matte
    saved = EdgeAdjustments(contrast=100, shift_edge=-1)
    path = project.save_project(
        tmp_path / "shot.mattestudio",
        project.ProjectState(
            image=m.image,
            trimap=m.trimap,
            settings={"engine": "closed-form", "edges": saved.to_dict()},
        ),
    )
    code, _, err = _run(["matte", path, "-a", tmp_path / "a.png", "-q"], capsys)
    assert code == 0, err
    code, _, err = _run(["matte", path, "-a", tmp_path / "b.png", "-q", "--contrast", "0"], capsys)
    assert code == 0, err
    a, b = io.load_gray(tmp_path / "a.png"), io.load_gray(tmp_path / "b.png")
    engine = mattestudio.matte(m.image, m.trimap, engine="closed-form").alpha  # the project's
    np.testing.assert_array_equal(a, np.rint(edges.adjust_alpha(engine, saved) * 255) / 255)
    assert set(np.unique(a)) == {0.0, 1.0} and len(np.unique(b)) > 2  # --contrast 0 won


def test_a_project_with_a_bad_edge_value_is_one_line_naming_it(synthetic_matte, tmp_path, capsys):
    m = synthetic_matte
    path = project.save_project(
        tmp_path / "bad.mattestudio",
        project.ProjectState(image=m.image, trimap=m.trimap, settings={"edges": {"feather": -3}}),
    )
    code, _, err = _run(["matte", path, "-a", tmp_path / "a.png"], capsys)
    assert (
        code == 1 and err.strip() == f"mattestudio: {path}: feather cannot be negative (got -3 px)"
    )


def test_api_takes_edges_as_an_object_a_dict_or_keywords(synthetic_matte):
    m = synthetic_matte
    plain = mattestudio.matte(m.image, m.trimap)
    e = EdgeAdjustments(feather=2, shift_edge=1.5, decontaminate=0)
    expected = edges.adjust_alpha(plain.alpha, e)
    for result in (
        mattestudio.matte(m.image, m.trimap, edges=e),
        mattestudio.matte(m.image, m.trimap, edges=e.to_dict()),
        mattestudio.matte(m.image, m.trimap, feather=2, shift_edge=1.5, decontaminate=0),
    ):
        np.testing.assert_allclose(result.alpha, expected, atol=1e-6)
        np.testing.assert_array_equal(result.foreground, m.image)  # decontaminate 0
    with pytest.raises(EdgeAdjustmentError, match="feather cannot be negative"):
        mattestudio.matte(m.image, m.trimap, feather=-1)
