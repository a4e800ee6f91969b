"""The "vitmatte" engine: ViTMatte (Yao et al. 2023) run by transformers' VitMatteForImageMatting.

Pre- and post-processing are ours, matching transformers' VitMatteImageProcessor exactly (its
default class needs torchvision): RGB in [0, 1] normalised with mean 0.5 and std 0.5, trimap / 255
as the 4th channel, both zero-padded at the bottom and right to a multiple of 32; the alpha is
cropped back. Like DIM and SIM it runs on the unknown region's box plus context, in overlapping
tiles above ``tile`` pixels (the global-attention blocks' memory grows with the square of the
area), with progress and cancel between tiles.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from mattestudio.engines.base import EngineInfo
from mattestudio.engines.deep.engine import ImageTrimapEngine, common_params


def _params():
    # 1024 px per pass: a global-attention block's score matrix then takes 0.4 GB (ViTMatte-S)
    # to 0.8 GB (-B) in fp32; it grows with the square of the tile area.
    return tuple(replace(p, default=1024) if p.name == "tile" else p for p in common_params(128))


class VitMatteEngine(ImageTrimapEngine):
    engine_name = "vitmatte"
    label = "ViTMatte"
    multiple = 32  # the processor pads to 32 (16-px patches, 4 stride-2 detail convs)
    align = 32
    info = EngineInfo(
        name="vitmatte",
        display_name="ViTMatte",
        kind="deep",
        description="ViTMatte (Yao et al. 2023): a plain vision transformer with a light detail "
        "decoder, through the transformers library. Weights: Hugging Face folders such as "
        "hustvl/vitmatte-small-composition-1k (`mattestudio models pull`).",
        params=_params(),
        produces_foreground=False,
        needs_checkpoint=True,
    )

    @classmethod
    def unavailable_reason(cls, checkpoint=None, **_ignored) -> str | None:
        from mattestudio.engines.deep.kinds import availability
        from mattestudio.engines.deep.vitmatte.folder import is_model_folder

        if checkpoint and is_model_folder(checkpoint):
            return None
        return availability("vitmatte", checkpoint, label="ViTMatte model")

    def prepare(self, image: np.ndarray) -> None:
        super().prepare(image)
        # ViTMatte's own normalisation (mean 0.5, std 0.5), not the ImageNet one of DIM/SIM
        self._image_n = (np.asarray(image, np.float32) - 0.5) / 0.5

    def _source(self) -> tuple[Path, Path]:
        """(what to load, the file whose size and time key the model cache)."""
        from mattestudio.engines.deep import checkpoints as C
        from mattestudio.engines.deep.vitmatte.folder import is_model_folder, weights_file

        ck = self.params.get("checkpoint")
        if ck and is_model_folder(ck):
            folder = Path(str(ck)).expanduser()
            return folder, weights_file(folder)
        path = C.resolve("vitmatte", ck)
        return path, path

    def load(self) -> None:
        from mattestudio.engines.deep.inference import cached_model
        from mattestudio.engines.deep.vitmatte.network import load

        src, key = self._source()
        if getattr(self, "_path", None) == src and getattr(self, "_model", None) is not None:
            return
        dev = self.torch_device
        self._model = cached_model("vitmatte", key, dev, lambda: load(src, dev))
        self._path = src

    def canvas_pad(self, h, w):
        # zeros in normalised space and trimap 0, as the processor pads
        return (-h) % 32, (-w) % 32, "constant"

    def forward(self, model, x):
        return model(pixel_values=x).alphas
