"""Clicks and a box, checked against the image. No torch, no Qt."""

from __future__ import annotations

from dataclasses import dataclass

from mattestudio.errors import MattestudioError


class PromptError(MattestudioError):
    """The clicks or the box cannot select anything (outside the image, zero size, empty mask)."""


@dataclass(frozen=True)
class Prompts:
    """Positive clicks (on the subject), negative clicks (not the subject) and an optional box.

    Coordinates are image pixels, x to the right and y down; the box is (x0, y0, x1, y1).
    """

    positive: tuple[tuple[float, float], ...] = ()
    negative: tuple[tuple[float, float], ...] = ()
    box: tuple[float, float, float, float] | None = None

    @property
    def empty(self) -> bool:
        return not self.positive and not self.negative and self.box is None

    def points_and_labels(self) -> tuple[list[tuple[float, float]], list[int]]:
        """All clicks with SAM's labels: 1 subject, 0 not the subject. (SAM's prompt tokens carry
        no order, so grouping them changes nothing.)"""
        labels = [1] * len(self.positive) + [0] * len(self.negative)
        return list(self.positive) + list(self.negative), labels

    def add_point(self, x: float, y: float, positive: bool = True) -> Prompts:
        p = (float(x), float(y))
        if positive:
            return Prompts(self.positive + (p,), self.negative, self.box)
        return Prompts(self.positive, self.negative + (p,), self.box)

    def with_box(self, box: tuple[float, float, float, float] | None) -> Prompts:
        return Prompts(self.positive, self.negative, box)

    def check(self, shape) -> Prompts:
        """Raise PromptError unless every click is inside a ``shape`` (H, W) image and the box
        has a size; the box is clipped to the image."""
        h, w = int(shape[0]), int(shape[1])
        if self.empty:
            raise PromptError("nothing to select: give at least one click or a box")
        for kind, pts in (("click", self.positive), ("exclude click", self.negative)):
            for x, y in pts:
                if not (0 <= x < w and 0 <= y < h):
                    raise PromptError(
                        f"{kind} at {x:g},{y:g} is outside the {w}x{h} image (x 0..{w - 1}, y 0..{h - 1})"
                    )
        box = self.box
        if box is not None:
            x0, y0, x1, y1 = box
            if x1 <= x0 or y1 <= y0:
                raise PromptError(f"the box {_box_text(box)} has zero size")
            cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if cx1 - cx0 < 1 or cy1 - cy0 < 1:
                raise PromptError(f"the box {_box_text(box)} is outside the {w}x{h} image")
            box = (cx0, cy0, cx1, cy1)
        return Prompts(self.positive, self.negative, box)


def _box_text(box) -> str:
    x0, y0, x1, y1 = box
    return f"{x0:g},{y0:g},{x1 - x0:g},{y1 - y0:g} (x,y,w,h)"


def parse_xy(text: str, what: str = "--click") -> tuple[float, float]:
    parts = [p.strip() for p in str(text).split(",")]
    try:
        x, y = (float(p) for p in parts)
    except ValueError:
        raise PromptError(f"{what} {text!r}: expected X,Y in image pixels, e.g. 120,340") from None
    return x, y


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``X,Y,W,H`` -> (x0, y0, x1, y1)."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        x, y, w, h = (float(p) for p in parts)
    except ValueError:
        raise PromptError(
            f"--box {text!r}: expected X,Y,W,H in image pixels, e.g. 40,30,200,260"
        ) from None
    if w <= 0 or h <= 0:
        raise PromptError(f"--box {text!r} has zero size (W and H must be positive)")
    return x, y, x + w, y + h
