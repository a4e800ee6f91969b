"""ViTMatte as transformers builds it: ``VitMatteForImageMatting`` from a stored config + weights."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from mattestudio.errors import CheckpointError


def build(cfg: dict, state: dict, source, device: torch.device) -> torch.nn.Module:
    """The network with exactly ``state`` (strict: every tensor present, none left over)."""
    from transformers import VitMatteForImageMatting

    from mattestudio.engines.deep.vitmatte.folder import config_object

    config = config_object(cfg, source)
    with torch.device("meta"):  # no random initialisation: every weight comes from ``state``
        model = VitMatteForImageMatting(config)
    try:
        model.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in state.items()},
            strict=True,
            assign=True,
        )
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(
            f"not a valid vitmatte checkpoint: {' '.join(first[1:3])[:300]}", source
        ) from None
    return model.eval().to(device)


def load(path: Path, device: torch.device) -> torch.nn.Module:
    """An imported NAME.safetensors (config in its metadata) or a model folder."""
    from mattestudio.engines.deep.vitmatte.folder import CONFIG_META, is_model_folder, read_folder

    if is_model_folder(path):
        _, cfg, state = read_folder(path)
        return build(cfg, state, path, device)
    from mattestudio.engines.deep.checkpoints import read_state

    state, meta = read_state(path)
    if meta.get("mattestudio_kind") != "vitmatte" or CONFIG_META not in meta:
        raise CheckpointError(
            "is not an imported ViTMatte model (import its Hugging Face folder with "
            "`mattestudio models import DIR`)",
            path,
        )
    try:
        cfg = json.loads(meta[CONFIG_META])
    except ValueError:
        raise CheckpointError("its stored ViTMatte config is not valid JSON", path) from None
    return build(cfg, state, path, device)
