"""The SAM 2 parts of `mattestudio models` (issue 14): `import DIR` of a Hugging Face folder and
`pull NAME`. Kept apart from cli/models.py so that file only dispatches here."""

from __future__ import annotations

import json
from pathlib import Path


def is_sam2_folder(path) -> bool:
    p = Path(str(path)).expanduser()
    try:
        cfg = json.loads((p / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and cfg.get("model_type") in ("sam2", "sam2_video")


def _report(res, source) -> None:
    print(
        f"imported {source} as {res.name!r}: kind sam2 - SAM 2.1 prompted segmentation "
        f"({res.parameters / 1e6:.1f} M values"
        + (f"; {res.dropped} video-only tensors left out" if res.dropped else "")
        + ")"
    )
    print(f"stored at {res.path}")
    print(
        "use it with `mattestudio trimap IMAGE --click X,Y ...` or the editor's Select subject tool"
    )


def cmd_import_folder(args) -> int:
    from mattestudio.engines.segment.sam2_store import import_folder

    _report(import_folder(args.path, name=args.name), args.path)
    return 0


def cmd_pull(args) -> int:
    from mattestudio.engines.segment.pull import pull

    _report(pull(args.name.split("/")[-1].lower(), store_as=args.as_name), args.name)
    return 0
