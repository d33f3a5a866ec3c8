"""``masterbox``: the command line. A stable contract that tests and scripts rely on.

Errors go to stderr as one sentence a person can act on, with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from firmware import __version__
from firmware.commands import COMMANDS
from firmware.errors import UserError

__all__ = ["UserError", "build_parser", "main"]

# Commands whose only numba code is our kernels, which use no BLAS: numba's BLAS probe would import
# scipy.linalg for nothing (~0.2 s of their start-up; dsp.kernel_cache.skip_blas_probe says why).
KERNEL_ONLY_COMMANDS = ("analyze", "master")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="masterbox", description="Inline stereo mastering box.")
    parser.add_argument("--version", action="version", version=f"masterbox {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"firmware.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"firmware.commands.{name}":
                raise
            continue  # command not built yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    if args.command in KERNEL_ONLY_COMMANDS:
        from dsp.kernel_cache import skip_blas_probe

        skip_blas_probe()
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"masterbox {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
