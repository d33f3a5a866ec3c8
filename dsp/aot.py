"""Ahead-of-time compiled copies of the kernels that ``masterbox master`` and ``analyze`` call.

Why: a short ``masterbox master`` spends most of its CPU starting numba's JIT machinery: loading
even a cached kernel makes numba import its lowering registries and link each kernel's machine
code, ~0.3-0.5 s of the ~0.6 s fixed cost. A C extension built once at install time (numba's
``pycc``, from the very same Python functions: no copy of any kernel source) is an ordinary
``dlopen``, a few milliseconds.

Trust: the extension carries a stamp (:func:`expected_stamp`: the hash of every ``dsp/*.py``,
this file included, plus numba's version record and the CPU). :func:`load` uses it only when the stamp
matches what is on disk now; a missing, stale, foreign or broken file means the JIT kernels are
used, as before. Only the kernel-only commands opt in (:func:`enable`, called by
``firmware.cli``); the real-time engine and everything else keep the JIT dispatchers, whose
argument type checks and ``nogil`` the audio loop relies on.

The exported functions do not check their arguments' types (numba's unboxing copies pointers and
shapes without looking at the dtype), so :func:`kernel` wraps each one in a Python check that
refuses, with ``TypeError`` like the JIT dispatcher after ``disable_compile``, anything but
C-contiguous arrays of the exported dtype and rank (writable where the kernel writes).

Where: next to numba's own cache (``NUMBA_CACHE_DIR`` when set, as on the box; otherwise
``dsp/__pycache__``). Built by ``python -m firmware.warmup`` (``make`` runs it after installing).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import importlib.util
import os
import sysconfig
from pathlib import Path

import numpy as np

from dsp import jit

DSP_DIR = Path(__file__).resolve().parent
EXTENSION = "masterbox_kernels"
TARGET_CPU = "host"     # the JIT's choice too: same instructions (FMA under fastmath) => same samples
STAMP_WORDS = 4         # the stamp is 4 x 60 bits of a sha256, read back through `stamp_word(k)`

# name: (module, argument (dtype, ndim) in order, positions the kernel only reads)
F1, F2, I1, U1, B1 = ("float64", 1), ("float64", 2), ("int64", 1), ("uint64", 1), ("uint8", 1)
EXPORTS = {
    "chain_kernel": ("dsp.chain", (F2, F2, F1, I1, U1, F1, I1, F1, I1), (0,)),
    "meter_process": ("dsp.meter", (F2, F1, I1), (0,)),
    "meter_readings": ("dsp.meter", (F1, I1, F1), (0, 1)),
    "meter_reset": ("dsp.meter", (F1, I1), ()),
    "meter_restart": ("dsp.meter", (F1, I1), ()),
    "pcm16_le": ("dsp.pcm", (F2, B1), (0,)),
    "pcm24_le": ("dsp.pcm", (F2, B1), (0,)),
}

OPT_OUT = "MASTERBOX_AOT"  # "0": enable() keeps the JIT kernels
_active = None          # the loaded extension, once enable() succeeded in this process


def cache_dir() -> Path:
    """Where the extension lives: numba's cache directory when one is configured."""
    d = os.environ.get("NUMBA_CACHE_DIR")
    return Path(d) if d else DSP_DIR / "__pycache__"


def extension_path(directory: Path | None = None) -> Path:
    return Path(directory or cache_dir()) / (EXTENSION + sysconfig.get_config_var("EXT_SUFFIX"))


def _cpu_id() -> bytes:
    """The CPU the extension may run on (its code uses every feature of the build machine's CPU)."""
    try:
        with open("/proc/cpuinfo", "rb") as f:
            lines = f.read().split(b"\n\n", 1)[0].splitlines()
        return b"\n".join(ln for ln in lines if ln.split(b":")[0].strip() in (b"vendor_id", b"model name", b"flags"))
    except OSError:
        import platform

        return platform.processor().encode()


def numba_version_id() -> bytes:
    """numba's version record (``numba/_version.py``: version and source revision), read without
    importing numba: the point of the compiled kernels is a process that never imports it."""
    spec = importlib.util.find_spec("numba")
    if spec is None or not spec.submodule_search_locations:
        return b"no numba"
    try:
        return (Path(next(iter(spec.submodule_search_locations))) / "_version.py").read_bytes()
    except OSError:
        return b"numba without _version.py"


def expected_stamp(dsp_dir: Path = DSP_DIR) -> tuple[int, ...]:
    """The stamp an extension built from the sources in ``dsp_dir`` now, with this numba, on this CPU,
    must carry."""
    h = hashlib.sha256()
    for p in sorted(Path(dsp_dir).glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    h.update(numba_version_id())
    h.update(_cpu_id())
    hexd = h.hexdigest()
    return tuple(int(hexd[15 * k:15 * k + 15], 16) for k in range(STAMP_WORDS))


def _stamp_function(words):
    """A function returning the k-th stamp word, the words frozen in as constants when compiled."""
    w0, w1, w2, w3 = words

    def stamp_word(k):
        if k == 0:
            return w0
        if k == 1:
            return w1
        if k == 2:
            return w2
        if k == 3:
            return w3
        return -1

    return stamp_word


def _signature(args) -> str:
    return "void(" + ", ".join(f"{dt}[{':, ' * (nd - 1)}::1]" for dt, nd in args) + ")"


def build(directory: Path | None = None, stamp: tuple[int, ...] | None = None, verbose: bool = False) -> Path:
    """Compile the extension into ``directory`` (default :func:`cache_dir`); returns its path.

    The kernels are the JIT dispatchers' own Python functions (``py_func``); the functions they
    call are compiled (or loaded from numba's cache) by their dispatchers and linked in, with
    their own options (``fastmath``), exactly as for the JIT. ``stamp`` defaults to
    :func:`expected_stamp` (other values only for tests). The file appears atomically.
    """
    import importlib

    from numba.pycc import CC

    out = extension_path(directory)
    out.parent.mkdir(parents=True, exist_ok=True)
    cc = CC(EXTENSION)
    cc.output_dir = str(out.parent)
    tmp_name = f".{EXTENSION}-{os.getpid()}.tmp{sysconfig.get_config_var('EXT_SUFFIX')}"
    cc.output_file = tmp_name
    cc.target_cpu = TARGET_CPU
    cc.verbose = verbose
    for name, (module, args, _ro) in EXPORTS.items():
        fn = getattr(importlib.import_module(module), name)
        cc.export(name, _signature(args))(fn.py_func)
    cc.export("stamp_word", "int64(int64)")(_stamp_function(stamp or expected_stamp()))
    try:
        with _host_features():
            cc.compile()
        os.replace(out.parent / tmp_name, out)
    finally:
        (out.parent / tmp_name).unlink(missing_ok=True)
    return out


@contextlib.contextmanager
def _host_features():
    """During the build, give numba's AOT code generator the JIT's exact CPU feature list.

    Why: for ``target_cpu="host"`` numba's AOT codegen passes only the CPU's name to LLVM, which
    implies that model's full feature set; a virtual machine may mask some of those features
    (the JIT passes the list the CPU really reports, e.g. ``-avx512f``). With the same list the
    AOT code can run wherever the JIT code runs, and LLVM makes the same choices for both.
    """
    from numba.core.codegen import AOTCPUCodegen

    original = AOTCPUCodegen._customize_tm_features
    AOTCPUCodegen._customize_tm_features = lambda self: self._get_host_cpu_features()
    try:
        yield
    finally:
        AOTCPUCodegen._customize_tm_features = original


def load(path: Path | None = None, stamp: tuple[int, ...] | None = None):
    """The extension at ``path`` if it exists, loads, exports every kernel and carries ``stamp``
    (default :func:`expected_stamp`); otherwise None (the caller uses the JIT kernels)."""
    path = Path(path or extension_path())
    if not path.is_file():
        return None
    try:
        loader = importlib.machinery.ExtensionFileLoader(EXTENSION, str(path))
        spec = importlib.util.spec_from_file_location(EXTENSION, str(path), loader=loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
    except (ImportError, OSError):
        return None         # not an extension for this Python, truncated, ...
    want = stamp or expected_stamp()
    if not hasattr(module, "stamp_word") or tuple(module.stamp_word(k) for k in range(STAMP_WORDS)) != want:
        return None
    if not all(hasattr(module, name) for name in EXPORTS):
        return None
    return module


def enable(path: Path | None = None) -> bool:
    """Use the compiled kernels in this process from now on, if a fresh build exists.

    Call before any :class:`dsp.chain.Chain` or :class:`dsp.meter.LoudnessMeter` is made; objects
    made earlier keep the kernels they chose. Called before the kernel modules are imported, it
    also keeps numba out of the process (:func:`dsp.jit.defer`) unless something calls a JIT kernel
    from Python. Returns whether the compiled kernels are in use.
    ``MASTERBOX_AOT=0`` in the environment keeps the JIT kernels (comparisons, and a way out).
    """
    global _active
    if os.environ.get(OPT_OUT) == "0":
        return False
    if _active is None:
        _active = load(path)
    if _active is not None:
        jit.defer()     # kernel modules imported from now on do not import numba (dsp.jit says why)
    return _active is not None


def disable() -> None:
    """Back to the JIT kernels for objects made from now on (tests compare the two)."""
    global _active
    _active = None


def kernel(name: str, jit_function):
    """The kernel ``name`` to call: the compiled one (type-checked) after :func:`enable`, else ``jit_function``."""
    if _active is None:
        return jit_function
    return _checked(getattr(_active, name), name, *EXPORTS[name][1:])


def _checked(fn, name, args, read_only):
    """``fn`` behind the argument checks numba's AOT wrapper does not make (see the module docstring)."""
    kinds = tuple((np.dtype(dt), nd, k not in read_only) for k, (dt, nd) in enumerate(args))
    wanted = ", ".join(f"{dt} {nd}-D" for dt, nd in args)

    def call(*a):
        if len(a) != len(kinds):
            raise TypeError(f"{name} takes {len(kinds)} arrays ({wanted}), got {len(a)} arguments")
        for k, (dt, nd, writes) in enumerate(kinds):
            x = a[k]
            if (not isinstance(x, np.ndarray) or x.dtype != dt or x.ndim != nd or not x.flags.c_contiguous
                    or (writes and not x.flags.writeable)):
                raise TypeError(f"{name}: argument {k} must be a C-contiguous{' writable' if writes else ''} "
                                f"{dt} array of {nd} dimension(s), got {type(x).__name__} "
                                f"{getattr(x, 'dtype', '')} {getattr(x, 'shape', '')}")
        fn(*a)

    call.__name__ = call.__qualname__ = name
    call.compiled = fn
    return call
