"""The README's install commands are the ones CI runs, and the README is honest about torch."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_install_command() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Install and run", 1)[1].split("\n## ", 1)[0]
    first_block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    pip = [part.strip() for part in first_block.split("&&") if " install " in part]
    assert len(pip) == 1, first_block
    return shlex.split(pip[0])


def test_ci_installs_exactly_as_the_readme_says():
    command = _readme_install_command()
    assert command[0] == ".venv/bin/pip" and command[1] == "install"
    lines = (ROOT / ".ci/run").read_text().splitlines()
    installs = [shlex.split(ln) for ln in lines if ln.startswith(".venv/bin/pip install")]
    assert len(installs) == 1
    assert [a for a in installs[0] if a != "-q"] == command


def test_ci_runs_lint_format_types_and_tests():
    ci = (ROOT / ".ci/run").read_text()
    for step in (
        ".venv/bin/ruff check .",
        ".venv/bin/ruff format --check .",
        ".venv/bin/mypy",
        ".venv/bin/python -m pytest",
    ):
        assert f"\n{step}" in ci, step


def test_readme_tells_what_torch_really_installs():
    section = (ROOT / "README.md").read_text().split("## Install and run", 1)[1]
    section = section.split("\n## ", 1)[0]
    # what plain PyPI gives on Linux x86_64
    assert "CUDA build" in section and "19\n  nvidia/cuda/triton packages" in section
    cpu = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
    assert cpu in section  # the CPU-only route
    pinned = re.search(r"torch==([\d.]+)", " ".join(_readme_install_command())).group(1)
    assert f"torch=={pinned} --index-url" in section  # the same version on both routes
