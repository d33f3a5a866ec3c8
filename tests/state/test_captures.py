"""Capture index, sidecar analysis (QC + streaming preview) and the captures / presets commands."""

from __future__ import annotations

import json
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf

from firmware import paths
from firmware.capture_writer import CaptureSession, quantize
from firmware.captures import CaptureError, CaptureIndex, qc_file, streaming_preview


def _tone(seconds, level=0.3, rate=48000, freq=997.0):
    t = np.arange(int(seconds * rate)) / rate
    s = level * np.sin(2 * np.pi * freq * t)
    return np.stack([s, s], axis=1)


def test_streaming_preview_follows_each_services_rule():
    loud = streaming_preview(-8.0, -0.2)
    assert all(v["gain_db"] == pytest.approx(v["target_lufs"] + 8.0) for v in loud.values())
    quiet = streaming_preview(-20.0, -6.0)
    assert quiet["youtube"]["gain_db"] == 0 and quiet["tidal"]["gain_db"] == 0 and quiet["amazon_music"]["gain_db"] == 0
    assert quiet["spotify"]["gain_db"] == pytest.approx(5.0)  # only up to -1 dBTP
    assert "true-peak headroom" in quiet["spotify"]["note"]
    assert quiet["apple_music"]["gain_db"] == pytest.approx(4.0)
    roomy = streaming_preview(-18.0, -10.0)
    assert roomy["spotify"]["gain_db"] == pytest.approx(4.0) and roomy["spotify"]["result_lufs"] == -14.0
    assert streaming_preview(None, None)["spotify"]["gain_db"] is None


def test_qc_counts_clips_overs_dc_correlation_and_silence(tmp_path):
    rate = 48000
    x = _tone(3.0, 0.5, rate)
    x[: rate // 2] = 0.0  # 0.5 s leading silence
    x[-rate:] = 0.0  # 1 s trailing silence
    x[rate: rate + 10, 0] = 1.0  # one clipped run of 10 samples on the left
    x[int(0.8 * rate): int(1.2 * rate), 1] *= -1  # one 400 ms window out of phase
    x += 0.0005  # DC (-66 dBFS: below the silence threshold)
    # an fs/4 sine at 45 degrees, amplitude 1.3: every sample at 0.92 (no clip), true peak +2.3 dBTP
    n = np.arange(4800)
    x[int(1.6 * rate): int(1.6 * rate) + 4800, :] = (1.3 * np.sin(np.pi / 2 * n + np.pi / 4))[:, None]
    path = tmp_path / "qc.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    q = qc_file(path)
    assert q["clipped_samples"] == 10 and q["clip_events"] == 1
    assert q["intersample_overs"] > 2 * 4800  # most interpolated points between the samples pass 1.0
    assert q["dc_offset"][0] == pytest.approx(np.mean(x[:, 0]), abs=1e-6)
    assert q["min_correlation"] < -0.95
    assert q["leading_silence_s"] == pytest.approx(0.5, abs=0.01)
    assert q["trailing_silence_s"] == pytest.approx(1.0, abs=0.01)
    y = _tone(2.0, 0.3)
    y[-rate:] = 0.0
    sf.write(tmp_path / "tail.wav", y, rate, subtype="PCM_24")
    assert qc_file(tmp_path / "tail.wav")["trailing_silence_s"] == pytest.approx(1.0, abs=0.01)


def test_capture_sidecar_index_export_delete(tmp_path):
    d = tmp_path / "captures"
    s = CaptureSession(d, 48000, 2, taps=("input", "output"), fmt="PCM_24", preset="Radio", floor_mb=0)
    x = _tone(2.0, 0.25)
    for i in range(0, len(x), 4800):
        s.push(x[i:i + 4800], 2 * x[i:i + 4800])
    s.stop()
    assert s.wait_analysis(60) == "done"
    index = CaptureIndex(d)
    rows = index.list()
    assert {r["name"].rsplit("_", 1)[1] for r in rows} == {"input", "output"}
    out = next(r for r in rows if r["name"].endswith("_output"))
    assert out["duration_s"] == pytest.approx(2.0) and out["analysis"] == "done" and not out["recording"]
    side = index.get(out["name"])["sidecar"]
    for k in ("integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "sample_peak_dbfs", "max_momentary_lufs",
              "max_short_term_lufs", "duration_s", "sample_rate", "channels"):
        assert k in side
    assert side["integrated_lufs"] == pytest.approx(20 * np.log10(0.5), abs=0.1)  # stereo sine: LUFS = dBFS peak
    assert side["preset"] == "Radio" and side["tap"] == "output" and side["stop_reason"] == "stopped"
    assert set(side["streaming"]) == {"spotify", "youtube", "apple_music", "tidal", "amazon_music"}
    assert side["qc"]["clipped_samples"] == 0
    dest = index.export(out["name"], tmp_path)
    assert sf.info(dest).frames == 96000
    for bad in ("../x", "a/b", ".hidden", "", "nope"):
        with pytest.raises(CaptureError):
            index.delete(bad)
    index.delete(out["name"])
    assert len(index.list()) == 1 and not (d / f"{out['name']}.json").exists()


def test_a_capture_of_changed_settings_says_so_and_an_old_sidecar_is_not_taken_for_its_analysis(tmp_path):
    """``modified`` (the settings changed since the preset's recall) reaches the status, the sidecar and
    the list, as the file's bext says it. A sidecar left from a deleted WAV of the same name is not
    taken for the new capture's analysis: the capture gets the next name."""
    import datetime

    from firmware import bwf

    d = tmp_path / "captures"
    when = datetime.datetime(2026, 11, 25, 9, 30, 0)
    d.mkdir()
    (d / "2026-11-25_093000_Radio_output.json").write_text(json.dumps({"format": "masterbox-capture-analysis",
                                                                      "integrated_lufs": -99.0}))
    s = CaptureSession(d, 48000, 2, fmt="PCM_24", preset="Radio", floor_mb=0, modified=True, when=when)
    assert s.name == "2026-11-25_093000_Radio-2" and s.status()["modified"] is True
    x = _tone(1.0, 0.25)
    s.push(x, x)
    s.stop()
    assert s.wait_analysis(60) == "done"
    row = CaptureIndex(d).get("2026-11-25_093000_Radio-2_output")
    assert row["summary"]["preset"] == "Radio" and row["summary"]["modified"] is True
    assert row["sidecar"]["modified"] is True and row["sidecar"]["integrated_lufs"] == pytest.approx(-12.0, abs=0.1)
    assert "(modified)" in bwf.read(s.files["output"]).description


def test_a_finished_capture_carries_its_loudness_in_its_bext_chunk(tmp_path):
    """Once analysed, each tap's capture has the five loudness fields of its bext chunk written in
    place: what ffmpeg's ebur128 measures in the file (read back by libsndfile), the samples
    untouched. A second analysis writes nothing; a master or a file from elsewhere is left as it was."""
    from dsp.programme import render_programme
    from firmware import bwf
    from firmware.captures import write_sidecar
    from tests.signals import ffmpeg_ebur128
    from tests.wav_chunks import libsndfile_bext

    d = tmp_path / "captures"
    x = render_programme(8, 48000, 7, -6.0)
    s = CaptureSession(d, 48000, 2, taps=("input", "output"), fmt="PCM_24", preset="Radio", floor_mb=0)
    for i in range(0, len(x), 4800):
        s.push(x[i:i + 4800], 0.5 * x[i:i + 4800])
    s.stop()
    assert s.wait_analysis(60) == "done"
    for tap, path in s.files.items():
        ref, ff = libsndfile_bext(path), ffmpeg_ebur128(path, tmp_path)
        assert ref["description"].startswith(f"masterbox capture, {tap} (")
        assert ref["loudness_value"] / 100 == pytest.approx(ff["integrated_lufs"], abs=0.1)
        assert ref["loudness_range"] / 100 == pytest.approx(ff["loudness_range_lu"], abs=0.5)
        assert ref["max_true_peak_level"] / 100 == pytest.approx(ff["true_peak_dbtp"], abs=0.2)
        assert ref["max_momentary_loudness"] / 100 == pytest.approx(ff["max_momentary_lufs"], abs=0.2)
        assert ref["max_short_term_loudness"] / 100 == pytest.approx(ff["max_short_term_lufs"], abs=0.2)
        side = json.loads(path.with_suffix(".json").read_text())
        assert bwf.mismatches(bwf.read(path), side) == []            # what `masterbox analyze` checks
        y, _ = sf.read(path)
        assert np.array_equal(y, quantize(x if tap == "input" else 0.5 * x, "PCM_24"))
        assert sf.info(path).frames == len(x)
    out = s.files["output"]
    assert abs(libsndfile_bext(s.files["input"])["loudness_value"] - libsndfile_bext(out)["loudness_value"]
               - round(20 * np.log10(2) * 100)) <= 1                 # the output tap at half the level
    before = out.read_bytes()
    write_sidecar(out)                                                # analysed again: nothing to write
    assert out.read_bytes() == before
    # a master (its render stamped it) and a file another program wrote, with the fields unset
    other = d / "from_elsewhere.wav"
    with sf.SoundFile(str(other), "w", 48000, 2, "PCM_24", format="WAV") as f:
        bwf.set_with_libsndfile(f, bwf.Bext(description="field recording", originator="Sound Devices"))
        f.write(x)
    master = d / "master.wav"
    with open(out, "rb") as f:
        raw = bytearray(f.read())
    at = raw.index(b"masterbox capture")
    raw[at:at + 17] = b"Mastered by mbx, "                           # a master's description, same length
    master.write_bytes(bytes(raw))
    with open(master, "r+b") as f:                                   # its loudness fields unset, as a test of the rule
        f.seek(bwf.locate(master)[0] + bwf._LOUDNESS_OFFSET)
        f.write(b"\xff\x7f" * 5)
    for path in (other, master):
        kept = path.read_bytes()
        write_sidecar(path)
        assert path.read_bytes() == kept and path.with_suffix(".json").exists()


def test_recording_capture_cannot_be_deleted(tmp_path):
    s = CaptureSession(tmp_path / "c", 48000, 2, floor_mb=0, analyze=False)
    index = CaptureIndex(tmp_path / "c")
    row = index.list()[0]
    assert row["recording"] and row["analysis"] == "recording"
    with pytest.raises(CaptureError, match="being recorded"):
        index.delete(row["name"])
    s.stop()
    index.delete(row["name"])


def test_captures_and_presets_commands(masterbox_cmd, tmp_path):
    s = CaptureSession(paths.captures_dir(), 48000, 2, floor_mb=0, preset="cli")
    x = _tone(1.0)
    s.push(x, x)
    s.stop()
    s.wait_analysis(60)
    r = subprocess.run(masterbox_cmd + ["captures", "list", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 1 and rows[0]["summary"]["integrated_lufs"] is not None
    name = rows[0]["name"]
    r = subprocess.run(masterbox_cmd + ["captures", "export", name, str(tmp_path / "out.wav")], capture_output=True)
    assert r.returncode == 0 and sf.info(tmp_path / "out.wav").frames == 48000
    r = subprocess.run(masterbox_cmd + ["captures", "delete", "../../etc"], capture_output=True, text=True)
    assert r.returncode != 0 and "not a capture name" in r.stderr
    r = subprocess.run(masterbox_cmd + ["captures", "delete", name], capture_output=True, text=True)
    assert r.returncode == 0 and not list(paths.captures_dir().glob("*.wav"))

    # a name the web could never address is refused (a ".." segment); a slash and any letters are not
    (tmp_path / "p.json").write_text(json.dumps({"name": "Ünï/../cödé", "params": {"eq1.gain_db": 1.5}}))
    r = subprocess.run(masterbox_cmd + ["presets", "import", str(tmp_path / "p.json")], capture_output=True, text=True)
    assert r.returncode == 2 and "look like a path" in r.stderr, r.stderr
    (tmp_path / "p.json").write_text(json.dumps({"name": "Ünï/..cödé", "params": {"eq1.gain_db": 1.5}}))
    r = subprocess.run(masterbox_cmd + ["presets", "import", str(tmp_path / "p.json")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(masterbox_cmd + ["presets", "list", "--json"], capture_output=True, text=True)
    assert "Ünï/..cödé" in [x["name"] for x in json.loads(r.stdout)]
    r = subprocess.run(masterbox_cmd + ["presets", "show", "ünï/..CÖDÉ"], capture_output=True, text=True)
    assert json.loads(r.stdout)["params"]["eq1.gain_db"] == 1.5
    r = subprocess.run(masterbox_cmd + ["presets", "export", "Ünï/..cödé", str(tmp_path / "e.json")])
    assert r.returncode == 0 and json.loads((tmp_path / "e.json").read_text())["name"] == "Ünï/..cödé"
    (tmp_path / "bad.json").write_text(json.dumps({"schema_version": 1, "name": "b", "params": {"eq1.gain_db": 99}}))
    r = subprocess.run(masterbox_cmd + ["presets", "import", str(tmp_path / "bad.json")], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "eq1.gain_db" in r.stderr and "out of range" in r.stderr
    r = subprocess.run(masterbox_cmd + ["presets", "delete", "Ünï/..cödé"])
    assert r.returncode == 0
    r = subprocess.run(masterbox_cmd + ["presets", "delete", "nothing"], capture_output=True, text=True)
    assert r.returncode == 2 and "no preset named" in r.stderr


def test_captures_left_without_sidecar_are_analysed_by_a_worker(tmp_path):
    d = tmp_path / "captures"
    s = CaptureSession(d, 48000, 2, floor_mb=0, analyze=False)
    x = _tone(1.0)
    s.push(x, x)
    s.stop()
    index = CaptureIndex(d)
    assert index.list()[0]["analysis"] == "pending"
    assert index.analyze_pending(older_than_s=3600) == ([], [])  # too fresh: the engine may be writing it
    mtime = index.list()[0]["mtime"]
    name = index.list()[0]["name"]
    assert index.analyze_pending(skip={(name, mtime)}) == ([], [])  # tried before, unchanged since
    assert index.analyze_pending() == ([name], [(name, mtime)])
    row = index.list()[0]
    assert row["analysis"] == "done" and row["summary"]["integrated_lufs"] == pytest.approx(-10.46, abs=0.1)


def test_a_wav_copied_in_while_the_box_runs_gets_its_analysis(tmp_path, monkeypatch):
    """Not only at start-up: the control process keeps looking for captures without a sidecar."""
    import os

    from firmware import control as control_mod
    from firmware.control import Control

    monkeypatch.setattr(control_mod, "ANALYZE_DELAY_S", 0.05)
    monkeypatch.setattr(control_mod, "ANALYZE_EVERY_S", 0.2)
    d = tmp_path / "captures"
    d.mkdir()
    c = Control(captures=CaptureIndex(d), watch=True)
    try:
        time.sleep(0.5)                                   # the first look found nothing
        wav = d / "from-a-laptop.wav"
        sf.write(str(wav), _tone(2.0), 48000, subtype="PCM_24")
        old = time.time() - 120
        os.utime(wav, (old, old))                         # finished long ago (not one being written)
        deadline = time.monotonic() + 60
        while c.captures.list()[0]["analysis"] != "done":
            assert time.monotonic() < deadline, c.captures.list()
            time.sleep(0.1)
        assert c.captures.list()[0]["summary"]["integrated_lufs"] == pytest.approx(-10.46, abs=0.1)
    finally:
        c.close()


def test_a_master_cut_off_mid_way_leaves_no_hidden_file_for_good(tmp_path, monkeypatch, masterbox_cmd):
    """A power cut or a kill during "Master…" leaves ``master``'s temporary file in the captures folder,
    hidden from the list and as big as the master. The next control process removes it; a temporary
    file some process still holds open, or one written a moment ago, is left alone."""
    import os
    import signal
    import sys

    from dsp.programme import render_programme
    from firmware import control as control_mod
    from firmware.commands.master import parse_progress
    from firmware.control import Control

    d = tmp_path / "captures"
    d.mkdir()
    sf.write(str(d / "long.wav"), render_programme(240.0, 48000, seed=2, peak_dbfs=-12.0), 48000, subtype="PCM_24")
    job = subprocess.Popen([*masterbox_cmd, "master", str(d / "long.wav"), str(d / "long-master.wav"), "--progress"],
                           stderr=subprocess.PIPE, text=True, start_new_session=True)
    for line in job.stderr:                      # killed in the middle of its first pass at the drive
        step = parse_progress(line)
        if step and step["stage"] == "pass 1" and step["percent"] >= 50:
            break
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    cut = [p for p in d.iterdir() if p.name.startswith(".long-master.wav.")]
    assert len(cut) == 1 and cut[0].stat().st_size > 1_000_000, cut
    held = d / ".other-master.wav.abc123.tmp"
    held.write_bytes(b"\0" * 4096)
    fresh = d / ".x-master.wav.def456.tmp"
    fresh.write_bytes(b"\0" * 4096)
    long_ago = time.time() - 3600
    for p in (cut[0], held):
        os.utime(p, (long_ago, long_ago))
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; f = open(sys.argv[1], 'rb'); "
                               "print('open', flush=True); time.sleep(120)", str(held)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        monkeypatch.setattr(control_mod, "ANALYZE_DELAY_S", 0.05)
        c = Control(captures=CaptureIndex(d), watch=True)
        try:
            deadline = time.monotonic() + 30
            while cut[0].exists():
                assert time.monotonic() < deadline, sorted(p.name for p in d.iterdir())
                time.sleep(0.05)
        finally:
            c.close()
        assert held.exists() and fresh.exists()
        assert [r["name"] for r in CaptureIndex(d).list()] == ["long"]       # and the capture is untouched
    finally:
        holder.kill()
        holder.wait()
    # once nothing holds it and it has not changed for a while, it goes too
    os.utime(held, (long_ago, long_ago))
    assert CaptureIndex(d).remove_stale_temporaries() == [(held.name, 4096)]
    assert fresh.exists()


def test_writes_cut_off_in_the_preset_and_state_folders_are_swept_at_start(monkeypatch):
    """``write_atomic``'s temporary file, left by a power cut between its write and its rename, is
    removed by the next control process from the presets folder and the state's folder too; one
    written a moment ago stays, and so do the preset and the state themselves."""
    import os

    from firmware import control as control_mod
    from firmware.control import Control

    monkeypatch.setattr(control_mod, "ANALYZE_DELAY_S", 30.0)     # only the sweep at start matters here
    c = Control(watch=False)
    c.presets.save("mine", c.state.values)
    c.state.flush()
    c.close()
    preset_file = next(p for p in paths.presets_dir().iterdir() if p.suffix == ".json" and "mine" in p.name)
    stale = [paths.presets_dir() / f".{preset_file.name}.k2j3x9.tmp",
             paths.state_file().parent / f".{paths.state_file().name}.a1b2c3.tmp"]
    fresh = paths.presets_dir() / f".{preset_file.name}.q8w7e6.tmp"
    long_ago = time.time() - 3600
    for p in (*stale, fresh):
        p.write_text('{"half": ')
    for p in stale:
        os.utime(p, (long_ago, long_ago))
    kept = preset_file.read_bytes()
    c = Control(watch=True)
    try:
        deadline = time.monotonic() + 30
        while any(p.exists() for p in stale):
            assert time.monotonic() < deadline, [p.name for p in stale if p.exists()]
            time.sleep(0.05)
        assert fresh.exists() and preset_file.read_bytes() == kept
        assert "mine" in [p["name"] for p in c.presets.list()]
    finally:
        c.close()


def test_a_wav_from_elsewhere_is_listed_with_its_rate_and_length_before_its_analysis(tmp_path):
    """A WAV uploaded or copied in has no box header and no sidecar yet: its own header tells the list."""
    d = tmp_path / "captures"
    d.mkdir()
    sf.write(str(d / "desk.wav"), np.zeros((44100 * 3, 2)), 44100, subtype="PCM_16")
    sf.write(str(d / "odd.wav"), np.zeros((8000, 1)), 8000, subtype="PCM_U8")      # beyond our reader: unknown
    rows = {r["name"]: r for r in CaptureIndex(d).list()}
    assert (rows["desk"]["sample_rate"], rows["desk"]["channels"], rows["desk"]["analysis"]) == (44100, 2, "pending")
    assert rows["desk"]["duration_s"] == pytest.approx(3.0)
    assert (rows["odd"]["sample_rate"], rows["odd"]["duration_s"]) == (None, None)
