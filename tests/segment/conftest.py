"""A tiny random SAM 2 folder (save_pretrained), made once per session; an empty models dir."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def sam2_dir(tmp_path_factory):
    from mattestudio.engines.segment.random_sam2 import write_folder

    return write_folder(tmp_path_factory.mktemp("sam2") / "sam2-tiny-random")


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    d = tmp_path / "models"
    monkeypatch.setenv("MATTESTUDIO_MODELS", str(d))
    return d
