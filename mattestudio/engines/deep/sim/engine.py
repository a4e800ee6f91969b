"""The "sim" engine: SIM's matting network fed by its semantic-trimap classifier.

Preprocessing as published: pad bottom/right by 1..8 px with the edge-repeating mirror; 11-channel
input (normalised RGB, 6 click channels, 2-channel trimap) plus the 20-channel smap. The classifier
and click channels run on the whole padded canvas (only patches with unknown pixels are
classified), so cropping to the unknown region changes only the matting network's context.
"""

from __future__ import annotations

from mattestudio.engines.base import EngineInfo, Param
from mattestudio.engines.deep.engine import DeepEngine, common_params
from mattestudio.progress import scaled


class SimEngine(DeepEngine):
    engine_name = "sim"
    label = "SIM"
    multiple = 8
    align = 8  # output stride 8
    has_whole_stage = True
    info = EngineInfo(
        name="sim",
        display_name="Semantic Image Matting",
        kind="deep",
        description="Semantic Image Matting (Sun, Tang, Tai, CVPR 2021): a semantic classifier picks the "
        "matte type per region (hair, fur, glass, smoke, ...) and guides a ResNet-50 matting network.",
        params=common_params(128)
        + (
            Param(
                "classifier",
                None,
                "Semantic classifier checkpoint file or imported name "
                "(default: the first imported sim-classifier).",
                "Classifier",
            ),
            Param(
                "fb_head",
                False,
                "Also take foreground colours from SIM's F/B head (whether the released "
                "models trained it is unverified; off = estimate colours from the matte).",
                "Use F/B head",
            ),
        ),
        produces_foreground=False,
        needs_checkpoint=True,
        progressive=False,  # the click channels and patch sizes are in absolute pixels
    )

    @classmethod
    def unavailable_reason(cls, checkpoint=None, classifier=None, **_ignored):
        from mattestudio.engines.deep.kinds import availability

        # registry.create passes only checkpoint=; with an explicit checkpoint a missing classifier
        # is reported when the engine loads (a CheckpointError with the same fix).
        reason = availability("sim", checkpoint)
        if reason is None and (classifier is not None or checkpoint is None):
            reason = availability("sim", classifier, "classifier", "SIM classifier")
        return reason

    @property
    def out_channels(self):
        return 4 if self.params.get("fb_head") else 1

    def load(self) -> None:
        from mattestudio.engines.deep import checkpoints as C
        from mattestudio.engines.deep.build import load_module
        from mattestudio.engines.deep.inference import cached_model

        paths = (
            C.resolve("sim", self.params.get("checkpoint")),
            C.resolve("sim", self.params.get("classifier"), role="classifier"),
        )
        if getattr(self, "_paths", None) == paths:
            return
        dev = self.torch_device

        def loader(path, role):
            def load():
                kind, state = C.load_for("sim", path, role)
                return load_module(kind, state, path, dev)

            return load

        self._model = cached_model("sim", paths[0], dev, loader(paths[0], "matting"))
        self._classifier = cached_model(
            "sim-classifier", paths[1], dev, loader(paths[1], "classifier")
        )
        self._paths = paths

    def canvas_pad(self, h, w):
        return (h // 8 + 1) * 8 - h, (w // 8 + 1) * 8 - w, "symmetric"

    def prepare(self, image) -> None:
        self._cams: dict = {}  # per-patch classifier CAMs: valid for this image only
        super().prepare(image)

    def reset(self) -> None:
        super().reset()
        self._cams = {}

    def _run(self, module, *arrays, **kw):
        from mattestudio.engines.deep import inference as inf

        prec, dev = self.precision, self.torch_device
        module = inf.prepared(module, prec, dev)  # bf16 weights converted once, not per call
        fmt, dtype = inf.memory_format(prec), inf.input_dtype(prec, dev)
        ts = [inf.to_tensor(a, dev, fmt, dtype) for a in arrays]
        h, w = arrays[0].shape[-3:-1]
        with inf.oom_guard(dev, f"{w}x{h}"), inf.autocast(dev, prec):
            return module(*ts, **kw)

    def whole_inputs(self, img, img_n, tri, progress, cancel):
        from mattestudio.engines.deep.sim import semantic as S

        sub = scaled(progress, 0.0, 0.3)
        key = (getattr(self, "_paths", None), self.precision, str(self.torch_device))
        cams = getattr(self, "_cams", None)
        if cams is None or cams.get("key") != key:
            cams = self._cams = {"key": key}
        smap = S.semantic_trimap(self._classifier, img_n, tri, self._run, sub, cancel, cache=cams)
        return {
            "img": img,
            "img_n": img_n,
            "two": S.two_channel(tri),
            "clicks": S.clicks(tri),
            "smap": smap,
        }

    def run_window(self, feeds, win):
        import numpy as np

        y0, y1, x0, x1 = win
        cut = [feeds[k][y0:y1, x0:x1] for k in ("img", "two", "img_n", "clicks", "smap")]
        alpha, fb = self._run(self._model, *cut, want_fb=bool(self.params.get("fb_head")))
        out = alpha[0].permute(1, 2, 0).float().cpu().numpy()
        if fb is not None:
            out = np.concatenate([out, fb[0, :3].permute(1, 2, 0).float().cpu().numpy()], axis=2)
        return out
