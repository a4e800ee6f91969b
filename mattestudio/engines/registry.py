"""Engine registry: one explicit table of names -> engine classes, imported on demand.

Engine modules import only numpy and the core at module level (pymatting and torch inside
methods), so listing engines stays fast and needs neither.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from mattestudio.errors import EngineUnavailable, UnknownEngine


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "module:Class"
    requires: tuple[str, ...] = ()


ENTRIES: dict[str, Entry] = {}


def register(name: str, target: str, requires: tuple[str, ...] = ()) -> None:
    ENTRIES[name] = Entry(name, target, requires)


register("closed-form", "mattestudio.engines.fastcf.engine:FastClosedFormEngine", ("numba",))
register(
    "information-flow",
    "mattestudio.engines.infoflow.engine:InformationFlowEngine",
    ("numba", "scipy", "pykdtree"),
)
register(
    "closed-form-pymatting", "mattestudio.engines.classical:ClosedFormPymatting", ("pymatting",)
)
register("knn", "mattestudio.engines.classical:KnnEngine", ("pymatting",))
register("large-kernel", "mattestudio.engines.classical:LargeKernelEngine", ("pymatting",))
register("random-walk", "mattestudio.engines.classical:RandomWalkEngine", ("pymatting",))
register("learning-based", "mattestudio.engines.classical:LearningBasedEngine", ("pymatting",))
register("shared-sampling", "mattestudio.engines.classical:SharedSamplingEngine", ("pymatting",))
register("dim", "mattestudio.engines.deep.dim.engine:DimEngine", ("torch", "safetensors"))
register("sim", "mattestudio.engines.deep.sim.engine:SimEngine", ("torch", "safetensors"))
register(
    "vitmatte",
    "mattestudio.engines.deep.vitmatte.engine:VitMatteEngine",
    ("torch", "safetensors", "transformers"),
)

DEFAULT_ENGINE = "information-flow"


def names() -> list[str]:
    return list(ENTRIES)


def engine_class(name: str):
    entry = ENTRIES.get(name)
    if entry is None:
        raise UnknownEngine(f"unknown engine {name!r}; available engines: {', '.join(ENTRIES)}")
    module, cls = entry.target.split(":")
    return getattr(importlib.import_module(module), cls)


def info(name: str):
    cls = engine_class(name)
    inf = cls.info
    if (
        inf.name != name
    ):  # an alias (closed-form -> its implementation) keeps the name the user chose
        from dataclasses import replace

        inf = replace(inf, name=name)
    return inf


def unavailable_reason(name: str, **kwargs) -> str | None:
    """None when the engine can run; otherwise why not and how to fix it."""
    entry = ENTRIES.get(name)
    if entry is None:
        raise UnknownEngine(f"unknown engine {name!r}; available engines: {', '.join(ENTRIES)}")
    for module in entry.requires:
        if importlib.util.find_spec(module) is None:
            return f"the Python package {module!r} is not installed (pip install {module})"
    return engine_class(name).unavailable_reason(**kwargs)


def create(name: str, **params):
    """A new engine instance. Raises UnknownEngine or EngineUnavailable with the fix."""
    reason = unavailable_reason(
        name, **{k: v for k, v in params.items() if k in ("checkpoint", "classifier")}
    )
    if reason:
        raise EngineUnavailable(f"engine {name} is not available: {reason}")
    cls = engine_class(name)
    engine = cls(**params)
    if getattr(engine, "info", None) is not None and engine.info.name != name:
        engine.info = info(name)
    return engine
