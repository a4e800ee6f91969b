"""Editor > Import checkpoint...: runs off the GUI thread, makes the engine available, reports bad files."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deep"))

import helpers


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    d = tmp_path / "models"
    monkeypatch.setenv("MATTESTUDIO_MODELS", str(d))
    return d


def _import(qtbot, window, monkeypatch, path):
    import mattestudio.ui.main_window as mw

    monkeypatch.setattr(mw, "choose_checkpoint", lambda parent, engine: str(path))
    window.import_checkpoint("dim")


def test_import_checkpoint_makes_dim_available(
    qtbot, window, monkeypatch, models_dir, tmp_path, dialogs
):
    assert window.engine_panel.reasons.get("dim") is not None  # no weights yet
    ckpt = helpers.write_published("huo-stage1", tmp_path / "stage1_skip_sad_52.9.pth")
    _import(qtbot, window, monkeypatch, ckpt)
    qtbot.waitUntil(lambda: window.engine_panel.reasons.get("dim") is None, timeout=60000)
    assert any(p.suffix == ".safetensors" for p in models_dir.iterdir())
    assert dialogs.kinds() == []


def test_import_corrupt_checkpoint_shows_reason(
    qtbot, window, monkeypatch, models_dir, tmp_path, dialogs
):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    _import(qtbot, window, monkeypatch, bad)
    qtbot.waitUntil(lambda: dialogs.kinds() == ["warning"], timeout=60000)
    assert "broken.pth" in dialogs.texts()
    assert window.engine_panel.reasons.get("dim") is not None
    assert not models_dir.exists() or list(models_dir.iterdir()) == []
