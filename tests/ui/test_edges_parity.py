"""Editor vs headless: a project saved with edge adjustments renders the same from the CLI."""

from __future__ import annotations

import numpy as np

from mattestudio.cli.main import main
from mattestudio.core import io, project
from mattestudio.core.edges import EdgeAdjustments


def test_project_with_adjustments_renders_headless_like_the_editor_exports(
    window, qtbot, idle, tmp_path, capsys
):
    doc = window.document
    window.run()
    idle(window)
    qtbot.waitUntil(lambda: doc.result is not None and doc.result.scale == 1.0, timeout=30000)
    edges = EdgeAdjustments(smooth=1, feather=1.5, contrast=30, shift_edge=-1.25, decontaminate=0.5)
    doc.set_edges(edges)
    gui = tmp_path / "gui"
    gui.mkdir()
    assert window.files.export("alpha8", str(gui / "a.png")) and window.files.wait_writes()
    assert window.files.export("cutout", str(gui / "c.png")) and window.files.wait_writes()
    assert window.files.save_project(str(tmp_path / "shot.mattestudio"))
    # The project keeps the engine's alpha and the adjustments apart (non-destructive).
    state = project.load_project(tmp_path / "shot.mattestudio")
    assert project.edge_adjustments(state) == edges
    assert np.abs(state.alpha - doc.alpha()).max() < 1e-4

    shot = str(tmp_path / "shot.mattestudio")
    code = main(["matte", shot, "-q", "-a", str(tmp_path / "a.png"), "-c", str(tmp_path / "c.png")])
    assert code == 0, capsys.readouterr().err
    cli_a, gui_a = io.read_image_array(tmp_path / "a.png"), io.read_image_array(gui / "a.png")
    cli_c, gui_c = io.read_image_array(tmp_path / "c.png"), io.read_image_array(gui / "c.png")
    # Same engine, same trimap, same adjustments: equal up to 8-bit rounding of float noise.
    assert np.abs(cli_a.astype(int) - gui_a).max() <= 1
    assert np.abs(cli_c.astype(int) - gui_c).max() <= 1
    assert np.mean(cli_c != gui_c) < 0.01
    # And the adjustments are really in both (the engine's own alpha differs).
    plain = io.to_uint(doc.alpha(), 8)
    assert np.abs(gui_a.astype(int) - plain).max() > 50
