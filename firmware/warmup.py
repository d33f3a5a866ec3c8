"""Compile (or load from the on-disk cache) every numba kernel before it is needed.

Run at install time and at first boot, so the audio loop never compiles. Each listed module
may define ``warm()``; it is called once. Cache entries are CPU-specific, so the box warms its
own cache rather than shipping one. Then it builds the ahead-of-time kernels ``master`` and
``analyze`` use (:mod:`dsp.aot`), unless a fresh build is there already; a failed build is
reported and is not fatal (those commands then use the JIT kernels).
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
from pathlib import Path

# Modules with kernels, in dependency order. Add a module here when it gains a `warm()`.
WARM_MODULES = (
    "dsp.meter",
    "dsp.chain",
    "dsp.pcm",
    "dsp.capture_copy",  # the engine's capture push (its loader loads it before the loop needs it)
    "dsp.scope_tap",  # the engine's spectrum tap (likewise)
    "dsp.reference_mix",  # the engine's reference track (likewise)
    "dsp.monitor",  # the engine's listening modes (likewise)
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


def build_compiled(verbose: bool = True) -> bool:
    """Build the ahead-of-time kernels if no fresh build exists; whether one exists afterwards."""
    from dsp import aot

    if aot.load() is not None:
        return True
    t = time.perf_counter()
    try:
        path = aot.build()
    except Exception as e:  # no compiler, no Python headers, no numba.pycc: the JIT kernels still work
        print(f"ahead-of-time kernels not built ({type(e).__name__}: {e}); "
              "`masterbox master` and `analyze` will use the JIT kernels", file=sys.stderr)
        return False
    # checked in a fresh process: this one may hold a stale build loaded from the same path, and
    # the dynamic loader would hand that back again
    check = "import sys; from dsp import aot; sys.exit(aot.load() is None)"
    if subprocess.run([sys.executable, "-c", check], cwd=str(Path(aot.__file__).parents[1])).returncode != 0:
        print(f"ahead-of-time kernels built at {path} but not loadable; "
              "`masterbox master` and `analyze` will use the JIT kernels", file=sys.stderr)
        return False
    if verbose:
        print(f"built the ahead-of-time kernels in {time.perf_counter() - t:.1f} s: {path}")
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    total = warm_all(verbose=not args.quiet)
    if not args.quiet:
        print(f"numba kernels ready in {total:.1f} s")
    build_compiled(verbose=not args.quiet)


if __name__ == "__main__":
    main()
