"""`mattestudio models pull NAME`: download a published SAM 2.1 folder from the Hugging Face Hub
and import it. Needs internet; without it, one line saying so."""

from __future__ import annotations

import tempfile

from mattestudio.errors import CheckpointError

# Published by Meta (Apache-2.0) with transformers-format weights next to the original .pt.
PULLABLE = {
    "sam2.1-hiera-tiny": "facebook/sam2.1-hiera-tiny",
    "sam2.1-hiera-small": "facebook/sam2.1-hiera-small",
    "sam2.1-hiera-base-plus": "facebook/sam2.1-hiera-base-plus",
    "sam2.1-hiera-large": "facebook/sam2.1-hiera-large",
}
FILES = ["config.json", "preprocessor_config.json", "model.safetensors"]


def pull(name: str, store_as: str | None = None, timeout: float = 20.0):
    """Download ``name`` (a key of PULLABLE) into a temporary folder and import it."""
    from mattestudio.engines.segment.sam2_store import import_folder

    repo = PULLABLE.get(name)
    if repo is None:
        raise CheckpointError(f"unknown model {name!r}; pullable: {', '.join(PULLABLE)}")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise CheckpointError(
            "downloading needs huggingface_hub (pip install 'mattestudio[sam2]')"
        ) from None
    with tempfile.TemporaryDirectory(prefix="mattestudio-pull-") as tmp:
        try:
            folder = snapshot_download(
                repo_id=repo, allow_patterns=FILES, local_dir=tmp, etag_timeout=timeout
            )
        except Exception as exc:  # offline, DNS, proxy, HTTP errors: many exception types
            detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
            raise CheckpointError(
                f"cannot download {repo} from the Hugging Face Hub "
                f"({type(exc).__name__}{': ' + detail if detail else ''}); without internet, "
                f"copy the folder from another machine and run `mattestudio models import DIR`"
            ) from None
        return import_folder(folder, name=store_as or name)
