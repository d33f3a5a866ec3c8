"""Meters from the engine to any other process, through one small memory-mapped file.

The engine's publisher thread writes a fixed table of float64 values (:data:`FIELDS`) into
``run_dir()/meters.shm`` at >= 20 Hz; readers (the control process, the panel, the web UI's
event stream) map the same file and copy it. Nobody talks to the audio loop and nobody locks.

Consistency comes from a seqlock: the writer makes the sequence number odd, writes the values,
then makes it even again; a reader copies the values between two reads of the sequence number
and retries if they differ or are odd. Layout (little endian)::

    0   8 bytes  magic b"MBMETER1"
    8   u32      layout version (FIELDS changes bump it)
    12  u32      number of fields
    16  u64      sequence (odd while a write is in progress)
    24  i64      writer pid
    32  f64 * n  values, in FIELDS order; NaN means "undefined" (None to readers)

``state``, ``monitor`` and ``preview`` are stored as indices into their tuples of names (:data:`CHOICES`), booleans
as 0/1.
"""

from __future__ import annotations

import copy
import logging
import math
import mmap
import os
import struct
import threading
import time
from pathlib import Path

import numpy as np

from dsp import schema
from firmware import paths, streaming
from firmware.processes import pid_alive
from firmware.shm_file import SharedFile

MAGIC = b"MBMETER1"
LAYOUT_VERSION = 6
STATES = ("stopped", "loading", "running", "device_lost")
# each for the input and the output meter; the peaks are maxima since the meters' reset, and plr_db (peak to
# loudness ratio) is the meter's own: that maximum true peak less the integrated loudness
_LEVELS = ("peak_dbfs", "true_peak_dbtp", "momentary_lufs", "short_term_lufs", "integrated_lufs",
           "loudness_range_lu", "plr_db")
FIELDS: tuple[str, ...] = (
    "time", "state", "bypass", "load", "max_load", "xruns", "dropouts", "device_errors", "blocks",
    *(f"in_{k}" for k in _LEVELS), *(f"out_{k}" for k in _LEVELS),
    "gr_low_db", "gr_mid_db", "gr_high_db", "gr_limiter_db", "correlation",
    "capturing", "capture_dropped", "learning", "rate", "latency_samples", "io_latency_samples",
    "xruns_loading", "reference", "monitor", "compare_gain_db", "preview", "preview_gain_db",
)
# fields stored as the index of a name
CHOICES = {"state": STATES, "monitor": schema.MONITOR_MODES, "preview": streaming.PREVIEWS}
INDEX = {k: i for i, k in enumerate(FIELDS)}
_INT_FIELDS = {"xruns", "xruns_loading", "dropouts", "device_errors", "blocks", "capture_dropped", "rate",
               "latency_samples", "io_latency_samples"}
_BOOL_FIELDS = {"bypass", "capturing", "learning", "reference"}
HEADER = 32
STALE_AFTER_S = 5.0
log = logging.getLogger("masterbox.engine")


def default_path() -> Path:
    return paths.run_dir() / "meters.shm"


def _size() -> int:
    return HEADER + 8 * len(FIELDS)


class MeterWriter:
    """The engine side. ``publish(values)`` takes a dict of FIELDS (missing ones become NaN)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_path()
        self._shared = SharedFile(self.path, MAGIC + struct.pack("<IIQq", LAYOUT_VERSION, len(FIELDS), 0, os.getpid())
                                  + np.full(len(FIELDS), np.nan).tobytes(), _size())
        self._map = self._shared.map
        self._seq = np.frombuffer(self._map, dtype="<u8", count=1, offset=16)
        self._values = np.frombuffer(self._map, dtype="<f8", count=len(FIELDS), offset=HEADER)
        self._row = np.full(len(FIELDS), np.nan)

    def publish(self, values: dict) -> None:
        row = self._row
        row.fill(np.nan)
        for k, v in values.items():
            i = INDEX.get(k)
            if i is None or v is None:
                continue
            if k in CHOICES:
                v = CHOICES[k].index(v)
            row[i] = float(v)
        self._seq[0] += 1  # odd: writing
        self._values[:] = row
        self._seq[0] += 1  # even: consistent

    def close(self, remove: bool = True) -> None:
        """Mark the engine stopped and (by default) remove the file so readers answer None."""
        if self._map is None:
            return
        self.publish({"time": time.time(), "state": "stopped"})
        del self._seq, self._values
        self._map = None
        self._shared.close(remove)


class MeterReader:
    """The reader side. ``read()`` returns the latest meters dict, or None when no engine runs."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self._map = None
        self._ino = None

    def _path(self) -> Path:
        return self.path if self.path is not None else default_path()

    def _attach(self) -> bool:
        p = self._path()
        try:
            st = p.stat()
        except FileNotFoundError:
            self._detach()
            return False
        if self._map is not None and st.st_ino == self._ino:
            return True
        self._detach()
        if st.st_size < _size():
            return False
        try:
            with open(p, "rb") as f:
                self._map = mmap.mmap(f.fileno(), _size(), access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return False
        self._ino = st.st_ino
        if self._map[:8] != MAGIC or struct.unpack_from("<II", self._map, 8) != (LAYOUT_VERSION, len(FIELDS)):
            self._detach()
            return False
        return True

    def _detach(self) -> None:
        if self._map is not None:
            self._map.close()
        self._map = None
        self._ino = None

    def read(self) -> dict | None:
        if not self._attach():
            return None
        m = self._map
        for _ in range(100):
            s1 = struct.unpack_from("<Q", m, 16)[0]
            if s1 & 1:
                time.sleep(0.0001)
                continue
            raw = m[HEADER:_size()]
            pid = struct.unpack_from("<q", m, 24)[0]
            if struct.unpack_from("<Q", m, 16)[0] == s1:
                break
        else:
            return None
        vals = np.frombuffer(raw, dtype="<f8")
        if not pid_alive(pid):
            return None
        out: dict = {"seq": s1 // 2, "pid": pid}
        for k, v in zip(FIELDS, vals.tolist(), strict=True):
            if math.isnan(v):
                out[k] = None
            elif k in CHOICES:
                names = CHOICES[k]
                out[k] = names[int(v)] if 0 <= int(v) < len(names) else names[0]
            elif k in _INT_FIELDS:
                out[k] = int(v)
            elif k in _BOOL_FIELDS:
                out[k] = bool(v)
            else:
                out[k] = v
        if out["state"] == "stopped" or out["time"] is None or time.time() - out["time"] > STALE_AFTER_S:
            return None
        return out

    def close(self) -> None:
        self._detach()


class MeterPublisher:
    """The engine's publisher thread: every 1/``hz`` s, copy the meters and write them.

    It reads the chain's meter state (two small arrays per meter) by copying them and computes
    the readings from the copy, so the loop is never locked or slowed; a copy taken while the
    loop is mid-block is at most one block stale, which no meter can show.
    """

    def __init__(self, engine, writer: MeterWriter, hz: float = 25.0):
        self.engine = engine
        self.writer = writer
        self.interval = 1.0 / hz
        self.latest: dict = {}
        self.learning = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="meter-publisher", daemon=True)
        self._max_load = 0.0
        self._snapshots: dict[int, tuple] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.writer.close()

    def _run(self) -> None:
        if getattr(self.engine, "realtime", False):
            from firmware import rt

            rt.boost_helper_thread()  # never pre-empted while holding the GIL the loop needs
        while not self._stop.wait(self.interval):
            try:
                self.latest = self.snapshot()
                self.writer.publish(self.latest)
                publish_scope = getattr(self.engine, "publish_scope", None)
                if publish_scope is not None:
                    publish_scope()         # the spectrum analyser's audio (firmware/scope_shm.py)
            except Exception:  # noqa: BLE001 - a meter glitch must never take the engine down
                log.exception("publishing meters failed")

    def snapshot(self) -> dict:
        e = self.engine
        load = e.take_window_load()
        self._max_load = max(self._max_load, load)
        b = e.backend
        cap = e.capture
        out = {
            "time": time.time(), "state": e.state, "bypass": e.bypassed, "load": load, "max_load": self._max_load,
            "xruns": b.xruns, "xruns_loading": e.xruns_while_loading(), "dropouts": b.xruns + e.device_losses,
            "device_errors": b.device_errors,
            "blocks": e.blocks, "learning": self.learning, "rate": e.rate, "latency_samples": e.latency_samples,
            "io_latency_samples": b.io_latency_samples, "capturing": cap is not None,
            "reference": e.reference_heard(), "monitor": e.monitor_mode, "compare_gain_db": e.compare_gain_db,
        }
        if cap is not None:
            try:
                out["capture_dropped"] = cap.status().get("dropped_frames", 0)
            except Exception:  # noqa: BLE001
                out["capture_dropped"] = None
        chain = e.chain
        if chain is not None:
            for side, meter in (("in", chain.input_meter), ("out", chain.output_meter)):
                r = self._readings_of_copy(meter)
                out[f"{side}_peak_dbfs"] = r.get("sample_peak_dbfs")   # the one level the meter names otherwise
                for k in _LEVELS[1:]:
                    out[f"{side}_{k}"] = r.get(k)
                if side == "out":
                    out["correlation"] = r.get("correlation")
                else:
                    out["_in_readings"] = r
            gr = chain.gain_reduction_db()
            for band in ("low", "mid", "high", "limiter"):
                out[f"gr_{band}_db"] = gr.get(band)
        update = getattr(e, "update_preview", None)
        if update is not None:              # As streamed: the gain follows the output's loudness
            update(out.get("out_integrated_lufs"), out.get("out_true_peak_dbtp"))
        out["preview"] = getattr(e, "preview", "off")
        out["preview_gain_db"] = getattr(e, "preview_gain_db", 0.0)
        return out

    def _readings_of_copy(self, meter) -> dict:
        """The meter's readings computed from a copy of its state (never from the live arrays).

        The copy lives as long as the publisher (one per meter), so publishing allocates nothing big.
        """
        snap = self._snapshots.get(id(meter))
        if snap is None or snap[0] is not meter:
            clone = copy.copy(meter)
            clone.f = meter.f.copy()
            clone.i = meter.i.copy()
            snap = self._snapshots[id(meter)] = (meter, clone)
        clone = snap[1]
        np.copyto(clone.f, meter.f)
        np.copyto(clone.i, meter.i)
        return clone.readings()
