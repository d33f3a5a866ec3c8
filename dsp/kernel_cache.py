"""Numba's on-disk cache, made aware of the modules a kernel inlines.

Numba keys a cached function only on its own source file: when ``dsp/chain.py`` is unchanged
but ``dsp/limiter.py`` (inlined into the chain kernel) changes, numba happily loads the stale
machine code. That silently runs old DSP. For the files listed in :data:`COMPOSITE`, this
module registers cache locators whose source stamp is the hash of every ``dsp/*.py`` file, so
any change in the package recompiles the kernels that may contain it.

Installed by :mod:`dsp.jit` before it makes the first numba dispatcher (every ``dsp`` kernel
gets ``njit`` from there), so no kernel of the package is ever created without these locators.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from numba.core import caching

DSP_DIR = Path(__file__).resolve().parent
# meter.py: its kernels capture constants of truepeak.py (TAPS_PER_PHASE) at compile time.
COMPOSITE = {str(DSP_DIR / name) for name in ("chain.py", "crossover.py", "meter.py")}


def _package_stamp() -> bytes:
    h = hashlib.sha256()
    for p in sorted(DSP_DIR.glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.digest()


class _PackageStampMixin:
    def get_source_stamp(self):
        return _package_stamp()


class _InTree(_PackageStampMixin, caching.InTreeCacheLocator):
    @classmethod
    def from_function(cls, py_func, py_file):
        if str(Path(py_file).resolve()) not in COMPOSITE:
            return None
        return super().from_function(py_func, py_file)


class _UserDir(_PackageStampMixin, caching.UserProvidedCacheLocator):
    @classmethod
    def from_function(cls, py_func, py_file):
        if str(Path(py_file).resolve()) not in COMPOSITE:
            return None
        return super().from_function(py_func, py_file)


BLAS_PROBE = "scipy.linalg.cython_blas"


def skip_blas_probe() -> None:
    """Let numba load its array maths without importing scipy.linalg to see whether BLAS exists.

    Why: loading any cached kernel makes numba import its lowering registries, among them
    ``numba.np.arraymath``, whose import runs ``_check_blas()``: ``import scipy.linalg.cython_blas``,
    i.e. all of scipy.linalg, ~0.23 s of the ~1 s a short ``masterbox master`` costs. None of our
    kernels uses BLAS (no ``np.dot``, ``@``, ``np.linalg``, ``np.convolve`` or ``np.correlate`` in
    ``dsp/``; ``tests/dsp/test_kernel_cache.py`` checks the sources and that the kernels still
    run). While that one import runs, the probe's module is made unimportable (``None`` in
    ``sys.modules``), so numba records "no BLAS"; the only effect of that record is that an
    ``np.convolve``/``np.correlate`` compiled later in this process would use a plain loop.
    The entry is removed again at once, so anything that really needs scipy.linalg (``np.dot``
    and ``np.linalg`` import it themselves when compiled) still gets it. Called by the commands
    that only load our kernels (``firmware.cli.KERNEL_ONLY_COMMANDS``: ``master``, ``analyze``)
    before the first kernel is loaded, and by the engine's chain loader (the engine imports scipy
    nowhere, so none of its threads can be importing scipy.linalg at that moment); not by a process
    where another thread could be (the control process and its web server, the test suite).
    """
    if "numba.np.arraymath" in sys.modules or BLAS_PROBE in sys.modules:
        return          # probed already, or scipy.linalg is loaded anyway: nothing to save
    sys.modules[BLAS_PROBE] = None
    try:
        import numba.np.arraymath  # noqa: F401  (runs the probe now, while it cannot succeed)
    finally:
        del sys.modules[BLAS_PROBE]


def install() -> None:
    """Put the package-aware locators first (idempotent)."""
    classes = caching.CacheImpl._locator_classes
    for cls in (_InTree, _UserDir):  # user-provided dir (NUMBA_CACHE_DIR) wins, as in numba
        if cls not in classes:
            classes.insert(0, cls)


install()
