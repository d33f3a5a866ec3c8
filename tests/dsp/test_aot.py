"""dsp/aot.py: the ahead-of-time kernels ``master`` and ``analyze`` use are the JIT kernels, sample for sample.

The oracle is the JIT kernel itself, run on the same input cut into the same random blocks:
outputs, meter readings and every byte of state are compared with ``array_equal``. The build
used is the one ``python -m firmware.warmup`` made (``make`` runs it), or one built here when
that is missing or stale. A missing, broken or stale build must leave the JIT kernels in use.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dsp import aot, schema
from dsp.chain import SPLIT_ALL, SPLIT_POST, SPLIT_PRE, Chain, chain_kernel
from dsp.meter import LoudnessMeter, meter_process
from dsp.programme import render_programme
from tests.wav_chunks import without_bext

ROOT = Path(aot.__file__).resolve().parents[1]
PRESETS = Path(schema.__file__).parent / "presets"
RATES = (44100, 48000, 88200, 96000)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    path = aot.extension_path()
    if aot.load(path) is None:       # no fresh build from the warm-up: make one for these tests
        path = aot.build(tmp_path_factory.mktemp("aot"))
    assert aot.load(path) is not None
    return path


@pytest.fixture(autouse=True)
def _jit_afterwards():
    yield
    aot.disable()


def make(cls, compiled, path, *args, **kw):
    """``cls(*args, **kw)`` with the compiled kernels (``compiled``) or the JIT ones."""
    if compiled:
        assert aot.enable(path)
    try:
        return cls(*args, **kw)
    finally:
        aot.disable()


def values(name, **over):
    v = dict(schema.defaults())
    v.update(json.loads((PRESETS / f"{name}.json").read_text())["params"])
    v.update(over)
    return v


def run(chain, x, sizes, bypass_at=None):
    y = np.zeros_like(x)
    i = k = 0
    while i < len(x):
        n = min(int(sizes[k % len(sizes)]), len(x) - i)
        if bypass_at is not None and k in bypass_at:
            chain.set_bypass(not chain.bypassed)
        chain.process(x[i:i + n], y[i:i + n])
        i += n
        k += 1
    return y


def state(chain):
    return [chain._F.copy(), chain._I.copy(), chain._rng.copy(), chain.input_meter.f.copy(),
            chain.input_meter.i.copy(), chain.output_meter.f.copy(), chain.output_meter.i.copy()]


def assert_same(a, b, what):
    assert len(a) == len(b)
    for k, (u, v) in enumerate(zip(a, b, strict=True)):
        assert np.array_equal(u, v, equal_nan=True), f"{what}: part {k} differs, max {np.nanmax(np.abs(u - v))}"


def test_the_chain_kernel_is_the_compiled_one_only_when_enabled(built):
    assert make(Chain, False, built, 48000)._kernel is chain_kernel
    compiled = make(Chain, True, built, 48000)._kernel
    assert compiled is not chain_kernel and compiled.compiled is not None
    assert make(LoudnessMeter, True, built, 48000, 2)._process is not meter_process


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("name", ["streaming", "loud", "vinyl-premaster", "broadcast-r128"])
def test_compiled_chain_equals_jit_sample_for_sample(built, rate, name):
    x = np.ascontiguousarray(render_programme(4.0, rate, seed=7, peak_dbfs=-2.0))
    x[rate // 2:rate // 2 + 3, 1] = np.nan           # the sanitiser's path too
    rng = np.random.default_rng(rate + len(name))
    chains = {c: make(Chain, c, built, rate, max_block=4096) for c in (False, True)}
    for bits, drive in ((24, 9.0), (16, 14.0)):
        vals = values(name, **{"out.drive_db": drive})
        sizes = rng.integers(1, 4096, 40)
        flips = {3, 9, 10, 25}                        # bypass crossfades, level-matched
        outs = {}
        for c, chain in chains.items():
            chain.set_output_bits(bits)
            chain.set_split(SPLIT_ALL)
            chain.reset()
            chain.set_values(vals)
            y = run(chain, x, sizes, flips)
            outs[c] = [y, *state(chain), np.array(list(chain.gain_reduction_db().values())),
                       np.array([v if v is not None else np.nan for v in chain.output_meter.readings().values()],
                                dtype=float)]
            if chain.bypassed:
                chain.set_bypass(False)
        assert_same(outs[False], outs[True], f"{name} {rate} Hz whole chain, {bits} bits")
        # the split drive search `master` runs: the part before the drive, then drive .. dither
        for c, chain in chains.items():
            chain.set_split(SPLIT_PRE)
            chain.reset()
            chain.set_values(vals)
            pre = run(chain, x, sizes)
            chain.set_split(SPLIT_POST)
            chain.reset()
            chain.set_values(vals)
            outs[c] = [pre, run(chain, pre, sizes[::-1]), *state(chain)]
        assert_same(outs[False], outs[True], f"{name} {rate} Hz split chain, {bits} bits")
        assert np.abs(outs[True][1]).max() > 0.5      # it did make sound


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("rate", RATES)
def test_compiled_meter_equals_jit(built, rate, channels):
    x = render_programme(6.0, rate, seed=3, peak_dbfs=-1.0)
    x = np.ascontiguousarray(np.tile(x, (1, 3))[:, :channels])
    sizes = np.random.default_rng(channels).integers(1, 20000, 30)
    res = {}
    for c in (False, True):
        m = make(LoudnessMeter, c, built, rate, channels)
        i = k = 0
        while i < len(x):
            n = min(int(sizes[k % len(sizes)]), len(x) - i)
            m.process(x[i:i + n])
            i += n
            k += 1
        r = m.readings()
        assert r["integrated_lufs"] is not None
        f, st = m.f.copy(), m.i.copy()
        m.reset()
        res[c] = (r, f, st, m.f.copy(), m.i.copy())
    assert res[False][0] == res[True][0]
    assert_same(res[False][1:], res[True][1:], f"meter {rate} Hz x{channels}")


@pytest.mark.parametrize("bits", [16, 24])
def test_compiled_pcm_kernels_equal_jit(built, bits):
    from dsp import pcm

    rng = np.random.default_rng(bits)
    y = np.concatenate([rng.uniform(-1.3, 1.3, (100_000, 2)),
                        np.round(rng.uniform(-1, 1, (100_000, 2)) * 2 ** (bits - 1)) / 2 ** (bits - 1),
                        [[np.nan, np.inf], [-np.inf, 1.0], [-1.0, 0.5 / 2 ** 31]]])
    jit_fn = getattr(pcm, f"pcm{bits}_le")
    assert aot.enable(built)
    compiled = aot.kernel(f"pcm{bits}_le", jit_fn)
    assert compiled is not jit_fn
    outs = [np.zeros(y.size * bits // 8, dtype=np.uint8) for _ in range(2)]
    jit_fn(y, outs[0])
    compiled(y, outs[1])
    assert np.array_equal(outs[0], outs[1]) and outs[0].any()
    with pytest.raises(TypeError):
        compiled(y, outs[1].view(np.int8))


def test_compiled_kernels_refuse_what_they_cannot_read(built):
    c = make(Chain, True, built, 48000, max_block=256)
    x = np.zeros((64, 2))
    y = np.zeros((64, 2))
    c.process(x, y)
    bad = [(x.astype(np.float32), y), (x, y.astype(np.float32)), (np.asfortranarray(np.zeros((64, 2))), y),
           (np.zeros((128, 2))[::2], y)]
    ro = np.zeros((64, 2))
    ro.flags.writeable = False
    bad.append((x, ro))
    for xa, ya in bad:
        with pytest.raises(TypeError):
            c.process(xa, ya)
    ro_x = np.zeros((64, 2))
    ro_x.flags.writeable = False
    c.process(ro_x, y)                                # the kernel only reads x
    m = make(LoudnessMeter, True, built, 48000, 2)
    with pytest.raises(TypeError):
        m._process(np.zeros((10, 2), dtype=np.float32), m.f, m.i)
    with pytest.raises(TypeError):
        m._reset(m.f, m.i.astype(np.int32))


def test_missing_broken_or_stale_builds_leave_the_jit_kernels(built, tmp_path, monkeypatch):
    missing = tmp_path / "none" / built.name
    assert aot.load(missing) is None
    broken = tmp_path / built.name
    broken.write_bytes(b"\x7fELF not really" * 100)
    assert aot.load(broken) is None
    assert not aot.enable(broken)
    assert Chain(48000)._kernel is chain_kernel       # enable() failed: the JIT kernel
    stamp = aot.expected_stamp()
    stale = (stamp[0] ^ 1, *stamp[1:])
    assert aot.load(built, stamp=stale) is None       # a real build, from other sources
    assert aot.load(built, stamp=stamp) is not None
    monkeypatch.setenv(aot.OPT_OUT, "0")
    assert not aot.enable(built)


def test_the_stamp_follows_every_dsp_source(tmp_path):
    here = aot.expected_stamp()
    for p in Path(aot.__file__).parent.glob("*.py"):
        shutil.copy(p, tmp_path / p.name)
    assert aot.expected_stamp(tmp_path) == here
    for name in ("limiter.py", "aot.py", "meter.py"):
        text = (tmp_path / name).read_text()
        (tmp_path / name).write_text(text + "\n# changed\n")
        assert aot.expected_stamp(tmp_path) != here, name
        (tmp_path / name).write_text(text)
    (tmp_path / "new_stage.py").write_text("X = 1\n")
    assert aot.expected_stamp(tmp_path) != here


def test_master_writes_the_same_file_with_either_kernels(built, tmp_path, masterbox_cmd):
    assert aot.load() is not None, "no fresh ahead-of-time build: run `python -m firmware.warmup` (make does)"
    src = tmp_path / "in.wav"
    sf.write(src, render_programme(8.0, 44100, seed=5, peak_dbfs=-4.0), 44100, subtype="PCM_24")
    docs = {}
    for flag in ("1", "0"):
        out = tmp_path / f"out{flag}.wav"
        proc = _run_importing(masterbox_cmd, ["master", str(src), str(out), "--preset", "loud", "--json"], flag)
        docs[flag] = (json.loads(proc.stdout), without_bext(out))     # (its stamped time may differ)
        # the installed command itself: with the compiled kernels numba is never even imported
        assert _numba_imports(proc.stderr) == (set() if flag == "1" else {"numba", "llvmlite"}), flag
    assert docs["1"] == docs["0"]
    for flag in ("1", "0"):
        proc = _run_importing(masterbox_cmd, ["analyze", str(src), "--json"], flag)
        docs[flag] = json.loads(proc.stdout)
        assert _numba_imports(proc.stderr) == (set() if flag == "1" else {"numba", "llvmlite"}), flag
    assert docs["1"] == docs["0"]
    # in-process, twice (the second run finds the kernel modules imported already)
    script = f"""
import sys
from firmware.cli import main
assert main(["analyze", {str(src)!r}, "--json"]) == 0
assert main(["master", {str(src)!r}, {str(tmp_path / "o.wav")!r}, "--json"]) == 0
assert main(["master", {str(src)!r}, {str(tmp_path / "o2.wav")!r}, "--preset", "loud"]) == 0
print("numba imported:", sorted(m for m in sys.modules if m.split(".")[0] in ("numba", "llvmlite"))[:3],
      file=sys.stderr)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "numba imported: []" in proc.stderr, proc.stderr
    assert without_bext(tmp_path / "o2.wav") == without_bext(tmp_path / "out1.wav")


def _run_importing(masterbox_cmd, args, aot_flag):
    """``masterbox ARGS`` with ``MASTERBOX_AOT=aot_flag``, Python reporting every import on stderr."""
    env = dict(os.environ, MASTERBOX_AOT=aot_flag, PYTHONPROFILEIMPORTTIME="1")
    proc = subprocess.run([*masterbox_cmd, *args], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "import time:" in proc.stderr       # the report is there to be read
    return proc


def _numba_imports(importtime_report: str) -> set:
    """Which of numba and llvmlite (any of their modules) the ``-X importtime`` report shows."""
    names = {line.rsplit("|", 1)[1].strip() for line in importtime_report.splitlines()
             if line.startswith("import time:") and line.count("|") == 2}
    return {n.split(".")[0] for n in names} & {"numba", "llvmlite"}


def test_kernels_defined_after_enable_become_jit_dispatchers_when_python_calls_them(built, tmp_path):
    """A process that enabled the compiled kernels before importing the kernel modules gets numba's
    dispatchers the moment anything calls a JIT kernel from Python, and the very same samples."""
    x = np.ascontiguousarray(render_programme(2.0, 48000, seed=11, peak_dbfs=-1.0))
    script = f"""
import sys
import numpy as np
from dsp import aot, jit
assert aot.enable({str(built)!r})
import dsp.chain, dsp.meter, dsp.smoothing, dsp.rbj
assert "numba" not in sys.modules, "importing the kernel modules imported numba"
assert isinstance(dsp.chain.chain_kernel, jit._Deferred)
aot.disable()
c = dsp.chain.Chain(48000, max_block=4096)   # the JIT kernel: readying it makes the dispatchers
from numba.core.registry import CPUDispatcher
left = [(m.__name__, k) for m in (dsp.chain, dsp.meter, dsp.smoothing, dsp.rbj, dsp.limiter, dsp.svf)
        for k, v in vars(m).items() if isinstance(v, jit._Deferred)]
assert not left, left
assert isinstance(dsp.chain.chain_kernel, CPUDispatcher)
assert isinstance(dsp.smoothing.advance, CPUDispatcher) and dsp.chain.advance is dsp.smoothing.advance
assert dsp.meter.meter_process.targetoptions.get("nogil") is True   # njit's options kept
x = np.load(sys.argv[1])
y = np.zeros_like(x)
c.set_values({{"out.drive_db": 9.0}})
for i in range(0, len(x), 1000):
    c.process(x[i:i + 1000], y[i:i + 1000])
np.save(sys.argv[2], y)
"""
    d = tmp_path
    np.save(d / "x.npy", x)
    proc = subprocess.run([sys.executable, "-c", script, str(d / "x.npy"), str(d / "y.npy")],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    c = Chain(48000, max_block=4096)      # this process's own JIT kernel: the oracle
    c.set_values({"out.drive_db": 9.0})
    y = np.zeros_like(x)
    for i in range(0, len(x), 1000):
        c.process(x[i:i + 1000], y[i:i + 1000])
    assert np.abs(y).max() > 0.5
    assert np.array_equal(np.load(d / "y.npy"), y)


def test_the_stamp_follows_numbas_version_without_importing_it():
    record = aot.numba_version_id()
    import numba

    assert f'"version": "{numba.__version__}"'.encode() in record
