"""Entry point of the `mattestudio` command.

Errors the user can fix (MattestudioError) print one line naming the file and the problem and exit
with status 1; usage errors exit with 2. A traceback is shown only with --debug.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from mattestudio import __version__
from mattestudio.errors import MattestudioError, is_interrupt

# Subcommand modules, each with register(subparsers) that sets a `func(args) -> int` default.
COMMAND_MODULES = (
    "mattestudio.cli.matte",
    "mattestudio.cli.batch",
    "mattestudio.cli.evaluate",
    "mattestudio.cli.engines",
    "mattestudio.cli.models",
    "mattestudio.cli.sample",
    "mattestudio.cli.trimap",  # issue 14: trimap from clicks / a box
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mattestudio",
        description="Image matting: paint a trimap, get a clean alpha matte and cut-out. "
        "Run without a command (or with an image path) to open the editor.",
    )
    parser.add_argument("--version", action="version", version=f"mattestudio {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # an optional command module that is not there
                continue
            raise
        module.register(sub)
    return parser


def _open_editor(argv: Sequence[str]) -> int:
    try:
        from mattestudio.ui.app import main as ui_main
    except ImportError as exc:
        print(
            f"mattestudio: the editor is not available ({exc}); see `mattestudio --help` for the commands",
            file=sys.stderr,
        )
        return 1
    return ui_main(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C before a command runs (still importing, on a busy machine)
        print("mattestudio: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("MATTESTUDIO_DEBUG"))
    parser = build_parser()
    commands = (
        set(parser._subparsers._group_actions[0].choices or ()) if parser._subparsers else set()
    )
    rest = [a for a in argv if a != "--debug"]
    # `mattestudio` alone or `mattestudio IMAGE [--trimap T]` opens the editor.
    if not rest or (rest[0] not in commands and not rest[0].startswith("-")):
        try:
            return _open_editor(rest)
        except MattestudioError as exc:
            if debug:
                raise
            print(f"mattestudio: {exc}", file=sys.stderr)
            return 1
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MattestudioError as exc:
        if debug:
            raise
        print(f"mattestudio: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mattestudio: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        if debug:
            raise
        print(
            "mattestudio: out of memory; try a smaller image, tiles, or the CPU device",
            file=sys.stderr,
        )
        return 1
    except Exception as exc:  # a bug: still one line unless --debug
        if is_interrupt(exc):  # Ctrl-C inside numba-compiled code arrives as a SystemError
            print("mattestudio: interrupted", file=sys.stderr)
            return 130
        if debug:
            raise
        print(
            f"mattestudio: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
