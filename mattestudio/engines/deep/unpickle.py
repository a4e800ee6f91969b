"""Converter for FOAM's pickled full-model release (a whole nn.DataParallel inside a dict).

torch's weights-only unpickler does the reading, so nothing in the file can call arbitrary code.
The only extra globals it may name are the FOAM/torch module and optimizer classes, and each of
those is mapped to ``_Inert``: an object that just stores the state it is given. Any other global
(os.system, builtins.eval, ...) is refused with a message naming it. The weights are then read out
of the inert object tree (``_parameters`` / ``_buffers`` / ``_modules``).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import torch

from mattestudio.errors import CheckpointError

# Module paths whose classes may appear in FOAM's file; they become inert stand-ins.
_INERT_PREFIXES = ("models.", "torch.nn.modules.", "torch.nn.parallel.", "torch.nn.backends.", "torch.optim.")
_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")
_MAX_ROUNDS = 64


class _Inert:
    """Stands in for a class named in the file. Constructing or filling it runs no file code."""

    def __init__(self, *args, **kwargs):
        self.__dict__["_args"] = args

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)


def _plain_dict(*_args):
    return {}


def _safe_load(path: Path):
    """torch.load(weights_only=True) with inert stand-ins for the classes the file names."""
    extra: dict[str, object] = {}
    for _ in range(_MAX_ROUNDS):
        allow = [(obj, name) for name, obj in extra.items()]
        try:
            with torch.serialization.safe_globals(allow):
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises several types for refused globals
            m = _GLOBAL_RE.search(str(exc))
            if m is None:
                raise
            name = m.group(1)
            if name in extra:
                raise
            if name.startswith(_INERT_PREFIXES) and not name.rsplit(".", 1)[-1].startswith("_"):
                extra[name] = _Inert
            elif name in ("collections.defaultdict", "builtins.dict"):
                extra[name] = _plain_dict  # optimizer state; the contents are never used
            else:
                raise CheckpointError(
                    f"refused: the file would need to run code ({name}) to load; mattestudio never runs code "
                    "from checkpoint files", path) from None
    raise CheckpointError("refused: too many unknown classes in the file", path)


def _tensors(obj, prefix: str, out: OrderedDict) -> None:
    d = obj.__dict__ if isinstance(obj, _Inert) else {}
    for group in ("_parameters", "_buffers"):
        for k, v in (d.get(group) or {}).items():
            if isinstance(v, torch.Tensor):
                out[prefix + k] = v.detach()
    for k, child in (d.get("_modules") or {}).items():
        if child is not None:
            _tensors(child, f"{prefix}{k}.", out)


def convert_full_model(path) -> OrderedDict:
    """The DIMModel state dict inside FOAM's pickled checkpoint. Raises CheckpointError."""
    path = Path(path)
    obj = _safe_load(path)
    model = obj.get("model") if isinstance(obj, dict) else obj
    if not isinstance(model, _Inert):
        raise CheckpointError("no pickled model object found in the file", path)
    modules = model.__dict__.get("_modules") or {}
    if set(modules) == {"module"}:  # nn.DataParallel: take .module
        model = modules["module"]
    state: OrderedDict = OrderedDict()
    _tensors(model, "", state)
    if not state:
        raise CheckpointError("the pickled model holds no weights", path)
    return state
