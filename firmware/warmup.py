"""Compile (or load from the on-disk cache) every numba kernel before it is needed.

Run at install time and at first boot, so the audio loop never compiles. Each listed module
may define ``warm()``; it is called once. Cache entries are CPU-specific, so the box warms its
own cache rather than shipping one.
"""

from __future__ import annotations

import argparse
import importlib
import time

# Modules with kernels, in dependency order. Add a module here when it gains a `warm()`.
WARM_MODULES = (
    "dsp.meter",
    "dsp.chain",
)


def warm_all(verbose: bool = True) -> float:
    t0 = time.perf_counter()
    for name in WARM_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue  # not built yet
            raise
        warm = getattr(module, "warm", None)
        if warm is None:
            continue
        t = time.perf_counter()
        warm()
        if verbose:
            print(f"warmed {name} in {time.perf_counter() - t:.1f} s")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    total = warm_all(verbose=not args.quiet)
    if not args.quiet:
        print(f"numba kernels ready in {total:.1f} s")


if __name__ == "__main__":
    main()
