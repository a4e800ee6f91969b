"""Checkpoint kinds, their recognition from key names, and the models directory. No torch here:
the engine registry reads this to tell whether weights are present without importing torch."""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

IMPORT_HINT = "import a checkpoint with `mattestudio models import PATH`, or pass --checkpoint"
SUFFIX = ".safetensors"


@dataclass(frozen=True)
class Kind:
    name: str
    engine: str  # the engine that uses it ("dim", "sim")
    role: str  # "matting" or "classifier"
    description: str


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "mmagic-stage3", "dim", "matting", "DIM, OpenMMLab (mmediting) stage 3 with refinement"
        ),
        Kind(
            "mmagic-stage1", "dim", "matting", "DIM, OpenMMLab (mmediting) stage 1, no refinement"
        ),
        Kind(
            "huo-stage1", "dim", "matting", "DIM, huochaitiantang port, stage 1 (V1.5 'skip' model)"
        ),
        Kind(
            "huo-stage1-noskip",
            "dim",
            "matting",
            "DIM, huochaitiantang port, stage 1 without skips (v1.4 'stage1_sad_54.4.pth')",
        ),
        Kind(
            "huo-stage3", "dim", "matting", "DIM, huochaitiantang port, stage 2/3 with refinement"
        ),
        Kind(
            "foam",
            "dim",
            "matting",
            "DIM, foamliu port (converted from the pickled full-model release)",
        ),
        Kind("sim", "sim", "matting", "SIM matting network (Composition-1K or SIMD model)"),
        Kind(
            "sim-classifier",
            "sim",
            "classifier",
            "SIM semantic-trimap classifier (ResNet-50, 20 classes)",
        ),
        Kind("vitmatte", "vitmatte", "matting", "ViTMatte (Yao et al. 2023), Hugging Face folder"),
        # Issue 14: prompted segmentation (engines/segment), imported from a Hugging Face folder.
        Kind("sam2", "sam2", "segmentation", "SAM 2.1 prompted segmentation (clicks/box -> mask)"),
    )
}


def recognise(keys) -> str | None:
    """The kind whose signature keys are present, or None. Shapes are checked later, strictly."""
    keys = set(keys)
    if "backbone.encoder.layer1.0.weight" in keys:
        return "mmagic-stage3" if "refiner.refine_pred.weight" in keys else "mmagic-stage1"
    if "conv1_1.weight" in keys and "deconv1.weight" in keys:
        return "huo-stage3" if "refine_pred.weight" in keys else "huo-stage1"
    if "down1.conv1.cbr_unit.0.weight" in keys:
        return "foam"
    if "encoder.conv1_side.weight" in keys:
        return "sim"
    if "fc.weight" in keys and "layer4.0.conv1.weight" in keys and "conv1.weight" in keys:
        return "sim-classifier"
    if "decoder.convstream.convs.0.conv.weight" in keys:
        return "vitmatte"  # its weights alone are not enough: the folder's config.json is needed
    if "mask_decoder.conv_s0.weight" in keys:
        return "sam2"  # needs its folder's config.json: imported with `models import DIR`
    if "decoder.ppm.0.1.weight" in keys:
        return "fba"  # recognised so the message can say it is not supported yet
    return None


#: HUO releases that the keys and shapes cannot tell apart (3x3 conv6, 42 keys), by file name.
HUO_RELEASES = {
    "stage1_skip_sad_52.9": ("huo-stage1", "HUO's V1.5 release (skip connections)"),
    "stage1_sad_54.4": ("huo-stage1-noskip", "HUO's v1.4 release (no skip connections)"),
}


def _release(filename: str) -> str | None:
    """The HUO_RELEASES key a (possibly browser-renamed, e.g. 'x (1).pth') file name carries."""
    low = Path(filename).name.lower()
    return next((stem for stem in HUO_RELEASES if stem in low), None)


def variant(kind: str, state, filename: str = "", given: bool = False) -> tuple[str, str]:
    """(kind, why): settle layouts that share keys and shapes but not the architecture.

    HUO's stage-1 files with a 3x3 conv6 are either V1.5 (skips) or v1.4 (no skips); only the
    published file name tells them apart. A 1x1 conv6 always means a pre-2019-09 file, no skips."""
    why = "given with --kind" if given else "recognised from its keys and shapes"
    if not kind.startswith("huo-"):
        return kind, why
    w = state.get("conv6_1.weight")  # a tensor, or a shape list from a safetensors header
    if w is not None and tuple(getattr(w, "shape", w)[-2:]) == (1, 1):
        return kind, why + "; conv6_1 is 1x1: a release before 2019-09 (v1.3 or older), no skips"
    if given or kind == "huo-stage3":
        if kind == "huo-stage3":
            why += "; 3x3 conv6: the V1.5 code's layout (skip connections)"
        return kind, why
    stem = _release(filename) if filename else None
    if stem is not None:
        found, what = HUO_RELEASES[stem]
        return found, f"file name {Path(filename).name!r} is {what}"
    return kind, (
        f"ASSUMED: 3x3 conv6 and file name {Path(filename).name!r} is not a known release, so "
        "taken as the V1.5 skip model; if it is v1.4's stage1_sad_54.4.pth, import it again "
        "with --kind huo-stage1-noskip"
    )


def models_dir() -> Path:
    """$MATTESTUDIO_MODELS, else the per-user data directory's ``models`` folder."""
    env = os.environ.get("MATTESTUDIO_MODELS")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("mattestudio", appauthor=False)) / "models"


def read_safetensors_metadata(path: Path) -> dict:
    """The ``__metadata__`` of a safetensors file, read from its JSON header (no torch needed)."""
    return read_safetensors_header(path).get("__metadata__", {}) or {}


def read_safetensors_header(path: Path) -> dict:
    """The whole JSON header: ``__metadata__`` and each tensor's dtype and shape."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError("file too short for a safetensors header")
        (n,) = struct.unpack("<Q", head)
        if n > 100_000_000:
            raise ValueError("implausible safetensors header size")
        return json.loads(f.read(n))


@dataclass(frozen=True)
class Installed:
    name: str
    kind: str
    path: Path
    meta: dict


def installed(kind_filter=None) -> list[Installed]:
    """Imported checkpoints, oldest import first. ``kind_filter``: a kind name or a set of them."""
    d = models_dir()
    if not d.is_dir():
        return []
    if isinstance(kind_filter, str):
        kind_filter = {kind_filter}
    out = []
    for p in d.iterdir():
        if p.name.startswith(".") or not p.name.endswith(SUFFIX) or not p.is_file():
            continue
        try:
            meta = read_safetensors_metadata(p)
        except (OSError, ValueError):
            continue  # not a readable safetensors file: not a usable model
        kind = meta.get("mattestudio_kind", "")
        if kind_filter is None or kind in kind_filter:
            out.append(Installed(p.name[: -len(SUFFIX)], kind, p, meta))
    out.sort(key=lambda m: (m.meta.get("imported", ""), m.name))
    return out


def explain(m: Installed) -> tuple[str, str]:
    """(kind it runs as, why) for an imported model, from its header alone (no torch)."""
    why = m.meta.get("mattestudio_why")
    if why or m.kind != "huo-stage1":  # only that kind was given to v1.4 files before
        return m.kind, why or ""
    # imported before variants were told apart: checkpoints.load_for decides again the same way
    shapes = {
        k: v.get("shape", [])
        for k, v in read_safetensors_header(m.path).items()
        if isinstance(v, dict) and k != "__metadata__"
    }
    kind, why = variant(recognise(shapes) or m.kind, shapes, m.meta.get("source", ""))
    return kind, why


def kinds_for(engine: str, role: str = "matting") -> set[str]:
    return {k.name for k in KINDS.values() if k.engine == engine and k.role == role}


def availability(
    engine: str, checkpoint=None, role: str = "matting", label: str = ""
) -> str | None:
    """None when a usable checkpoint is named or imported; else the reason and the fix."""
    label = label or f"{engine.upper()} checkpoint"
    if checkpoint:
        p = Path(str(checkpoint)).expanduser()
        if p.is_file():
            return None
        if (models_dir() / (str(checkpoint) + SUFFIX)).is_file():
            return None
        return f"{label} {checkpoint!r} is neither a file nor an imported model name; {IMPORT_HINT}"
    if installed(kinds_for(engine, role)):
        return None
    return f"no {label} found in {models_dir()}; {IMPORT_HINT}"
