"""Hugging Face model folders (config.json + model.safetensors or pytorch_model.bin).

Reading goes through transformers' own ``from_pretrained`` (local files only, weights-only
loading: safetensors, or ``torch.load(weights_only=True)`` for a pickled .bin), so checkpoint key
renames between transformers versions are the library's business; every missing, unexpected or
mis-shaped tensor is then refused here, as for the other kinds. An import stores the weights as
one NAME.safetensors with the config JSON in its metadata, like every other imported model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mattestudio.errors import CheckpointError

#: config.json ``model_type`` -> mattestudio kind
MODEL_TYPES = {"vitmatte": "vitmatte"}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
CONFIG_META = "hf_config"  # safetensors metadata entry holding config.json


def read_config(folder: Path) -> dict:
    """config.json of a model folder, checked to describe a kind mattestudio knows."""
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(
            "is a folder without config.json: not a Hugging Face model folder", folder
        )
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"config.json is not valid JSON ({exc})", folder) from None
    if not isinstance(cfg, dict) or cfg.get("model_type") not in MODEL_TYPES:
        found = cfg.get("model_type") if isinstance(cfg, dict) else None
        raise CheckpointError(
            f"config.json describes model_type {found!r}; supported: {', '.join(MODEL_TYPES)}",
            folder,
        )
    return cfg


def weights_file(folder: Path) -> Path:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    if any(folder.glob("*.safetensors.index.json")) or any(folder.glob("*.bin.index.json")):
        raise CheckpointError(
            "sharded checkpoints are not supported (ViTMatte fits one file)", folder
        )
    raise CheckpointError(f"holds no weights ({' or '.join(WEIGHT_FILES)})", folder)


def config_object(cfg: dict, source):
    """A transformers config from the JSON dict; a bad field is a CheckpointError."""
    from transformers import VitMatteConfig

    try:
        return VitMatteConfig.from_dict(dict(cfg))
    except Exception as exc:  # strict-dataclass validation, missing sub-config, ...
        detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"config.json is not a valid ViTMatte config ({detail})", source
        ) from None


def read_folder(folder) -> tuple[str, dict, dict]:
    """(kind, config dict, state dict) of a model folder, loaded weights-only and checked strictly."""
    folder = Path(str(folder)).expanduser()
    if not folder.is_dir():
        raise CheckpointError("is not a folder", folder)
    cfg = read_config(folder)
    weights = weights_file(folder)
    if weights.stat().st_size == 0:
        raise CheckpointError("checkpoint file is empty", weights)
    from transformers import VitMatteForImageMatting
    from transformers.utils import logging as hf_logging

    config = config_object(cfg, folder)
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # our commands print their own one-line progress
    try:
        loaded: Any = VitMatteForImageMatting.from_pretrained(
            str(folder),
            config=config,
            local_files_only=True,
            weights_only=True,
            output_loading_info=True,
        )
        model, info = loaded
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"cannot read the model: truncated, corrupt or unsafe weights ({detail})", weights
        ) from None
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    problems = []
    for what in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        items = [str(k) for k in (info.get(what) or [])]
        if items:
            more = f" (and {len(items) - 4} more)" if len(items) > 4 else ""
            problems.append(f"{what.replace('_', ' ')}: {', '.join(items[:4])}{more}")
    if problems:
        raise CheckpointError("not a valid vitmatte checkpoint: " + "; ".join(problems), weights)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    return MODEL_TYPES[cfg["model_type"]], json.loads(model.config.to_json_string()), state


def is_model_folder(path) -> bool:
    p = Path(str(path)).expanduser()
    return p.is_dir() and (p / "config.json").is_file()
