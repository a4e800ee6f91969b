"""`mattestudio engines`: every engine, whether it can run here, and why not."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("engines", help="list the matting engines and whether each is available")
    p.add_argument(
        "--verbose", "-v", action="store_true", help="also list each engine's parameters"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from mattestudio.engines import registry

    for name in registry.names():
        info = registry.info(name)
        reason = registry.unavailable_reason(name)
        status = "available" if reason is None else f"unavailable: {reason}"
        print(f"{name:<22} {info.kind:<9} {status}")
        if args.verbose:
            print(f"    {info.description}")
            for p in info.params:
                print(f"    --param {p.name}={p.default!s:<10} {p.help}")
    return 0
