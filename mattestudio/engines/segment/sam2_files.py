"""A SAM 2 model as Hugging Face publishes it: a folder with config.json, model.safetensors and
preprocessor_config.json. Reading the JSON and the processor settings needs no torch.

The image model (``Sam2Model``) needs the three sub-configs below; the published repositories
hold the video model (``model_type: sam2_video``), whose extra memory modules are not used for
single images and are dropped at import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mattestudio.errors import CheckpointError

SUB_CONFIGS = ("vision_config", "prompt_encoder_config", "mask_decoder_config")
MODEL_TYPES = ("sam2", "sam2_video")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

# Sam2ImageProcessor's class defaults (transformers 5.x), used for keys the folder's
# preprocessor_config.json leaves out.
_DEFAULT_SIZE = 1024
_DEFAULT_MEAN = (0.485, 0.456, 0.406)  # IMAGENET_DEFAULT_MEAN
_DEFAULT_STD = (0.229, 0.224, 0.225)  # IMAGENET_DEFAULT_STD
_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}  # PIL resampling codes


@dataclass(frozen=True)
class Preprocess:
    """What Sam2ImageProcessor does to an image, as its config defines it."""

    height: int = _DEFAULT_SIZE
    width: int = _DEFAULT_SIZE
    resample: str = "bilinear"
    rescale_factor: float = 1 / 255
    mean: tuple[float, float, float] = _DEFAULT_MEAN
    std: tuple[float, float, float] = _DEFAULT_STD
    do_resize: bool = True
    do_rescale: bool = True
    do_normalize: bool = True
    mask_threshold: float = 0.0  # post_process_masks' default

    @property
    def target_size(self) -> int:
        """Sam2Processor scales click and box coordinates to this square (size["height"])."""
        return self.height


def preprocess_from_dict(d: dict, source=None) -> Preprocess:
    size = d.get("size") or {}
    if isinstance(size, int):
        size = {"height": size, "width": size}
    resample = d.get("resample", 2)
    if resample not in _RESAMPLE:
        raise CheckpointError(
            f"preprocessor_config.json: resample {resample!r} is not supported "
            f"(expected one of {sorted(_RESAMPLE)})",
            source,
        )
    try:
        mean = tuple(float(v) for v in d.get("image_mean", _DEFAULT_MEAN))
        std = tuple(float(v) for v in d.get("image_std", _DEFAULT_STD))
        spec = Preprocess(
            height=int(size.get("height", _DEFAULT_SIZE)),
            width=int(size.get("width", _DEFAULT_SIZE)),
            resample=_RESAMPLE[resample],
            rescale_factor=float(d.get("rescale_factor", 1 / 255)),
            mean=mean,  # type: ignore[arg-type]
            std=std,  # type: ignore[arg-type]
            do_resize=bool(d.get("do_resize", True)),
            do_rescale=bool(d.get("do_rescale", True)),
            do_normalize=bool(d.get("do_normalize", True)),
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"preprocessor_config.json is malformed ({exc})", source) from None
    if len(spec.mean) != 3 or len(spec.std) != 3 or min(spec.std) <= 0:
        raise CheckpointError(
            "preprocessor_config.json: image_mean/image_std need 3 values", source
        )
    if spec.height < 16 or spec.width < 16:
        raise CheckpointError(f"preprocessor_config.json: size {size} is too small", source)
    return spec


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CheckpointError(f"cannot read: {exc.strerror or exc}", path) from None
    except ValueError as exc:
        raise CheckpointError(f"is not valid JSON ({exc})", path) from None
    if not isinstance(data, dict):
        raise CheckpointError("is not a JSON object", path)
    return data


@dataclass(frozen=True)
class Sam2Folder:
    path: Path
    config: dict  # the three sub-configs of Sam2Config
    preprocessor: dict  # preprocessor_config.json, or {} for the processor's defaults
    weights: Path


def read_folder(folder) -> Sam2Folder:
    """Check that ``folder`` holds a SAM 2 model; CheckpointError naming the problem if not."""
    folder = Path(str(folder)).expanduser()
    if not folder.is_dir():
        raise CheckpointError("is not a folder", folder)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(
            "has no config.json; expected a Hugging Face SAM 2 folder "
            "(config.json, model.safetensors, preprocessor_config.json)",
            folder,
        )
    cfg = _read_json(cfg_path)
    if cfg.get("model_type") not in MODEL_TYPES:
        raise CheckpointError(
            f"model_type is {cfg.get('model_type')!r}, not a SAM 2 model ({' or '.join(MODEL_TYPES)})",
            cfg_path,
        )
    missing = [k for k in SUB_CONFIGS if not isinstance(cfg.get(k), dict)]
    if missing:
        raise CheckpointError(f"lacks {', '.join(missing)}", cfg_path)
    weights = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if weights is None:
        raise CheckpointError(
            f"has no weights ({' or '.join(WEIGHT_FILES)}); sharded downloads are not supported",
            folder,
        )
    pre_path = folder / "preprocessor_config.json"
    pre = _read_json(pre_path) if pre_path.is_file() else {}
    preprocess_from_dict(pre, pre_path)  # fail now, not at the first click
    return Sam2Folder(folder, {k: cfg[k] for k in SUB_CONFIGS}, pre, weights)
