"""Broadcast Wave metadata (firmware/bwf.py, EBU Tech 3285 v2) on masters, and ``analyze`` reading it.

Oracles: libsndfile's own bext parser (``SFC_GET_BROADCAST_INFO``, tests/wav_chunks.py) and
ffprobe's for the fields and the layout; ffmpeg's ``ebur128`` and pyloudnorm for the stamped
loudness, which must be what the master measures.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
import subprocess

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from dsp.programme import render_programme
from firmware import bwf
from firmware.wav_writer import WavWriter
from tests.signals import ffmpeg_ebur128
from tests.wav_chunks import chunks, libsndfile_bext, without_bext

RATE = 48000


def cli(cmd, *args, ok=True):
    proc = subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=300)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def ffprobe_tags(path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["format"].get("tags", {})


def with_source_bext(path, x, rate, b: bwf.Bext) -> None:
    """A 24-bit WAV of ``x`` whose bext chunk libsndfile writes (an independent writer) from ``b``."""
    with sf.SoundFile(str(path), "w", rate, x.shape[1], "PCM_24", format="WAV") as f:
        bwf.set_with_libsndfile(f, b)
        f.write(x)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    path = tmp_path_factory.mktemp("bwf") / "song.wav"
    sf.write(path, render_programme(12, RATE, 31, -4.0), RATE, subtype="PCM_24")
    return path


# -- the chunk --------------------------------------------------------------------------------
def test_the_chunk_round_trips_and_libsndfile_reads_the_same_fields(tmp_path):
    b = bwf.Bext(description="Café mix – final", originator_reference="GBMBX" + "0" * 27,
                 origination_date="2026-11-24", origination_time="23:59:58", time_reference=(1 << 33) + 12345,
                 loudness_value=-23.004, loudness_range=7.456, max_true_peak_level=-1.005,
                 max_momentary_loudness=None, max_short_term_loudness=-250.0,
                 coding_history="A=PCM,F=48000,W=24,M=stereo,T=odd\r\n")
    body = bwf.pack(b)
    assert len(body) % 2 == 0 and len(body) == 602 + len(b.coding_history) + 1    # 35 bytes + a NUL pad
    back = bwf.unpack(body)
    assert back.description == "Cafe mix ? final"          # ASCII: the accent dropped, the dash replaced
    assert back.time_reference == (1 << 33) + 12345
    assert (back.loudness_value, back.loudness_range, back.max_true_peak_level) == (-23.0, 7.46, -1.0)
    assert back.max_momentary_loudness is None              # 0x7FFF: unset
    assert back.max_short_term_loudness == -99.99           # clamped to what the field may hold
    assert back.coding_history == b.coding_history

    path = tmp_path / "w.wav"
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (1001, 2))
    with WavWriter(path, RATE, 2, 24, bext=b) as w:
        w.write(x)
    assert [c[0] for c in chunks(path.read_bytes())] == [b"fmt ", b"bext", b"data"]
    ref = libsndfile_bext(path)
    assert ref["description"] == "Cafe mix ? final" and ref["originator"] == "masterbox"
    assert ref["originator_reference"] == "GBMBX" + "0" * 27
    assert (ref["origination_date"], ref["origination_time"]) == ("2026-11-24", "23:59:58")
    assert ref["time_reference"] == (1 << 33) + 12345 and ref["version"] == 2
    assert (ref["loudness_value"], ref["loudness_range"], ref["max_true_peak_level"],
            ref["max_momentary_loudness"], ref["max_short_term_loudness"]) == (-2300, 746, -100, 0x7FFF, -9999)
    assert ref["coding_history"] == b.coding_history
    y, _ = sf.read(path)                                    # the samples are where libsndfile expects them
    assert np.max(np.abs(y - x)) < 2 ** -23
    plain = tmp_path / "plain.wav"
    sf.write(plain, y, RATE, subtype="PCM_24")
    assert without_bext(path) == plain.read_bytes()


def test_a_restamp_must_keep_the_chunk_size_and_old_chunks_read_without_loudness(tmp_path):
    b = bwf.Bext(coding_history=bwf.coding_line(RATE, 24, 2, "x"))
    w = WavWriter(tmp_path / "a.wav", RATE, 2, 24, bext=b)
    w.write(np.zeros((10, 2)))
    w.bext = bwf.Bext(coding_history=b.coding_history + "more\r\n")
    with pytest.raises(ValueError, match="changed size"):
        w.close()
    v1 = bwf.pack(bwf.Bext(version=1, loudness_value=-9.0))
    assert bwf.unpack(v1).loudness_value is None             # version 1 had no loudness fields
    with pytest.raises(bwf.BextError, match="shorter"):
        bwf.unpack(v1[:400])


def test_time_of_day_and_history_helpers():
    when = dt.datetime(2026, 11, 24, 10, 30, 15, 500000)
    assert bwf.time_of_day_samples(when, RATE) == round((10 * 3600 + 30 * 60 + 15.5) * RATE)
    src = bwf.Bext(coding_history="A=ANALOGUE,M=stereo,T=Studer A80\nA=PCM,F=96000,W=24,M=stereo\r\n\0")
    assert bwf.history_after(src, "L3\r\n") == ("A=ANALOGUE,M=stereo,T=Studer A80\r\n"
                                                  "A=PCM,F=96000,W=24,M=stereo\r\nL3\r\n")
    assert bwf.history_after(None, "L3\r\n") == "L3\r\n"
    long = bwf.Bext(coding_history="".join(f"A=PCM,T=step {i}\r\n" for i in range(5000)))
    kept = bwf.history_after(long, "L3\r\n")
    assert len(kept) <= bwf.HISTORY_LIMIT and kept.endswith("T=step 4999\r\nL3\r\n")   # the newest kept


# -- masters ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bits,channels", [("24", 2), ("16", 1), ("32f", 2)])
def test_a_master_carries_its_own_loudness(masterbox_cmd, song, tmp_path, bits, channels):
    """The stamped loudness is what ffmpeg and pyloudnorm measure in the master (16-bit mono through
    our writer, 32-bit float through libsndfile's)."""
    src = song
    if channels == 1:
        src = tmp_path / "mono.wav"
        sf.write(src, sf.read(song)[0][:, 0], RATE, subtype="PCM_24")
    out = tmp_path / "m.wav"
    before = dt.datetime.now().replace(microsecond=0)
    doc = json.loads(cli(masterbox_cmd, "master", src, out, "--preset", "streaming", "--bit-depth", bits,
                         "--json").stdout)
    after = dt.datetime.now()
    ref = libsndfile_bext(out)
    assert ref["version"] == 2 and ref["originator"] == "masterbox"
    assert ref["description"].startswith("Mastered by masterbox")
    assert "preset streaming, target -14.0 LUFS, ceiling -1.0 dBTP" in ref["description"]
    stamped = dt.datetime.fromisoformat(f"{ref['origination_date']}T{ref['origination_time']}")
    assert before <= stamped <= after
    width = {"24": 24, "16": 16, "32f": 32}[bits]
    mode = "stereo" if channels == 2 else "mono"
    assert ref["coding_history"].startswith(f"A=PCM,F={RATE},W={width},M={mode},T=masterbox ")
    tags = ffprobe_tags(out)
    assert tags["comment"] == ref["description"] and tags["encoded_by"] == "masterbox"
    assert (tags["date"], tags["creation_time"]) == (ref["origination_date"], ref["origination_time"])

    ff = ffmpeg_ebur128(out, tmp_path)
    y, rate = sf.read(out)
    pyln = pyloudnorm.Meter(rate).integrated_loudness(y)
    assert ref["loudness_value"] / 100 == pytest.approx(ff["integrated_lufs"], abs=0.1)
    assert ref["loudness_value"] / 100 == pytest.approx(pyln, abs=0.1)
    assert ref["loudness_value"] / 100 == pytest.approx(doc["output"]["integrated_lufs"], abs=0.05)
    assert ref["max_true_peak_level"] / 100 == pytest.approx(ff["true_peak_dbtp"], abs=0.2)
    assert ref["max_true_peak_level"] <= -100 + 10         # the ceiling (-1 dBTP) held, as stamped
    assert ref["loudness_range"] / 100 == pytest.approx(ff["loudness_range_lu"], abs=0.5)
    assert ref["max_momentary_loudness"] / 100 == pytest.approx(ff["max_momentary_lufs"], abs=0.2)
    assert ref["max_short_term_loudness"] / 100 == pytest.approx(ff["max_short_term_lufs"], abs=0.2)


def test_the_source_history_and_time_reference_carry_over_a_rate_conversion(masterbox_cmd, tmp_path):
    """A capture made at 10:00:00 and mastered to 44.1 kHz still starts at 10:00:00 (TimeReference at
    the new rate), and its coding history keeps the source's lines before the master's own."""
    src = tmp_path / "take.wav"
    history = "A=ANALOGUE,M=stereo,T=Studer A80; 15 ips\r\nA=PCM,F=48000,W=24,M=stereo,T=desk\r\n"
    with_source_bext(src, render_programme(6, RATE, 4, -6.0), RATE,
                     bwf.Bext(description="live set", originator="desk", time_reference=10 * 3600 * RATE,
                              coding_history=history))
    out = tmp_path / "cd.wav"
    cli(masterbox_cmd, "master", src, out, "--preset", "loud", "--rate", "44100", "--bit-depth", "16")
    ref = libsndfile_bext(out)
    assert ref["time_reference"] == 10 * 3600 * 44100
    lines = ref["coding_history"].split("\r\n")
    assert lines[:2] == history.split("\r\n")[:2]                      # the source's own lines first
    assert lines[2].startswith("A=PCM,F=48000,W=24,M=stereo,T=libsndfile")   # what libsndfile added to it
    assert lines[3].startswith("A=PCM,F=44100,W=16,M=stereo,T=masterbox 0.1.0 (preset loud")
    assert ffprobe_tags(out)["time_reference"] == str(10 * 3600 * 44100)


def test_album_tracks_each_carry_their_own_loudness(masterbox_cmd, tmp_path):
    ins = []
    for n, (seed, peak) in enumerate([(7, -3.0), (8, -14.0)]):
        p = tmp_path / f"{n + 1:02d}.wav"
        sf.write(p, render_programme(5, RATE, seed, peak), RATE, subtype="PCM_24")
        ins.append(p)
    (tmp_path / "out").mkdir()
    doc = json.loads(cli(masterbox_cmd, "album", tmp_path / "out", *ins, "--preset", "streaming",
                         "--json").stdout)
    for n, track in enumerate(doc["tracks"], 1):
        ref = libsndfile_bext(track["output"])
        assert f"preset streaming (album, track {n} of 2)" in ref["description"]
        ff = ffmpeg_ebur128(tmp_path / "out" / f"{n:02d}.wav", tmp_path)
        assert ref["loudness_value"] / 100 == pytest.approx(ff["integrated_lufs"], abs=0.1)
        assert ref["loudness_value"] / 100 == pytest.approx(track["output_analysis"]["integrated_lufs"], abs=0.01)
    assert abs(libsndfile_bext(doc["tracks"][0]["output"])["loudness_value"]
               - libsndfile_bext(doc["tracks"][1]["output"])["loudness_value"]) > 300   # not the album's figure


def test_preset_label_names_the_settings_and_changes_no_sound(masterbox_cmd, song, tmp_path):
    """``--preset-label`` (the web UI's jobs: every value set over ``transparent``) names the settings in
    the chunk and in ``--json``, a label starting with "-" included; empty says "no preset" (null); a line
    break is refused (it would add a coding-history line). The samples are those without a label."""
    plain, named, none = tmp_path / "plain.wav", tmp_path / "named.wav", tmp_path / "none.wav"
    cli(masterbox_cmd, "master", song, plain, "--preset", "streaming")
    doc = json.loads(cli(masterbox_cmd, "master", song, named, "--preset", "streaming",
                         "--preset-label=-late set (modified)", "--json").stdout)
    ref = libsndfile_bext(named)
    assert doc["preset"] == "-late set (modified)"
    assert ref["description"].startswith("Mastered by masterbox 0.1.0: preset -late set (modified), target -14.0")
    assert "T=masterbox 0.1.0 (preset -late set (modified), target" in ref["coding_history"]
    doc = json.loads(cli(masterbox_cmd, "master", song, none, "--preset", "streaming", "--preset-label=",
                         "--json").stdout)
    assert doc["preset"] is None and libsndfile_bext(none)["description"].startswith(
        "Mastered by masterbox 0.1.0: no preset, target -14.0")
    assert without_bext(plain) == without_bext(named) == without_bext(none)
    bad = cli(masterbox_cmd, "master", song, tmp_path / "bad.wav", "--preset-label=a\nb", ok=False)
    assert bad.returncode != 0 and "--preset-label" in bad.stderr and not (tmp_path / "bad.wav").exists()


def test_an_rf64_master_carries_the_chunk_too(song, tmp_path, monkeypatch):
    """Past 4 GB the master is RF64 (written by libsndfile); the threshold is lowered to get there."""
    from dsp import schema
    from firmware import render
    from firmware.presets import PresetStore

    monkeypatch.setattr(render, "RF64_BYTES", 1000)
    values = dict(schema.defaults()) | PresetStore().get("streaming").params
    res = render.master_file(song, tmp_path / "big.wav", values, target_lufs=-14.0, preset="streaming")
    raw = (tmp_path / "big.wav").read_bytes()
    assert raw[:4] == b"RF64"
    b = bwf.read(tmp_path / "big.wav")
    assert b.loudness_value == round(res.measured_lufs, 2) and "preset streaming" in b.description
    assert ffprobe_tags(tmp_path / "big.wav")["comment"] == b.description


def test_flac_masters_have_no_chunk(masterbox_cmd, song, tmp_path):
    out = tmp_path / "m.flac"
    cli(masterbox_cmd, "master", song, out, "--preset", "streaming")
    assert sf.info(out).format == "FLAC" and bwf.read(out) is None


# -- analyze ----------------------------------------------------------------------------------
def test_analyze_shows_the_chunk_and_catches_metadata_that_lies(masterbox_cmd, song, tmp_path):
    out = tmp_path / "m.wav"
    cli(masterbox_cmd, "master", song, out, "--preset", "loud")
    doc = json.loads(cli(masterbox_cmd, "analyze", out, "--json").stdout)
    assert doc["bext"]["mismatched"] == [] and doc["bext"]["originator"] == "masterbox"
    assert doc["bext"]["loudness_value"] == pytest.approx(doc["integrated_lufs"], abs=0.05)
    text = cli(masterbox_cmd, "analyze", out).stdout
    assert "BWF (bext)" in text and "matches what the file measures" in text

    # a file whose stamped loudness is 3 dB off (the level changed after stamping, say)
    raw = bytearray(out.read_bytes())
    body = next(off for cid, off, _ in chunks(bytes(raw)) if cid == b"bext")
    struct.pack_into("<h", raw, body + 412, int(round(doc["integrated_lufs"] * 100)) + 300)
    lied = tmp_path / "lied.wav"
    lied.write_bytes(bytes(raw))
    assert json.loads(cli(masterbox_cmd, "analyze", lied, "--json").stdout)["bext"]["mismatched"] == \
        ["loudness_value"]
    assert "DOES NOT MATCH what the file measures: integrated" in cli(masterbox_cmd, "analyze", lied).stdout

    # a bext chunk cut to 100 bytes: the audio is still measured, with a warning
    cut = tmp_path / "cut.wav"
    x, _ = sf.read(out)
    with open(cut, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 24 + 108 + 8 + len(x) * 6) + b"WAVE")
        f.write(struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 2, RATE, RATE * 6, 6, 24))
        f.write(b"bext" + struct.pack("<I", 100) + bytes(100))
        pcm = np.clip(np.rint(x * 2 ** 23), -2 ** 23, 2 ** 23 - 1).astype("<i4").view(np.uint8)
        f.write(b"data" + struct.pack("<I", len(x) * 6) + pcm.reshape(-1, 4)[:, :3].tobytes())
    proc = cli(masterbox_cmd, "analyze", cut, "--json")
    assert "warning" in proc.stderr and "bext" in proc.stderr
    cut_doc = json.loads(proc.stdout)
    assert cut_doc["bext"] is None and cut_doc["integrated_lufs"] == pytest.approx(doc["integrated_lufs"], abs=0.01)

    # version 1 (no loudness fields; libsndfile always writes 2): shown, nothing to check
    v1 = tmp_path / "v1.wav"
    with WavWriter(v1, RATE, 2, 24, bext=bwf.Bext(description="old", version=1, loudness_value=-5.0)) as w:
        w.write(x)
    doc1 = json.loads(cli(masterbox_cmd, "analyze", v1, "--json").stdout)
    assert doc1["bext"]["version"] == 1 and doc1["bext"]["loudness_value"] is None
    assert "no loudness stamped" in cli(masterbox_cmd, "analyze", v1).stdout


def test_a_source_with_a_huge_or_broken_chunk_is_still_mastered(song, tmp_path):
    """Metadata never stops a master: a 60 kB coding history is cut to its newest lines (libsndfile,
    which writes float masters, holds 16 kB), a chunk cut short is ignored."""
    from dsp import schema
    from firmware import render

    x, _ = sf.read(song)
    big = tmp_path / "big_history.wav"
    history = "".join(f"A=PCM,F=48000,W=24,M=stereo,T=edit {i}\r\n" for i in range(1500))
    with WavWriter(big, RATE, 2, 24, bext=bwf.Bext(coding_history=history)) as w:
        w.write(x)
    render.master_file(big, tmp_path / "a.wav", dict(schema.defaults()), bit_depth="32f")
    got = libsndfile_bext(tmp_path / "a.wav")["coding_history"]
    assert "T=edit 1499\r\nA=PCM,F=48000,W=32,M=stereo,T=masterbox" in got and "T=edit 0\r\n" not in got

    cut = tmp_path / "cut.wav"
    raw = bytearray(big.read_bytes())
    body = next(off for cid, off, _ in chunks(bytes(raw)) if cid == b"bext")
    struct.pack_into("<I", raw, body - 4, 10)              # the chunk now claims 10 bytes ...
    raw[body + 10:body + 18] = b"JUNK" + struct.pack("<I", len(history) + 602 - 18)   # ... then a pad chunk
    cut.write_bytes(bytes(raw))
    assert sf.info(cut).frames == len(x)
    render.master_file(cut, tmp_path / "b.wav", dict(schema.defaults()))
    b = libsndfile_bext(tmp_path / "b.wav")
    assert b["coding_history"].startswith("A=PCM,F=48000,W=24,M=stereo,T=masterbox")   # nothing inherited
    assert sf.info(tmp_path / "b.wav").frames == len(x)
