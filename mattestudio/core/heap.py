"""glibc's malloc tuned for whole-image work: freed blocks stay in the process for the next one.

A matting call allocates and frees many 1-30 MB arrays (features, neighbour tables, sparse
matrices, vectors). With glibc's defaults the heap's free top is returned to the kernel once it
passes 2x the mmap threshold, and taken back on the next call, where the kernel zeroes every page
again: on alphamatting-dev this was 2.9-3.0 s of system time in 14 information-flow calls (about
12 % of their CPU), 1.1-1.4 s with the settings below (docs/benchmarks.md, "Speed, fifth round").
Blocks over 32 MB (glibc's largest mmap threshold; camera-size photos' planes) are still mapped
and unmapped as before, and at most 256 MB of free heap top is kept.

Applied by the information-flow engine only (``InformationFlowEngine.prepare``): closed-form
showed no gain, and in the editor at 12 MP the larger kept heap raised the peak.

Linux with glibc only; elsewhere, and with ``MATTESTUDIO_MALLOC=default`` in the environment,
nothing changes. ``malloc_trim`` (the editor's ``ui.free_memory``) still returns memory on demand.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 2**20  # glibc's maximum for it on 64-bit systems
TRIM_THRESHOLD = 256 * 2**20
TOP_PAD = 32 * 2**20

_done = False


def keep_freed_blocks() -> bool:
    """Apply the settings once per process; True if they are in force."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("MATTESTUDIO_MALLOC") == "default":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # already in the process: no library search
    except (OSError, AttributeError, TypeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # Each call returns 1 on success. The three go together: setting any of them turns off
    # glibc's dynamic mmap threshold, which alone would map every block over 128 KB afresh.
    ok = all(
        mallopt(param, value) == 1
        for param, value in (
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (_M_TOP_PAD, TOP_PAD),
        )
    )
    _done = ok
    return ok
