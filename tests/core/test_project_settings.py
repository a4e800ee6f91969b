"""ProjectSettings: the typed form of a project's settings.json, read by the editor and the CLI."""

import numpy as np

from mattestudio.core import project
from mattestudio.core.project import ProjectSettings, ProjectState


def test_round_trip_and_tolerant_reading(tmp_path):
    s = ProjectSettings(
        engine="knn",
        params={"n_neighbors": "10,5"},
        background=[1.0, 0.5, 0.0],
        brush_size=12.5,
        band=8,
        view="alpha",
        result_seconds=0.25,
        result_current=False,
    )
    assert ProjectSettings.from_dict(s.to_dict()) == s
    assert "result_seconds" not in ProjectSettings().to_dict()
    bad = ProjectSettings.from_dict(
        {
            "engine": 3,
            "params": "x",
            "background": [1, 2],
            "brush_size": "big",
            "band": -1,
            "view": "nope",
            "extra": 1,
        }
    )
    assert bad == ProjectSettings(engine="3")
    assert ProjectSettings.from_dict(None) == ProjectSettings()


def test_saved_in_a_project_and_read_back(tmp_path):
    img = np.zeros((8, 8, 3), np.float32)
    tri = np.full((8, 8), 128, np.uint8)
    path = tmp_path / "a.mattestudio"
    project.save_project(
        path, ProjectState(img, tri, settings=ProjectSettings(engine="knn", band=4).to_dict())
    )
    back = ProjectSettings.from_dict(project.load_project(path).settings)
    assert back.engine == "knn" and back.band == 4
