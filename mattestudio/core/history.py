"""Undo history that stores only the changed patches of an array.

One undo step (``Step``) is a list of ``Patch`` atoms. A patch keeps the bounding box of a change,
the mask of the pixels that changed inside it, and their old and new values, so a brush stroke
over a 24-megapixel trimap costs a few kilobytes, not a copy of the trimap.

Strokes are grouped: ``begin()`` opens a step, any number of ``record(...)`` calls add changes,
``commit()`` merges them into a single patch per step (one stroke = one undo step). The history
is bounded both in steps and in bytes; the oldest steps are dropped first.

A step may carry ``records``: the JSON-able stroke records (see mattestudio.core.strokes) that
describe it as vectors. History only stores them with the step, so the owner can keep its stroke
list in sync with undo and redo.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

#: (y0, y1, x0, x1), half-open, in array coordinates.
BBox = tuple[int, int, int, int]


def union(a: BBox | None, b: BBox | None) -> BBox | None:
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


@dataclass(frozen=True)
class Patch:
    """The pixels of ``bbox`` where ``mask`` is True changed from ``old`` to ``new``."""

    bbox: BBox
    mask: np.ndarray  # bool, bbox-sized
    old: np.ndarray  # values at mask, 1-D
    new: np.ndarray  # values at mask, 1-D

    @property
    def nbytes(self) -> int:
        return int(self.mask.nbytes + self.old.nbytes + self.new.nbytes)

    def apply(self, target: np.ndarray, undo: bool) -> None:
        y0, y1, x0, x1 = self.bbox
        target[y0:y1, x0:x1][self.mask] = self.old if undo else self.new

    @staticmethod
    def diff(before: np.ndarray, after: np.ndarray, bbox: BBox) -> Patch | None:
        """Patch from two bbox-sized crops, shrunk to the pixels that really changed (or None)."""
        changed = before != after
        if not changed.any():
            return None
        ys, xs = np.nonzero(changed)
        sy0, sy1, sx0, sx1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        mask = changed[sy0:sy1, sx0:sx1]
        y0, _, x0, _ = bbox
        return Patch(
            (y0 + sy0, y0 + sy1, x0 + sx0, x0 + sx1),
            np.ascontiguousarray(mask),
            before[sy0:sy1, sx0:sx1][mask].copy(),
            after[sy0:sy1, sx0:sx1][mask].copy(),
        )


@dataclass(frozen=True)
class Step:
    label: str
    patches: tuple[Patch, ...]
    records: tuple[dict, ...] = ()

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.patches)

    @property
    def bbox(self) -> BBox | None:
        out = None
        for p in self.patches:
            out = union(out, p.bbox)
        return out


class History:
    """Bounded undo/redo of in-place edits to one array (the trimap)."""

    def __init__(self, max_steps: int = 200, max_bytes: int = 256 * 1024 * 1024):
        self.max_steps = int(max_steps)
        self.max_bytes = int(max_bytes)
        self._undo: deque[Step] = deque()
        self._redo: list[Step] = []
        self._bytes = 0
        # Open stroke: label, union bbox, and the first-seen old values of each touched region.
        self._open: tuple[str, list[tuple[BBox, np.ndarray]]] | None = None

    # -- stroke grouping ------------------------------------------------------------------------
    @property
    def in_stroke(self) -> bool:
        return self._open is not None

    def begin(self, label: str = "edit") -> None:
        if self._open is not None:
            raise RuntimeError("a stroke is already open")
        self._open = (label, [])

    def before_change(self, target: np.ndarray, bbox: BBox) -> None:
        """Call right before modifying ``target[bbox]`` inside an open stroke: saves the old values."""
        if self._open is None:
            raise RuntimeError("before_change() outside begin()/commit()")
        y0, y1, x0, x1 = bbox
        self._open[1].append((bbox, target[y0:y1, x0:x1].copy()))

    def commit(self, target: np.ndarray, records: tuple[dict, ...] = ()) -> Step | None:
        """Close the stroke: merge its changes into one patch and push it. Returns the step or None
        (nothing changed: ``records`` are dropped too)."""
        if self._open is None:
            return None
        label, saved = self._open
        self._open = None
        if not saved:
            return None
        bbox: BBox | None = None
        for b, _ in saved:
            bbox = union(bbox, b)
        assert bbox is not None  # saved is not empty
        y0, y1, x0, x1 = bbox
        after = target[y0:y1, x0:x1].copy()
        before = after.copy()
        for (by0, by1, bx0, bx1), old in reversed(saved):  # earliest saved value wins
            before[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0] = old
        patch = Patch.diff(before, after, bbox)
        if patch is None:
            return None
        return self.push(Step(label, (patch,), tuple(records)))

    def abort(self, target: np.ndarray) -> BBox | None:
        """Cancel the open stroke and restore the old values. Returns the restored bbox."""
        if self._open is None:
            return None
        _, saved = self._open
        self._open = None
        bbox = None
        for (y0, y1, x0, x1), old in reversed(saved):
            target[y0:y1, x0:x1] = old
            bbox = union(bbox, (y0, y1, x0, x1))
        return bbox

    # -- whole edits ------------------------------------------------------------------------------
    def record_replace(
        self, target: np.ndarray, new: np.ndarray, label: str, records: tuple[dict, ...] = ()
    ) -> Step | None:
        """Replace all of ``target`` by ``new`` (same shape) as one undoable step. Applies the change."""
        h, w = target.shape[:2]
        patch = Patch.diff(target, new, (0, h, 0, w))
        if patch is None:
            return None
        patch.apply(target, undo=False)
        return self.push(Step(label, (patch,), tuple(records)))

    def push(self, step: Step) -> Step:
        self._undo.append(step)
        self._bytes += step.nbytes
        self._redo.clear()
        self._trim()
        return step

    def _trim(self) -> None:
        while self._undo and (
            len(self._undo) > self.max_steps
            or (self._bytes > self.max_bytes and len(self._undo) > 1)
        ):
            self._bytes -= self._undo.popleft().nbytes

    # -- undo / redo ------------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def __len__(self) -> int:
        return len(self._undo)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def undo(self, target: np.ndarray) -> Step | None:
        if not self._undo:
            return None
        step = self._undo.pop()
        self._bytes -= step.nbytes
        for p in reversed(step.patches):
            p.apply(target, undo=True)
        self._redo.append(step)
        return step

    def redo(self, target: np.ndarray) -> Step | None:
        if not self._redo:
            return None
        step = self._redo.pop()
        for p in step.patches:
            p.apply(target, undo=False)
        self._undo.append(step)
        self._bytes += step.nbytes
        self._trim()
        return step

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._bytes = 0
        self._open = None
