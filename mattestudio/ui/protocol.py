"""The messages between the window, the runner's worker thread and the engine process.

Jobs go one way (window -> runner -> engine process), events come back (engine process ->
worker thread -> window): ``Progress`` any number of times, ``Result`` once per finished stage
(a Live matting job may deliver a coarse preview, then full resolution), ``Failed`` at most
once, and always ``Done`` last. Every job kind travels the same path and produces the same
events. All are plain frozen dataclasses (picklable, Qt-free), so nothing is a positional tuple
or a string tag. Between the processes, big arrays travel as files in shared memory
(``shared`` fields; mattestudio.ui.shared_arrays), not in the pickle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mattestudio.types import MattingResult

#: (y0, y1, x0, x1), half-open, in image pixels.
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class SharedArray:
    """A big array that travels as a file in shared memory (mattestudio.ui.shared_arrays)."""

    path: str
    shape: tuple[int, ...]
    dtype: str


#: (field name, SharedArray) pairs: on the wire, those fields of a message's dataclass hold
#: empty placeholders and their arrays are in the files.
Shared = tuple[tuple[str, SharedArray], ...]


@dataclass(frozen=True)
class MattingJob:
    """Run an engine on a snapshot of the document."""

    engine: str
    params: dict
    #: float32 H x W x 3, read-only; None on the wire when the engine process already has it.
    image: np.ndarray | None
    image_version: int
    trimap: np.ndarray  # private copy, uint8 H x W
    #: The document's trimap revision this job was built from; its results carry it back.
    revision: int
    #: Solve at this downscale first and deliver it as a preview (slow engines in Live mode).
    #: Skipped when the engine can re-solve incrementally from its previous result.
    coarse_scale: float | None = None
    #: Start from scratch: incremental engines drop their previous solve (Run, not Live).
    exact: bool = False
    job_id: int = 0


@dataclass(frozen=True)
class GrabCutJob:
    """Segment with OpenCV GrabCut; the result's value is a ``GrabCutOutput``."""

    image: np.ndarray | None
    image_version: int
    rect: tuple[int, int, int, int] | None  # x, y, w, h
    fg_marks: np.ndarray | None  # bool H x W
    bg_marks: np.ndarray | None
    band: int
    revision: int
    iterations: int = 5
    smart: bool = False  # the band follows the edge (core.trimap.smart_band)
    job_id: int = 0


Job = MattingJob | GrabCutJob


@dataclass(frozen=True)
class GrabCutOutput:
    segmentation: np.ndarray  # bool H x W, True = subject
    trimap: np.ndarray  # uint8 H x W, with the edge band and the marks applied


@dataclass(frozen=True)
class Progress:
    job_id: int
    fraction: float
    message: str


@dataclass(frozen=True)
class Result:
    """One finished stage. ``value``: a MattingResult or a GrabCutOutput.

    ``box``: where a matting result differs from the previous full-resolution one (None: it may
    differ anywhere). ``patch``: on the wire from the engine process only, ``value``'s arrays
    are the crops at ``box`` of the full arrays; the parent side pastes them into its copy.
    """

    job_id: int
    revision: int
    value: MattingResult | GrabCutOutput
    box: Box | None = None
    #: The job id of the full-resolution result ``box`` is relative to.
    basis: int | None = None
    patch: bool = False
    #: On the wire: ``value``'s big arrays, in shared memory.
    shared: Shared = ()


@dataclass(frozen=True)
class Failed:
    job_id: int
    message: str


@dataclass(frozen=True)
class Done:
    job_id: int
    cancelled: bool = False


Event = Progress | Result | Failed | Done


@dataclass(frozen=True)
class Envelope:
    """A job on the wire to the engine process, with the key of the image it refers to."""

    job: Job
    image_key: int
    #: ``job``'s big arrays (the image), in shared memory.
    shared: Shared = ()


@dataclass(frozen=True)
class Stop:
    reason: str = field(default="")
