"""The capture writer: exact bytes, power-cut safety (kill -9), disk floor, limits, RF64, repair."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from firmware import capture_writer as cw
from firmware.capture_writer import CaptureSession, quantize
from tests.wav_chunks import libsndfile_bext

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _push_all(s: CaptureSession, blocks_in, blocks_out):
    for x, y in zip(blocks_in, blocks_out, strict=True):
        while s.status()["ring_fill"] > 0.5:  # keep the ring from overflowing in a fast loop
            time.sleep(0.005)
        s.push(x, y)


@pytest.mark.parametrize("fmt", ["PCM_24", "FLOAT"])
def test_bytes_equal_what_was_pushed_both_taps_aligned(tmp_path, fmt):
    tmp_path = tmp_path / "captures"
    rng = np.random.default_rng(7)
    xs = [rng.uniform(-1.3, 1.3, (n, 2)) for n in rng.integers(1, 2000, 300)]
    ys = [x * 0.7 for x in xs]
    s = CaptureSession(tmp_path, 48000, 2, taps=("input", "output"), fmt=fmt, preset="A/B ../x", floor_mb=0,
                       analyze=False)
    _push_all(s, xs, ys)
    st = s.stop()
    assert st["state"] == "stopped" and st["reason"] == "stopped" and st["dropped_frames"] == 0
    files = {Path(f).name.rsplit("_", 1)[1]: f for f in st["files"]}
    got_in, rate = sf.read(files["input.wav"])
    got_out, _ = sf.read(files["output.wav"])
    assert rate == 48000
    assert np.array_equal(got_in, quantize(np.concatenate(xs), fmt))
    assert np.array_equal(got_out, quantize(np.concatenate(ys), fmt))
    info = sf.info(files["output.wav"])
    assert info.subtype == ("PCM_24" if fmt == "PCM_24" else "FLOAT")
    # safe file names with date, time and preset; nothing left behind but the WAVs and, until their
    # analysis, the facts of how they were recorded (no marker)
    assert all("/" not in Path(f).name and ".." not in Path(f).name for f in st["files"])
    assert "A-B-x" in st["name"]
    wavs = sorted(Path(f).name for f in st["files"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(wavs + [w.replace(".wav", ".json") for w in wavs])


def test_push_never_blocks_and_counts_drops_when_ring_full(tmp_path):
    s = CaptureSession(tmp_path, 48000, 2, fmt="FLOAT", floor_mb=0, ring_seconds=0.1, analyze=False)
    x = np.zeros((4096, 2))
    t0 = time.perf_counter()
    for _ in range(200):
        s.push(x, x)
    elapsed = time.perf_counter() - t0
    st = s.stop()
    assert elapsed < 0.5
    assert st["dropped_frames"] > 0
    assert st["frames"] + st["dropped_frames"] == 200 * 4096
    assert sf.info(st["files"][0]).frames == st["frames"]


def test_max_length_stops_exactly(tmp_path):
    s = CaptureSession(tmp_path, 48000, 2, fmt="PCM_24", floor_mb=0, max_seconds=0.5, analyze=False)
    x = np.full((1000, 2), 0.25)
    for _ in range(40):
        s.push(x, x)
    deadline = time.monotonic() + 5
    while s.active and time.monotonic() < deadline:
        time.sleep(0.01)
    st = s.status()
    assert st["state"] == "stopped" and st["reason"] == "max_length"
    assert sf.info(st["files"][0]).frames == 24000
    s.push(x, x)  # after the end: ignored, harmless
    assert s.stop()["frames"] == 24000


def test_killed_mid_write_is_readable_up_to_last_second(tmp_path):
    """kill -9 a recording process at a random moment: the WAV plays up to <= 1 s before the kill.

    What the header covers was written at least one fsync before it shows, so the second is
    widened by the slowest data fsync the writer met (a few ms on a quiet disk; it once took
    long enough on a loaded one to fail this test with a fixed 1.25 s, when the writer also
    started its next commit a full second after the last, fsync time not counted). Nothing the
    header covered before the kill may be missing after it.
    """
    sys.path.insert(0, str(HERE))
    import capture_child

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for attempt in range(2):
        d = tmp_path / f"run{attempt}"
        d.mkdir()
        p = subprocess.Popen([sys.executable, str(HERE / "capture_child.py"), str(d), "PCM_24"],
                             stdout=subprocess.PIPE, text=True, env=env)
        pushed = committed = 0
        fsync_s = 0.0
        deadline = time.monotonic() + random.uniform(2.2, 3.5)
        for line in p.stdout:
            _, pushed, _, committed, _, fsync_s = line.split()
            pushed, committed, fsync_s = int(pushed), int(committed), float(fsync_s)
            if time.monotonic() > deadline:
                break
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        wavs = list(d.glob("*.wav"))
        assert len(wavs) == 1
        info = sf.info(wavs[0])  # playable as it is, before any repair
        assert committed > 0 and info.frames >= committed, (info.frames, committed)  # nothing committed is lost
        lag_s = cw.HEADER_INTERVAL_S + fsync_s + 0.25  # + scheduling: a 10 ms block, the writer's 20 ms nap
        assert info.frames >= pushed - int(lag_s * capture_child.RATE), (info.frames, pushed, fsync_s)
        expect = np.concatenate([capture_child.block(i) for i in range(pushed // capture_child.BLOCK + 1)])
        data, _ = sf.read(wavs[0])
        assert np.array_equal(data, quantize(expect[:len(data)], "PCM_24"))
        # boot repair recovers the tail the header did not cover yet, and removes the marker
        report = cw.repair_unfinished(d)
        assert report and report[0]["repaired"]
        data2, _ = sf.read(wavs[0])
        assert len(data2) >= len(data)
        assert np.array_equal(data2, quantize(expect[:len(data2)], "PCM_24"))
        assert not list(d.glob(".*.recording"))
        if attempt == 0:
            _how_it_was_recorded_outlives_the_kill(wavs[0])


def _how_it_was_recorded_outlives_the_kill(wav):
    """The killed capture is listed "pending" until the control process analyses it (a process that never
    saw the recording); its analysis then says which preset and tap it was, as a finished capture's does."""
    from firmware.captures import CaptureIndex, read_sidecar, write_sidecar

    index = CaptureIndex(wav.parent)
    assert [(r["analysis"], r["summary"]) for r in index.list()] == [("pending", None)]
    assert read_sidecar(wav) is None
    write_sidecar(wav)                                          # what analyze_pending's worker runs
    side = read_sidecar(wav)
    assert (side["preset"], side["modified"], side["tap"], side["stop_reason"], side["sample_format"]) == \
        ("kill test", True, "output", "interrupted", "PCM_24")
    assert side["integrated_lufs"] is not None and "analysis_pending" not in side
    row = index.list()[0]
    assert row["analysis"] == "done" and row["summary"]["preset"] == "kill test" and row["summary"]["modified"]


def _tiny_fs(path: Path, size: str) -> bool:
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


@pytest.mark.parametrize("floor_mb, reason", [(0.5, "disk_floor"), (-1, "disk_full")])
def test_disk_full_on_tiny_filesystem(tmp_path, floor_mb, reason):
    """A 2 MB tmpfs (we are root in CI); without mount rights, the writer-enforced floor stands in.

    A negative floor switches the floor check off, so the write really hits ENOSPC.
    """
    mnt = tmp_path / "tiny"
    mounted = _tiny_fs(mnt, "2m")
    keeper = mnt / "other.txt"
    keeper.write_text("precious")
    if not mounted:  # quota the writer enforces: a floor just under what is free now
        free = cw._free_bytes(mnt)
        floor_mb, reason = (free - 1_500_000) / 1048576, "disk_floor"
    try:
        s = CaptureSession(mnt, 48000, 2, fmt="PCM_24", floor_mb=floor_mb, ring_seconds=30, analyze=False)
        x = np.full((4800, 2), 0.1)
        for _ in range(100):  # 10 s = 2.9 MB: more than the filesystem holds
            s.push(x, x)
            if not s.active:
                break
        deadline = time.monotonic() + 10
        while s.active and time.monotonic() < deadline:
            time.sleep(0.01)
        st = s.status()
        assert st["state"] == "stopped" and st["reason"] == reason, st
        info = sf.info(st["files"][0])
        assert info.frames == st["frames"] > 0
        data, _ = sf.read(st["files"][0])
        assert np.allclose(data, quantize(np.full((1, 2), 0.1), "PCM_24")[0])
        assert keeper.read_text() == "precious"
        if reason == "disk_floor" and mounted:
            assert cw._free_bytes(mnt) >= 0.5 * 1048576
    finally:
        if mounted:
            subprocess.run(["umount", str(mnt)], check=False)


def test_rf64_header_past_4gb_reads_back(tmp_path):
    """A sparse 4.3 GB file with our RF64 header and bext chunk: libsndfile reads its length, first
    samples and the chunk."""
    path = tmp_path / "big.wav"
    frames = 4_300_000_000 // 8
    data_bytes = frames * 8
    bext = cw.capture_bext("output", "loud", dt.datetime(2026, 11, 24, 23, 0, 1), 48000, 2, "FLOAT")
    with open(path, "wb") as f:
        f.write(cw.wav_header(48000, 2, "FLOAT", data_bytes, bext))
        f.write(np.full((4, 2), 0.5, dtype="<f4").tobytes())
        f.truncate(cw.HEADER_BYTES + len(bext) + data_bytes)
    info = sf.info(path)
    assert info.format == "RF64" and info.frames == frames
    with sf.SoundFile(path) as f:
        assert np.allclose(f.read(4), 0.5)
    assert libsndfile_bext(path)["time_reference"] == (23 * 3600 + 1) * 48000
    with open(path, "rb") as f:
        hdr = cw.parse_header(f.read(cw.MAX_HEADER_BYTES))
    assert hdr["data_bytes"] == data_bytes and hdr["fmt"] == "FLOAT" and hdr["bext"] == bext
    assert hdr["header_bytes"] == cw.HEADER_BYTES + len(bext)


def test_recording_turns_rf64_in_place_when_it_grows_past_the_limit(tmp_path, monkeypatch):
    """The same code path as at 4 GB, with the limit lowered to 1 MB: RIFF while small, RF64 after."""
    monkeypatch.setattr(cw, "RF64_ABOVE", 1_000_000)
    s = CaptureSession(tmp_path / "c", 48000, 2, fmt="FLOAT", floor_mb=0, analyze=False)
    x = np.random.default_rng(0).uniform(-1, 1, (48000 * 3, 2))
    def magic():
        with open(s.files["output"], "rb") as f:
            return f.read(4)

    assert magic() == b"RIFF"
    for i in range(0, len(x), 4800):
        s.push(x[i:i + 4800], x[i:i + 4800])
        time.sleep(0.01)
    deadline = time.monotonic() + 3
    while magic() != b"RF64" and time.monotonic() < deadline:  # the next periodic header commit
        time.sleep(0.05)
    assert magic() == b"RF64" and sf.info(s.files["output"]).format == "RF64"  # while still recording
    st = s.stop()
    info = sf.info(st["files"][0])
    assert info.format == "RF64" and info.frames == len(x)
    assert np.array_equal(sf.read(st["files"][0])[0], quantize(x, "FLOAT"))


def test_captures_say_when_they_started_in_a_bext_chunk(tmp_path):
    """Each tap's file carries a Broadcast Wave chunk: the start's date and time, its TimeReference
    (samples since midnight, where a DAW places it), which tap and preset; libsndfile and ffprobe read it."""
    when = dt.datetime(2026, 11, 24, 21, 30, 15)
    s = CaptureSession(tmp_path, 48000, 2, taps=("input", "output"), fmt="PCM_24", preset="club night",
                       floor_mb=0, analyze=False, when=when)
    x = np.random.default_rng(3).uniform(-0.5, 0.5, (4800, 2))
    _push_all(s, [x], [x * 0.5])
    st = s.stop()
    for f in st["files"]:
        tap = "input" if f.endswith("_input.wav") else "output"
        ref = libsndfile_bext(f)
        assert (ref["origination_date"], ref["origination_time"]) == ("2026-11-24", "21:30:15")
        assert ref["time_reference"] == (21 * 3600 + 30 * 60 + 15) * 48000
        assert ref["description"].startswith(f"masterbox capture, {tap} (")
        assert ref["description"].endswith(", preset club night")
        assert ref["coding_history"].startswith(f"A=PCM,F=48000,W=24,M=stereo,T=masterbox 0.1.0 capture ({tap})")
        assert ref["loudness_value"] == 0x7FFF            # unset until an analysis (none here) stamps it
        tags = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_format", "-of", "json", f],
                                         capture_output=True, text=True, check=True).stdout)["format"]["tags"]
        assert tags["time_reference"] == str(ref["time_reference"]) and tags["encoded_by"] == "masterbox"
        y, _ = sf.read(f)
        assert np.array_equal(y, quantize(x if tap == "input" else x * 0.5, "PCM_24"))


def test_captures_from_before_the_bext_chunk_still_read_and_repair(tmp_path):
    """A capture made before 2026-11-24 (an 80-byte header, no bext) left unfinished by a power cut:
    listed with its facts and repaired to every whole frame on disk."""
    from firmware.captures import CaptureIndex

    d = tmp_path / "captures"
    d.mkdir()
    x = quantize(np.random.default_rng(4).uniform(-0.9, 0.9, (9601, 2)), "PCM_24")
    path = d / "2026-11-20_120000_loud_output.wav"
    raw = cw.wav_header(48000, 2, "PCM_24", 4800 * 6) + cw.encode(x, "PCM_24") + b"\x01\x02"   # + a partial frame
    path.write_bytes(raw)
    hdr = cw.parse_header(raw[:cw.MAX_HEADER_BYTES])
    assert (hdr["header_bytes"], hdr["bext"], hdr["data_bytes"]) == (cw.HEADER_BYTES, b"", 4800 * 6)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    (d / ".2026-11-20_120000_loud.recording").write_text(json.dumps({"pid": int(dead), "files": [path.name]}))
    report = cw.repair_unfinished(d)
    assert report[0]["repaired"] and report[0]["frames"] == 9601
    y, rate = sf.read(path)
    assert rate == 48000 and np.array_equal(y, x)
    assert libsndfile_bext(path) is None
    row = next(r for r in CaptureIndex(d).list() if r["file"] == path.name)
    assert row["duration_s"] == pytest.approx(9601 / 48000)


def test_repair_leaves_other_files_and_live_captures_alone(tmp_path):
    tmp_path = tmp_path / "captures"
    tmp_path.mkdir()
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".ghost.recording").write_text("{not json")
    s = CaptureSession(tmp_path, 44100, 2, fmt="PCM_24", floor_mb=0, analyze=False)
    assert cw.repair_unfinished(tmp_path) == []  # our own pid is alive: not touched
    s.stop()
    assert (tmp_path / "notes.txt").read_text() == "x"
    assert not (tmp_path / ".ghost.recording").exists()


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError):
        CaptureSession(tmp_path, 48000, 2, fmt="MP3")
    with pytest.raises(ValueError):
        CaptureSession(tmp_path, 48000, 2, taps=("sidechain",))


def test_a_lent_ring_is_reused_by_consecutive_sessions_with_exact_bytes(tmp_path):
    """The engine lends one preallocated ring to every capture (no allocation at capture start)."""
    ring = np.zeros((4096, 4), dtype=np.float64)
    rng = np.random.default_rng(11)
    for n, taps in enumerate((("output",), ("input", "output"))):
        xs = [rng.uniform(-1, 1, (int(k), 2)) for k in rng.integers(1, 700, 60)]
        ys = [x * 0.5 for x in xs]
        s = CaptureSession(tmp_path / f"c{n}", 48000, 2, taps=taps, floor_mb=0, analyze=False, ring=ring)
        _push_all(s, xs, ys)
        st = s.stop()
        assert not s.writing and st["dropped_frames"] == 0
        out = next(f for f in st["files"] if f.endswith("_output.wav"))
        assert np.array_equal(sf.read(out)[0], quantize(np.concatenate(ys), "PCM_24"))
    with pytest.raises(ValueError, match="capture ring"):
        CaptureSession(tmp_path / "bad", 48000, 2, taps=("input", "output"), analyze=False, ring=np.zeros((64, 2)))


@pytest.mark.parametrize("fmt", ["FLOAT", "PCM_24"])
@pytest.mark.parametrize("taps", [("output",), ("input",), ("input", "output")])
def test_the_compiled_copy_and_encoder_write_the_same_bytes_as_numpy_across_ring_wraps(tmp_path, taps, fmt):
    """The engine's path (dsp.capture_copy's copy into the ring and its GIL-free encoder, used once
    the engine warmed them): the same file bytes as the numpy path, byte for byte, through many
    wraps of a small lent ring, taps aligned, for ordinary samples and the awkward ones (rounding
    ties, full scale and beyond, infinities, NaN on the input tap)."""
    from dsp import capture_copy

    rng = np.random.default_rng(5)
    xs = [rng.uniform(-1, 1, (int(k), 2)) for k in rng.integers(1, 1500, 80)]
    xs[3] = rng.uniform(-1, 1, (32, 2))
    odd = np.array([0.5, -0.5, 1.5, -2.5, 8388606.5, 8388607.5, -8388608.5, 2 ** 24, -(2 ** 24)]) / 8388608.0
    xs[3][:len(odd), 0] = odd
    xs[3][:4, 1] = [np.inf, -np.inf, np.nan, 1.0]
    ys = [x * -0.5 for x in xs]
    copy_block, encode_rows = capture_copy.warm()
    encoded = []

    def encode_spy(*args):      # the compiled encoder, counted: the fast path must really be taken
        encoded.append(args[2])
        return encode_rows(*args)

    raw = {}
    when = dt.datetime(2026, 11, 24, 21, 30)       # the same start: the same bext chunk in both
    try:
        for kernels in (None, (copy_block, encode_spy)):
            cw.use_kernels(kernels)
            ring = np.full((4096, 4), np.nan)  # rows a copy missed would not be silently zero
            s = CaptureSession(tmp_path / ("fast" if kernels else "numpy"), 48000, 2, taps=taps, fmt=fmt,
                               floor_mb=0, analyze=False, ring=ring, when=when)
            assert s._fast
            _push_all(s, xs, ys)
            st = s.stop()
            assert st["dropped_frames"] == 0 and st["frames"] == sum(len(x) for x in xs)
            raw[kernels is None] = {Path(f).name.rsplit("_", 1)[1]: Path(f).read_bytes() for f in st["files"]}
    finally:
        cw.use_kernels(None)
    assert sum(encoded) == len(taps) * sum(len(x) for x in xs)
    assert raw[False] == raw[True]
    for tap in taps:
        got = sf.read(next((tmp_path / "fast").glob(f"*_{tap}.wav")))[0]
        want = quantize(np.concatenate(xs if tap == "input" else ys), fmt)
        finite = np.isfinite(want)
        assert np.array_equal(got[finite], want[finite])


@pytest.mark.parametrize(("preset", "modified", "phrase"), [("club night", True, "preset club night (modified)"),
                                                            ("club night", False, "preset club night"),
                                                            ("", True, "no preset"),
                                                            ("tab\there", True, "preset tab here (modified)")])
def test_a_capture_names_its_settings_as_a_master_does(tmp_path, preset, modified, phrase):
    """A capture made with the settings changed since the recall said "preset NAME" where a master of the
    same settings (``masterbox master --preset-label``, the web's jobs) says "NAME (modified)": both now
    take the label from the one :func:`firmware.names.preset_label` and the phrase from
    :func:`~firmware.names.settings_phrase` (also "no preset" where a capture said "preset none")."""
    from firmware import capture_master, render
    from firmware.names import preset_label, settings_phrase

    assert capture_master.preset_label is preset_label and render.settings_phrase is settings_phrase
    s = CaptureSession(tmp_path, 48000, 2, taps=("output",), fmt="PCM_24", preset=preset, modified=modified,
                       floor_mb=0, analyze=False)
    x = np.random.default_rng(5).uniform(-0.5, 0.5, (4800, 2))
    _push_all(s, [x], [x])
    (f,) = s.stop()["files"]
    assert libsndfile_bext(f)["description"] == f"masterbox capture, output (after the chain), {phrase}"
    master = render.master_bext(None, 48000, 48000, 2, "24", {"lim.ceiling_dbtp": -1.0}, None,
                                capture_master.preset_label(preset, modified) or None)
    assert master.description.endswith(f": {phrase}, ceiling -1.0 dBTP")     # what a master of them says


def test_a_capture_imports_nothing_once_it_has_started(tmp_path):
    """An import in the engine process holds the interpreter lock against the audio loop: the first
    capture's stop once imported the sidecar module and cost three xruns (CI, 2026-11-25). In a fresh
    interpreter, nothing is imported between a capture's start and its analysis written."""
    code = f"""
import sys
import numpy as np
from firmware.capture_writer import CaptureSession
s = CaptureSession({str(tmp_path)!r}, 48000, 2, taps=("input", "output"), preset="Radio", floor_mb=0)
before = set(sys.modules)
x = np.zeros((4800, 2))
for _ in range(10):
    s.push(x, x)
s.stop()
print(s.wait_analysis(120))
print(sorted(set(sys.modules) - before))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr[-2000:]
    analysis, imported = r.stdout.splitlines()[-2:]
    assert analysis == "done" and imported == "[]", r.stdout
