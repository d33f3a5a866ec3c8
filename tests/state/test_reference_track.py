"""The control side of the reference track: preparing a capture (the real worker process), keeping it
across a restart of the control process, and handing it to a restarted engine (prepared again at a new
rate). The engine here is a recording stand-in; tests/engine/test_reference.py runs the real one."""

from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from firmware.captures import CaptureError, CaptureIndex
from firmware.reference import ReferenceError, read_info
from firmware.reference_track import ReferenceTrack


class _Engine:
    """Answers status at ``rate`` and records what it was handed."""

    def __init__(self, rate: int):
        self.rate = rate
        self.loaded: list[dict] = []

    def status(self):
        return {"device": {"rate": self.rate}, "reference": None}

    def reference_load(self, path):
        self.loaded.append(read_info(path))
        return {"on": False}

    def reference_clear(self):
        return {"reference": None}


def _call(fn, *a):
    reply = fn(*a)
    return {"ok": True, **reply} if isinstance(reply, dict) else {"ok": True}


def _hold_preparing(track: ReferenceTrack) -> tuple[threading.Event, threading.Event]:
    """Make ``track``'s worker wait: ``started`` is set once it would run, it runs once ``release`` is."""
    started, release = threading.Event(), threading.Event()
    real = track._prepare

    def held(src, rate):
        started.set()
        release.wait(30)
        return real(src, rate)

    track._prepare = held
    return started, release


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "captures"
    d.mkdir()
    rng = np.random.default_rng(4)
    sf.write(str(d / "record.wav"), 0.1 * rng.standard_normal((44100 * 2, 2)), 44100, subtype="PCM_24")
    (d / "notes.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(64))
    return d


def test_a_capture_is_prepared_kept_across_a_restart_and_prepared_again_at_a_new_rate(folder, tmp_path):
    path = tmp_path / "cache" / "reference.f32"
    engine = _Engine(48000)
    track = ReferenceTrack(CaptureIndex(folder), engine, _call, path=path)
    assert track.info is None and track.status()["capture"] is None
    reply = track.load("record")
    assert reply["ok"] and reply["reference"]["capture"] == "record"
    assert engine.loaded[-1]["rate"] == 48000 and engine.loaded[-1]["frames"] == 2 * 48000
    assert engine.loaded[-1]["source_rate"] == 44100

    # the control process restarts: the reference is still the reference, and a new engine gets it
    again = ReferenceTrack(CaptureIndex(folder), _Engine(48000), _call, path=path)
    assert again.info["capture"] == "record"
    again.push()
    assert again.engine.loaded[-1]["frames"] == 2 * 48000

    # an engine at another rate: prepared again at its rate (in the background), then handed over
    at96 = _Engine(96000)
    third = ReferenceTrack(CaptureIndex(folder), at96, _call, path=path)
    third.push()
    deadline = time.monotonic() + 60
    while not at96.loaded and time.monotonic() < deadline:
        time.sleep(0.05)
    assert at96.loaded and at96.loaded[-1]["rate"] == 96000 and at96.loaded[-1]["frames"] == 2 * 96000


def test_the_prepared_reference_carries_its_long_term_spectrum_and_an_old_one_is_prepared_again(folder, tmp_path):
    """The Live page draws the reference's spectrum beside the master's: a 1 kHz tone in the mid and a
    100 Hz one in the side, recorded at 44.1 kHz, read at their levels in the analyser's bands at the
    engine's rate. A reference prepared before spectra were kept gets one when an engine is handed it."""
    import json
    import struct

    from firmware.reference import DATA_OFFSET, MAGIC
    from firmware.spectrum import band_centres

    t = np.arange(44100 * 3) / 44100
    mid, side = 0.5 * np.sin(2 * np.pi * 1000 * t), 0.05 * np.sin(2 * np.pi * 100 * t)
    sf.write(str(folder / "tones.wav"), np.stack([mid + side, mid - side], axis=1), 44100, subtype="FLOAT")
    path = tmp_path / "cache" / "reference.f32"
    engine = _Engine(48000)
    track = ReferenceTrack(CaptureIndex(folder), engine, _call, path=path)
    spectrum = track.load("tones")["reference"]["prepared"]["spectrum"]
    c = band_centres()
    k1, k100 = int(np.argmin(abs(c - 1000))), int(np.argmin(abs(c - 100)))
    assert spectrum["mid_db"][k1] == pytest.approx(-6.02, abs=0.1)
    assert spectrum["side_db"][k100] == pytest.approx(-26.02, abs=0.1)
    assert max(spectrum["mid_db"][:k1 - 2] + spectrum["mid_db"][k1 + 3:]) < -60     # nothing else
    assert engine.loaded[-1]["spectrum"] == spectrum

    # the file as the first version wrote it: the same header without "spectrum"
    data = path.read_bytes()
    (n,) = struct.unpack_from("<I", data, 8)
    info = json.loads(data[12:12 + n])
    del info["spectrum"]
    head = json.dumps(info).encode()
    path.write_bytes((MAGIC + struct.pack("<I", len(head)) + head).ljust(DATA_OFFSET, b"\0") + data[DATA_OFFSET:])
    later = _Engine(48000)
    restarted = ReferenceTrack(CaptureIndex(folder), later, _call, path=path)
    assert "spectrum" not in restarted.info
    restarted.push()
    deadline = time.monotonic() + 60
    while not later.loaded and time.monotonic() < deadline:
        time.sleep(0.05)
    assert later.loaded and later.loaded[-1]["spectrum"] == spectrum and restarted.info["spectrum"] == spectrum


def test_refusals_say_why_and_keep_the_reference(folder, tmp_path):
    path = tmp_path / "reference.f32"
    engine = _Engine(48000)
    track = ReferenceTrack(CaptureIndex(folder), engine, _call, path=path)
    with pytest.raises(CaptureError, match="no capture named 'nothing'"):
        track.load("nothing")
    track.load("record")
    before = path.read_bytes()
    with pytest.raises(ReferenceError, match="notes.wav"):
        track.load("notes")
    assert track.status()["error"] and track.info["capture"] == "record"
    assert path.read_bytes() == before and len(engine.loaded) == 1   # the old reference stays, untouched

    # a second load while one is being prepared is refused ("busy:", a 409 on the web)
    slow = ReferenceTrack(CaptureIndex(folder), engine, _call, path=path)
    started, release = _hold_preparing(slow)
    th = threading.Thread(target=slow.load, args=("record",))
    th.start()
    try:
        assert started.wait(10)
        with pytest.raises(ReferenceError, match="^busy: record is being prepared"):
            slow.load("record")
        assert slow.status()["preparing"] == "record"
    finally:
        release.set()
        th.join(60)
    assert slow.status()["preparing"] is None


def test_an_engine_that_is_down_is_answered_not_raised(folder, tmp_path):
    def down(fn, *a):
        return {"ok": False, "error": "engine unavailable: no socket"}

    track = ReferenceTrack(CaptureIndex(folder), _Engine(48000), down, path=tmp_path / "r.f32")
    reply = track.load("record")
    assert reply == {"ok": False, "error": "engine unavailable: its rate is not known"}
    assert track.status()["engine"] is None


def test_a_clear_while_preparing_wins_and_lasts(folder, tmp_path):
    path = tmp_path / "reference.f32"
    engine = _Engine(48000)
    track = ReferenceTrack(CaptureIndex(folder), engine, _call, path=path)
    started, release = _hold_preparing(track)
    result = {}
    th = threading.Thread(target=lambda: result.update(track.load("record")))
    th.start()
    assert started.wait(10)
    assert track.clear()["reference"]["capture"] is None
    release.set()
    th.join(60)
    assert result["ok"] and result["reference"]["capture"] is None     # the prepared result was dropped
    assert track.info is None and not path.exists() and engine.loaded == []
    assert ReferenceTrack(CaptureIndex(folder), engine, _call, path=path).info is None   # nor back after a restart


def test_a_capture_being_recorded_is_refused(folder, tmp_path):
    (folder / ".record.recording").write_text(json.dumps({"pid": os.getpid(), "files": ["record.wav"]}))
    track = ReferenceTrack(CaptureIndex(folder), _Engine(48000), _call, path=tmp_path / "r.f32")
    with pytest.raises(CaptureError, match="'record' is being recorded"):
        track.load("record")
    assert not (tmp_path / "r.f32").exists()


def test_a_reference_never_takes_more_than_an_eighth_of_the_memory():
    from firmware.reference import FRAME_BYTES, MAX_BYTES, max_bytes, max_frames

    gib = 1 << 30
    assert max_bytes(4 * gib) == max_bytes(2 * gib) == MAX_BYTES == 256 << 20
    assert max_bytes(1 * gib) == 128 << 20 and max_frames(1 * gib) == (128 << 20) // FRAME_BYTES
    assert max_bytes(512 << 20) == 64 << 20
    assert max_bytes(0) == MAX_BYTES                    # unknown memory: the fixed limit
    assert 0 < max_bytes() <= MAX_BYTES                 # this machine's
