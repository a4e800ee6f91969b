"""Fast closed-form matting: the project's own solver for Levin et al.'s matting Laplacian.

Modules: ``laplacian`` (the system on the unknown pixels), ``ordering`` (nested dissection and its
symbolic analysis), ``direct`` (multifrontal sparse Cholesky), ``blas_threads`` (BLAS thread
control), ``regional`` (whole-image and box solves), ``engine`` (the editor-facing session).
Importing this package compiles nothing; numba kernels compile (or load from cache) on first use.
"""
