"""Information-flow matting (Aksoy, Aydin and Pollefeys, CVPR 2017) on the fast solver.

Session use, like the fast closed-form engine:

- ``prepare(image)`` keeps a float64 copy of the image.
- ``predict(trimap)`` builds the non-local flows for the trimap (nearest neighbours by
  pykdtree's kd-tree, ``flows.nearest``), then solves the system on the unknown pixels. The flows are kept (per image and
  parameters): after a local trimap change (a stroke) only the rows whose neighbour search can
  give a different answer are rebuilt (``flows.update``), and only a box around the change is
  re-solved, grown until alpha stops moving at the box's edge.
- Cancel and progress are checked between the stages, inside the factorisation and between
  conjugate-gradient iterations; a cancelled call changes nothing.

Foreground colours: the flows only give a per-pixel average of nearby foreground samples, which
is not a decontaminated colour, so the engine returns None and the pipeline uses the multilevel
estimator like every other alpha-only engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mattestudio.engines.base import EngineBase, EngineInfo, Param
from mattestudio.errors import Cancelled
from mattestudio.types import FOREGROUND, UNKNOWN, CancelToken, ProgressFn

if TYPE_CHECKING:
    from mattestudio.engines.infoflow.flows import Flows

Box = tuple[int, int, int, int]


def _checker(
    progress: ProgressFn | None, cancel: CancelToken | None, lo: float, hi: float, label: str
):
    """check(fraction of a stage): raises Cancelled if asked to, reports progress in [lo, hi]."""

    def check(frac: float) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        if progress is not None:
            progress(lo + (hi - lo) * min(max(frac, 0.0), 1.0), label)

    return check


class _Background:
    """``fn(check, job)`` run on a thread. ``check`` raises Cancelled once the caller abandons the
    job or ``cancel`` is set; ``result()`` waits and returns or re-raises. The two threads hand
    each other intermediate values by name: ``put(name, value)`` and ``get(name, check)``."""

    def __init__(self, fn, cancel: CancelToken | None):
        import threading

        self._stop = threading.Event()
        self._out: dict = {}
        self._ready = threading.Condition()
        self._values: dict = {}

        def check(_frac: float) -> None:
            if self._stop.is_set():
                raise Cancelled()
            if cancel is not None:
                cancel.raise_if_cancelled()

        def run() -> None:
            try:
                self._out["value"] = fn(check, self)
            except BaseException as exc:  # handed to the caller by result()
                self._out["error"] = exc
            with self._ready:  # wake a get() waiting for a value that will not come
                self._ready.notify_all()

        self._thread = threading.Thread(target=run, name="infoflow-factor", daemon=True)
        self._thread.start()

    def put(self, name: str, value) -> None:
        with self._ready:
            self._values[name] = value
            self._ready.notify_all()

    def get(self, name: str, check):
        """The value put under ``name``, waiting for it; re-raises the thread's error if it ended
        without putting it. ``check()`` is called while waiting (cancel)."""
        with self._ready:
            while name not in self._values:
                if not self._thread.is_alive() or self._out:
                    if "error" in self._out:
                        raise self._out["error"]
                    raise RuntimeError(f"background job ended without {name!r}")
                check(0.0)
                self._ready.wait(0.01)
            return self._values[name]

    def result(self):
        self._thread.join()
        if "error" in self._out:
            raise self._out["error"]
        return self._out["value"]

    def abandon(self) -> None:
        self._stop.set()
        self._thread.join()


class InformationFlowEngine(EngineBase):
    info = EngineInfo(
        name="information-flow",
        display_name="Information flow",
        kind="classical",
        description="Aksoy et al. 2017: colour-mixture, known-to-unknown, intra-unknown and local "
        "flows in one sparse system, solved by conjugate gradients preconditioned with the "
        "fast closed-form engine's sparse Cholesky; re-solves only around a brush stroke.",
        params=(
            Param(
                "k_mix",
                15,
                "Neighbours per pixel of the colour-mixture flow (the paper's 20 scored the same "
                "on alphamatting-dev, with trimming, for more work).",
                "K colour mixture",
                3,
                60,
            ),
            Param(
                "k_ku",
                5,
                "Foreground and background neighbours each of the known-to-unknown flow (the "
                "paper's 7 scored the same on alphamatting-dev for more work).",
                "K known-to-unknown",
                1,
                30,
            ),
            Param(
                "k_uu",
                5,
                "Neighbours per pixel of the intra-unknown flow.",
                "K intra-unknown",
                1,
                30,
            ),
            Param(
                "w_ku",
                0.05,
                "Weight of the known-to-unknown flow (sigma_KU).",
                "Known-to-unknown weight",
                0.0,
                10.0,
            ),
            Param(
                "w_uu",
                0.01,
                "Weight of the intra-unknown flow (sigma_UU).",
                "Intra-unknown weight",
                0.0,
                10.0,
            ),
            Param(
                "w_local",
                1.0,
                "Weight of the local flow, the matting Laplacian (sigma_L).",
                "Local weight",
                0.0,
                10.0,
            ),
            Param(
                "epsilon",
                1e-7,
                "Regularisation of the matting Laplacian's local colour model.",
                "Smoothness (epsilon)",
                1e-10,
                1e-1,
            ),
            Param(
                "band",
                5,
                "Known pixels within this distance of the unknown region take part in the "
                "colour-mixture flow.",
                "Known band (px)",
                0,
                50,
            ),
            Param(
                "knn_eps",
                0.5,
                "Approximate nearest neighbours: each found neighbour is within (1 + this) of "
                "the true k-th distance (the kd-tree's eps; twice this for the colour-mixture "
                "search); 0 searches exactly. Faster searches, same dataset scores "
                "(docs/benchmarks.md).",
                "Neighbour search slack",
                0.0,
                4.0,
            ),
            Param(
                "mix_known_rows",
                True,
                "Also write colour-mixture equations for the known pixels of the band "
                "(not in the paper).",
                "Known-pixel mixtures",
            ),
            Param(
                "ku_fit",
                "colour",
                "Fit the known-to-unknown mixture weights to the neighbours' colours (colour) or, "
                "as the paper writes, to colour and position (colour+position).",
                "Known-to-unknown fit",
                choices=("colour", "colour+position"),
            ),
            Param(
                "trim_radius",
                5,
                "Trimap trimming: an unknown pixel within this distance of a known region, with "
                "that region's colour (within trim_tolerance) and unlike the other region's, is "
                "labelled before the solve (the extended paper trims too; this rule is ours). "
                "Fewer unknowns: faster, and better on alphamatting-dev. 0 turns it off.",
                "Trim radius (px)",
                0,
                20,
            ),
            Param(
                "trim_tolerance",
                0.025,
                "Trimap trimming: how close (RGB distance, 0-1) a known neighbour's colour must "
                "be; the other region's nearest colour must be four times farther.",
                "Trim colour tolerance",
                0.0,
                0.2,
            ),
            Param(
                "levels",
                0.02,
                "Alpha below this becomes 0 and above 1 - this becomes 1, linearly stretched in "
                "between (a Levels adjustment of the matte; not in the paper). 0 turns it off.",
                "Alpha levels",
                0.0,
                0.2,
            ),
            Param(
                "rtol",
                3e-3,
                "Relative residual at which conjugate gradients stop.",
                "Solver tolerance",
                1e-10,
                0.1,
            ),
            Param(
                "memory_gb",
                2.0,
                "Memory for the solver and the neighbour tables; larger problems (camera-size "
                "photos) are solved at the largest scale that fits, then refined at full "
                "resolution by the closed-form engine's tiles.",
                "Solver memory (GB)",
                0.05,
                64.0,
            ),
            Param(
                "fine_residual",
                0.02,
                "Past memory_gb: after the solve at reduced size, pixels where the matting "
                "energy's gradient |L alpha| exceeds this are re-solved at full resolution by "
                "the closed-form model; 0 re-solves every unknown pixel (closer to closed-form's "
                "matte, measured worse: docs/benchmarks.md).",
                "Full-resolution detail threshold",
                0.0,
                1.0,
            ),
            Param(
                "incremental",
                True,
                "After a local trimap change, re-solve only the region it can reach.",
                "Incremental re-solve",
            ),
            Param(
                "tolerance",
                2e-3,
                "Incremental re-solves grow until alpha moves less than this at the region's edge.",
                "Incremental tolerance",
                1e-6,
                0.1,
            ),
        ),
        progressive=True,
    )

    def prepare(self, image: np.ndarray) -> None:
        from mattestudio.core.heap import keep_freed_blocks

        # Once per process: this engine's many 1-30 MB temporaries reuse freed memory instead of
        # fresh pages the kernel zeroes (core/heap.py). Not for every engine: measured no gain
        # for closed-form, and a larger peak in the editor at 12 MP (docs/benchmarks.md).
        keep_freed_blocks()
        super().prepare(image)
        from mattestudio.engines.fastcf.laplacian import WindowStats

        self._image64: np.ndarray | None = np.ascontiguousarray(image, np.float64)
        self._stats: WindowStats | None = WindowStats.lazy(1, self.params["epsilon"])
        self._last: tuple[np.ndarray, np.ndarray] | None = None
        self._cache: tuple[np.ndarray, tuple, Flows] | None = None  # trimap, _flow_key(), flows
        self.last_mode = ""  # "full", "incremental", "unchanged": for benchmarks and tests
        self.iterations = 0
        self.solved = 0  # variables of the last solve (all unknown pixels, or an incremental box)
        self.last_solve: dict = {}  # a coarse-to-fine solve's scale and sizes: tests, benchmarks

    def reset(self) -> None:
        super().reset()
        self._image64 = None
        self._stats = None
        self._last = None
        self._cache = None

    def forget_previous(self) -> None:
        """Make the next predict() a full solve."""
        self._last = None

    def _weights(self):
        from mattestudio.engines.infoflow.system import Weights

        p = self.params
        return Weights(mix=1.0, ku=p["w_ku"], uu=p["w_uu"], local=p["w_local"])

    def predict(
        self,
        trimap: np.ndarray,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ):
        from mattestudio.engines.fastcf import regional

        given = self._check_trimap(trimap, cancel)
        trimap = self._trimmed(given)
        unknown = trimap == UNKNOWN
        fixed = (trimap == FOREGROUND).astype(np.float64)
        if not unknown.any():
            self.last_mode = "full"
            self._last = (trimap.copy(), fixed)
            return fixed.astype(np.float32), None
        if self._last is not None and self.params["incremental"]:
            before_tri, before = self._last
            if before_tri.shape == trimap.shape and not (before_tri != trimap).any():
                self.last_mode = "unchanged"
                return self._output(before, unknown), None
        if self._need_bytes(int(unknown.sum())) > self.params["memory_gb"] * 1e9:
            # Untrimmed: on the tests' scene trimming made this path's SAD 1.4x the whole solve's
            # instead of 1.2x (the coarse solve and the fine tiles see a thinner band).
            whole = self._coarse_to_fine(given, progress, cancel)
            self._last = (trimap.copy(), whole)
            if progress is not None:
                progress(1.0, "done")
            return self._output(whole, given == UNKNOWN), None
        alpha = None
        flows = None
        if self.params["incremental"] and self._last is not None:
            cache = self._cache
            # The old flows must be those of the previous trimap (the old residual is theirs).
            same = cache is not None and np.array_equal(cache[0], self._last[0])
            old_flows = cache[2] if same and cache is not None else None
            flows, moved = self._updated_flows(trimap, progress, cancel)
            alpha = self._incremental(flows, moved, old_flows, trimap, unknown, progress, cancel)
        if alpha is None:
            alpha = fixed
            h, w = trimap.shape
            values = self._full(trimap, unknown, fixed, flows, progress, cancel)
            regional.paste(alpha, values, (0, h, 0, w))
            self.last_mode = "full"
            self.solved = int(unknown.sum())
        self._last = (trimap.copy(), alpha)  # the solution itself: later strokes start from it
        if progress is not None:
            progress(1.0, "done")
        return self._output(alpha, unknown), None

    def _trimmed(self, trimap: np.ndarray) -> np.ndarray:
        """The trimap the flows see: trimmed (infoflow/trimming.py). Every later step, the
        incremental re-solve's comparison with the previous trimap included, works on it; a
        stroke changes the trimming only within ``trim_radius`` of itself."""
        from mattestudio.engines.infoflow.trimming import trim

        assert self._image64 is not None  # set with the image by prepare()
        p = self.params
        return trim(self._image64, trimap, int(p["trim_radius"]), float(p["trim_tolerance"]))

    def _need_bytes(self, n_unknown: int) -> float:
        """Memory of a solve on ``n_unknown`` pixels: the factor and the neighbour tables."""
        from mattestudio.engines.fastcf import regional

        p = self.params
        per_row = (p["k_mix"] + 1 + 2 * p["k_ku"] + 2 * p["k_uu"]) * 16.0  # index + weight
        return 1.5 * 8.0 * regional.factor_entries(n_unknown) + 2.0 * per_row * n_unknown

    def _coarse_to_fine(self, trimap, progress, cancel) -> np.ndarray:
        """Past ``memory_gb`` (camera-size photos): this engine's solve at the largest scale that
        fits, then the closed-form engine's fine half of a coarse-to-fine Run (edge-aware
        upsampling, exact full-resolution re-solves in tiles where the matting Laplacian's
        residual is high; ``FastClosedFormEngine.refine_coarse``). The non-local flows act at
        the coarse scale, the local model sharpens the edges at full resolution."""
        from mattestudio.core.trimap import downscaled
        from mattestudio.engines.fastcf.engine import FastClosedFormEngine
        from mattestudio.progress import scaled

        assert self._image64 is not None  # set with the image by prepare()
        n = int((trimap == UNKNOWN).sum())
        scale = FastClosedFormEngine.budget_scale(
            trimap, n, self._need_bytes, self.params["memory_gb"] * 1e9
        )
        small, tri_s = downscaled(self._image64, trimap, scale)
        # Untrimmed like the trimap it is given (predict): at the coarse scale too.
        coarse = InformationFlowEngine(**{**self.params, "trim_radius": 0})
        coarse.prepare(small)
        coarse.predict(tri_s, progress=scaled(progress, 0.0, 0.3), cancel=cancel)
        assert coarse._last is not None
        a_small = coarse._last[1]  # the solution, before this engine's levels (applied once, below)
        del coarse
        fine = FastClosedFormEngine(
            memory_gb=self.params["memory_gb"], fine_residual=self.params["fine_residual"]
        )
        fine.prepare(self._image64)  # float64 already: no copy
        alpha = fine.refine_coarse(trimap, small, a_small, progress=progress, cancel=cancel)
        if cancel is not None:  # asked while the last tile ran: still nothing changes
            cancel.raise_if_cancelled()
        self.last_mode = "coarse-to-fine"
        self.last_solve = {"scale": scale, **fine.last_solve}
        self._cache = None  # no full-size flows: the next stroke solves coarse to fine again
        return alpha

    def _output(self, alpha: np.ndarray, unknown: np.ndarray) -> np.ndarray:
        """The matte shown: the solution with its levels stretched in the unknown region. The flows
        leave a faint haze (a few percent) over regions that are really 0 or 1; stretching
        removes it without a hard edge (measured in docs/benchmarks.md)."""
        out = np.clip(alpha, 0, 1)
        lo = float(self.params["levels"])
        if lo > 0:
            out[unknown] = np.clip((out[unknown] - lo) / (1.0 - 2.0 * lo), 0.0, 1.0)
        return out.astype(np.float32)

    # -- solves -------------------------------------------------------------------------------

    def _flow_key(self) -> tuple:
        p = self.params
        names = ("k_mix", "k_ku", "k_uu", "band", "mix_known_rows", "ku_fit", "knn_eps")
        return tuple(p[name] for name in names)

    def _flow_params(self) -> dict:
        p = self.params
        return {
            "k_mix": p["k_mix"],
            "k_ku": p["k_ku"],
            "k_uu": p["k_uu"],
            "band": p["band"],
            "known_rows": p["mix_known_rows"],
            "ku_colour_only": p["ku_fit"] == "colour",
            "eps": p["knn_eps"],
        }

    def _updated_flows(self, trimap, progress, cancel):
        """The flows for ``trimap`` and the flat pixels whose rows differ from the previous
        trimap's (None: all of them): from the kept flows where they were made for this image and
        these parameters, else built whole."""
        from mattestudio.engines.infoflow import flows as flow_ops

        cache = self._cache
        if cache is not None and cache[1] == self._flow_key() and cache[0].shape == trimap.shape:
            assert self._image64 is not None
            check = _checker(progress, cancel, 0.0, 0.4, f"{self.info.display_name}: flows")
            check(0.0)
            got = flow_ops.update(self._image64, cache[0], trimap, cache[2], **self._flow_params())
            check(1.0)
            if got is not None:
                self._cache = (trimap.copy(), cache[1], got[0])
                return got
        return self._flows(trimap, None, progress, cancel), None

    def _flows(self, trimap, ku, progress, cancel, intra=None):
        from mattestudio.engines.infoflow import flows as flow_ops

        assert self._image64 is not None  # set with the image by prepare()
        flows = flow_ops.compute(
            self._image64,
            trimap,
            ku=ku,
            intra=intra,
            check=_checker(progress, cancel, 0.0, 0.4, f"{self.info.display_name}: flows"),
            **self._flow_params(),
        )
        self._cache = (trimap.copy(), self._flow_key(), flows)
        return flows

    def _full(self, trimap, unknown, fixed, flows, progress, cancel) -> np.ndarray:
        """The solve on every unknown pixel. Without ``flows`` (made already) a second thread
        makes the intra-unknown flow, the Laplacian and the preconditioner's factor (which needs
        only the known-to-unknown confidences) while this one makes the known-to-unknown and
        colour-mixture flows (docs/benchmarks.md, "the critical path")."""
        from mattestudio.engines.fastcf.laplacian import assemble
        from mattestudio.engines.infoflow import flows as flow_ops
        from mattestudio.engines.infoflow import system as sysm

        h, w = trimap.shape
        box = (0, h, 0, w)
        if flows is not None:
            return self._solve_box(flows, unknown, fixed, box, progress, cancel, "solving")
        p = self.params
        assert self._image64 is not None and self._stats is not None
        image64, stats, weights = self._image64, self._stats, self._weights()

        def second(check, job):
            # Neither the intra-unknown flow nor the Laplacian needs the known-to-unknown flow:
            # both are done while this thread's partner searches for it.
            job.put(
                "intra",
                flow_ops.intra_unknown_rows(image64, trimap, k_uu=p["k_uu"], eps=p["knn_eps"]),
            )
            lap = assemble(stats, image64, unknown, fixed)
            conf = job.get("confidence", check)
            part = sysm.local_with_confidence(lap, unknown, weights, conf)
            job.put("part", part)  # the partner builds the system while this one factorises
            return sysm.preconditioner(part, 1, check)

        job = _Background(second, cancel)
        try:
            ku = flow_ops.known_to_unknown_rows(
                image64,
                trimap,
                k_ku=p["k_ku"],
                colour_only=p["ku_fit"] == "colour",
                eps=p["knn_eps"],
            )
            job.put("confidence", flow_ops.ku_per_pixel(ku, trimap.size)[1])
            if cancel is not None:
                cancel.raise_if_cancelled()
            flows = self._flows(
                trimap,
                ku,
                progress,
                cancel,
                intra=job.get("intra", _checker(None, cancel, 0, 1, "")),
            )
            part = job.get("part", _checker(None, cancel, 0, 1, ""))
            return self._solve_box(
                flows, unknown, fixed, box, progress, cancel, "solving", prepared=(part, job.result)
            )
        except BaseException:
            job.abandon()
            raise

    def _solve_box(
        self,
        flows,
        unknown,
        fixed,
        box: Box,
        progress,
        cancel,
        label: str,
        prepared=None,
        start: np.ndarray | None = None,
        old=None,
    ):
        """Alpha of the unknown pixels in ``box`` (box-shaped, NaN elsewhere) with every other
        pixel held at ``fixed``; None if the box holds no unknown pixel. ``prepared``: the local
        part, made already for this box, and a function that returns its factor (called once
        the system is built: the factor may still be in the making on another thread).
        ``start``: H x W alpha to start the iterations from (else the known-to-unknown
        estimate). ``old``: (flows, trimap, alpha) of the
        previous solve; the system is then solved for the change the new trimap makes: the old
        energy's leftover gradient at the old alpha (what the previous solve's tolerance left) is
        taken out of the right-hand side, so that alpha moves only where the stroke moves it and
        the box's edge test measures the stroke, not further convergence."""
        from mattestudio.engines.infoflow.system import Solver, build

        y0, y1, x0, x1 = box
        variables = np.zeros_like(unknown)
        variables[y0:y1, x0:x1] = unknown[y0:y1, x0:x1]
        if not variables.any():
            return None
        name = self.info.display_name
        assert self._image64 is not None and self._stats is not None
        part = prepared[0] if prepared is not None else None
        system = build(
            flows, self._stats, self._image64, variables, fixed, self._weights(), local=part
        )
        factor = prepared[1]() if prepared is not None else None
        solver = Solver(
            system, 1, _checker(progress, cancel, 0.4, 0.6, f"{name}: {label}"), factor=factor
        )
        if old is not None:
            self._remove_old_residual(system, variables, old)
        if start is None:
            # The known-to-unknown flow's estimate, clipped: 2-4 iterations fewer than the local
            # part's solution and one preconditioner solve less (docs/benchmarks.md).
            flat = system.coords[:, 0] * unknown.shape[1] + system.coords[:, 1]
            begin = np.clip(flows.ku_target[flat], 0.0, 1.0)
        else:
            begin = start[system.coords[:, 0], system.coords[:, 1]]
        x = solver.solve(
            begin,
            rtol=self.params["rtol"],
            from_start=start is not None,
            check=_checker(progress, cancel, 0.6, 0.98, f"{name}: {label}"),
        )
        self.iterations = solver.iterations
        out = np.full((y1 - y0, x1 - x0), np.nan)
        out[system.coords[:, 0] - y0, system.coords[:, 1] - x0] = x
        return out

    def _remove_old_residual(self, system, variables, old) -> None:
        from mattestudio.engines.infoflow.system import build

        old_flows, old_tri, old_alpha = old
        common = variables & (old_tri == UNKNOWN)
        if not common.any():
            return
        assert self._image64 is not None and self._stats is not None
        before = build(old_flows, self._stats, self._image64, common, old_alpha, self._weights())
        leftover = before.rhs - before.matvec(old_alpha[before.coords[:, 0], before.coords[:, 1]])
        w = variables.shape[1]
        column = np.full(variables.size, -1, np.int64)
        column[system.coords[:, 0] * w + system.coords[:, 1]] = np.arange(len(system.coords))
        system.rhs = system.rhs - np.bincount(
            column[before.coords[:, 0] * w + before.coords[:, 1]],
            weights=leftover,
            minlength=len(system.coords),
        )

    def _incremental(
        self, flows, moved, old_flows, trimap, unknown, progress, cancel
    ) -> np.ndarray | None:
        """Re-solve around the change from the previous trimap; None when a full solve is better.
        ``moved``: flat pixels whose flow rows changed (None: all, so a full solve)."""
        from mattestudio.engines.fastcf import regional

        if self._last is None or moved is None or old_flows is None:
            return None
        before_tri, before = self._last
        if before_tri.shape != trimap.shape:
            return None
        h, w = trimap.shape
        # The seed: every pixel whose trimap value or flow rows changed. Rows are rebuilt only
        # where a neighbour search can answer differently, so this stays near the stroke.
        changed = (before_tri != trimap).ravel()
        changed[moved] = True
        changed = changed.reshape(h, w)
        ys = np.flatnonzero(changed.any(axis=1))
        xs = np.flatnonzero(changed.any(axis=0))
        seed = (int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1)
        fixed = (trimap == FOREGROUND).astype(np.float64)
        fixed[unknown] = before[unknown]
        old = (old_flows, before_tri, before)
        # The known-to-unknown flow reaches further than the Laplacian: start with a wider margin.
        margin = max(32, (seed[1] - seed[0] + seed[3] - seed[2]) // 4)
        last_change: float | None = None
        while True:
            box = regional.grow(seed, margin, trimap.shape)
            if (box[1] - box[0]) * (box[3] - box[2]) > 0.5 * h * w:
                return None
            # Started from the previous solution, whose residual is small away from the change:
            # conjugate gradients then spend their iterations where alpha really moves.
            values = self._solve_box(
                flows,
                unknown,
                fixed,
                box,
                progress,
                cancel,
                "re-solving the stroke",
                start=fixed,
                old=old,
            )
            if values is None:
                break
            depth = max(4, margin // 4)
            change = regional.ring_change(values, before, box, trimap.shape, depth)
            goal = self.params["tolerance"] / 2
            if change <= goal:
                regional.paste(fixed, values, box)
                self.solved = int(np.isfinite(values).sum())
                break
            if last_change is not None and _doublings_needed(last_change, change, goal) > 1:
                # The stroke's effect fades too slowly at the edge (the flows are non-local): the
                # box that reaches the tolerance would be over half the image, so solve it whole
                # now rather than after more box solves.
                return None
            last_change = change
            margin *= 2
        self.last_mode = "incremental"
        return fixed


def _doublings_needed(previous: float, change: float, goal: float) -> float:
    """How many more doublings of the margin bring the change at the box's edge to ``goal``, if it
    keeps falling by the factor of the last doubling (inf if it did not fall)."""
    if change >= previous or change <= 0:
        return float("inf")
    return float(np.log(change / goal) / np.log(previous / change))
