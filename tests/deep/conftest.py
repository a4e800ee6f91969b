import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import helpers

pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def models_dir(tmp_path, monkeypatch):
    d = tmp_path / "models"
    monkeypatch.setenv("MATTESTUDIO_MODELS", str(d))
    from mattestudio.engines.deep.inference import clear_cache

    clear_cache()
    yield d
    clear_cache()


@pytest.fixture(scope="session")
def published(tmp_path_factory):
    """kind -> a file laid out like the published checkpoint (random values), written once per session."""
    root = tmp_path_factory.mktemp("published")
    made = {}

    def get(kind):
        if kind not in made:
            made[kind] = helpers.write_published(kind, root / f"{kind}.pth")
        return made[kind]

    return get


def scene(h=64, w=64, seed=0):
    """A smooth image and a disc trimap with an unknown ring."""
    yy, xx = np.mgrid[:h, :w]
    img = np.stack(
        [np.sin(xx / 9.0) * 0.4 + 0.5, np.cos(yy / 13.0) * 0.4 + 0.5, ((xx + yy) % 32) / 32.0], 2
    )
    r = np.hypot(yy - h / 2, xx - w / 2)
    tri = np.zeros((h, w), np.uint8)
    rad = min(h, w) / 4
    tri[r < rad] = 255
    tri[(r >= rad - 5) & (r < rad + 5)] = 128
    return img.astype(np.float32), tri
