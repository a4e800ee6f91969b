"""Give freed heap memory back to the system (glibc's malloc_trim; a no-op elsewhere).

Whole-image work done a strip at a time on pool threads frees many 4-50 MB blocks; glibc keeps
them in the threads' arenas (its mmap threshold grows with the blocks freed), which left the
editor ~100 MB larger after every full preview at 12 MP. Trimming after such a job returns them.
"""

from __future__ import annotations

import ctypes
import functools

#: Below this many pixels the temporaries are small: no trim (malloc_trim holds the allocator's
#: locks while it walks the heap, which other threads, the GUI's included, would wait for).
MIN_PIXELS = 4_000_000


@functools.cache
def _trim():
    try:
        # The symbols already loaded into the process: no library search (find_library runs a
        # subprocess, which a thread of a big Qt process should not fork for).
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc
        return None


def release_free_memory(pixels: int) -> None:
    """After whole-image work on ``pixels`` pixels; does nothing for small images."""
    if pixels < MIN_PIXELS:
        return
    trim = _trim()
    if trim is not None:
        trim(0)
