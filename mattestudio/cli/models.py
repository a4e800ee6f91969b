"""`mattestudio models list | import PATH [--kind KIND] [--name NAME] | pull NAME | info NAME`.

Handlers return an exit code and raise MattestudioError subclasses for bad input; cli/main.py
prints those as one line. torch is imported only by `import` and `info` (to read and check weights).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mattestudio.errors import CheckpointError


def _manifest() -> list[dict]:
    """models/manifest.json from a source checkout; empty when not installed alongside."""
    p = Path(__file__).resolve().parents[2] / "models" / "manifest.json"
    try:
        return json.loads(p.read_text(encoding="utf-8")).get("checkpoints", [])
    except (OSError, ValueError):
        return []


def _kind_names() -> list[str]:
    from mattestudio.engines.deep.kinds import KINDS

    return list(KINDS)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def cmd_list(args) -> int:
    from mattestudio.engines.deep import kinds as K

    d = K.models_dir()
    print(f"models directory: {d}")
    found = K.installed()
    if not found:
        print(f"no checkpoints imported; {K.IMPORT_HINT}")
        print("supported kinds: " + ", ".join(K.KINDS))
        return 0
    width = max(len(m.name) for m in found)
    for m in found:
        kind, why = K.explain(m) if m.kind in K.KINDS else (m.kind or "?", "")
        desc = K.KINDS[kind].description if kind in K.KINDS else "not a mattestudio import"
        print(f"{m.name:<{width}}  {kind:<17} {_size(m.path.stat().st_size):>9}  {desc}")
        if why and kind.startswith("huo-"):  # the variants that keys alone cannot tell apart
            print(f"{'':<{width}}  why: {why}")
    return 0


def cmd_import(args) -> int:
    from mattestudio.cli import segment_models  # issue 14: SAM 2 Hugging Face folders
    from mattestudio.engines.deep import kinds as K
    from mattestudio.engines.deep.checkpoints import import_checkpoint

    if segment_models.is_sam2_folder(args.path):
        return segment_models.cmd_import_folder(args)

    res = import_checkpoint(args.path, kind=args.kind, name=args.name)
    print(
        f"imported {args.path} as {res.name!r}: kind {res.kind} - {K.KINDS[res.kind].description}"
    )
    print(f"why: {res.why}")
    print(f"stored at {res.path} (sha256 of the source {res.sha256[:16]}...)")
    for entry in _manifest():
        if entry.get("sha256") and entry["sha256"] == res.sha256:
            print(
                f"matches the published file {entry['name']}; licence: {entry.get('license', 'see models/README.md')}"
            )
    engine = K.KINDS[res.kind].engine
    print(f"engine {engine!r} can now use it (mattestudio matte ... --engine {engine})")
    return 0


def cmd_pull(args) -> int:
    from mattestudio.engines.deep.checkpoints import import_checkpoint
    from mattestudio.engines.deep.vitmatte import hub
    from mattestudio.engines.segment.pull import PULLABLE

    if args.name.split("/")[-1].lower() in {n.lower() for n in PULLABLE}:  # SAM 2 (issue 14)
        from mattestudio.cli import segment_models

        return segment_models.cmd_pull(args)
    known = hub.lookup(args.name)
    print(f"downloading {known.repo} from the Hugging Face hub ...", flush=True)
    folder = hub.download(args.name)
    res = import_checkpoint(folder, name=args.as_name or known.repo.split("/")[-1])
    print(f"imported {known.repo} as {res.name!r} (kind {res.kind}), stored at {res.path}")
    print(f"licence: {known.note}")
    print(f"use it: mattestudio matte IMG --trimap T --engine {res.kind} --checkpoint {res.name}")
    return 0


def cmd_info(args) -> int:
    from mattestudio.engines.deep import kinds as K
    from mattestudio.engines.deep.checkpoints import read_state

    path = K.models_dir() / (args.name + K.SUFFIX)
    if not path.is_file():
        candidate = Path(args.name).expanduser()
        if not candidate.is_file():
            names = ", ".join(m.name for m in K.installed()) or "none"
            raise CheckpointError(f"no imported model named {args.name!r} (imported: {names})")
        path = candidate
    state, meta = read_state(path)
    why = meta.get("mattestudio_why", "")
    try:  # what the engines will run it as (older imports of HUO files are decided again)
        from mattestudio.engines.deep.checkpoints import identify_variant

        stored = meta.get("mattestudio_kind") or None
        again = stored is None or (stored == "huo-stage1" and not why)  # see load_for
        name = meta.get("source", "") if stored else path.name
        kind, new_why = identify_variant(state, path, None if again else stored, name)
        why = why or new_why
    except CheckpointError:
        kind = meta.get("mattestudio_kind") or K.recognise(state) or "unknown"
    params = sum(
        v.numel()
        for k, v in state.items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    print(f"name:       {args.name}")
    print(f"file:       {path} ({_size(path.stat().st_size)})")
    print(f"kind:       {kind}" + (f" - {K.KINDS[kind].description}" if kind in K.KINDS else ""))
    if kind in K.KINDS:
        print(f"engine:     {K.KINDS[kind].engine}")
    if why:
        print(f"why:        {why}")
    print(f"tensors:    {len(state)} ({params:,} parameters)")
    for key in ("source", "sha256", "imported"):
        if meta.get(key):
            print(f"{key + ':':<11} {meta[key]}")
    for entry in _manifest():
        if entry.get("sha256") and entry["sha256"] == meta.get("sha256"):
            print(f"published:  {entry['name']} - {entry.get('url', '')}")
            print(f"licence:    {entry.get('license', '')}")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "models",
        help="list, import and inspect deep-model checkpoints",
        description="Manage checkpoints for the deep engines (dim, sim, vitmatte). Weights are not "
        "bundled; see models/README.md for where to get them and their licences.",
    )
    sub = p.add_subparsers(dest="models_command", metavar="{list,import,pull,info}")
    pl = sub.add_parser("list", help="list imported checkpoints")
    pl.set_defaults(func=cmd_list)
    pi = sub.add_parser(
        "import", help="check a checkpoint file and store it in the models directory"
    )
    pi.add_argument(
        "path",
        help="checkpoint file (.pth, .pth.tar, .tar, .safetensors) or Hugging Face model folder",
    )
    pi.add_argument(
        "--kind",
        default=None,
        help="checkpoint kind (default: recognised from the keys and, where releases share "
        "them, the published file name): " + ", ".join(_kind_names()),
    )
    pi.add_argument("--name", default=None, help="name to store it under (default: the kind)")
    pi.set_defaults(func=cmd_import)
    pp = sub.add_parser(
        "pull", help="download a known model from the Hugging Face hub and import it"
    )
    pp.add_argument(
        "name",
        help="vitmatte-small-composition-1k, vitmatte-base-composition-1k, ..., "
        "sam2.1-hiera-tiny, sam2.1-hiera-small, ...",
    )
    pp.add_argument("--name", dest="as_name", default=None, help="name to store it under")
    pp.set_defaults(func=cmd_pull)
    pn = sub.add_parser("info", help="show an imported checkpoint's kind, source and hash")
    pn.add_argument("name", help="imported model name (or a checkpoint file)")
    pn.set_defaults(func=cmd_info)
    p.set_defaults(func=cmd_list)
    return p
