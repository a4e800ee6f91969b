"""core.heap: glibc's malloc settings are applied once per process by information-flow's prepare(), and
``MATTESTUDIO_MALLOC=default`` leaves them alone."""

import os
import subprocess
import sys

import pytest

CODE = """
import numpy as np
from mattestudio.core import heap
from mattestudio.engines import registry
assert not heap._done  # importing applies nothing
engine = registry.create("closed-form")
engine.prepare(np.zeros((4, 4, 3), np.float32))
assert not heap._done  # closed-form leaves malloc alone
engine = registry.create("information-flow")
engine.prepare(np.zeros((4, 4, 3), np.float32))
print(heap._done, heap.keep_freed_blocks())
"""


def _run(env_extra: dict) -> str:
    env = dict(os.environ, **env_extra)
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_prepare_applies_the_settings_once():
    assert _run({"MATTESTUDIO_MALLOC": ""}) == "True True"


def test_opt_out_leaves_malloc_alone():
    assert _run({"MATTESTUDIO_MALLOC": "default"}) == "False False"
