"""The "dim" engine: VGG-16 encoder-decoder on RGB + trimap (HUO, MMAGIC or FOAM weights).

Input: ImageNet-normalised RGB and trimap/255 (4 channels). Padding: bottom/right to a multiple of
32 with the edge-excluding mirror (MMAGIC's published rule). HUO's own script resizes to a
multiple of 32 instead; padding keeps full resolution and an unblurred trimap, so mattestudio pads
for HUO too (documented deviation). FOAM runs at any size unpadded, as published.
"""

from __future__ import annotations

from mattestudio.engines.base import EngineInfo
from mattestudio.engines.deep.engine import ImageTrimapEngine, common_params


class DimEngine(ImageTrimapEngine):
    engine_name = "dim"
    align = 32  # five 2x2 max-pools
    label = "DIM"
    info = EngineInfo(
        name="dim",
        display_name="Deep Image Matting",
        kind="deep",
        description="Deep Image Matting (Xu et al. 2017): a VGG-16 encoder-decoder with refinement, using the "
        "published community weights (OpenMMLab stage 3, huochaitiantang V1.5, foamliu).",
        params=common_params(192),
        produces_foreground=False,
        needs_checkpoint=True,
    )

    def load(self) -> None:
        from mattestudio.engines.deep import checkpoints as C
        from mattestudio.engines.deep.build import load_module
        from mattestudio.engines.deep.inference import cached_model

        path = C.resolve("dim", self.params.get("checkpoint"))
        if getattr(self, "_path", None) == path and getattr(self, "_model", None) is not None:
            return
        dev = self.torch_device
        holder = {}

        def loader():
            kind, state = C.load_for("dim", path)
            holder["kind"] = kind
            return load_module(kind, state, path, dev)

        self._model = cached_model("dim", path, dev, loader)
        self._path = path
        self.multiple = self._model.multiple

    def canvas_pad(self, h, w):
        m = self.multiple
        return (-h) % m, (-w) % m, "reflect" if m > 1 else "edge"

    def forward(self, model, x):
        return model(x)
