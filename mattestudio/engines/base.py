"""The engine interface.

An engine is a session: ``prepare(image)`` once per image (caches what does not depend on the
trimap), then ``predict(trimap)`` as often as the trimap changes. Engines return raw outputs;
``mattestudio.pipeline.run_matting`` forces known regions, fills a missing foreground and wraps
the result, so every front end (editor, CLI, API) behaves the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mattestudio.types import CancelToken, ProgressFn


def clipped32(values: np.ndarray) -> np.ndarray:
    """``values`` clipped to [0, 1] as a new float32 array, in one pass. ``np.clip(a, 0,
    1).astype(np.float32)`` makes a float64 temporary first: at 12 MP its 96 MB of fresh pages
    cost 50-550 ms on the test machine against 15-18 ms for this (same numbers)."""
    out = np.empty(values.shape, np.float32)
    np.clip(values, 0, 1, out=out, casting="same_kind")
    return out


@dataclass(frozen=True)
class Param:
    """One engine parameter, described for the CLI (--param name=value) and the editor's panel."""

    name: str
    default: Any
    help: str
    label: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple = ()

    def coerce(self, value: Any) -> Any:
        """Convert a user value (often a string) to the parameter's type and check its range."""
        from mattestudio.errors import MattestudioError

        kind = type(self.default)
        try:
            if kind is bool and isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                v = value.lower() in ("1", "true", "yes", "on")
            elif self.default is None:
                v = value
            else:
                v = kind(value)
        except (TypeError, ValueError):
            raise MattestudioError(
                f"parameter {self.name}: {value!r} is not a valid {kind.__name__}"
            ) from None
        if self.choices and v not in self.choices:
            raise MattestudioError(
                f"parameter {self.name}: {v!r} is not one of {', '.join(map(str, self.choices))}"
            )
        if self.minimum is not None and v < self.minimum:
            raise MattestudioError(
                f"parameter {self.name}: {v} is below the minimum {self.minimum}"
            )
        if self.maximum is not None and v > self.maximum:
            raise MattestudioError(
                f"parameter {self.name}: {v} is above the maximum {self.maximum}"
            )
        return v


@dataclass(frozen=True)
class EngineInfo:
    """What the CLI's `engines` listing and the editor's engine panel show."""

    name: str
    display_name: str
    kind: str  # "classical" or "deep"
    description: str
    params: tuple[Param, ...] = ()
    produces_foreground: bool = False
    needs_checkpoint: bool = False
    #: True when a coarse (downscaled) run gives a useful preview; the editor's Live mode uses it.
    progressive: bool = True
    extra: dict = field(default_factory=dict)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        from mattestudio.errors import MattestudioError

        known = ", ".join(p.name for p in self.params) or "none"
        raise MattestudioError(
            f"engine {self.name} has no parameter {name!r} (parameters: {known})"
        )

    def resolve_params(self, given: dict) -> dict:
        """Defaults updated with ``given`` (coerced and range-checked)."""
        out = {p.name: p.default for p in self.params}
        for k, v in given.items():
            out[k] = self.param(k).coerce(v)
        return out


@runtime_checkable
class MattingEngine(Protocol):
    """What callers (pipeline, CLI, batch, editor) may rely on. EngineBase gives every default."""

    info: EngineInfo
    #: The resolved parameters (defaults updated with the user's), recorded in each result.
    params: dict[str, Any]
    #: How the last predict() solved ("full", "incremental", ...); "" when the engine does not say.
    last_mode: str

    @classmethod
    def unavailable_reason(cls, **kwargs: Any) -> str | None:
        """None when the engine can run here; otherwise why not and how to fix it."""

    def forget_previous(self) -> None:
        """Drop what an incremental engine kept from the last predict(), so the next is exact."""

    @property
    def device(self) -> str:
        """'cpu', 'cuda:0 (NVIDIA ...)', ... for display."""

    def prepare(self, image: np.ndarray) -> None:
        """Cache per-image work. ``image``: float32 H x W x 3 RGB in [0, 1]."""

    def predict(
        self,
        trimap: np.ndarray,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``trimap``: uint8 {0,128,255} H x W. Returns (alpha float32 H x W, foreground or None).

        Raises Cancelled when ``cancel`` is set, RuntimeError if prepare() was not called.
        """

    def reset(self) -> None:
        """Forget the prepared image."""


class EngineBase:
    """Convenience base: stores params, tracks the prepared image, and gives the defaults of the
    optional parts of the contract, so callers never need hasattr()."""

    info: EngineInfo
    last_mode: str = ""

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = self.info.resolve_params(params)
        self._image: np.ndarray | None = None

    @classmethod
    def unavailable_reason(cls, **kwargs: Any) -> str | None:
        return None

    def forget_previous(self) -> None:
        return None

    @property
    def device(self) -> str:
        return "cpu"

    def prepare(self, image: np.ndarray) -> None:
        self._image = image

    def reset(self) -> None:
        self._image = None

    def _require_image(self) -> np.ndarray:
        if self._image is None:
            raise RuntimeError(f"{self.info.name}: predict() called before prepare(image)")
        return self._image

    def _check_trimap(self, trimap: np.ndarray, cancel: CancelToken | None = None) -> np.ndarray:
        """``trimap`` as an array of the prepared image's size with something known in it;
        TrimapError otherwise; Cancelled if ``cancel`` was already set (the start of a predict)."""
        from mattestudio.errors import TrimapError
        from mattestudio.types import BACKGROUND, FOREGROUND

        image = self._require_image()
        trimap = np.asarray(trimap)
        if trimap.shape != image.shape[:2]:
            raise TrimapError(
                f"trimap is {trimap.shape[1]}x{trimap.shape[0]} but the prepared image is "
                f"{image.shape[1]}x{image.shape[0]}"
            )
        if not ((trimap == FOREGROUND).any() or (trimap == BACKGROUND).any()):
            raise TrimapError(
                f"{self.info.display_name} needs some foreground or background in the trimap"
            )
        if cancel is not None:
            cancel.raise_if_cancelled()
        return trimap
