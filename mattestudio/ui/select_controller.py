"""The Select subject tool's state: prompts -> subject mask for one Document, computed off the GUI
thread (SAM 2: the image embedding once per image, with progress and cancel, then the decoder per
click; GrabCut when no SAM 2 model is available), and the mask -> trimap as one undo step.

Emits signals; holds no widgets. The maths lives in mattestudio.engines.segment.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from mattestudio.core.document import Document
from mattestudio.engines.segment import select as seg
from mattestudio.engines.segment.prompts import Prompts
from mattestudio.errors import Cancelled, MattestudioError
from mattestudio.types import CancelToken
from mattestudio.ui.tasks import run_task

PREPARING = "Preparing selection…"


def preparing(fraction: float) -> str:
    """The status line while the embedding runs."""
    return f"{PREPARING} {int(round(100 * min(max(fraction, 0.0), 1.0)))} %"


class _ProgressRelay(QObject):
    """Carries progress from the worker thread to the GUI thread (queued signal)."""

    moved = Signal(float, str)


class SelectController(QObject):
    """Prompts -> mask for one Document. Emits; never touches widgets."""

    mask_changed = Signal()  # self.mask changed (None or a bool H x W array)
    prompts_changed = Signal()
    busy_changed = Signal(bool)  # the embedding is running
    progress = Signal(float, str)
    message = Signal(str)  # a status line for the user
    trimap_made = Signal()

    def __init__(self, document: Document, parent=None):
        super().__init__(parent)
        self.document = document
        self.prompts = Prompts()
        self.mask: np.ndarray | None = None
        self.band = 12
        self.smart = False  # the band follows the edge (the Tools panel's Smart band, issue 13)
        self.model: str | None = None  # None: the first imported SAM 2 model
        self.backend, self.reason = self._choose_backend()
        self.predictor = None
        self.active = False  # the tool is chosen: keep the embedding of the open image ready
        self.embedding = False
        self._embedded_version: int | None = None
        self._token: CancelToken | None = None
        self._gen = 0  # the newest prompt change; older mask results are dropped
        self._mask_job = False  # a mask computation is in flight
        self._pending = False  # prompts changed while it was
        self._relay = _ProgressRelay()
        self._relay.moved.connect(self.progress)
        document.image_changed.connect(self._image_changed)

    # -- backend -------------------------------------------------------------------------------------
    def _choose_backend(self) -> tuple[str, str]:
        why = seg.sam2_unavailable(self.model)
        return ("grabcut", why) if why else ("sam2", "")

    def refresh_backend(self) -> None:
        """Re-check for a SAM 2 model (after an import)."""
        backend, self.reason = self._choose_backend()
        if backend != self.backend:
            self.backend, self.predictor, self._embedded_version = backend, None, None
        self.message.emit(self.describe())

    def describe(self) -> str:
        if self.backend == "sam2":
            name = self.predictor.name if self.predictor is not None else "SAM 2"
            return (
                f"{name}: click the subject; Alt+click or right click: not the subject; drag: a box"
            )
        return f"Using GrabCut: {self.reason}"

    @property
    def ready(self) -> bool:
        return self.backend == "grabcut" or (
            self._embedded_version == self.document.image_version and not self.embedding
        )

    def set_active(self, on: bool) -> None:
        """The tool was chosen (or left). Choosing it starts the embedding of the open image in
        the background, so the first click does not wait for it."""
        was, self.active = self.active, bool(on)
        if self.active and not was:
            self.refresh_backend()
            self.prepare()

    def prepare(self) -> None:
        """Start the image embedding on a worker unless it is done or running (SAM 2 only)."""
        if self.backend != "sam2" or self.embedding or self.ready:
            return
        doc = self.document
        image, version = doc.image, doc.image_version
        key = f"{id(doc)}:{version}"
        token = self._token = CancelToken()
        relay = self._relay
        predictor, model = self.predictor, self.model

        def job():
            p = predictor
            if p is None:
                from mattestudio.engines.segment.predictor import Sam2Predictor

                relay.moved.emit(0.0, f"{PREPARING} loading the SAM 2 model")
                p = Sam2Predictor.load(model)
            token.raise_if_cancelled()
            p.set_image(
                image,
                key=key,
                progress=lambda f, _m: relay.moved.emit(f, preparing(f)),
                cancel=token,
            )
            return p

        def done(p) -> None:
            self.predictor = p
            self._set_embedding(False)
            if self.document.image_version != version:
                if self.active or not self.prompts.empty:
                    self.prepare()  # the image changed meanwhile
                return
            self._embedded_version = version
            self.message.emit(self.describe())
            if not self.prompts.empty:
                self._update()

        def failed(exc) -> None:
            self._set_embedding(False)
            if isinstance(exc, Cancelled):
                if self.document.image_version != version and (
                    self.active or not self.prompts.empty
                ):
                    self.prepare()  # a new image was opened meanwhile: embed that one
                else:
                    self.message.emit("SAM 2: cancelled; click again to restart")
                return
            # An unusable model: say why and fall back so the tool still works.
            self.backend, self.reason = "grabcut", f"SAM 2 failed ({exc})"
            self.message.emit(self.describe())
            if not self.prompts.empty:
                self._update()

        self._set_embedding(True)
        self.message.emit(PREPARING)
        run_task(job, done, failed)

    def cancel(self) -> None:
        if self._token is not None:
            self._token.cancel()

    def _set_embedding(self, on: bool) -> None:
        self.embedding = on
        self.busy_changed.emit(on)

    # -- prompts ---------------------------------------------------------------------------------------
    def add_point(self, x: float, y: float, positive: bool = True) -> None:
        h, w = self.document.shape
        if not (0 <= x < w and 0 <= y < h):
            return  # a click beside the image selects nothing
        self.prompts = self.prompts.add_point(x, y, positive)
        self._changed()

    def set_box(self, x0: float, y0: float, x1: float, y1: float) -> None:
        h, w = self.document.shape
        x0, x1 = sorted((max(0.0, min(x0, w)), max(0.0, min(x1, w))))
        y0, y1 = sorted((max(0.0, min(y0, h)), max(0.0, min(y1, h))))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        self.prompts = self.prompts.with_box((x0, y0, x1, y1))
        self._changed()

    def clear(self) -> None:
        self.prompts = Prompts()
        self._gen += 1
        self._set_mask(None)
        self.prompts_changed.emit()

    def _changed(self) -> None:
        self._gen += 1
        self.prompts_changed.emit()
        self._update()

    def _image_changed(self) -> None:
        self.cancel()  # a running embedding restarts on the new image when it stops
        self._embedded_version = None
        self.clear()
        if self.active:
            self.prepare()

    # -- masks -----------------------------------------------------------------------------------------
    def _update(self) -> None:
        """Compute the mask for the current prompts on a worker; one job at a time, the newest
        prompts win."""
        if self.prompts.empty:
            return
        if self.backend == "sam2" and not self.ready:
            self.prepare()  # the mask follows when the embedding is done
            return
        if self._mask_job:
            self._pending = True
            return
        gen, prompts, image = self._gen, self.prompts, self.document.image
        version = self.document.image_version
        predictor = self.predictor if self.backend == "sam2" else None
        self._mask_job, self._pending = True, False
        if predictor is None:
            self.message.emit("GrabCut: segmenting...")

        def job():
            if predictor is not None:
                return seg.check_mask(predictor.predict(prompts).mask)
            return seg.grabcut_select(image, prompts)

        def finish() -> None:
            self._mask_job = False
            if self._pending:
                self._update()

        def done(mask) -> None:
            if gen == self._gen and version == self.document.image_version:
                self._set_mask(mask)
                if predictor is None:
                    self.message.emit(self.describe())
            finish()

        def failed(exc) -> None:
            if gen == self._gen:
                self._set_mask(None)
                self.message.emit(str(exc) if isinstance(exc, MattestudioError) else repr(exc))
            finish()

        run_task(job, done, failed)

    def _set_mask(self, mask: np.ndarray | None) -> None:
        self.mask = mask
        self.mask_changed.emit()

    @property
    def busy(self) -> bool:
        return self.embedding or self._mask_job or self._pending

    # -- trimap ----------------------------------------------------------------------------------------
    def set_band(self, band: int) -> None:
        self.band = max(1, int(band))

    def make_trimap(self) -> bool:
        """The mask -> trimap with the band, as one undo step. False (and a message) if no mask."""
        if self.mask is None:
            self.message.emit("Click on the subject first: there is no selection yet")
            return False
        try:
            tri = seg.mask_to_trimap(
                self.mask, self.band, image=self.document.image, smart=self.smart
            )
        except MattestudioError as exc:
            self.message.emit(str(exc))
            return False
        if self.document.set_trimap(tri, "Select subject", source="select"):
            self.message.emit("Trimap from the selection (Ctrl+Z to undo)")
            self.trimap_made.emit()
        return True
