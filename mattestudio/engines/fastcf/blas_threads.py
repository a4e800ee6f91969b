"""Run our BLAS/LAPACK calls single-threaded.

The fronts of the factorization are mid-sized (a few hundred to a few thousand rows). On the
2-core target, OpenBLAS's threads spin against each other and against the editor's other process
on such sizes: measured 10x slower than one thread when the machine is busy. scipy's OpenBLAS is
asked for one thread for the calling thread only (openblas_set_num_threads_local) when it has that
entry point, else process-wide and restored afterwards; without OpenBLAS this does nothing.
"""

from __future__ import annotations

import ctypes
import glob
import os
from contextlib import contextmanager
from functools import lru_cache


@lru_cache(maxsize=1)
def _openblas():
    try:
        import scipy.linalg

        libs = os.path.join(
            os.path.dirname(os.path.dirname(scipy.linalg.__file__)), os.pardir, "scipy.libs"
        )
        for path in glob.glob(os.path.join(os.path.normpath(libs), "libscipy_openblas*.so*")):
            return ctypes.CDLL(path)
    except OSError:
        pass
    return None


@contextmanager
def single_threaded():
    lib = _openblas()
    local = getattr(lib, "openblas_set_num_threads_local", None) if lib is not None else None
    if local is not None:
        local.restype = ctypes.c_int
        previous = local(1)
        try:
            yield
        finally:
            local(previous)
        return
    get = getattr(lib, "scipy_openblas_get_num_threads", None) if lib is not None else None
    put = getattr(lib, "scipy_openblas_set_num_threads", None) if lib is not None else None
    if get is None or put is None:
        yield
        return
    previous = get()
    put(1)
    try:
        yield
    finally:
        put(previous)


def set_local_threads(n: int) -> int:
    """Threads for the calling thread's BLAS calls; returns the previous count (0 if unsupported)."""
    lib = _openblas()
    local = getattr(lib, "openblas_set_num_threads_local", None) if lib is not None else None
    if local is None:
        return 0
    local.restype = ctypes.c_int
    return local(n)
