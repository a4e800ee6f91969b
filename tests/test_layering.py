"""The architecture stays as drawn: a Qt-free, torch-free core, and light imports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("PySide6", "pyqtgraph", "torch", "pymatting", "distributed")


def _lint_imports() -> list[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
        "lint-imports"
    )
    if exe is None:
        pytest.fail(
            "lint-imports (import-linter) is not installed; install the dev extra: pip install -e .[dev]"
        )
    return [exe]


def test_import_linter_contracts_hold():
    proc = subprocess.run(
        _lint_imports() + ["--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "broken" not in proc.stdout.lower().replace("0 broken", "")
    # The three contracts of pyproject.toml were all checked.
    assert "3 kept" in proc.stdout or proc.stdout.count("KEPT") >= 3, proc.stdout


def _modules_after(statement: str) -> dict[str, bool]:
    code = (
        "import sys, json\n"
        f"{statement}\n"
        f"print(json.dumps({{m: m in sys.modules for m in {list(HEAVY)!r}}}))\n"
    )
    env = dict(os.environ)
    env.pop("PYTHONSTARTUP", None)
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "statement",
    [
        "import mattestudio",
        "import mattestudio.api",
        "import mattestudio.engines.registry",
        "from mattestudio.engines import registry; registry.names(); registry.info('closed-form')",
        # What `mattestudio engines` does: ask every engine whether it can run.
        "from mattestudio.engines import registry; [registry.unavailable_reason(n) for n in registry.names()]",
        "import mattestudio.pipeline",
        "import mattestudio.core.io, mattestudio.core.trimap, mattestudio.core.compositing, mattestudio.core.metrics",
    ],
)
def test_light_imports(statement):
    loaded = _modules_after(statement)
    heavy = [m for m, present in loaded.items() if present]
    assert not heavy, f"{statement!r} imported {heavy}"


def test_the_check_can_see_heavy_imports():
    """The subprocess probe itself works: a module put in sys.modules shows up."""
    loaded = _modules_after("import sys, types; sys.modules['torch'] = types.ModuleType('torch')")
    assert loaded["torch"] is True and loaded["pymatting"] is False
