"""`mattestudio trimap IMAGE --click X,Y [--exclude X,Y] [--box X,Y,W,H] --out TRIMAP.png`:
a first trimap from clicks and a box, with SAM 2 when a model is imported, GrabCut otherwise."""

from __future__ import annotations

import sys
from pathlib import Path

TRIMAP_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")


def register(sub) -> None:
    from mattestudio.engines.segment.select import DEFAULT_BAND

    p = sub.add_parser(
        "trimap",
        help="make a trimap from clicks on the subject and/or a box (SAM 2, or GrabCut)",
        description="Select the subject with clicks and/or a box and write a 0/128/255 trimap "
        "of the image's size. Uses the first imported SAM 2 model (or --model); without one, "
        "GrabCut, and says so.",
    )
    p.add_argument("image", help="the photo")
    p.add_argument(
        "--click",
        action="append",
        default=[],
        metavar="X,Y",
        help="a point on the subject, in image pixels (repeatable)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="X,Y",
        help="a point that is not the subject (repeatable)",
    )
    p.add_argument("--box", metavar="X,Y,W,H", help="a box around the subject")
    p.add_argument(
        "--band",
        type=int,
        default=DEFAULT_BAND,
        metavar="PX",
        help=f"width of the unknown band along the edge (default {DEFAULT_BAND})",
    )
    p.add_argument(
        "--model",
        metavar="NAME_OR_DIR",
        help="SAM 2 model: an imported name, a Hugging Face folder or an imported file",
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="image-encoder precision on the CPU (bf16 is faster on CPUs with bf16 support)",
    )
    p.add_argument("--out", "-o", required=True, metavar="TRIMAP.png", help="output trimap")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def run(args) -> int:
    from mattestudio.cli.common import stderr_progress
    from mattestudio.core import io
    from mattestudio.engines.segment import select as seg
    from mattestudio.engines.segment.prompts import PromptError, Prompts, parse_box, parse_xy
    from mattestudio.errors import OutputError

    out = Path(args.out)
    if out.suffix.lower() not in TRIMAP_SUFFIXES:
        raise OutputError(f"a trimap is written as {', '.join(TRIMAP_SUFFIXES)}", out)
    prompts = Prompts(
        tuple(parse_xy(c, "--click") for c in args.click),
        tuple(parse_xy(c, "--exclude") for c in args.exclude),
        parse_box(args.box) if args.box else None,
    )
    image = io.load_image(args.image)
    predictor = None
    try:
        prompts = prompts.check(image.shape)
        if seg.sam2_unavailable(args.model) is None:
            from mattestudio.engines.segment.predictor import Sam2Predictor

            predictor = Sam2Predictor.load(args.model, precision=args.precision)
        tri, sel = seg.trimap_from_prompts(
            image,
            prompts,
            band=args.band,
            model=args.model,
            predictor=predictor,
            progress=stderr_progress(args.quiet),
        )
    except PromptError as exc:
        raise PromptError(exc.reason, args.image) from None
    if sel.method == "grabcut":
        print(f"mattestudio: {sel.note}", file=sys.stderr)
    io.save_trimap(out, tri)
    h, w = tri.shape
    unknown = 100.0 * float((tri == 128).mean())
    how = "GrabCut" if sel.method == "grabcut" else sel.note
    print(f"wrote {out} ({w}x{h}, {unknown:.1f}% unknown) with {how}")
    return 0
