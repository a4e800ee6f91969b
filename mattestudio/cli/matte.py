"""`mattestudio matte IMAGE --trimap T ...`: one image, any combination of outputs."""

from __future__ import annotations

from pathlib import Path

from mattestudio.cli.common import (
    add_edge_options,
    add_engine_options,
    edge_adjustments,
    make_engine,
    stderr_progress,
)


def register(sub) -> None:
    p = sub.add_parser(
        "matte",
        help="estimate the alpha matte of one image",
        description="Estimate the alpha matte of IMAGE from a trimap and write any of: the alpha, "
        "an RGBA cut-out with cleaned foreground colors, a composite over a new background.",
    )
    p.add_argument(
        "image",
        help="input photo (PNG, JPEG, TIFF, WebP, BMP), or a .mattestudio project saved by the "
        "editor (its image, trimap, engine, parameters and edge adjustments are used; edge "
        "flags given here override the project's)",
    )
    p.add_argument(
        "--trimap",
        "-t",
        help="trimap image: black background, white foreground, anything in between unknown "
        "(required unless IMAGE is a project)",
    )
    add_engine_options(p, default_engine=False)
    p.add_argument(
        "--alpha",
        "-a",
        help="write the alpha matte here (PNG/TIFF); default IMAGE_alpha.png "
        "in the current folder when no output is given",
    )
    p.add_argument(
        "--alpha-bits", type=int, choices=(8, 16), default=8, help="alpha bit depth (default 8)"
    )
    p.add_argument(
        "--cutout",
        "-c",
        help="write an RGBA cut-out (PNG/TIFF/WebP) with estimated foreground colors",
    )
    p.add_argument("--premultiplied", action="store_true", help="write the cut-out premultiplied")
    p.add_argument(
        "--composite", help="write the foreground composited over --background (PNG/JPEG/...)"
    )
    p.add_argument(
        "--background",
        "-b",
        default="checker",
        help="composite background: a color (#RRGGBB, white, 'r,g,b'), checker, blur, or an image path",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    add_edge_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from mattestudio.core import compositing, io
    from mattestudio.errors import MattestudioError, is_interrupt, naming_file
    from mattestudio.pipeline import run_matting

    if args.composite is None and args.background != "checker":
        raise MattestudioError("--background is used with --composite OUT")
    outputs = [args.alpha, args.cutout, args.composite]
    if not any(outputs):
        args.alpha = f"{Path(args.image).stem}_alpha.png"
    # Check output names before the (possibly long) solve, so a typo fails at once.
    for out, allowed in (
        (
            args.alpha,
            (".png", ".tif", ".tiff")
            if args.alpha_bits == 16
            else (".png", ".tif", ".tiff", ".bmp", ".webp"),
        ),
        (args.cutout, (".png", ".tif", ".tiff", ".webp")),
        (args.composite, io.IMAGE_SUFFIXES),
    ):
        _check_output(out, allowed)
    image, tri = _inputs(args)
    edges = edge_adjustments(args, getattr(args, "project_edges", None))
    background = None
    if args.composite:
        h, w = image.shape[:2]
        background = compositing.background_array(args.background, h, w, original=image)
    engine = make_engine(args)
    try:
        result = run_matting(
            engine,
            image,
            tri,
            estimate_foreground=bool(args.cutout or args.composite) and edges.decontaminate > 0,
            progress=stderr_progress(args.quiet),
            edges=edges,
        )
    except Exception as exc:  # every engine error names the file
        if is_interrupt(exc):
            raise KeyboardInterrupt from None
        raise naming_file(exc, args.image, args.engine) from exc
    written = []
    if args.alpha:
        written.append(io.save_alpha(args.alpha, result.alpha, bits=args.alpha_bits))
    if args.cutout:
        from mattestudio.core.compositing import premultiply

        rgb = (
            premultiply(result.foreground, result.alpha)
            if args.premultiplied
            else result.foreground
        )
        written.append(io.save_rgba(args.cutout, rgb, result.alpha))
    if args.composite and background is not None:
        comp = compositing.composite(result.foreground, result.alpha, background)
        written.append(io.save_rgb(args.composite, comp))
    if not args.quiet:
        for path in written:
            print(path)
        print(f"{result.engine}: {result.seconds:.2f} s")
    return 0


def _inputs(args):
    """Image and trimap from files, or from an editor project (whose engine and parameters become
    the defaults, so a project renders the same headless as in the editor)."""
    from mattestudio.core import io, project
    from mattestudio.core import trimap as trimap_ops
    from mattestudio.errors import MattestudioError

    if Path(args.image).suffix.lower() == project.SUFFIX:
        state = project.load_project(args.image)
        args.project_edges = project.edge_adjustments(state, args.image)
        saved = project.ProjectSettings.from_dict(state.settings)
        if args.engine is None and saved.engine:
            args.engine = saved.engine
            args.param = [f"{k}={v}" for k, v in saved.params.items()] + list(args.param)
        image = state.image
        tri = (
            trimap_ops.load(args.trimap, image.shape, image_source=args.image)
            if args.trimap
            else trimap_ops.check(state.trimap, image.shape, args.image)
        )
    else:
        if not args.trimap:
            raise MattestudioError(
                "--trimap is required (or give a .mattestudio project instead of an image)"
            )
        # The trimap is checked against the image's header first: a trimap that does not fit or
        # has nothing to solve is refused before a huge image is decoded.
        tri = trimap_ops.load(args.trimap, io.image_size(args.image), image_source=args.image)
        image = io.load_image(args.image)
    if args.engine is None:
        from mattestudio.engines.registry import DEFAULT_ENGINE

        args.engine = DEFAULT_ENGINE
    return image, tri


def _check_output(path, allowed) -> None:
    from mattestudio.errors import OutputError

    if not path:
        return
    p = Path(path)
    if p.suffix.lower() not in allowed:
        raise OutputError(
            f"unsupported file type {p.suffix or '(none)'!r}; use one of {', '.join(allowed)}", p
        )
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"folder {parent} does not exist", p)
    if p.is_dir():
        raise OutputError("is a directory, expected a file name", p)
    import os

    if not os.access(parent, os.W_OK):
        raise OutputError(f"folder {parent} is not writable", p)
