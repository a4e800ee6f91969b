"""The information-flow energy as one SPD system on the variable pixels, and its solver.

E(alpha) = sum_p (alpha_p - sum_q w_pq alpha_q)^2                  colour mixture
         + s_KU sum_p eta_p (alpha_p - w^F_p)^2                    known to unknown
         + s_UU sum_pq w^U_pq (alpha_p - alpha_q)^2 / 2            intra unknown
         + s_L alpha^T L alpha                                      local (matting Laplacian)

with the known pixels as hard constraints (the paper's lambda -> infinity): their values, and those
of unknown pixels outside a box being re-solved, move to the right-hand side. The Hessian on the
variables, A = D_V^T D_V + s_L L_VV + s_UU (Deg - W^U)_VV + s_KU diag(eta), is symmetric positive
semidefinite term by term and definite as soon as a variable is tied to a fixed pixel.

The colour-mixture term is non-local (K neighbours anywhere in colour and position), so the
system is solved by conjugate gradients, preconditioned with ``fastcf``'s exact sparse Cholesky of
the local part (the matting Laplacian, which makes the system ill-conditioned, plus the diagonal of
the non-local terms).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import scipy.sparse

from mattestudio.engines.infoflow.flows import Flows

PARALLEL_MATVEC = 20000  # variables from which a product is split across two threads


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix="infoflow-matvec")


@dataclass
class Weights:
    mix: float = 1.0
    ku: float = 0.05
    uu: float = 0.01
    local: float = 1.0


@dataclass
class System:
    """A x = b on the variables (row-major order, ``coords``), with A given as parts."""

    local: scipy.sparse.csr_matrix  # s_L L_VV (geometrically local)
    mix: scipy.sparse.csr_matrix  # D_V (rows: mixture residuals touching a variable)
    intra: scipy.sparse.csr_matrix  # s_UU (Deg - W^U)_VV
    diag: np.ndarray  # s_KU eta_V
    rhs: np.ndarray
    coords: np.ndarray
    mix_weight: float
    _mix_t: scipy.sparse.csr_matrix | None = field(default=None, init=False, repr=False)

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """A x."""
        x = np.ascontiguousarray(x, np.float64)
        return self._apply(x, self.diag * x, True)

    def nonlocal_matvec(self, x: np.ndarray, base: np.ndarray) -> np.ndarray:
        """base + (s_M D^T D + s_UU (Deg - W)) x: A x without the local part, for a caller that
        has the local part's product already (``Solver``)."""
        x = np.ascontiguousarray(x, np.float64)
        return self._apply(x, np.array(base, np.float64), False)

    def _apply(self, x: np.ndarray, out: np.ndarray, local: bool) -> np.ndarray:
        """out += the product, with numba kernels (``kernels``): y = s_M D x, then row by row
        D^T y + W x (+ L x); each pass on two threads with half of the rows each from
        PARALLEL_MATVEC variables (the threads write disjoint rows)."""
        from mattestudio.engines.infoflow import kernels

        d, dt = self.mix, self.mix_transpose()
        n, m = len(x), d.shape[0]
        y = np.empty(m)
        two = n >= PARALLEL_MATVEC and (os.cpu_count() or 1) > 1

        def rows_y(r0: int, r1: int) -> None:
            kernels.csr_rows(d.indptr, d.indices, d.data, self.mix_weight, x, y, r0, r1)

        def rows_out(r0: int, r1: int) -> None:
            if m:
                kernels.csr_product(dt.indptr, dt.indices, dt.data, y, out, r0, r1)
            for a in (self.local, self.intra) if local else (self.intra,):
                if a.nnz:
                    kernels.csr_product(a.indptr, a.indices, a.data, x, out, r0, r1)

        if two:
            job = _pool().submit(rows_y, m // 2, m)
            rows_y(0, m // 2)
            job.result()
            job = _pool().submit(rows_out, n // 2, n)
            rows_out(0, n // 2)
            job.result()
        else:
            rows_y(0, m)
            rows_out(0, n)
        return out

    def mix_transpose(self) -> scipy.sparse.csr_matrix:
        """D_V^T as CSR, made on first use (one counting pass over D)."""
        if self._mix_t is None:
            from mattestudio.engines.infoflow import kernels

            d = self.mix
            self._mix_t = scipy.sparse.csr_matrix(
                kernels.transpose(d.indptr, d.indices, d.data, d.shape[1])[::-1],
                shape=(d.shape[1], d.shape[0]),
            )
        return self._mix_t

    def dense(self) -> np.ndarray:
        """The whole matrix (for tests on small problems)."""
        m = self.local + self.intra + scipy.sparse.diags(self.diag)
        m = m + self.mix_weight * (self.mix.T @ self.mix)
        return m.toarray()

    def local_part(self) -> LocalPart:
        return LocalPart(self.local, self.rhs, self.diag, self.coords)


@dataclass
class LocalPart:
    """The geometrically local part of the system: all the preconditioner needs, and available
    before the non-local flows (only the known-to-unknown confidences enter it)."""

    matrix: scipy.sparse.csr_matrix  # s_L L_VV
    rhs: np.ndarray  # s_L times the Laplacian's right-hand side
    diag: np.ndarray  # s_KU eta_V
    coords: np.ndarray

    def preconditioner_matrix(self) -> scipy.sparse.csr_matrix:
        # Only the local part: the non-local terms are graph-Laplacian-like (they vanish on smooth
        # alpha), so adding even their diagonal made the preconditioner far too stiff on smooth
        # errors (measured: 60 vs 20 iterations to a 1e-3 residual on GT09).
        return (self.matrix + scipy.sparse.diags(self.diag)).tocsr()


def local_part(
    stats,
    image64: np.ndarray,
    variables: np.ndarray,
    fixed: np.ndarray,
    weights: Weights,
    ku_confidence: np.ndarray,
) -> LocalPart:
    from mattestudio.engines.fastcf.laplacian import assemble

    return local_with_confidence(
        assemble(stats, image64, variables, fixed), variables, weights, ku_confidence
    )


def local_with_confidence(lap, variables: np.ndarray, weights: Weights, ku_confidence: np.ndarray):
    """``local_part`` from the Laplacian's system already assembled (``fastcf.laplacian.assemble``
    on the same variables): the assembly needs no flow, so it can start before them."""
    flat_v = np.flatnonzero(variables.ravel())
    return LocalPart(
        (weights.local * lap.matrix).tocsr(),
        weights.local * lap.rhs,
        weights.ku * ku_confidence[flat_v],
        lap.coords,
    )


def build(
    flows: Flows,
    stats,
    image64: np.ndarray,
    variables: np.ndarray,
    fixed: np.ndarray,
    weights: Weights,
    local: LocalPart | None = None,
) -> System:
    """The system for the pixels where ``variables`` (H x W bool) holds; ``fixed`` (H x W float)
    gives every other pixel's alpha. ``local``: that part already made by ``local_part``."""
    if local is None:
        local = local_part(stats, image64, variables, fixed, weights, flows.ku_confidence)
    flat_v = np.flatnonzero(variables.ravel())
    f = np.ascontiguousarray(fixed, np.float64).ravel().copy()
    f[flat_v] = 0.0
    rhs = local.rhs.copy()

    column = np.full(f.size, -1, np.int64)  # pixel -> variable index, -1 if fixed
    column[flat_v] = np.arange(len(flat_v))

    # Colour mixture: residual rows r = D alpha = D_V x + D f; keep rows that touch a variable.
    mix_cols = _variable_columns(flows.mix, column, len(flat_v))
    touched = np.diff(mix_cols.indptr) > 0
    mix_v = mix_cols[touched]
    if mix_v.shape[0]:
        rhs -= weights.mix * (mix_v.T @ (flows.mix @ f)[touched])

    # Intra-unknown graph Laplacian: degrees count edges to fixed pixels too.
    w_rows = flows.intra[flat_v]
    deg = np.asarray(w_rows.sum(axis=1)).ravel()
    w_vv = _variable_columns(w_rows, column, len(flat_v))
    # s_UU (Deg - W): W has no diagonal (no pixel is its own neighbour), so scaling W's entries in
    # place and adding s_UU Deg gives the same numbers without two more copies of the matrix.
    w_vv.data *= -weights.uu
    intra = (w_vv + scipy.sparse.diags(weights.uu * deg)).tocsr()
    rhs += weights.uu * (w_rows @ f)

    rhs += local.diag * flows.ku_target[flat_v]
    return System(local.matrix, mix_v, intra, local.diag, rhs, local.coords, weights.mix)


def _variable_columns(m: scipy.sparse.csr_matrix, column: np.ndarray, n_var: int):
    """The columns of ``m`` (over pixels) that are variables, renumbered as variables: a filter of
    the CSR entries, cheaper than slicing columns (which converts to CSC and back)."""
    from mattestudio.engines.infoflow import kernels

    indptr, indices, data = kernels.variable_columns(m.indptr, m.indices, m.data, column)
    return scipy.sparse.csr_matrix((data, indices, indptr), shape=(m.shape[0], n_var))


def preconditioner(part: LocalPart, radius: int, check: Callable[[float], None] | None = None):
    """Exact sparse Cholesky of the local part, applied as float32 on two threads: it is applied
    about 20 times per solve and its triangular solves are memory-bound (docs/benchmarks.md)."""
    from mattestudio.engines.fastcf import direct
    from mattestudio.engines.fastcf.tree_solve import TreeSolver

    factor = direct.factorize(
        part.preconditioner_matrix(), part.coords, sep=2 * radius, check=check
    )
    return TreeSolver(factor, dtype=np.float32)


class Solver:
    """Preconditioned conjugate gradients; the preconditioner is an exact Cholesky of the local part.

    The local part's product is not computed: with M the preconditioner's matrix (the local part,
    ``LocalPart.preconditioner_matrix``) and z = M^-1 r, the new direction p = z + beta p has
    M p = r + beta (M p), a vector update, so A p = M p + the non-local terms' product. It equals
    the explicit product up to the float32 factor's rounding (M z = r to about 2e-6 relative on
    GT13), which shifts the solution by about 1e-7 relative; below EXACT_BELOW times the starting
    residual the solver replaces the recurrence's residual by b - A x once and continues with
    explicit products, so that tight tolerances are reached in the true residual."""

    EXACT_BELOW = 1e-4

    def __init__(
        self,
        system: System,
        radius: int,
        check: Callable[[float], None] | None = None,
        factor=None,
    ):
        """``factor``: the preconditioner already made by ``preconditioner`` from this system's
        local part (else made here)."""
        self.system = system
        if factor is None:
            factor = preconditioner(system.local_part(), radius, check)
        self.factor = factor
        self.iterations = 0
        self.explicit_from = -1  # iteration from which products were explicit (-1: never)

    def solve(
        self,
        x0: np.ndarray | None = None,
        *,
        rtol: float = 1e-6,
        max_iter: int = 500,
        check: Callable[[float], None] | None = None,
        from_start: bool = False,
    ) -> np.ndarray:
        """``from_start``: stop at ``rtol`` times the starting residual rather than the right-hand
        side's norm (a re-solve started from an almost-right alpha: the change is what matters)."""
        from mattestudio.engines.infoflow import kernels

        sysm = self.system
        b = sysm.rhs
        bnorm = float(np.sqrt(kernels.dot(b, b))) or 1.0
        if x0 is None:
            # The local part's solution, clipped to alpha's range: about 2 iterations fewer than
            # the unclipped one at rtol 1e-2 on the dataset, with a smaller error.
            x = np.clip(self.factor.solve(b), 0.0, 1.0)
        else:
            x = np.array(x0, np.float64)
        r = b - sysm.matvec(x)
        z = self.factor.solve(r)
        p = z.copy()
        mp = r.copy()  # M p
        rz = float(kernels.dot(r, z))
        rr = float(kernels.dot(r, r))
        start = float(np.sqrt(rr))
        if from_start:
            bnorm = start or 1.0
        recurrence = True
        self.explicit_from = -1
        for it in range(max_iter):
            rn = float(np.sqrt(rr))
            if recurrence and rn < self.EXACT_BELOW * start:
                recurrence = False
                self.explicit_from = it
                r = b - sysm.matvec(x)
                rr = float(kernels.dot(r, r))
                rn = float(np.sqrt(rr))
            if rn <= rtol * bnorm:
                break
            if check is not None:
                # progress on a log scale from the start residual to the target
                goal = np.log(max(rtol * bnorm, 1e-300))
                frac = (np.log(max(start, 1e-300)) - np.log(max(rn, 1e-300))) / max(
                    np.log(max(start, 1e-300)) - goal, 1e-12
                )
                check(float(frac))
            ap = sysm.nonlocal_matvec(p, mp) if recurrence else sysm.matvec(p)
            alpha = rz / float(kernels.dot(p, ap))
            rr = float(kernels.step(x, r, p, ap, alpha))
            z = self.factor.solve(r)
            rz_new = float(kernels.dot(r, z))
            kernels.new_directions(p, z, mp, r, rz_new / rz)
            rz = rz_new
            self.iterations = it + 1
        return x
