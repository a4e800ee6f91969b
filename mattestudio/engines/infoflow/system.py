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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse

from mattestudio.engines.infoflow.flows import Flows


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

    def __post_init__(self) -> None:
        self._mix_t = self.mix.T.tocsr()  # row-major transpose: a faster product than a CSC view
        self._local_intra = (self.local + self.intra).tocsr()

    def matvec(self, x: np.ndarray) -> np.ndarray:
        out = self._local_intra @ x + self.diag * x
        if self.mix.shape[0]:
            out += self.mix_weight * (self._mix_t @ (self.mix @ x))
        return out

    def dense(self) -> np.ndarray:
        """The whole matrix (for tests on small problems)."""
        m = self.local + self.intra + scipy.sparse.diags(self.diag)
        m = m + self.mix_weight * (self.mix.T @ self.mix)
        return m.toarray()

    def preconditioner_matrix(self) -> scipy.sparse.csr_matrix:
        # Only the local part: the non-local terms are graph-Laplacian-like (they vanish on smooth
        # alpha), so adding even their diagonal made the preconditioner far too stiff on smooth
        # errors (measured: 60 vs 20 iterations to a 1e-3 residual on GT09).
        return (self.local + scipy.sparse.diags(self.diag)).tocsr()


def build(
    flows: Flows,
    stats,
    image64: np.ndarray,
    variables: np.ndarray,
    fixed: np.ndarray,
    weights: Weights,
) -> System:
    """The system for the pixels where ``variables`` (H x W bool) holds; ``fixed`` (H x W float)
    gives every other pixel's alpha."""
    from mattestudio.engines.fastcf.laplacian import assemble

    flat_v = np.flatnonzero(variables.ravel())
    f = np.ascontiguousarray(fixed, np.float64).ravel().copy()
    f[flat_v] = 0.0
    lap = assemble(stats, image64, variables, fixed)
    local = (weights.local * lap.matrix).tocsr()
    rhs = weights.local * lap.rhs

    # Colour mixture: residual rows r = D alpha = D_V x + D f; keep rows that touch a variable.
    mix_cols = flows.mix.tocsc()[:, flat_v].tocsr()
    touched = np.diff(mix_cols.indptr) > 0
    mix_v = mix_cols[touched]
    if mix_v.shape[0]:
        rhs -= weights.mix * (mix_v.T @ (flows.mix[touched] @ f))

    # Intra-unknown graph Laplacian: degrees count edges to fixed pixels too.
    w_rows = flows.intra[flat_v]
    deg = np.asarray(w_rows.sum(axis=1)).ravel()
    w_vv = w_rows.tocsc()[:, flat_v].tocsr()
    intra = weights.uu * (scipy.sparse.diags(deg) - w_vv).tocsr()
    rhs += weights.uu * (w_rows @ f)

    diag = weights.ku * flows.ku_confidence[flat_v]
    rhs += diag * flows.ku_target[flat_v]
    return System(local, mix_v, intra, diag, rhs, lap.coords, weights.mix)


class Solver:
    """Preconditioned conjugate gradients; the preconditioner is an exact Cholesky of the local part."""

    def __init__(self, system: System, radius: int, check: Callable[[float], None] | None = None):
        from mattestudio.engines.fastcf import direct

        self.system = system
        self.factor = direct.factorize(
            system.preconditioner_matrix(), system.coords, sep=2 * radius, check=check
        )
        self.iterations = 0

    def solve(
        self,
        x0: np.ndarray | None = None,
        *,
        rtol: float = 1e-6,
        max_iter: int = 500,
        check: Callable[[float], None] | None = None,
    ) -> np.ndarray:
        sysm = self.system
        b = sysm.rhs
        bnorm = float(np.linalg.norm(b)) or 1.0
        x = self.factor.solve(b) if x0 is None else np.array(x0, np.float64)
        r = b - sysm.matvec(x)
        z = self.factor.solve(r)
        p = z.copy()
        rz = float(r @ z)
        start = float(np.linalg.norm(r))
        for it in range(max_iter):
            rn = float(np.sqrt(r @ r))
            if rn <= rtol * bnorm:
                break
            if check is not None:
                # progress on a log scale from the start residual to the target
                goal = np.log(max(rtol * bnorm, 1e-300))
                frac = (np.log(max(start, 1e-300)) - np.log(rn)) / max(
                    np.log(max(start, 1e-300)) - goal, 1e-12
                )
                check(float(frac))
            ap = sysm.matvec(p)
            alpha = rz / float(p @ ap)
            x += alpha * p
            r -= alpha * ap
            z = self.factor.solve(r)
            rz_new = float(r @ z)
            p = z + (rz_new / rz) * p
            rz = rz_new
            self.iterations = it + 1
        return x
