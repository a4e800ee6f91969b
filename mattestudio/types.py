"""Data conventions, written once.

- Image: float32, H x W x 3, RGB, values in [0, 1].
- Trimap: uint8, H x W, exactly {0, 128, 255} (background, unknown, foreground).
- Alpha: float32, H x W, in [0, 1].
- Foreground: float32, H x W x 3, in [0, 1], or None when the engine does not estimate it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

BACKGROUND = 0
UNKNOWN = 128
FOREGROUND = 255

#: progress(fraction in [0, 1], message)
ProgressFn = Callable[[float, str], None]


class CancelToken:
    """Thread-safe cancellation flag, checked by engines between stages or iterations."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            from mattestudio.errors import Cancelled

            raise Cancelled()


@dataclass(frozen=True)
class MattingResult:
    """What one engine run produced. Arrays follow the conventions in this module's docstring."""

    alpha: np.ndarray
    foreground: np.ndarray
    engine: str
    params: dict = field(default_factory=dict)
    seconds: float = 0.0
    #: Identifies the request that produced this result (the editor drops stale ones).
    request_id: int | None = None
    #: Downscale factor used for a coarse preview (1.0 = full resolution).
    scale: float = 1.0
    #: Live (bounded per-stroke solves): boxes (y0, y1, x0, x1) of the alpha that are still an
    #: approximation; empty when the whole matte is settled.
    approximate: tuple[tuple[int, int, int, int], ...] = ()
    #: Live: the engine keeps refining the approximate boxes; further results follow.
    refining: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        return self.alpha.shape[:2]
