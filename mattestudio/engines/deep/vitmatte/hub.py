"""`mattestudio models pull NAME`: fetch a known model folder from the Hugging Face hub, then
import it like any folder. Only config.json and the weights are fetched (safetensors preferred)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mattestudio.errors import CheckpointError

TRUE = ("1", "true", "yes", "on", "TRUE", "ON", "YES")


@dataclass(frozen=True)
class Known:
    repo: str
    note: str


_LICENCE = (
    "model card Apache-2.0, code MIT (hustvl/ViTMatte); trained on {data}, whose licence "
    "allows research / non-commercial use only"
)
KNOWN = {
    "vitmatte-small-composition-1k": Known(
        "hustvl/vitmatte-small-composition-1k",
        "ViTMatte-S, Composition-1k SAD 21.46; " + _LICENCE.format(data="Adobe Composition-1k"),
    ),
    "vitmatte-base-composition-1k": Known(
        "hustvl/vitmatte-base-composition-1k",
        "ViTMatte-B, Composition-1k SAD 20.33; " + _LICENCE.format(data="Adobe Composition-1k"),
    ),
    "vitmatte-small-distinctions-646": Known(
        "hustvl/vitmatte-small-distinctions-646",
        "ViTMatte-S trained on Distinctions-646; " + _LICENCE.format(data="Distinctions-646"),
    ),
    "vitmatte-base-distinctions-646": Known(
        "hustvl/vitmatte-base-distinctions-646",
        "ViTMatte-B trained on Distinctions-646; " + _LICENCE.format(data="Distinctions-646"),
    ),
}


def lookup(name: str) -> Known:
    key = name.split("/")[-1].lower()
    if key not in KNOWN:
        raise CheckpointError(f"unknown model {name!r}; known: {', '.join(KNOWN)}")
    return KNOWN[key]


def download(name: str) -> Path:
    """The local folder holding config.json and the weights (the hub cache is reused)."""
    known = lookup(name)
    try:
        from huggingface_hub import constants, snapshot_download
    except ImportError:
        raise CheckpointError(
            "downloading needs huggingface_hub (pip install -e '.[vitmatte]')"
        ) from None
    # offline mode (HF_HUB_OFFLINE=1): only the local hub cache, no network attempt at all
    offline = bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "") in TRUE
    try:
        folder = Path("")
        for weights in ("model.safetensors", "pytorch_model.bin"):  # safetensors when published
            folder = Path(
                snapshot_download(
                    known.repo,
                    allow_patterns=["config.json", weights],
                    local_files_only=offline,
                )
            )
            if (folder / weights).is_file():
                break
    except Exception as exc:  # offline, DNS, HTTP errors, not in the cache
        detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"cannot download {known.repo} from the Hugging Face hub ({detail}); check the "
            f"internet connection, or download the folder from https://huggingface.co/{known.repo} "
            "yourself and run `mattestudio models import DIR`"
        ) from None
    return folder
