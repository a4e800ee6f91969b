"""Reading, recognising, importing and resolving checkpoints. Loading is always weights-only.

Imported checkpoints live in models_dir() as ``NAME.safetensors`` with their kind, source file
name and sha256 in the safetensors metadata. Imports are atomic: the file is written beside its
final name and renamed, so a failure never leaves a half-written model behind.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from mattestudio.engines.deep import kinds as K
from mattestudio.engines.deep.build import check_state
from mattestudio.errors import CheckpointError

_REFUSED = ("Unsupported global", "unsupported GLOBAL", "Weights only load failed")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _torch_load(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except UnicodeDecodeError:  # files pickled by Python 2 (some HUO releases)
        return torch.load(path, map_location="cpu", weights_only=True, encoding="latin1")


def _unwrap(obj, path: Path) -> OrderedDict:
    """Bare state dict or {"state_dict": ...}; strip one leading ``module.``; tensors only."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(
            "holds no state dict (expected a dict of tensors or a 'state_dict' entry)", path
        )
    tensors = OrderedDict((k, v) for k, v in obj.items() if isinstance(v, torch.Tensor))
    if not tensors:
        raise CheckpointError("holds no tensors", path)
    if all(k.startswith("module.") for k in tensors):
        tensors = OrderedDict((k[len("module.") :], v) for k, v in tensors.items())
    return tensors


def read_state(path) -> tuple[OrderedDict, dict]:
    """(state dict, safetensors metadata or {}) from a .safetensors or torch file. CheckpointError on failure."""
    path = Path(str(path)).expanduser()
    if not path.exists():
        raise CheckpointError("checkpoint file not found", path)
    if not path.is_file():
        raise CheckpointError("is not a file", path)
    if path.stat().st_size == 0:
        raise CheckpointError("checkpoint file is empty", path)
    with open(path, "rb") as f:
        magic = f.read(9)
    try:
        if path.suffix == ".safetensors" or magic[8:9] == b"{":  # 8-byte header length, then JSON
            from safetensors import safe_open

            with safe_open(str(path), framework="pt", device="cpu") as f:
                meta = dict(f.metadata() or {})
                state = OrderedDict((k, f.get_tensor(k)) for k in f.keys())  # noqa: SIM118 (safe_open is not iterable)
            return _unwrap(state, path), meta
        try:
            obj = _torch_load(path)
        except Exception as exc:
            if not any(s in str(exc) for s in _REFUSED):
                raise
            from mattestudio.engines.deep.unpickle import convert_full_model

            return _unwrap(convert_full_model(path), path), {"converted_from": "pickled full model"}
        return _unwrap(obj, path), {}
    except CheckpointError:
        raise
    except MemoryError:
        raise CheckpointError("not enough memory to read the checkpoint", path) from None
    except (
        zipfile.BadZipFile,
        EOFError,
        OSError,
        RuntimeError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        IndexError,
        Exception,
    ) as exc:
        detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"cannot read checkpoint: the file is truncated, corrupt or not a PyTorch/"
            f"safetensors checkpoint ({detail})",
            path,
        ) from None


def identify(state: dict, path, kind: str | None = None) -> str:
    """The checkpoint's kind: the one given (checked) or the one recognised from its keys."""
    return identify_variant(state, path, kind)[0]


def identify_variant(
    state: dict, path, kind: str | None = None, filename: str | None = None
) -> tuple[str, str]:
    """(kind, why): like identify, and where keys and shapes leave the architecture open (HUO
    V1.5 / v1.4), settled by the published file name (``filename``, default: ``path``'s)."""
    found = K.recognise(state)
    given = kind is not None
    if kind is None:
        if found is None:
            raise CheckpointError(
                "cannot tell which network this checkpoint belongs to; pass --kind "
                f"({', '.join(K.KINDS)})",
                path,
            )
        kind = found
    elif kind not in K.KINDS:
        raise CheckpointError(f"unknown kind {kind!r}; known kinds: {', '.join(K.KINDS)}")
    if kind == "vitmatte":
        raise CheckpointError(
            "ViTMatte weights need their config.json: import the Hugging Face model folder "
            "that holds both (`mattestudio models import DIR`)",
            path,
        )
    name = filename if filename is not None else Path(str(path)).name
    kind, why = K.variant(kind, state, name, given)
    check_state(kind, state, path)
    return kind, why


@dataclass(frozen=True)
class Imported:
    name: str
    kind: str
    path: Path
    sha256: str
    why: str = ""  # how the kind was decided (shown by `models import/list/info`)


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")


def store_model(
    kind: str, name: str | None, tensors: dict, source: str, digest: str, extra: dict[str, str]
) -> tuple[str, Path]:
    """Write ``tensors`` atomically as NAME.safetensors in the models directory, with the kind,
    source file name, sha256, import time and ``extra`` as metadata; (name, path). Without a
    name, the kind (then KIND-2, KIND-3, ...); an existing name is refused, never overwritten."""
    from safetensors.torch import save_file

    from mattestudio.core.atomic import write_with_atomic

    dest_dir = K.models_dir()
    if name is not None and not _NAME_RE.match(name):
        raise CheckpointError(f"model name {name!r} must be letters, digits, '.', '_' or '-'")
    if name is None:
        name, n = kind, 2
        while (dest_dir / (name + K.SUFFIX)).exists():
            name, n = f"{kind}-{n}", n + 1
    dest = dest_dir / (name + K.SUFFIX)
    if dest.exists():
        raise CheckpointError(
            f"a model named {name!r} already exists in {dest_dir}; choose another --name"
        )
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(
            f"cannot create the models directory: {exc.strerror or exc}", dest_dir
        ) from None
    meta = {
        "mattestudio_kind": kind,
        "source": source,
        "sha256": digest,
        "imported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
    write_with_atomic(dest, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
    return name, dest


def import_checkpoint(src, kind: str | None = None, name: str | None = None) -> Imported:
    """Validate ``src`` strictly and store it as NAME.safetensors in the models directory."""
    src = Path(str(src)).expanduser()
    extra: dict[str, str] = {}
    if src.is_dir():  # a Hugging Face model folder (ViTMatte)
        from mattestudio.engines.deep.vitmatte import folder as HF

        found, cfg, state = HF.read_folder(src)
        if kind not in (None, found):
            raise CheckpointError(f"is a {found} model folder, not {kind}", src)
        kind, why = found, f"config.json says model_type {cfg.get('model_type')!r}"
        digest = sha256(HF.weights_file(src))
        extra[HF.CONFIG_META] = json.dumps(cfg)
        if name is None and _NAME_RE.match(src.name) and found in src.name.lower():
            name = src.name  # e.g. vitmatte-small-composition-1k
    else:
        state, _ = read_state(src)
        kind, why = identify_variant(state, src, kind)
        digest = sha256(src)
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
    name, dest = store_model(
        kind, name, tensors, src.name, digest, {"mattestudio_why": why, **extra}
    )
    return Imported(name, kind, dest, digest, why)


def resolve(engine: str, checkpoint=None, role: str = "matting") -> Path:
    """A checkpoint path: ``checkpoint`` as a file or imported name, else the first imported one."""
    label = "SIM classifier" if role == "classifier" else f"{engine.upper()} checkpoint"
    if checkpoint:
        p = Path(str(checkpoint)).expanduser()
        if p.is_file():
            return p
        named = K.models_dir() / (str(checkpoint) + K.SUFFIX)
        if named.is_file():
            return named
        raise CheckpointError(
            f"{label} {checkpoint!r} is neither a file nor an imported model name "
            f"(models directory: {K.models_dir()}); {K.IMPORT_HINT}"
        )
    found = K.installed(K.kinds_for(engine, role))
    if not found:
        raise CheckpointError(f"no {label} found in {K.models_dir()}; {K.IMPORT_HINT}")
    return found[0].path


def load_for(engine: str, path: Path, role: str = "matting") -> tuple[str, OrderedDict]:
    """(kind, state) of ``path``, checked to belong to ``engine`` and ``role``."""
    state, meta = read_state(path)
    kind = meta.get("mattestudio_kind") or None
    if kind == "huo-stage1" and "mattestudio_why" not in meta:
        # imported before variants were told apart (then v1.4 files became huo-stage1 too):
        # decide again from the source file's name
        kind, _ = identify_variant(state, path, None, meta.get("source", ""))
    else:
        kind, _ = identify_variant(state, path, kind)
    info = K.KINDS[kind]
    if info.engine != engine or info.role != role:
        want = (
            "SIM semantic classifier"
            if role == "classifier"
            else f"{engine.upper()} matting network"
        )
        raise CheckpointError(f"is a {kind} checkpoint ({info.description}), not a {want}", path)
    return kind, state
