"""``masterbox bench [--json] [--only AREA] [--quick]``: performance figures, never pass/fail.

Each area keeps its benchmark in ``bench/bench_<area>.py`` with ``run(quick: bool) -> dict``
(figures as plain numbers and strings). This command finds those files next to the package
(the repository checkout the box runs from), runs them in name order and prints the figures.
With ``--json`` standard output is one JSON object, ``{area: figures}``; anything a benchmark
prints while it runs goes to standard error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="performance figures", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--only", action="append", default=[], metavar="AREA", help="e.g. meter, chain, engine")
    p.add_argument("--quick", action="store_true", help="shorter runs (rougher figures)")
    p.set_defaults(func=run)


def _areas() -> list[tuple[str, Path]]:
    return [(f.stem.removeprefix("bench_"), f) for f in sorted(BENCH_DIR.glob("bench_*.py"))]


def _print_figures(figures: dict, indent: str = "  ") -> None:
    """One figure a line; a group of figures (a nested dict) under its name, indented one step more."""
    for k, v in figures.items():
        if isinstance(v, dict) and v:
            print(f"{indent}{k}:")
            _print_figures(v, indent + "  ")
        else:
            print(f"{indent}{k}: {v}")


def run(args: argparse.Namespace) -> int:
    from firmware.cli import UserError

    areas = _areas()
    if not areas:
        raise UserError(f"no benchmarks found in {BENCH_DIR} (run from a repository checkout)")
    known = {a for a, _ in areas}
    unknown = [a for a in args.only if a not in known]
    if unknown:
        raise UserError(f"unknown area {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    results: dict[str, dict] = {}
    for area, path in areas:
        if args.only and area not in args.only:
            continue
        spec = importlib.util.spec_from_file_location(f"bench_{area}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not args.json:
            print(f"== {area}", flush=True)
        # with --json, standard output is the one JSON object: what a benchmark prints on the way goes to stderr
        with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
            results[area] = module.run(quick=args.quick)
        if not args.json:
            _print_figures(results[area])
    if args.json:
        json.dump(results, sys.stdout, indent=2, default=str)
        print()
    return 0
