"""A Qt-free SAM 2 predictor: the image embedding once per image (progress, cancel, cached),
then a mask per prompt in tens of milliseconds (the idea of segment-anything's SamPredictor)."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from mattestudio.engines.segment import preprocess as pp
from mattestudio.engines.segment.prompts import Prompts
from mattestudio.engines.segment.sam2_files import Preprocess
from mattestudio.types import CancelToken, ProgressFn

PRECISIONS = ("fp32", "bf16")
# The mask decoder is many small operations: on a busy CPU, several intra-op threads spend most
# of a click waiting for each other (benchmarks/bench_sam2.py measured 7x slower with 2 threads
# than with 1 on a loaded 2-core machine), so clicks run on one thread unless asked otherwise.
CLICK_THREADS = 1


@contextlib.contextmanager
def _torch_threads(n: int | None):
    """Run with ``n`` intra-op threads (None: unchanged), restoring the previous count."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _autocast(precision: str):
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass(frozen=True)
class MaskResult:
    mask: np.ndarray  # bool H x W: the subject
    score: float  # the model's predicted IoU for that mask
    seconds: float


def image_key(image: np.ndarray) -> str:
    """A content hash: the same pixels reuse the cached embedding."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((image.shape, image.dtype.str)).encode())
    h.update(np.ascontiguousarray(image).data)
    return h.hexdigest()


class Sam2Predictor:
    """``set_image`` computes (or reuses) the embedding; ``predict`` turns prompts into a mask.

    Thread-safe: one lock guards the model, so a worker can embed while the GUI thread waits.
    """

    def __init__(
        self,
        model,
        spec: Preprocess,
        precision: str = "fp32",
        name: str = "sam2",
        click_threads: int | None = CLICK_THREADS,
        speedups: bool = True,
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}")
        self.model = model
        # oneDNN matmuls and fewer passes over memory (cpu_speedups.py); False: stock Sam2Model.
        self.speedups: list[str] = []
        if speedups:
            from mattestudio.engines.segment.cpu_speedups import accelerate

            self.speedups = accelerate(model)
        self.click_threads = click_threads
        self.spec = spec
        self.precision = precision
        self.name = name
        self.embeddings_computed = 0  # how many times the image encoder ran
        self._lock = threading.RLock()
        self._key: str | None = None
        self._shape: tuple[int, int] | None = None
        self._embeddings: list[torch.Tensor] | None = None
        self._blocks = list(model.vision_encoder.backbone.blocks)

    @classmethod
    def load(cls, model=None, precision: str = "fp32", speedups: bool = True) -> Sam2Predictor:
        """From a folder, an imported file or name, or the first imported SAM 2 model."""
        from mattestudio.engines.segment import sam2_store

        path = sam2_store.resolve(model)
        net, spec = sam2_store.load(path)
        name = path.name[: -len(".safetensors")] if path.suffix == ".safetensors" else path.name
        return cls(net, spec, precision, name, speedups=speedups)

    @property
    def image_shape(self) -> tuple[int, int] | None:
        return self._shape

    def has_image(self, key: str) -> bool:
        return self._key == key and self._embeddings is not None

    def set_image(
        self,
        image: np.ndarray,
        key: str | None = None,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ) -> bool:
        """Embed ``image`` (H x W x 3, float [0, 1] or uint8) unless it is the cached one.
        Returns True when the encoder ran. Raises Cancelled when ``cancel`` fires."""
        key = key or image_key(image)
        with self._lock:
            if self.has_image(key):
                return False
            pv = pp.pixel_values(image, self.spec)
            n = len(self._blocks)

            def hook(i):
                def before_block(_module, _args):
                    if cancel is not None:
                        cancel.raise_if_cancelled()
                    if progress is not None:
                        progress(i / (n + 1), "SAM 2: embedding the image")

                return before_block

            handles = [b.register_forward_pre_hook(hook(i)) for i, b in enumerate(self._blocks)]
            try:
                with torch.inference_mode(), _autocast(self.precision):
                    emb = self.model.get_image_embeddings(pv)
            finally:
                for h in handles:
                    h.remove()
            self._embeddings = [e.float() for e in emb]
            self._key, self._shape = key, (int(image.shape[0]), int(image.shape[1]))
            self.embeddings_computed += 1
            if progress is not None:
                progress(1.0, "SAM 2: ready")
            return True

    def low_res(self, prompts: Prompts, multimask: bool | None = None):
        """(low-resolution logits of every candidate, predicted IoUs) for ``prompts`` on the
        embedded image. ``multimask`` None: three candidates for a single click, else one."""
        if self._embeddings is None or self._shape is None:
            raise RuntimeError("set_image() first")
        prompts = prompts.check(self._shape)
        pts, labels = prompts.points_and_labels()
        if multimask is None:
            multimask = len(pts) == 1 and prompts.box is None
        kwargs = {}
        if pts:
            xy = pp.scale_points(pts, self._shape, self.spec)
            kwargs["input_points"] = torch.from_numpy(xy)[None, None]
            kwargs["input_labels"] = torch.tensor(labels, dtype=torch.int64)[None, None]
        if prompts.box is not None:
            box = pp.scale_points(np.reshape(prompts.box, (2, 2)), self._shape, self.spec)
            kwargs["input_boxes"] = torch.from_numpy(box.reshape(1, 1, 4))
        with (
            self._lock,
            _torch_threads(self.click_threads),
            torch.inference_mode(),
            _autocast(self.precision),
        ):
            out = self.model(
                image_embeddings=self._embeddings, multimask_output=multimask, **kwargs
            )
        return out.pred_masks[0, 0].float(), out.iou_scores[0, 0].float()

    def predict(self, prompts: Prompts, multimask: bool | None = None) -> MaskResult:
        """The subject's mask at the image's size: the best-scoring candidate, upsampled as
        Sam2ImageProcessor.post_process_masks does, thresholded at the config's mask threshold."""
        t0 = time.perf_counter()
        logits, scores = self.low_res(prompts, multimask)
        best = int(torch.argmax(scores))
        assert self._shape is not None
        with _torch_threads(self.click_threads):
            up = pp.upsample_logits(logits[best], self._shape)
        mask = (up > self.spec.mask_threshold).numpy()
        return MaskResult(mask, float(scores[best]), time.perf_counter() - t0)
