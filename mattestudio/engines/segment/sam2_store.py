"""Importing a SAM 2 folder into the models directory, and building ``Sam2Model`` from it.

An imported SAM 2 model is one ``NAME.safetensors`` file like the other kinds: the image model's
tensors, with the sub-configs and the processor settings as JSON in the safetensors metadata.
Weights are read weights-only (safetensors, or ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from mattestudio.engines.deep import kinds as K
from mattestudio.engines.segment.sam2_files import (
    SUB_CONFIGS,
    Preprocess,
    preprocess_from_dict,
    read_folder,
)
from mattestudio.errors import CheckpointError, EngineUnavailable

KIND = "sam2"
INSTALL_HINT = "install the optional dependency with `pip install 'mattestudio[sam2]'`"


def _transformers():
    try:
        import transformers
    except ImportError:
        raise EngineUnavailable(f"SAM 2 needs the transformers package; {INSTALL_HINT}") from None
    return transformers


def build_config(sub_configs: dict):
    t = _transformers()
    try:
        return t.Sam2Config(**{k: dict(sub_configs[k]) for k in SUB_CONFIGS})
    except Exception as exc:  # a malformed or unknown config: transformers raises many types
        raise CheckpointError(f"the SAM 2 config is not usable ({exc})") from None


def check_size(config, spec: Preprocess, source) -> None:
    """The processor must resize to the size the network was built for."""
    side = config.prompt_encoder_config.image_size
    side = tuple(side) if isinstance(side, (list, tuple)) else (side, side)
    if (spec.height, spec.width) != side:
        raise CheckpointError(
            f"preprocessor_config.json resizes to {spec.width}x{spec.height} but the network "
            f"expects {side[1]}x{side[0]}",
            source,
        )


def expected_shapes(config) -> dict[str, tuple[int, ...]]:
    """Every tensor ``Sam2Model(config)`` holds, built on the meta device (no memory, no init)."""
    import torch

    t = _transformers()
    with torch.device("meta"):
        model = t.Sam2Model(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def select_state(state: dict, config, source) -> OrderedDict:
    """The image model's tensors out of an image or video checkpoint; strict on names and shapes."""
    want = expected_shapes(config)
    missing = [k for k in want if k not in state]
    if missing:
        raise CheckpointError(
            f"is not a SAM 2 checkpoint matching its config.json: {len(missing)} tensors missing "
            f"(first: {missing[0]})",
            source,
        )
    wrong = [k for k, s in want.items() if tuple(state[k].shape) != s]
    if wrong:
        k = wrong[0]
        raise CheckpointError(
            f"tensor {k} has shape {tuple(state[k].shape)}, config.json implies {want[k]}", source
        )
    return OrderedDict((k, state[k]) for k in want)


@dataclass(frozen=True)
class ImportedSam2:
    name: str
    path: Path
    parameters: int
    dropped: int  # tensors of the video model not needed for images


def import_folder(folder, name: str | None = None) -> ImportedSam2:
    """Check a Hugging Face SAM 2 folder and store it as NAME.safetensors in the models dir."""
    from mattestudio.engines.deep.checkpoints import read_state, sha256, store_model

    info = read_folder(folder)
    config = build_config(info.config)
    check_size(config, preprocess_from_dict(info.preprocessor), info.path)
    state, _ = read_state(info.weights)
    selected = select_state(state, config, info.weights)
    meta = {
        "sam2_config": json.dumps(info.config),
        "sam2_preprocessor": json.dumps(info.preprocessor),
    }
    tensors = {k: v.detach().contiguous() for k, v in selected.items()}
    name, dest = store_model(KIND, name, tensors, info.path.name, sha256(info.weights), meta)
    params = sum(v.numel() for v in tensors.values())
    return ImportedSam2(name, dest, params, len(state) - len(selected))


def resolve(model=None) -> Path:
    """A folder or an imported file for ``model`` (a folder, a file or an imported name); with
    None the first imported SAM 2 model. CheckpointError when there is none."""
    if model:
        p = Path(str(model)).expanduser()
        if p.is_dir() or p.is_file():
            return p
        named = K.models_dir() / (str(model) + K.SUFFIX)
        if named.is_file():
            return named
        raise CheckpointError(
            f"SAM 2 model {str(model)!r} is neither a folder, a file nor an imported model name "
            f"(models directory: {K.models_dir()})"
        )
    found = K.installed(KIND)
    if not found:
        raise CheckpointError(f"no SAM 2 model imported in {K.models_dir()}")
    return found[0].path


def load(source):
    """(Sam2Model in eval mode on the CPU, Preprocess) from a folder or an imported file."""
    import torch

    from mattestudio.engines.deep.checkpoints import read_state

    t = _transformers()
    path = Path(str(source)).expanduser()
    if path.is_dir():
        info = read_folder(path)
        sub, pre = info.config, info.preprocessor
        state, _ = read_state(info.weights)
        where = info.weights
    else:
        state, meta = read_state(path)
        if meta.get("mattestudio_kind") != KIND or "sam2_config" not in meta:
            raise CheckpointError(
                "is not an imported SAM 2 model; import its Hugging Face folder with "
                "`mattestudio models import DIR`",
                path,
            )
        try:
            sub = json.loads(meta["sam2_config"])
            pre = json.loads(meta.get("sam2_preprocessor") or "{}")
        except ValueError:
            raise CheckpointError("has corrupt SAM 2 metadata; import it again", path) from None
        where = path
    config = build_config(sub)
    spec: Preprocess = preprocess_from_dict(pre, where)
    check_size(config, spec, where)
    state = select_state(state, config, where)
    with torch.device("meta"):
        model = t.Sam2Model(config)
    # assign=True keeps the loaded tensors instead of copying into meta ones; buffers that are
    # not saved (none in transformers 5.x) would stay on meta, so check.
    model.load_state_dict(state, strict=True, assign=True)
    left = [n for n, b in model.named_buffers() if b.is_meta]
    if left:
        raise CheckpointError(f"cannot build Sam2Model: buffer {left[0]} is not in the weights")
    return model.eval(), spec
