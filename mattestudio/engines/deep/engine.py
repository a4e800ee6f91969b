"""Common engine plumbing for the deep engines (torch is imported only when an engine runs).

prepare(image) keeps the image and its normalised copy; predict(trimap) quantises the trimap,
pads the canvas as the network was published, runs the network on the unknown region's bounding
box plus ``context`` pixels (in overlapping tiles when larger than ``tile``) and crops back.
"""

from __future__ import annotations

import numpy as np

from mattestudio.engines.base import EngineBase, Param
from mattestudio.progress import scaled
from mattestudio.types import CancelToken, ProgressFn


def common_params(context: int) -> tuple:
    """Parameters every deep engine takes; ``context`` is the engine's receptive-field margin."""
    return (
        Param(
            "checkpoint",
            None,
            "Checkpoint file or imported model name (default: the first imported one).",
            "Checkpoint",
        ),
        Param(
            "device",
            "auto",
            "Torch device: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.",
            "Device",
        ),
        Param(
            "precision",
            "fp32",
            "Arithmetic: fp32 (default, full precision), bf16 (CPUs with bf16 support: about "
            "3x faster, alpha off by up to a few hundredths, see docs/benchmarks-deep.md), fp16 "
            "(CUDA) or auto (the fastest of these on this device).",
            "Precision",
            choices=("fp32", "bf16", "fp16", "auto"),
        ),
        Param(
            "roi",
            True,
            "Run only on the unknown region's bounding box plus context.",
            "Crop to unknown region",
        ),
        Param(
            "context",
            context,
            "Pixels of context around the unknown region and around each tile.",
            "Context (px)",
            0,
            2048,
        ),
        Param(
            "tile",
            2048,
            "Largest side of one network pass; larger regions run in overlapping tiles "
            "(0 = never tile). Lower it when memory runs out.",
            "Tile size (px)",
            0,
            16384,
        ),
    )


class DeepEngine(EngineBase):
    engine_name = ""
    label = ""

    def __init__(self, **params):
        super().__init__(**params)
        self._device = None
        self._image_n: np.ndarray | None = None

    # ---------------------------------------------------------------- availability (no torch)
    @classmethod
    def unavailable_reason(cls, checkpoint=None, **_ignored) -> str | None:
        from mattestudio.engines.deep.kinds import availability

        return availability(cls.engine_name, checkpoint)

    # ---------------------------------------------------------------- device
    @property
    def device(self) -> str:
        from mattestudio.engines.deep.device import describe

        return describe(self.torch_device)

    @property
    def torch_device(self):
        if self._device is None:
            from mattestudio.engines.deep.device import select_device

            self._device = select_device(self.params.get("device", "auto"))
        return self._device

    @property
    def precision(self) -> str:
        from mattestudio.engines.deep.inference import resolve_precision

        return resolve_precision(self.params.get("precision", "auto"), self.torch_device)

    # ---------------------------------------------------------------- session
    def prepare(self, image: np.ndarray) -> None:
        from mattestudio.engines.deep.inference import normalise

        super().prepare(image)
        self._image_n = normalise(np.asarray(image, np.float32))  # reused for every trimap
        self.load()  # load (or fetch from the cache) now, so the first predict is not slower

    def reset(self) -> None:
        super().reset()
        self._image_n = None

    def load(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def canvas_pad(self, h: int, w: int) -> tuple[int, int, str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def predict(
        self,
        trimap: np.ndarray,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ):
        import torch

        from mattestudio.engines.deep import inference as inf

        image = self._require_image()
        self.load()
        tri = inf.quantise(np.asarray(trimap))
        h, w = tri.shape
        if (h, w) != image.shape[:2]:
            from mattestudio.errors import TrimapError

            raise TrimapError(
                f"trimap is {w}x{h} but the image is {image.shape[1]}x{image.shape[0]}"
            )
        box = inf.unknown_box(tri)
        if box is None:  # nothing to solve
            return (tri > 128).astype(np.float32), None
        if not self.params.get("roi", True):
            box = (0, h, 0, w)
        ph, pw, mode = self.canvas_pad(h, w)
        canvas = (h + ph, w + pw)
        img = inf.pad_to(np.asarray(image, np.float32), ph, pw, mode)
        assert self._image_n is not None  # set by prepare()
        img_n = inf.pad_to(self._image_n, ph, pw, mode)
        tri_c = inf.pad_to(tri, ph, pw, mode)
        with torch.inference_mode():
            feeds = self.whole_inputs(img, img_n, tri_c, progress, cancel)
            context = int(self.params.get("context", 0))
            windows = inf.plan_windows(
                box, canvas, int(self.params.get("tile", 0)), context, self.multiple, self.align
            )
            out = inf.run_windows(
                windows,
                canvas,
                self.out_channels,
                lambda win: self.run_window(feeds, win),
                scaled(progress, 0.3 if self.has_whole_stage else 0.0, 1.0),
                cancel,
                self.label,
                band=context // 4,
            )
        out = out[:h, :w]
        alpha = np.where(tri == 128, np.clip(out[..., 0], 0, 1), tri / 255.0).astype(np.float32)
        fg = None
        if self.out_channels > 1:
            fg = np.clip(out[..., 1:4], 0, 1)
            inside = np.zeros((h, w), bool)
            inside[box[0] : box[1], box[2] : box[3]] = True
            fg = np.where(inside[..., None], fg, image).astype(np.float32)
        return alpha, fg

    # hooks for subclasses
    multiple = 1
    align = 1  # the network's total pooling stride: crops start on this grid
    out_channels = 1
    has_whole_stage = False

    def whole_inputs(self, img, img_n, tri, progress, cancel) -> dict:
        return {"img": img, "img_n": img_n, "tri": tri}

    def run_window(self, feeds: dict, win) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError


class ImageTrimapEngine(DeepEngine):
    """A network fed one 4-channel input, normalised RGB and trimap/255, that returns alpha:
    subclasses give only ``forward``."""

    def forward(self, model, x):  # pragma: no cover - overridden
        """The alpha tensor (N, 1, H, W) of ``model`` for the input ``x``."""
        raise NotImplementedError

    def whole_inputs(self, img, img_n, tri, progress, cancel):
        x = np.concatenate([img_n, (tri.astype(np.float32) / 255.0)[..., None]], axis=2)
        return {"x": x}

    def run_window(self, feeds, win):
        from mattestudio.engines.deep import inference as inf

        y0, y1, x0, x1 = win
        prec, dev = self.precision, self.torch_device
        model = inf.prepared(
            self._model, prec, dev
        )  # a converted copy: the cached model stays fp32
        fmt = inf.memory_format(prec)
        x = inf.to_tensor(feeds["x"][y0:y1, x0:x1], dev, fmt, inf.input_dtype(prec, dev))
        with inf.oom_guard(dev, f"{x1 - x0}x{y1 - y0}"), inf.autocast(dev, prec):
            alpha = self.forward(model, x)
        return alpha[0].permute(1, 2, 0).float().cpu().numpy()
