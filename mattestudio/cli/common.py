"""Options and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import sys

from mattestudio.errors import MattestudioError


def add_engine_options(p: argparse.ArgumentParser, default_engine: bool = True) -> None:
    from mattestudio.engines.registry import DEFAULT_ENGINE

    # matte passes default_engine=False so that a project's saved engine can be told from an explicit --engine.
    p.add_argument(
        "--engine",
        "-e",
        default=DEFAULT_ENGINE if default_engine else None,
        help=f"matting engine (default {DEFAULT_ENGINE}; list them with `mattestudio engines`)",
    )
    p.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="engine parameter, repeatable (see `mattestudio engines --verbose`)",
    )
    p.add_argument("--checkpoint", help="model file for deep engines (dim, sim); no import needed")
    p.add_argument("--device", help="deep engines: auto, cpu, cuda, cuda:N or mps (default auto)")


def engine_params(args) -> dict:
    params = {}
    for item in args.param:
        if "=" not in item:
            raise MattestudioError(f"--param {item!r}: expected NAME=VALUE")
        k, v = item.split("=", 1)
        params[k.strip()] = v.strip()
    if getattr(args, "checkpoint", None):
        params["checkpoint"] = args.checkpoint
    if getattr(args, "device", None):
        params["device"] = args.device
    return params


def make_engine(args):
    from mattestudio.engines import registry

    return registry.create(args.engine, **engine_params(args))


def stderr_progress(quiet: bool):
    """A progress callback that redraws one line on stderr (only on a terminal)."""
    if quiet or not sys.stderr.isatty():
        return None

    def progress(fraction: float, message: str) -> None:
        sys.stderr.write(f"\r{int(fraction * 100):3d}% {message[:60]:<60}")
        sys.stderr.flush()
        if fraction >= 1.0:
            sys.stderr.write("\r" + " " * 66 + "\r")

    return progress


class _EdgeValue(argparse.Action):
    """Parses and range-checks an edge flag; a bad value is one line and exit 2 (a usage error)."""

    def __call__(self, parser, namespace, value, option_string=None):
        from mattestudio.core.edges import EdgeAdjustmentError, check_value

        try:
            setattr(namespace, self.dest, check_value(self.dest, value))
        except EdgeAdjustmentError as exc:
            parser.exit(2, f"mattestudio: {option_string}: {exc}\n")


def add_edge_options(p: argparse.ArgumentParser) -> None:
    """--smooth, --feather, --contrast, --shift-edge, --decontaminate (same for matte and batch)."""
    from mattestudio.core.edges import FLAGS, HELP, LIMITS, UNITS

    group = p.add_argument_group(
        "edge adjustments", "applied after the engine, in this order; all 0 keep the engine's alpha"
    )
    metavars = {"px": "PX", "%": "PERCENT", "": "AMOUNT"}
    for name, flag in FLAGS.items():
        lo, hi = LIMITS[name]
        default = " (default 1)" if name == "decontaminate" else ""
        group.add_argument(
            flag,
            dest=name,
            action=_EdgeValue,
            default=None,
            metavar=metavars[UNITS[name]],
            help=f"{HELP[name]}; {lo:g} to {hi:g}{default}",
        )


def edge_adjustments(args, base=None):
    """The EdgeAdjustments of the parsed flags; flags not given keep ``base`` (a project's)."""
    from mattestudio.core.edges import FLAGS, EdgeAdjustments

    given = {k: getattr(args, k) for k in FLAGS if getattr(args, k, None) is not None}
    return (base or EdgeAdjustments()).replace(**given)
