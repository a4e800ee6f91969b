"""`mattestudio sample OUT_DIR`: write the synthetic sample (image, trimap, true alpha) to try things on."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "sample", help="write a sample image, its trimap and its true alpha into a folder"
    )
    p.add_argument(
        "out", nargs="?", default="mattestudio-sample", help="folder (default ./mattestudio-sample)"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from mattestudio.core.sample import write_sample

    for kind, path in write_sample(args.out).items():
        print(f"{kind:<7} {path}")
    return 0
