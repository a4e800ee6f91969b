"""The editor's model: image, trimap, last result and background, with undo and psygnal signals.

Qt-free. Views subscribe to the signals and read the arrays; they never write them. Every change
of the image or trimap bumps a version counter, and a result remembers the trimap version it
came from, so "is the alpha stale" is one comparison.

``edited`` is the one event for a finished trimap change (stroke end, fill, load, clear, GrabCut,
trimap from alpha, undo, redo, a new image): it carries an ``Edit`` with the changed box and the
new revision. Live mode and anything else that reacts to edits listens to it, never to tools.

``strokes`` logs every trimap edit as a JSON-able record (format in mattestudio.core.strokes),
kept in step with undo and redo: each undo step carries the records of its edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from psygnal import Signal

from mattestudio.core import strokes as stroke_ops
from mattestudio.core.compositing import result_alpha, result_foreground
from mattestudio.core.edges import EdgeAdjustments
from mattestudio.core.history import BBox, History
from mattestudio.types import FOREGROUND, UNKNOWN, MattingResult

Background = str | tuple | np.ndarray


@dataclass(frozen=True)
class Edit:
    """One finished change of the trimap."""

    kind: str  # "stroke", "fill", "set", "undo", "redo", "load"
    box: BBox | None  # changed region (y0, y1, x0, x1), half-open; None: all of it
    revision: int  # the document's trimap revision after the change


class Document:
    #: The image (and so everything) was replaced.
    image_changed = Signal()
    #: The trimap changed (also mid-stroke); the argument is the changed bbox (y0, y1, x0, x1) or
    #: None for all of it. For redrawing; to react to finished edits use ``edited``.
    trimap_changed = Signal(object)
    #: A trimap change is complete (see the module docstring); the argument is an ``Edit``.
    edited = Signal(object)
    #: A new result was set (or cleared); the argument is the box where it differs from the
    #: previous result (y0, y1, x0, x1), or None when all of it may have changed.
    result_changed = Signal(object)
    #: The preview background changed (never re-runs an engine).
    background_changed = Signal()
    #: Undo/redo availability may have changed.
    history_changed = Signal()
    #: The edge adjustments changed (previews and exports change; the engine does not re-run).
    edges_changed = Signal()
    #: The result on screen no longer matches the settings (another engine or parameters).
    result_outdated = Signal()

    def __init__(
        self,
        image: np.ndarray | None = None,
        trimap: np.ndarray | None = None,
        image_path: str | Path | None = None,
        history_steps: int = 200,
        history_bytes: int = 256 * 1024 * 1024,
    ):
        self.history = History(history_steps, history_bytes)
        self.image: np.ndarray = np.zeros((1, 1, 3), np.float32)
        self.trimap: np.ndarray = np.full((1, 1), UNKNOWN, np.uint8)
        self.base_trimap: np.ndarray = self.trimap.copy()
        self.image_path: Path | None = None
        self.trimap_path: Path | None = None
        self.result: MattingResult | None = None
        #: The trimap revision the result was computed for (-1: unknown, so stale).
        self.result_revision = -1
        self.background: Background = "checker"
        self.image_version = 0
        self.trimap_version = 0
        self.modified = False
        self._stroke_bbox: BBox | None = None
        self._stroke_revision = 0
        self._alpha_cache: tuple | None = None
        self._bg_cache: tuple | None = None
        #: Records of the edits now applied, oldest first (undone edits are removed).
        self.strokes: list[dict] = []
        self._open_records: list[dict] = []
        #: Edge adjustments applied to the result for previews and exports.
        self.edges = EdgeAdjustments()
        if image is not None:
            self.set_image(image, trimap, image_path)

    # -- image -------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[:2]

    def set_image(
        self,
        image: np.ndarray,
        trimap: np.ndarray | None = None,
        image_path: str | Path | None = None,
        trimap_path=None,
        strokes: list | None = None,
    ) -> None:
        """Replace the whole document. ``image`` float32 H x W x 3 in [0, 1]; ``trimap`` uint8 or None
        (then everything starts as unknown: paint foreground and background scribbles).
        ``strokes``: the stroke log that led to ``trimap`` (a reopened project), else empty."""
        image = np.ascontiguousarray(image, np.float32)
        h, w = image.shape[:2]
        if trimap is None:
            trimap = np.full((h, w), UNKNOWN, np.uint8)
        if trimap.shape != (h, w):
            raise ValueError(f"trimap shape {trimap.shape} does not match image {(h, w)}")
        self.image = image
        self.trimap = np.array(trimap, np.uint8, copy=True)
        self.base_trimap = self.trimap.copy()
        self.image_path = None if image_path is None else Path(image_path)
        self.trimap_path = None if trimap_path is None else Path(trimap_path)
        self.history.clear()
        self.strokes = list(strokes or [])
        self._open_records = []
        self.result = None
        self._alpha_cache = None
        self._bg_cache = None
        self.result_revision = -1
        self.edges = EdgeAdjustments()  # a new image starts from the engine's own alpha
        self.image_version += 1
        self.trimap_version += 1
        self.modified = False
        self.image_changed.emit()
        self.trimap_changed.emit(None)
        self.result_changed.emit(None)
        self.edges_changed.emit()
        self.history_changed.emit()
        self._edited("load", None)

    @property
    def revision(self) -> int:
        """The trimap revision: grows on every change of the trimap (or the image)."""
        return self.trimap_version

    # -- trimap edits ------------------------------------------------------------------------------
    def _touched(self, bbox: BBox | None) -> None:
        self.trimap_version += 1
        self.modified = True
        self.trimap_changed.emit(bbox)

    def _edited(self, kind: str, box: BBox | None) -> None:
        self.edited.emit(Edit(kind, box, self.trimap_version))

    def begin_stroke(self, label: str = "brush") -> None:
        if self.history.in_stroke:
            self.end_stroke()
        self.history.begin(label)
        self._stroke_bbox = None
        self._stroke_revision = self.trimap_version
        self._open_records = []

    def paint_segment(self, p0, p1, size: float, value: int | str) -> BBox | None:
        """Paint inside an open stroke (see ``begin_stroke``); value "erase" restores the base trimap,
        "refine" marks unknown only where the image has an edge (Refine Edge brush)."""
        if not self.history.in_stroke:
            raise RuntimeError("paint_segment() outside begin_stroke()/end_stroke()")
        where = None
        source: stroke_ops.Value
        if value == "refine":  # Refine Edge: unknown only where the image has edges
            source, where = UNKNOWN, self.refine_band()
        else:
            source = self.base_trimap if value == "erase" else int(value)
        bbox = stroke_ops.paint_segment(
            self.trimap, p0, p1, size, source, self.history.before_change, where
        )
        # Logged even when off the image, so the record's points stay one continuous path.
        stroke_ops.extend_brush_records(self._open_records, p0, p1, size, value)
        if bbox is not None:
            self._touched(bbox)
        return bbox

    def refine_band(self) -> np.ndarray:
        """Where the Refine Edge brush may paint (edges, mixed colours); cached per image."""
        cached = getattr(self, "_refine_band", None)
        if cached is None or cached[0] != self.image_version:
            from mattestudio.core.trimap import edge_band

            cached = (self.image_version, edge_band(self.image))
            self._refine_band = cached
        return cached[1]

    def end_stroke(self) -> bool:
        """Close the stroke as one undo step. Returns True when anything changed."""
        touched = self._stroke_revision != self.trimap_version
        step = self.history.commit(self.trimap, tuple(self._open_records))
        self._open_records = []
        if step is not None:
            self.strokes.extend(step.records)
        self.history_changed.emit()
        if step is not None:
            self._edited("stroke", step.bbox)
        elif touched:  # painted over equal values: same trimap, but a newer revision to catch up to
            self._edited("stroke", (0, 0, 0, 0))
        return step is not None

    def abort_stroke(self) -> None:
        self._open_records = []
        bbox = self.history.abort(self.trimap)
        if bbox is not None:
            self._touched(bbox)
        self.history_changed.emit()
        if bbox is not None:  # back to the trimap before the stroke, but a newer revision
            self._edited("stroke", bbox)

    def fill(self, x: float, y: float, value: int) -> bool:
        """Fill bucket: the connected region of equal value under (x, y) becomes ``value``."""
        if self.history.in_stroke:
            self.end_stroke()
        self.history.begin("fill")
        bbox = stroke_ops.fill_at(self.trimap, x, y, value, self.history.before_change)
        if bbox is None:
            self.history.abort(self.trimap)  # nothing was written
            return False
        step = self.history.commit(self.trimap, (stroke_ops.fill_record(x, y, value),))
        if step is not None:
            self.strokes.extend(step.records)
        self._touched(bbox)
        self.history_changed.emit()
        self._edited("fill", bbox)
        return True

    def set_trimap(
        self,
        trimap: np.ndarray,
        label: str = "set trimap",
        path=None,
        as_base: bool = True,
        source: str | None = None,
    ) -> bool:
        """Replace the trimap as one undoable step (load, clear, GrabCut, from alpha).

        ``source`` names the operation in the stroke log ("loaded", "grabcut", ...; default: label).
        """
        trimap = np.asarray(trimap, np.uint8)
        if trimap.shape != self.trimap.shape:
            raise ValueError(
                f"trimap shape {trimap.shape} does not match image {self.trimap.shape}"
            )
        if self.history.in_stroke:
            self.end_stroke()
        if as_base:
            self.base_trimap = trimap.copy()
        if path is not None:
            self.trimap_path = Path(path)
        step = self.history.record_replace(
            self.trimap, trimap, label, (stroke_ops.set_record(source or label),)
        )
        if step is not None:
            self.strokes.extend(step.records)
            self._touched(step.bbox)
        self.history_changed.emit()
        if step is not None:
            self._edited("set", step.bbox)
        return step is not None

    def clear_trimap(self, value: int = UNKNOWN) -> bool:
        return self.set_trimap(
            np.full(self.trimap.shape, value, np.uint8), "clear trimap", source="clear"
        )

    def undo(self) -> bool:
        if self.history.in_stroke:
            self.end_stroke()
        step = self.history.undo(self.trimap)
        if step is not None:
            if step.records:  # they are the newest ones: steps and records share one order
                del self.strokes[-len(step.records) :]
            self._touched(step.bbox)
        self.history_changed.emit()
        if step is not None:
            self._edited("undo", step.bbox)
        return step is not None

    def redo(self) -> bool:
        step = self.history.redo(self.trimap)
        if step is not None:
            self.strokes.extend(step.records)
            self._touched(step.bbox)
        self.history_changed.emit()
        if step is not None:
            self._edited("redo", step.bbox)
        return step is not None

    @property
    def can_undo(self) -> bool:
        return self.history.can_undo

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo

    @property
    def has_unknown(self) -> bool:
        return bool(np.any(self.trimap == UNKNOWN))

    # -- results -----------------------------------------------------------------------------------
    def set_result(
        self,
        result: MattingResult | None,
        revision: int | None = None,
        box: BBox | None = None,
    ) -> None:
        """Show ``result``, computed for trimap ``revision`` (default: the current one). ``box``:
        where it differs from the previous result, when the caller knows (an incremental re-run)."""
        self._alpha_cache = None
        self.result = result
        self.result_revision = self.trimap_version if revision is None else int(revision)
        self.result_changed.emit(box)

    def mark_result_outdated(self) -> None:
        """The engine or its parameters changed: the result shown was not computed with them.
        It stays on screen, marked stale, and an export runs the engine again first."""
        if self.result is not None and self.result_revision != -1:
            self.result_revision = -1
            self.result_outdated.emit()

    @property
    def result_trimap_version(self) -> int:
        return self.result_revision

    @property
    def result_is_stale(self) -> bool:
        return self.result is None or self.result_revision != self.trimap_version

    def alpha(self) -> np.ndarray | None:
        """The result's alpha at image size (a coarse preview is upsampled), or None."""
        if self.result is None:
            return None
        cached = getattr(self, "_alpha_cache", None)
        if cached is None or cached[0] is not self.result:
            cached = (self.result, result_alpha(self.result, self.shape))
            self._alpha_cache = cached
        return cached[1]

    def foreground(self) -> np.ndarray | None:
        if self.result is None:
            return None
        return result_foreground(self.result, self.image)

    # -- edge adjustments (non-destructive: alpha() and foreground() stay the engine's) -------------
    def set_edges(self, edges: EdgeAdjustments) -> None:
        if edges != self.edges:
            self.edges = edges
            self.edges_changed.emit()

    def output(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(alpha, foreground) after the edge adjustments: what previews and exports show."""
        from mattestudio.core import edges as edge_ops

        alpha = self.alpha()
        if alpha is None:
            return None
        cached = getattr(self, "_output_cache", None)
        if cached is None or cached[0] is not self.result or cached[1] != self.edges:
            fg = self.foreground()
            out = edge_ops.apply(alpha, self.image if fg is None else fg, self.image, self.edges)
            cached = (self.result, self.edges, out)
            self._output_cache = cached
        return cached[2]

    def alpha_at(self, x: float, y: float) -> float | None:
        """The alpha under image pixel (x, y), or None (no result, or outside the image)."""
        h, w = self.shape
        if self.result is None or not (0 <= x < w and 0 <= y < h):
            return None
        a = self.result.alpha
        ah, aw = a.shape[:2]
        return float(np.clip(a[min(int(y * ah / h), ah - 1), min(int(x * aw / w), aw - 1)], 0, 1))

    # -- background and previews -------------------------------------------------------------------
    def set_background(self, background: Background) -> None:
        self.background = background
        self._bg_cache = None
        self.background_changed.emit()

    def background_array(self) -> np.ndarray:
        """The background as float32 H x W x 3 (cached until the background or image changes).
        Safe to call from a worker thread: the cache is replaced by one assignment."""
        from mattestudio.core.compositing import background_array

        spec, image = self.background, self.image
        c = getattr(self, "_bg_cache", None)
        if c is not None and c[0] is spec and c[1] is image:
            return c[2]
        h, w = image.shape[:2]
        arr = background_array(spec, h, w, original=image)
        self._bg_cache = (spec, image, arr)
        return arr

    def composite(self, background: Background | None = None) -> np.ndarray | None:
        """alpha F + (1 - alpha) B over the document's (or the given) background, or None."""
        from mattestudio.core.compositing import composite

        out = self.output()
        if out is None:
            return None
        bg = self.background_array() if background is None else background
        return composite(out[1], out[0], bg, original=self.image)

    def trimap_counts(self) -> dict[str, int]:
        t = self.trimap
        fg = int(np.count_nonzero(t == FOREGROUND))
        unk = int(np.count_nonzero(t == UNKNOWN))
        return {"foreground": fg, "unknown": unk, "background": int(t.size) - fg - unk}
