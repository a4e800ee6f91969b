"""Converter for FOAM's pickled full-model release (a whole nn.DataParallel inside a dict).

torch's weights-only loader cannot read it: the file names FOAM's own classes, and its legacy
(pre-zip) format stores module classes as persistent ids. So the file is read with a restricted
unpickler instead, whose ``find_class`` is the only way a pickle can reach a callable:

- tensor rebuild functions, storage types, OrderedDict and a few builtin containers resolve to the
  real (data-only) objects;
- FOAM's ``models.*`` classes and torch's module/optimizer classes resolve to ``_Inert``, which
  only stores the state it is given, so no method of those classes ever runs;
- every other global (os.system, builtins.eval, subprocess.Popen, ...) is refused with a
  CheckpointError naming it, before anything is called.

The weights are then read out of the inert object tree (``_parameters`` / ``_buffers``).
"""

from __future__ import annotations

import collections
import pickle
import warnings
from collections import OrderedDict
from pathlib import Path

import torch

from mattestudio.errors import CheckpointError

_INERT_PREFIXES = (
    "models.",
    "torch.nn.modules.",
    "torch.nn.parallel.",
    "torch.nn.backends.",
    "torch.optim.",
)
_BUILTINS = {
    "dict": dict,
    "list": list,
    "tuple": tuple,
    "set": set,
    "frozenset": frozenset,
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "bytes": bytes,
    "complex": complex,
    "object": object,
}


class _Inert:
    """Stands in for a class named in the file. Constructing or filling it runs no file code."""

    dump_patches = False  # read by torch's legacy loader when it compares saved module sources

    def __init__(self, *args, **kwargs):
        self.__dict__["_args"] = args

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)


def _plain_dict(*_args):
    return {}  # stands in for defaultdict (optimizer state, never used)


def _reconstructor(cls, base, state=None):
    """copyreg._reconstructor, limited to inert stand-ins (protocol 0/1 object pickles)."""
    if cls is not _Inert:
        raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}")
    return _Inert()


def _allowed(module: str, name: str):
    full = f"{module}.{name}"
    if module == "torch._utils" and name in (
        "_rebuild_tensor",
        "_rebuild_tensor_v2",
        "_rebuild_parameter",
        "_rebuild_parameter_with_state",
    ):
        return getattr(torch._utils, name)
    if module == "torch" and (name.endswith("Storage") or name in ("device", "Size")):
        obj = getattr(torch, name, None)
        if obj is not None:
            return obj
    if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    if full == "collections.OrderedDict":
        return collections.OrderedDict
    if full == "collections.defaultdict":
        return _plain_dict
    if module in ("builtins", "__builtin__") and name in _BUILTINS:
        return _BUILTINS[name]
    if full == "copyreg._reconstructor" or full == "copy_reg._reconstructor":
        return _reconstructor
    if full.startswith(_INERT_PREFIXES) and name.isidentifier() and not name.startswith("_"):
        return _Inert
    return None


class _Refused(pickle.UnpicklingError):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        obj = _allowed(module, name)
        if obj is None:
            raise _Refused(f"{module}.{name}")
        return obj


class _PickleModule:
    """The ``pickle_module`` handed to torch.load: only the restricted unpickler is reachable."""

    __name__ = "mattestudio_restricted_pickle"
    Unpickler = RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(f, **kwargs):
        return RestrictedUnpickler(f, **kwargs).load()


def _restricted_load(path: Path):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # SourceChangeWarning for the stand-in classes, FutureWarning
            # weights_only=False only selects the pickle_module path; that module's find_class
            # above decides what may be constructed, so nothing from the file can run.
            return torch.load(
                path, map_location="cpu", weights_only=False, pickle_module=_PickleModule
            )
    except _Refused as exc:
        raise CheckpointError(
            f"refused: the file would need to run code ({exc.name}) to load; mattestudio never "
            "runs code from checkpoint files",
            path,
        ) from None


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
    """The model state dict inside a pickled full-model checkpoint (FOAM). Raises CheckpointError."""
    path = Path(path)
    obj = _restricted_load(path)
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
