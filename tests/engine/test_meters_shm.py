"""Shared-memory meters: the seqlock never shows a torn row, and readers see None without an engine."""

from __future__ import annotations

import multiprocessing as mp
import os
import struct
import time

import pytest

from firmware.meters_shm import CHOICES, FIELDS, MeterReader, MeterWriter


def _writer(path, seconds):
    w = MeterWriter(path)
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end:
        k += 1
        # every numeric field holds k: a reader that mixes two writes sees different values (the fields
        # stored as a name's index, state and monitor, hold names)
        w.publish({f: (k if f not in ("time", *CHOICES) else None) for f in FIELDS}
                  | {"state": "running", "monitor": "mono", "time": time.time()})
    w.close(remove=False)


def test_reader_never_sees_a_half_written_row(tmp_path):
    path = tmp_path / "meters.shm"
    p = mp.get_context("spawn").Process(target=_writer, args=(str(path), 2.0))
    p.start()
    reader = MeterReader(path)
    deadline = time.monotonic() + 30
    while reader.read() is None:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    seen = 0
    while p.is_alive():
        m = reader.read()
        if m is None:
            continue
        values = {m[f] for f in ("load", "xruns", "blocks", "in_peak_dbfs", "gr_limiter_db", "correlation",
                                 "io_latency_samples")}
        assert len(values) == 1, values
        assert m["state"] == "running" and m["monitor"] == "mono"
        seen += 1
    p.join()
    assert seen > 100


def test_values_types_and_none(tmp_path):
    w = MeterWriter(tmp_path / "m.shm")
    r = MeterReader(tmp_path / "m.shm")
    w.publish({"time": time.time(), "state": "loading", "bypass": True, "xruns": 3, "load": 0.25,
               "out_integrated_lufs": None})
    m = r.read()
    assert m["state"] == "loading" and m["bypass"] is True and m["xruns"] == 3 and m["load"] == 0.25
    assert m["out_integrated_lufs"] is None and m["pid"] == os.getpid()
    # a stopped engine, a stale writer, a dead writer and a missing file all read as None
    w.publish({"time": time.time() - 60, "state": "running"})
    assert r.read() is None
    w.publish({"time": time.time(), "state": "running"})
    raw = bytearray((tmp_path / "m.shm").read_bytes())
    struct.pack_into("<q", raw, 24, 2 ** 22 + 12345)  # a pid that does not exist
    (tmp_path / "dead.shm").write_bytes(bytes(raw))
    assert MeterReader(tmp_path / "dead.shm").read() is None
    w.close()
    assert r.read() is None
    assert not (tmp_path / "m.shm").exists()


def test_the_published_plr_is_what_ffmpeg_and_pyloudnorm_measure_of_what_went_in_and_out(tmp_path):
    """The Live page's PLR rows: the engine's published ``in_plr_db``/``out_plr_db`` after a run of music
    through the chain (driven +3 dB into the limiter), against ffmpeg's true peak (``ebur128=peak=true``)
    less pyloudnorm's integrated loudness of the very samples the engine read and wrote."""
    import pyloudnorm
    import soundfile as sf

    from dsp.programme import render_programme
    from firmware.meters_shm import MeterPublisher
    from tests.engine.steered import PERIOD, RATE, run_steered
    from tests.signals import ffmpeg_ebur128

    src = tmp_path / "desk.wav"
    sf.write(str(src), render_programme(8.0, RATE, seed=6, peak_dbfs=-2.0), RATE, subtype="FLOAT")
    seen = {}
    blocks = 1400                                                       # 3.7 s

    def publish(engine):
        writer = MeterWriter(tmp_path / "meters.shm")
        writer.publish(MeterPublisher(engine, writer).snapshot())
        seen["meters"] = MeterReader(tmp_path / "meters.shm").read()
        writer.close()

    run_steered(src, tmp_path / "heard.wav", blocks + 10, lambda engine, _server: {blocks: lambda: publish(engine)})
    m = seen["meters"]
    # what the engine had read and written, block for block, when it published
    heard = sf.read(str(tmp_path / "heard.wav"), dtype="float64")[0][:blocks * PERIOD]
    went_in = sf.read(str(src), dtype="float64")[0][:blocks * PERIOD]
    sf.write(str(tmp_path / "heard.wav"), heard, RATE, subtype="FLOAT")
    sf.write(str(tmp_path / "in.wav"), went_in, RATE, subtype="FLOAT")
    for side, x, path in (("in", went_in, tmp_path / "in.wav"), ("out", heard, tmp_path / "heard.wav")):
        want = ffmpeg_ebur128(path, tmp_path)["true_peak_dbtp"] - pyloudnorm.Meter(RATE).integrated_loudness(x)
        assert m[f"{side}_plr_db"] == pytest.approx(want, abs=0.2), (side, m[f"{side}_plr_db"], want)
    assert m["in_plr_db"] - m["out_plr_db"] > 1.0     # the limiter took the peaks down: the sides differ by more
                                                      # than the tolerance, so swapped sides would fail above
