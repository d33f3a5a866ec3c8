"""The engine: one audio loop that reads a period, runs the chain, writes the period.

Threads, and who may touch what:

* the **audio thread** (the caller of :meth:`Engine.run`) owns the backend and the chain. It
  allocates no arrays, logs nothing, takes no locks and never compiles; it runs at SCHED_FIFO
  where allowed, with the cyclic garbage collector frozen and off.
* the **loader thread** builds the chain (imports the numba kernels, loading them from the
  on-disk cache or compiling them) while dry audio already passes; it hands the finished chain
  over through one attribute.
* the **control thread** (:mod:`firmware.control_channel`) validates requests and prepares
  everything off the loop: a new parameter set becomes a fresh flat array, checked and clamped
  there (:func:`prepare_flat`, so the loop only copies it), which is then published by one
  reference assignment (atomic under the GIL). The loop compares that
  reference with the one it last applied at each block boundary, so a set is applied whole or
  not at all.
* the **publisher thread** copies the meters (see :mod:`firmware.meters_shm`) at 25 Hz, reading
  the chain's meter state without locking the loop.

A reference track (:mod:`firmware.reference`) is mapped by the control thread and published like a
parameter set, by one reference assignment; the loop swaps to it only once the old one has faded
out, and mixes it after the capture and spectrum taps, so recordings and meters stay the master's.

Start-up: audio passes dry (input copied to output) within a fraction of a second; once the
chain is ready the output crossfades over ``XFADE_MS`` (raised cosine) from dry to processed,
so no click. With ``wait_ready=True`` the chain is built before the device opens and processes
from the first sample (what tests comparing against offline renders need).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dsp import schema
from firmware import streaming
from hw.audio.base import LOST, OK, AudioBackend

log = logging.getLogger("masterbox.engine")

XFADE_MS = 50.0
HIST_US = 100_000  # block-time histogram: 1 us bins up to 100 ms, the last bin collects the rest
PUBLISH_HZ = 25.0
REOPEN_EVERY_S = 1.0
LOADER_RT_S = 5.0
PARAM_HISTORY = 64  # parameter arrays kept alive by the control thread (sets may outpace blocks)
CAPTURE_RING_SECONDS = 8.0  # how long the disk may stall before a capture drops frames
REF_GAIN_GLIDE_MS = 5.0     # a reference's new level match glides in over this (one-pole)
MONITOR_FADE_MS = 20.0      # a change of listening mode (mono, side, ...) crossfades over this
PREVIEW_STEP_DB = 0.05      # the As-streamed gain follows the loudness in steps of at least this


def default_chain_factory(rate: int, max_block: int):
    """The real mastering chain (imports numba; loads or compiles the kernels)."""
    from dsp.chain import Chain

    return Chain(rate, channels=2, max_block=max_block)


class LoadedReference:
    """A prepared reference track the loop may play: its samples (mapped) and facts."""

    __slots__ = ("samples", "info")

    def __init__(self, samples: np.ndarray, info: dict):
        self.samples = samples
        self.info = info


@dataclass
class EngineStats:
    """What ``--stats-json`` writes; block times are processing times (read done -> write call)."""

    xruns: int = 0
    blocks: int = 0
    block_time_us: dict = field(default_factory=dict)
    max_load: float = 0.0
    latency_samples: int = 0
    io_latency_samples: int = 0
    dropouts: int = 0
    device_errors: int = 0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("xruns", "blocks", "block_time_us", "max_load", "latency_samples",
                                           "io_latency_samples", "dropouts", "device_errors")}
        d.update(self.extra)
        return d


def percentiles_from_histogram(hist: np.ndarray, qs=(0.5, 0.99, 0.999)) -> list[float | None]:
    """Percentiles (in bin units) of a histogram of integer-valued samples."""
    total = int(hist.sum())
    if total == 0:
        return [None for _ in qs]
    cum = np.cumsum(hist)
    return [float(np.searchsorted(cum, math.ceil(q * total))) for q in qs]


_LO = np.array([p.min for p in schema.PARAMS], dtype=np.float64)
_HI = np.array([p.max for p in schema.PARAMS], dtype=np.float64)


def prepare_flat(flat) -> np.ndarray:
    """A flat parameter array made ready for ``Chain.load_flat`` off the loop: a fresh C-contiguous
    float64 copy of the schema's shape, every value finite and clamped to its range (what
    ``Chain.set_flat`` would otherwise check in the audio thread at every set: 11 us of numpy calls
    with cold caches against ~1 us for the one copy, bench/bench_glide.py)."""
    a = np.array(flat, dtype=np.float64)
    if a.shape != (schema.COUNT,) or not np.isfinite(a).all():
        raise ValueError(f"flat parameters must be {schema.COUNT} finite numbers")
    np.clip(a, _LO, _HI, out=a)
    return a


class Engine:
    """The audio loop around one backend. Build it, then call :meth:`run` from the audio thread.

    ``values``: full or partial user parameter values (schema defaults fill the rest).
    ``chain_factory(rate, max_block)``: builds the chain (default: :class:`dsp.chain.Chain`).
    ``scope``: a :class:`firmware.scope_shm.ScopeWriter` for the web UI's spectrum analyser, or
    None (also :meth:`attach_scope`). The loop copies every block, in and out, into a ring of its
    own; the meter publisher copies that into the writer's file (:mod:`dsp.scope_tap` says why).
    """

    def __init__(self, backend: AudioBackend, values: dict | None = None, *, bypass: bool = False,
                 preset: str = "", chain_factory: Callable[[int, int], Any] | None = None,
                 wait_ready: bool = False, xfade_ms: float = XFADE_MS, realtime: bool = True,
                 cpu_latency_us: int = -1, cpu: int = -1, scope=None):
        self.backend = backend
        self.rate = backend.rate
        self.period = backend.period
        self.preset = preset
        self.chain_factory = chain_factory or default_chain_factory
        self.wait_ready = wait_ready
        self.realtime = realtime
        self.cpu_latency_us = int(cpu_latency_us) if realtime else -1  # rt.CpuLatencyHold while running
        self.cpu_latency_held = False
        self.cpu = int(cpu)         # >= 0: the loop runs on this CPU alone (rt.pin_thread)
        self.cpu_pinned = False
        self.values = schema.validate({**schema.defaults(), **(values or {})})
        # -- mailboxes written by other threads, read by the loop at block boundaries --------
        self._params_pending = prepare_flat(schema.to_flat(self.values))
        self._params_history = [self._params_pending]  # keeps old arrays alive off the loop
        self._params_applied = None
        self._load_flat = None  # the chain's load_flat (set_flat for chains without it), bound once built
        self._bypass_pending = bool(bypass)
        self._bypass_applied = None
        self._reset_requested = 0
        self._reset_done = 0
        self._compare_want = False  # match_compare: the last request, and how many were made / applied
        self._compare_asked = 0
        self._compare_applied = 0
        self._stall_s = 0.0
        self._ref_pending: LoadedReference | None = None
        self._ref_history: list[LoadedReference | None] = []  # the loop may still play the last ones
        self._ref_on = False
        self._ref_gain = 1.0
        self.reference_match: dict = {}  # how the gain was chosen (control thread; for status)
        self._monitor = 0  # how the output is listened to: an index in schema.MONITOR_MODES (set_monitor)
        self._preview = 0  # As streamed: an index in firmware.streaming.PREVIEWS (set_preview)
        self._mon_gain = 1.0  # its gain on the monitor matrix (the publisher thread sets it)
        self.preview_gain_db = 0.0
        self.capture = None  # a CaptureSession, or None
        self.last_capture = None  # the newest session (its writer may still be draining the ring)
        # The capture ring is made once, here, before the loop and mlockall: 8 s of both taps.
        # np.zeros maps pages lazily; writing every page now keeps page faults out of the loop.
        self.capture_ring = np.zeros((max(int(CAPTURE_RING_SECONDS * self.rate), 4096), 4), dtype=np.float64)
        self.capture_ring.fill(0.0)
        self.scope = None
        self._tap = self._scope_publish = None  # dsp.scope_tap's kernels once the loader has them
        if scope is not None:
            self.attach_scope(scope)
        self._ready_chain = None
        self._stop = False
        self._load_error = ""
        # -- loop-owned state ------------------------------------------------------------
        self.chain = None
        self.state = "stopped"
        self.blocks = 0
        self.dry_blocks = 0
        self.xruns_loading = 0  # xruns before the chain took over (the dry start-up; see docs/engine.md)
        self.latency_samples = 0
        self._ref_playing: LoadedReference | None = None
        self._ref_state = np.zeros(3)  # dsp.reference_mix's state: fade, gain, position
        self._ref_mix = None  # its kernel, once the loader has it
        self._mon_state = None  # dsp.monitor's state, and its kernel, once the loader has them
        self._listen = None
        self._mon_busy = False  # the last call left a mode other than plain stereo, or a fade, under way
        self._x = np.zeros((self.period, 2), dtype=np.float64)
        self._y = np.zeros((self.period, 2), dtype=np.float64)
        self._tmp = np.zeros((self.period, 2), dtype=np.float64)
        self._hist = np.zeros(HIST_US, dtype=np.int64)
        self._max_ns = 0
        self._max_at = 0
        self._window_max_ns = 0
        self._xfade = self._make_xfade(xfade_ms)
        self._xfade_k = len(self._xfade)
        self.device_losses = 0
        self.reopen_attempts = 0
        self.times: dict[str, float] = {}
        self.rt_report: dict = {}
        self._t_start = 0.0
        self._t_mono0 = 0.0
        self._t_perf0 = 0
        self._lock = threading.Lock()  # among non-audio threads only (control requests)

    # -- set-up --------------------------------------------------------------------------
    def _make_xfade(self, ms: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per-block (gain, 1 - gain) columns of a raised-cosine dry->processed crossfade."""
        n = max(1, int(round(ms * 1e-3 * self.rate / self.period)))
        t = (np.arange(n * self.period) + 0.5) / (n * self.period)
        g = 0.5 - 0.5 * np.cos(np.pi * t)
        return [(np.ascontiguousarray(g[k * self.period:(k + 1) * self.period, None]),
                 np.ascontiguousarray(1.0 - g[k * self.period:(k + 1) * self.period, None])) for k in range(n)]

    def _build_chain(self):
        """Warm the kernels on a throw-away chain, then build the one the loop will use."""
        t = time.monotonic()
        # numba's BLAS probe would import all of scipy.linalg for kernels that use no BLAS: ~0.25 s of CPU at
        # every start, holding the interpreter lock while the dry loop waits for it. Skipped as for `master`
        # (dsp.kernel_cache.skip_blas_probe); the engine imports scipy nowhere, so no other thread of it can
        # be importing scipy.linalg meanwhile.
        from dsp.kernel_cache import skip_blas_probe

        skip_blas_probe()
        warm = self.chain_factory(self.rate, self.period)
        z = np.zeros((self.period, 2))
        out = np.zeros((self.period, 2))
        for _ in range(3):
            warm.process(z, out)
        # the meter publisher's first readings would load their kernels while holding the GIL
        # (13 ms measured); load them here, before the loop depends on getting the GIL back
        warm.input_meter.readings()
        warm.gain_reduction_db()
        del warm
        # the capture ring's compiled copy and encoder, loaded here for the same reason (push and the
        # writer use them from now on)
        from dsp import capture_copy
        from firmware import capture_writer

        capture_writer.use_kernels(capture_copy.warm())
        if self.scope is not None:
            from dsp import scope_tap

            self._scope_publish, self._tap = scope_tap.warm()[::-1]
        from dsp import reference_mix

        self._ref_mix = reference_mix.warm()
        from dsp import monitor

        self._mon_state = monitor.new_state()
        self._listen = monitor.warm()
        chain = self.chain_factory(self.rate, self.period)
        chain.set_output_bits(self.backend.output_bits)
        chain.set_flat(self._params_pending)
        self._load_flat = getattr(chain, "load_flat", chain.set_flat)
        chain.set_bypass(self._bypass_pending)
        self.times["chain_build_s"] = time.monotonic() - t
        return chain

    def _loader(self, go: threading.Event | None = None) -> None:
        # The loader holds the GIL for long stretches while the dry loop needs it every period:
        # at an ordinary priority any busy process could pre-empt it mid-stretch and stall the
        # loop. So it runs at the lowest real-time priority, but only for LOADER_RT_S seconds
        # (a warm-cache load takes about 1 s): a cold compile takes tens of seconds of CPU and
        # must not starve the rest of the box, so a timer puts it back among ordinary threads.
        if go is not None:
            go.wait()
            if self.state == "stopped":  # the device never opened
                return
        if self.realtime:
            from firmware import rt

            if rt.boost_helper_thread(rt.LOADER_PRIORITY):
                tid = threading.get_native_id()
                timer = threading.Timer(LOADER_RT_S, rt.demote_thread, args=(tid,))
                timer.daemon = True
                timer.start()
        try:
            chain = self._build_chain()
        except Exception as e:  # noqa: BLE001 - reported; dry audio keeps passing
            self._load_error = f"{type(e).__name__}: {e}"
            log.exception("the chain could not be built; audio passes dry")
            return
        self.latency_samples = int(chain.latency_samples)
        self._ready_chain = chain

    def attach_scope(self, writer) -> None:
        """Feed the spectrum analyser's file (a :class:`firmware.scope_shm.ScopeWriter`); before :meth:`run`.

        The loop's own ring is made here, before mlockall, every page written (as the capture ring).
        """
        self.scope = writer
        self._scope_ring = np.zeros_like(writer.ring)
        self._scope_ring.fill(0.0)
        self._scope_head = np.zeros(1, dtype=np.int64)
        self._scope_done = np.zeros(1, dtype=np.int64)

    def publish_scope(self) -> None:
        """Copy what the loop appended to its ring into the analyser's file (the meter publisher's
        thread, 25 Hz; the copy runs without the interpreter lock, so a page fault in the file's
        filesystem never delays the loop)."""
        k = self._scope_publish
        if k is not None:
            k(self._scope_ring, self._scope_head, self.scope.ring, self.scope.head, self._scope_done)

    # -- requests from other threads (never block the loop) ------------------------------
    def set_params(self, values: dict) -> dict:
        """Validate a partial set of user values and publish it whole. Raises schema.SchemaErrors."""
        clean = schema.validate(values, partial=True)
        with self._lock:
            merged = {**self.values, **clean}
            flat = prepare_flat(schema.to_flat(merged))
            self.values = merged
            # the loop may still hold one of the last few; the last reference never goes in the loop
            self._params_history = [*self._params_history[-(PARAM_HISTORY - 1):], flat]
            self._params_pending = flat  # the one atomic publication
        return clean

    def set_bypass(self, on: bool) -> None:
        self._bypass_pending = bool(on)

    def match_compare(self, on: bool) -> None:
        """Compare two versions of the settings at equal loudness: True at each switch between them,
        False once the settings are edited (:meth:`dsp.chain.Chain.match_compare` says how)."""
        self._compare_want = bool(on)
        self._compare_asked += 1  # after the value: the loop reads the count first

    @property
    def compare_gain_db(self) -> float:
        """The gain the compare match applies now (dB, <= 0; 0 before the chain runs)."""
        chain = self.chain
        return chain.compare_gain_db if chain is not None else 0.0

    def reset_meters(self) -> None:
        self._reset_requested += 1

    def load_reference(self, samples: np.ndarray | None, info: dict | None = None) -> None:
        """Publish a reference track ((frames, 2) float32 at the engine's rate), or None to drop it.

        It starts switched off; one that is playing fades out first (the loop swaps at silence).
        The last few stay referenced here, so the loop never frees (unmaps) one.
        """
        if samples is not None and (samples.ndim != 2 or samples.shape[1] != 2 or samples.dtype != np.float32
                                    or len(samples) == 0):
            raise ValueError("a reference must be a non-empty (frames, 2) float32 array")
        ref = LoadedReference(samples, dict(info or {})) if samples is not None else None
        with self._lock:
            self._ref_on = False
            self.reference_match = {}
            self._ref_history = [*self._ref_history[-3:], ref]
            self._ref_pending = ref

    def set_reference(self, on: bool, gain_db: float = 0.0, match: dict | None = None) -> None:
        """Play the loaded reference in place of the master (crossfaded), at ``gain_db``."""
        if on and self._ref_pending is None:
            raise ValueError("no reference track is loaded")
        if on:
            self._ref_gain = 10.0 ** (float(gain_db) / 20.0)
            self.reference_match = {"gain_db": round(float(gain_db), 2), **(match or {})}
        self._ref_on = bool(on)

    def set_monitor(self, mode: str) -> None:
        """Listen to the output in ``mode`` (one of :data:`dsp.schema.MONITOR_MODES`), crossfaded.

        Applied after the capture and analyser taps and the reference track: what is recorded and
        metered stays the stereo master.
        """
        self._monitor = schema.monitor_mode_index(mode)

    @property
    def monitor_mode(self) -> str:
        """The listening mode's name (``stereo``, ``mono``, ...)."""
        return schema.MONITOR_MODES[self._monitor]

    def set_preview(self, name: str) -> None:
        """Hear the output as the streaming service ``name`` would play it (``off``: as it is).

        One of :data:`firmware.streaming.PREVIEWS`. The gain is the service's normalisation of the
        output's integrated loudness (and true peak) since the meters were last reset, kept up to
        date by the meter publisher (:meth:`update_preview`); it acts where the listening mode does,
        so recordings and meters stay the master's.
        """
        index = streaming.preview_index(name)
        self._preview = index
        if not index:
            self.preview_gain_db = 0.0
            self._mon_gain = 1.0

    @property
    def preview(self) -> str:
        """The As-streamed preview's name (``off``, ``spotify``, ...)."""
        return streaming.PREVIEWS[self._preview]

    def update_preview(self, integrated_lufs: float | None, true_peak_dbtp: float | None) -> None:
        """The publisher thread's part: the preview's gain from the output meter's latest readings.

        Unity until there is a loudness to normalise; a change smaller than
        :data:`PREVIEW_STEP_DB` is left alone (each change is a 20 ms glide of the monitor matrix)."""
        index = self._preview
        if not index:
            if self._mon_gain != 1.0:   # an "off" that crossed a computation under way: unity again
                self.preview_gain_db = 0.0
                self._mon_gain = 1.0
            return
        db, _ = streaming.normalisation_gain(streaming.PREVIEWS[index], integrated_lufs, true_peak_dbtp)
        db = 0.0 if db is None else db
        if abs(db - self.preview_gain_db) >= PREVIEW_STEP_DB or (db == 0.0 and self.preview_gain_db != 0.0):
            self.preview_gain_db = db
            self._mon_gain = 10.0 ** (db / 20.0)

    def reference_heard(self) -> bool:
        """True while the reference is heard at all (switched on, or still fading out)."""
        return self._ref_playing is not None and bool(self._ref_state[0] > 0.0)

    def reference_status(self) -> dict | None:
        """The loaded reference's facts, whether it is heard, its gain and where it stands."""
        ref = self._ref_pending
        if ref is None:
            return None
        playing = self._ref_playing is ref
        return {**ref.info, "on": self._ref_on, "heard": playing and self.reference_heard(),
                "position_s": round(float(self._ref_state[2]) / self.rate, 3) if playing else 0.0,
                **self.reference_match}

    def stall_once(self, seconds: float) -> None:
        """Diagnostics: overrun once, spinning inside the loop (forces an xrun; used by the fault tests).

        It spins rather than sleeps, as a block whose processing took too long would: nothing
        below the loop's priority runs on its CPU meanwhile (tests/host_witness.py relies on it).
        """
        self._stall_s = float(seconds)

    def request_stop(self) -> None:
        self._stop = True

    @property
    def bypassed(self) -> bool:
        return bool(self._bypass_pending)

    @property
    def load_error(self) -> str:
        return self._load_error

    # -- the loop -----------------------------------------------------------------------
    def run(self, duration: float | None = None, on_started: Callable[[], None] | None = None) -> EngineStats:
        """Run until :meth:`request_stop` or ``duration`` seconds of wall time; return the stats.

        Raises hw.audio.DeviceError when the device cannot be opened at start (a wrong name or format is
        something a person must fix); once running, device trouble is counted, never raised.
        """
        from firmware import rt

        self._t_start = time.monotonic()
        self._t_mono0 = self._t_start
        self._t_perf0 = time.perf_counter_ns()
        if self.wait_ready:
            chain = self._build_chain()
            self.latency_samples = int(chain.latency_samples)
            self._ready_chain = chain
        go = None
        if self._ready_chain is None:
            # The loader is made now, before mlockall: threads made later get a small stack
            # (rt.THREAD_STACK_BYTES) and compiling kernels may need the default 8 MiB. It
            # waits for the device: dry audio first, then load (nothing competes).
            go = threading.Event()
            threading.Thread(target=self._loader, args=(go,), name="chain-loader", daemon=True).start()
        if self.realtime:  # before the device opens: locking memory takes a moment
            self.rt_report = rt.enter_realtime()
            for w in self.rt_report["warnings"]:
                log.warning("%s", w)
        if self.cpu >= 0:  # after the loader thread exists (it would inherit the CPU)
            warning = rt.pin_thread(self.cpu)
            self.cpu_pinned = warning is None
            if warning:
                log.warning("%s", warning)
        try:
            # a full collection first, before the device runs; idle CPUs kept quick to wake
            with rt.quiet_gc(), rt.CpuLatencyHold(self.cpu_latency_us) as hold:
                if hold.warning:
                    log.warning("%s", hold.warning)
                self.cpu_latency_held = hold.held
                self._open_device()
                self.times["device_open_s"] = time.monotonic() - self._t_start
                self.state = "loading" if self._ready_chain is None else "running"
                if on_started is not None:
                    on_started()
                if go is not None:
                    go.set()
                self._loop(duration)
        finally:
            if self.realtime:
                rt.leave_realtime()
            self.state = "stopped"
            if go is not None:
                go.set()  # a loader still waiting (the device did not open) ends
            self.backend.close()
        return self.stats()

    def _loop(self, duration: float | None) -> None:
        b = self.backend
        x, y, tmp = self._x, self._y, self._tmp
        hist = self._hist
        last_bin = HIST_US - 1
        perf = time.perf_counter_ns
        xfade = self._xfade
        nxf = len(xfade)
        end_ns = perf() + int(duration * 1e9) if duration is not None else None
        chain = self.chain
        copyto, multiply, add = np.copyto, np.multiply, np.add
        scope_ring, scope_head = (self._scope_ring, self._scope_head) if self.scope is not None else (None, None)
        rstate = self._ref_state
        ref_fade = XFADE_MS * 1e-3 * self.rate
        ref_coef = 1.0 - math.exp(-1.0 / (REF_GAIN_GLIDE_MS * 1e-3 * self.rate))
        mon_fade = MONITOR_FADE_MS * 1e-3 * self.rate
        rate, period = self.rate, self.period
        last_t0 = 0  # perf ns of the last block read whole
        gap_from = 0  # perf ns of the last block before the stream broke (an xrun, a lost device); 0: unbroken
        while not self._stop:
            st = b.read(x)
            if st != OK:
                if not gap_from:
                    gap_from = last_t0
                if st == LOST:
                    self._device_lost(end_ns)
                    if end_ns is not None and perf() >= end_ns:
                        break
                continue
            t0 = perf()
            if gap_from:
                # the device's clock ran on while no block reached us: a capture keeps its timeline with silence
                cap = self.capture
                if cap is not None:
                    cap.note_gap((t0 - gap_from) * rate // 1_000_000_000 - period)
                gap_from = 0
            last_t0 = t0
            if chain is None:
                ready = self._ready_chain
                if ready is None:
                    copyto(y, x)
                    self.dry_blocks += 1
                else:
                    chain = self.chain = ready
                    self.xruns_loading = b.xruns
                    # fade in from dry only if dry audio was heard (not with wait_ready)
                    self._xfade_k = 0 if self.dry_blocks else nxf
                    self.state = "running"
                    self.times["processed_s"] = time.monotonic() - self._t_start
            if chain is not None:
                p = self._params_pending
                if p is not self._params_applied:
                    self._load_flat(p)  # one copy: the array was checked and clamped off the loop
                    self._params_applied = p
                bp = self._bypass_pending
                if bp is not self._bypass_applied:
                    chain.set_bypass(bp)
                    self._bypass_applied = bp
                asked = self._compare_asked
                if asked != self._compare_applied:
                    chain.match_compare(self._compare_want)
                    self._compare_applied = asked
                if self._reset_requested != self._reset_done:
                    chain.input_meter.restart()
                    chain.output_meter.restart()
                    self._reset_done = self._reset_requested
                chain.process(x, y)
                k = self._xfade_k
                if k < nxf:
                    g, h = xfade[k]
                    multiply(y, g, out=y)
                    multiply(x, h, out=tmp)
                    add(y, tmp, out=y)
                    self._xfade_k = k + 1
            cap = self.capture
            if cap is not None:
                cap.push(x, y)
            tap = self._tap
            if tap is not None:
                tap(scope_ring, scope_head, x, y)
            # the reference track, in place of the master (after the taps: captures and meters stay the master's)
            playing = self._ref_playing
            pending = self._ref_pending
            if playing is not None or pending is not None:
                if pending is not playing and rstate[0] <= 0.0:
                    playing = self._ref_playing = pending
                    rstate[2] = 0.0
                ref_mix = self._ref_mix
                if playing is not None and ref_mix is not None:
                    on = self._ref_on and playing is pending
                    if on or rstate[0] > 0.0:
                        ref_mix(y, playing.samples, rstate, on, self._ref_gain, ref_fade, ref_coef)
            # the listening mode (mono, side, ...), last: it acts on whatever is heard, master or reference
            mode = self._monitor
            gain = self._mon_gain
            if mode or self._mon_busy or gain != 1.0:
                listen = self._listen
                if listen is not None:
                    self._mon_busy = listen(y, self._mon_state, mode, mon_fade, gain)
            if self._stall_s:
                until = perf() + int(self._stall_s * 1e9)
                while perf() < until:
                    pass
                self._stall_s = 0.0
            t1 = perf()
            if b.write(y) != OK and not gap_from:  # a playback xrun restarts the capture too
                gap_from = t0
            dt = t1 - t0
            us = dt // 1000
            hist[us if us < last_bin else last_bin] += 1
            if dt > self._max_ns:
                self._max_ns = dt
                self._max_at = t1
            if dt > self._window_max_ns:
                self._window_max_ns = dt
            if self.blocks == 0:
                self.times["first_audio_s"] = time.monotonic() - self._t_start
            self.blocks += 1
            if end_ns is not None and t1 >= end_ns:
                break

    def _open_device(self, reopen: bool = False) -> bool:
        """Open (or re-open) the device; threads its library starts get the loop's priority."""
        from firmware import rt

        before = rt.thread_ids() if self.realtime else set()
        if reopen:
            ok = self.backend.reopen()
        else:
            self.backend.open()
            ok = True
        if ok and self.realtime:
            rt.lift_threads(rt.thread_ids() - before)
        return ok

    def _device_lost(self, end_ns: int | None = None) -> None:
        """The device is gone: retry once a second until it is back, we are told to stop, or the run's end.

        ``end_ns`` (``perf_counter_ns``, from ``--duration``) is kept while the device is away too: a run
        asked to last N seconds ends after N seconds whether or not there was a device to play to.
        """
        self.device_losses += 1
        self.state = "device_lost"
        log.warning("audio device lost (%s); retrying every %g s", self.backend.last_error, REOPEN_EVERY_S)
        while not self._stop:
            if not self._sleep_until_retry(end_ns):
                return
            self.reopen_attempts += 1
            if self._open_device(reopen=True):
                log.warning("audio device back after %d attempt(s)", self.reopen_attempts)
                break
        self.state = "running" if self.chain is not None else "loading"

    @staticmethod
    def _sleep_until_retry(end_ns: int | None) -> bool:
        """Wait for the next reopen attempt; False (at once, or after a shorter wait) when the run's time is up."""
        wait = REOPEN_EVERY_S
        if end_ns is not None:
            left = (end_ns - time.perf_counter_ns()) * 1e-9
            if left <= 0:
                return False
            wait = min(wait, left)
        time.sleep(wait)
        return end_ns is None or time.perf_counter_ns() < end_ns

    # -- figures ------------------------------------------------------------------------
    def take_window_load(self) -> float:
        """Max processing time / period since the last call (for the meters), then restart."""
        ns = self._window_max_ns
        self._window_max_ns = 0
        return ns * 1e-9 * self.rate / self.period

    def xruns_while_loading(self) -> int:
        """Of the xruns, those of the dry start-up (all of them while the chain is still loading)."""
        return int(self.xruns_loading if self.chain is not None else self.backend.xruns)

    def stats(self) -> EngineStats:
        hist = self._hist
        p50, p99, p999 = percentiles_from_histogram(hist)
        period_s = self.period / self.rate
        max_us = self._max_ns / 1000.0
        xruns = int(self.backend.xruns)
        return EngineStats(
            xruns=xruns,
            blocks=int(self.blocks),
            block_time_us={"p50": p50, "p99": p99, "p999": p999, "max": round(max_us, 1)},
            max_load=round(max_us * 1e-6 / period_s, 4),
            latency_samples=int(self.latency_samples),
            io_latency_samples=int(self.backend.io_latency_samples),
            dropouts=xruns + int(self.device_losses),
            device_errors=int(self.backend.device_errors),
            extra={
                "backend": self.backend.name, "rate": self.rate, "period": self.period,
                "periods": self.backend.periods, "format": getattr(self.backend, "format", None) and
                self.backend.format.name, "reopen_attempts": self.reopen_attempts,
                "max_block_at_s": round((self._max_at - self._t_perf0) * 1e-9, 3) if self._max_at else None,
                # (seconds since start, CLOCK_MONOTONIC seconds, what): comparable across processes
                "xrun_log": [[round(t - self._t_mono0, 3), round(t, 4), what] for t, what in self.backend.xrun_log],
                "xruns_loading": self.xruns_while_loading(),
                "processed": self.chain is not None, "load_error": self._load_error or None,
                "startup_s": {k: round(v, 4) for k, v in self.times.items()},
                "started_monotonic": round(self._t_start, 4),
                "sched_fifo": bool(self.rt_report.get("sched_fifo")), "mlockall": bool(self.rt_report.get("mlockall")),
                "cpu_latency_us": self.cpu_latency_us if self.cpu_latency_held else None,
                "cpu": self.cpu if self.cpu_pinned else None,
            },
        )

    def status(self) -> dict:
        """A snapshot for the control channel's ``status`` command."""
        cap = self.capture
        return {
            "state": self.state, "bypass": self.bypassed, "preset": self.preset,
            "blocks": self.blocks, "xruns": int(self.backend.xruns), "xruns_loading": self.xruns_while_loading(),
            "device_errors": int(self.backend.device_errors),
            "device_lost": self.state == "device_lost", "last_device_error": self.backend.last_error or None,
            "latency_samples": int(self.latency_samples), "io_latency_samples": int(self.backend.io_latency_samples),
            "uptime_s": round(time.monotonic() - self._t_start, 3) if self._t_start else 0.0,
            "device": self.backend.describe(), "capturing": cap is not None,
            "capture": cap.status() if cap is not None else None,
            "reference": self.reference_status(), "monitor": self.monitor_mode,
            "preview": self.preview, "preview_gain_db": round(self.preview_gain_db, 2),
            "load_error": self._load_error or None,
        }

