"""Run, Live and GrabCut: builds jobs from the Document and the engine panel, hands them to the
runner and applies what comes back. No image maths here.

Live listens to the Document's ``edited`` event (every finished trimap change, whatever made
it), to engine and parameter changes and to opening an image. Engines that re-solve
incrementally are asked right away and requests made while the worker is busy coalesce into
one run of the newest trimap (no debounce); slow engines cancel the running job and get a coarse
preview first when their ``EngineInfo.progressive`` says one is useful.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from mattestudio.core import trimap as trimap_ops
from mattestudio.core.document import Document, Edit
from mattestudio.errors import MattestudioError, TrimapError
from mattestudio.types import BACKGROUND, FOREGROUND, UNKNOWN, MattingResult
from mattestudio.ui.protocol import GrabCutJob, GrabCutOutput, MattingJob, Result
from mattestudio.ui.runner import MattingRunner, snapshot_trimap

COARSE_ABOVE = 120_000  # pixels; smaller images go straight to full resolution in Live mode


def coarse_scale(h: int, w: int) -> float | None:
    if h * w <= COARSE_ABOVE:
        return None
    return min(0.5, (60_000 / (h * w)) ** 0.5)


def engine_traits(name: str, params: dict) -> tuple[bool, bool]:
    """(progressive, incremental) of an engine: whether a coarse preview is useful, and whether
    it re-solves only around an edit (then no coarse preview and no cancelling)."""
    from mattestudio.engines import registry

    try:
        info = registry.info(name)
        resolved = info.resolve_params(params)
    except Exception:
        return True, False
    return bool(info.progressive), bool(resolved.get("incremental", False))


class _GrabCutMemory:
    """What the last GrabCut was given and produced, so pressing it again with another band
    only re-derives the trimap, and marks painted since are added to the original ones."""

    def __init__(self, job: GrabCutJob, output: GrabCutOutput) -> None:
        self.job, self.output = job, output


class RunController(QObject):
    status = Signal(str)
    error = Signal(str)
    grabcut_busy = Signal(bool)

    def __init__(self, document: Document, engine_panel, runner: MattingRunner, parent=None):
        super().__init__(parent)
        self.document = document
        self.panel = engine_panel
        self.runner = runner
        self.live = False
        self._grabcut_id: int | None = None
        self._grabcut: _GrabCutMemory | None = None
        document.edited.connect(self._edited)
        document.image_changed.connect(self._image_changed)
        engine_panel.engine_changed.connect(self._settings_changed)
        engine_panel.params_changed.connect(self._settings_changed)
        runner.result_ready.connect(self._result)
        runner.failed.connect(self._failed)
        runner.finished.connect(self._finished)

    # -- requests --------------------------------------------------------------------------------
    def set_live(self, on: bool) -> None:
        self.live = bool(on)
        if self.live:
            self.run(live=True)

    def _edited(self, edit: Edit) -> None:
        if self.live and edit.kind != "load":  # a new image is handled by _image_changed
            self.run(live=True)

    def _settings_changed(self, *_) -> None:
        self.document.mark_result_outdated()  # even if Live is off or its re-run is cancelled
        if self.live:
            self.run(live=True)

    def _image_changed(self) -> None:
        self.runner.cancel(quiet=True)  # a GrabCut in flight ends through _finished
        self._grabcut = None
        if self.live:
            self.run(live=True)

    def run(self, live: bool = False) -> int | None:
        """Submit the current trimap; Live asks for an incremental re-run, Run for a clean solve
        (so small differences that incremental re-solves may accumulate never reach an export)."""
        doc, panel = self.document, self.panel
        if doc.image.shape[:2] == (1, 1):
            return None
        if not panel.available():
            self._failed(
                f"engine {panel.engine or '(none)'} is not available: {panel.reasons.get(panel.engine)}"
            )
            return None
        try:
            params = panel.params()
        except MattestudioError as exc:
            self._failed(str(exc))
            return None
        tri = doc.trimap
        has_unknown = doc.has_unknown
        has_known = bool((tri != UNKNOWN).any())
        if live and not (has_unknown and has_known):
            # Nothing to solve: with no unknown pixel the trimap is the matte; with nothing known
            # there is no matte, and an old one must not stay on screen as if it were current.
            self.runner.cancel(quiet=True)
            if has_known:
                alpha = (tri == FOREGROUND).astype(np.float32)
                doc.set_result(MattingResult(alpha, doc.image, panel.engine), doc.revision)
            else:
                doc.set_result(None)
                self.status.emit("Live: paint some foreground (F) or background (B)")
            return None
        if not has_unknown:
            self._failed(
                "the trimap has no unknown (edge) pixels: paint the edge band with U, or use GrabCut"
            )
            return None
        progressive, incremental = engine_traits(panel.engine, params)
        scale = coarse_scale(*doc.shape) if live and progressive else None
        job = MattingJob(
            panel.engine,
            params,
            doc.image,
            doc.image_version,
            snapshot_trimap(tri),
            doc.revision,
            coarse_scale=scale,
            exact=not live,
        )
        return self.runner.submit(job, supersede=not (live and incremental))

    def run_grabcut(self, rect, band: int, smart: bool = False) -> int | None:
        """GrabCut from ``rect`` (x, y, w, h or None) and the trimap's F/B marks, on the worker.
        Pressed again with only the band changed, the trimap is re-derived at once."""
        doc = self.document
        tri = doc.trimap
        memory = self._grabcut
        if memory is not None and memory.job.image_version == doc.image_version:
            user = tri != memory.output.trimap  # what was painted since the last GrabCut
            prev = memory.job
            if not user.any() and rect == prev.rect:
                new = trimap_ops.from_segmentation(
                    memory.output.segmentation,
                    band,
                    prev.fg_marks,
                    prev.bg_marks,
                    image=doc.image,
                    smart=smart,
                )
                self._grabcut = _GrabCutMemory(prev, GrabCutOutput(memory.output.segmentation, new))
                self._apply_grabcut(new)
                return None
            fg = _merge(prev.fg_marks, user & (tri == FOREGROUND))
            bg = _merge(prev.bg_marks, user & (tri == BACKGROUND))
        else:
            fg = tri == FOREGROUND
            bg = tri == BACKGROUND
            fg = fg if fg.any() else None
            bg = bg if bg.any() else None
        if rect is None and fg is None:
            raise TrimapError(
                "draw a rectangle around the subject (R) or paint some foreground (F) first"
            )
        job = GrabCutJob(
            doc.image, doc.image_version, rect, fg, bg, int(band), doc.revision, smart=smart
        )
        self._grabcut_id = self.runner.submit(job)
        self._pending_grabcut = job
        self.grabcut_busy.emit(True)
        self.status.emit("GrabCut: segmenting... (Esc cancels)")
        return self._grabcut_id

    def _apply_grabcut(self, tri: np.ndarray) -> None:
        changed = self.document.set_trimap(tri, "GrabCut", source="grabcut")
        self.status.emit(
            "GrabCut trimap ready (Ctrl+Z to undo)"
            if changed
            else "GrabCut: the trimap is unchanged"
        )

    # -- results ---------------------------------------------------------------------------------
    def _result(self, event: Result) -> None:
        value = event.value
        if isinstance(value, GrabCutOutput):
            job = self._pending_grabcut
            self._grabcut_id = None
            self.grabcut_busy.emit(False)
            if job.image_version == self.document.image_version:
                self._grabcut = _GrabCutMemory(job, value)
                self._apply_grabcut(value.trimap)
            return
        assert isinstance(value, MattingResult)
        doc = self.document
        if value.shape != doc.shape and value.scale == 1.0:
            return  # from an image no longer open
        shown_id = doc.result.request_id if doc.result is not None else None
        if shown_id is not None and value.request_id is not None and value.request_id < shown_id:
            return  # an older job finishing after a newer one was shown
        shown = doc.result
        same_basis = (
            shown is not None and event.basis is not None and shown.request_id == event.basis
        )
        box = event.box if same_basis and shown is not None and shown.scale == 1.0 else None
        # The status first: showing the result may write a waiting export, whose message wins.
        stale = " (the trimap changed since)" if event.revision != doc.revision else ""
        kind = "coarse preview" if value.scale != 1.0 else "alpha"
        approx = ""
        if value.approximate:  # bounded Live updates: part of the matte is still approximate
            approx = (
                ", refining…"
                if value.refining
                else f", {len(value.approximate)} regions approximate until Run"
            )
        self.status.emit(f"{value.engine}: {kind} in {value.seconds:.2f} s{approx}{stale}")
        doc.set_result(value, event.revision, box)

    def _failed(self, message: str) -> None:
        if self._grabcut_id is not None:
            self._grabcut_id = None
            self.grabcut_busy.emit(False)
        self.error.emit(message)

    def _finished(self, job_id: int) -> None:
        """A GrabCut that ended without a result (cancelled, superseded, failed) frees its button."""
        if job_id == self._grabcut_id:
            self._grabcut_id = None
            self.grabcut_busy.emit(False)


def _merge(a: np.ndarray | None, b: np.ndarray) -> np.ndarray | None:
    out = b if a is None else (a | b)
    return out if out.any() else None
