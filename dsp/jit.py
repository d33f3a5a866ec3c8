"""The one place ``dsp/`` gets ``njit`` from, so that a kernel-only command need not import numba.

Why: ``masterbox master`` and ``analyze`` run the ahead-of-time build of the kernels (:mod:`dsp.aot`)
when a fresh one exists; then no numba code runs at all, yet importing numba and llvmlite (and
numba's cache machinery, :mod:`dsp.kernel_cache`) costs ~0.25 s of CPU, about half of what a
short ``master`` costs. So:

* normally :func:`njit` is numba's ``njit`` (with :mod:`dsp.kernel_cache`'s locators installed
  first, before any dispatcher exists, so the composite kernels' cache is always keyed on the
  whole package);
* after :func:`defer` (called by :func:`dsp.aot.enable` once a fresh build is loaded, before the
  kernel modules are imported) it returns stand-ins that only record the function and options.
  If anything ever calls a stand-in or asks it for a dispatcher attribute (``py_func`` excepted),
  :func:`materialize` imports numba, makes the real dispatcher of *every* recorded function and
  rebinds them in the ``dsp`` modules' globals (and those of the modules that defined them), then
  forwards the call. Numba resolves globals when it compiles, so kernels calling kernels
  (``rbj.peak`` from a chain stage, ``advance`` from ``dsp.smoothing``) find real dispatchers,
  and the results are the JIT's exactly.

What the commands call from Python on their path must therefore be either exported in the
ahead-of-time build or plain Python; ``tests/dsp/test_aot.py`` runs ``master`` and ``analyze`` in a
subprocess and checks that numba was never imported.
"""

from __future__ import annotations

import functools
import sys
import threading

_lock = threading.RLock()
_deferring = False
_deferred: list[_Deferred] = []     # stand-ins not yet materialized, in definition order
_numba_njit = None


def defer() -> None:
    """From now on :func:`njit` records kernels instead of making numba dispatchers.

    For the rest of the process, or until :func:`materialize`: a kernel defined later may call one
    recorded earlier (``from dsp.meter import meter_process`` in ``dsp.chain``), so real
    dispatchers are made only for all of them at once, after which the globals hold no stand-in.
    """
    global _deferring
    _deferring = True


def deferring() -> bool:
    return _deferring


def _numba():
    """numba's ``njit``, with the package-aware cache locators installed before any dispatcher."""
    global _numba_njit
    if _numba_njit is None:
        from numba import njit as numba_njit

        from dsp import kernel_cache

        kernel_cache.install()
        _numba_njit = numba_njit
    return _numba_njit


def njit(*args, **options):
    """numba's ``njit`` (same forms: ``@njit``, ``@njit(**options)``), or a recorder after :func:`defer`."""
    if len(args) == 1 and callable(args[0]) and not options:
        return _decorate(args[0], (), {})
    return lambda fn: _decorate(fn, args, options)


def _decorate(fn, args, options):
    with _lock:
        if not _deferring:
            return _numba()(*args, **options)(fn)
        d = _Deferred(fn, args, options)
        _deferred.append(d)
        return d


class _Deferred:
    """A kernel not handed to numba yet: calling it (or using it as a dispatcher) does that first."""

    def __init__(self, py_func, args, options):
        self._real = None
        self._args = args
        self._options = options
        self.py_func = py_func
        functools.update_wrapper(self, py_func)

    def __call__(self, *a, **k):
        return self.dispatcher()(*a, **k)

    def __getattr__(self, name):        # only for names this object does not have itself
        if name.startswith("__") or name in ("_real", "_args", "_options"):
            raise AttributeError(name)
        return getattr(self.dispatcher(), name)

    def dispatcher(self):
        if self._real is None:
            materialize()
        return self._real

    def __repr__(self):
        return f"<deferred numba kernel {self.__qualname__}>"


def materialize() -> int:
    """Import numba and replace every stand-in by its real dispatcher; returns how many it replaced."""
    global _deferring
    with _lock:
        _deferring = False
        if not _deferred:
            return 0
        nj = _numba()
        swap = {}
        for d in _deferred:
            d._real = nj(*d._args, **d._options)(d.py_func)
            swap[id(d)] = (d, d._real)
        homes = {d.py_func.__module__ for d in _deferred}     # kernels outside dsp/ use this module too
        for name, module in list(sys.modules.items()):
            if module is None or not (name == "dsp" or name.startswith("dsp.") or name in homes):
                continue
            g = vars(module)
            for key, value in list(g.items()):
                hit = swap.get(id(value))
                if hit is not None and hit[0] is value:
                    g[key] = hit[1]
        n = len(_deferred)
        _deferred.clear()
        return n
