"""Describe the machine a benchmark ran on (CPU, cores, memory, library versions)."""

from __future__ import annotations

import importlib
import os
import platform
from pathlib import Path

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def cpu_flags() -> list[str]:
    text = _cpuinfo()
    return [f for f in CPU_FLAGS if f" {f}" in text]


def memory_gib() -> str:
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        return f"{kb / 1024**2:.1f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def versions(*packages: str) -> dict[str, str]:
    out = {}
    for name in packages:
        try:
            out[name] = str(importlib.import_module(name).__version__)
        except Exception:
            out[name] = "not installed"
    return out


def describe(*packages: str) -> dict:
    """A dict for JSON reports: CPU, flags, cores, memory, OS, Python and the given packages' versions."""
    return {
        "cpu": cpu_model(),
        "flags": cpu_flags(),
        "nproc": cores(),
        "memory": memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **versions(*packages),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def summary(*packages: str) -> str:
    """One line for a Markdown report."""
    d = describe(*packages)
    libs = ", ".join(f"{k} {d[k]}" for k in packages)
    flags = f" ({', '.join(d['flags'])})" if d["flags"] else ""
    return (
        f"{d['cpu']}{flags}, {d['nproc']} cores, {d['memory']}, {d['os']}, Python {d['python']}"
        + (f", {libs}" if libs else "")
    )
