"""``masterbox master``: loudness targets (checked by ffmpeg and pyloudnorm), the file contract,
and the errors a person can act on."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from dsp.programme import render_programme
from tests.full_disk import leave_free, tmpfs
from tests.signals import ffmpeg_ebur128
from tests.wav_chunks import without_bext

RATE = 48000


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    d = tmp_path_factory.mktemp("song")
    p = d / "song.wav"
    sf.write(p, render_programme(20.0, RATE, seed=4, peak_dbfs=-6.0), RATE, subtype="PCM_24")
    return p


def master(cmd, *args, check=True):
    proc = subprocess.run([*cmd, "master", *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def deman_lufs(path):
    data, rate = sf.read(path)
    meter = pyloudnorm.Meter(rate, filter_class="DeMan")
    return meter.integrated_loudness(data)


@pytest.mark.parametrize("preset,target,ceiling", [("streaming", -14.0, -1.0), ("broadcast-r128", -23.0, -1.0),
                                                     ("loud", -9.0, -1.0), ("vinyl-premaster", -16.0, -3.0)])
def test_preset_targets_land_within_half_a_lu(masterbox_cmd, song, tmp_path, preset, target, ceiling):
    out = tmp_path / f"{preset}.wav"
    proc = master(masterbox_cmd, song, out, "--preset", preset, "--json")
    doc = json.loads(proc.stdout)
    assert {"input", "output", "latency_samples", "preset"} <= set(doc)
    assert doc["preset"] == preset and doc["latency_samples"] > 0
    for k in ("integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "sample_peak_dbfs",
              "max_momentary_lufs", "max_short_term_lufs", "duration_s", "sample_rate", "channels"):
        assert k in doc["output"] and k in doc["input"]
    ff = ffmpeg_ebur128(out, tmp_path)
    assert ff["integrated_lufs"] == pytest.approx(target, abs=0.5)
    assert deman_lufs(out) == pytest.approx(target, abs=0.5)
    assert ff["true_peak_dbtp"] <= ceiling + 0.1
    info = sf.info(out)
    src = sf.info(song)
    assert info.frames == src.frames and info.samplerate == src.samplerate and info.channels == 2
    assert info.subtype == "PCM_24"


def test_overrides_bit_depths_and_latency_compensation(masterbox_cmd, song, tmp_path):
    out = tmp_path / "t.wav"
    master(masterbox_cmd, song, out, "--preset", "transparent", "--bit-depth", "32f")
    x, _ = sf.read(song)
    y, _ = sf.read(out)
    assert sf.info(out).subtype == "FLOAT"
    assert len(y) == len(x)
    assert np.max(np.abs(y - x)) < 1e-6          # below the ceiling: the input, aligned, in float
    out16 = tmp_path / "t16.wav"
    proc = master(masterbox_cmd, song, out16, "--preset", "streaming", "--bit-depth", "16",
                  "--ceiling-dbtp", "-2", "--target-lufs", "-16", "--set", "st.width=120", "--json")
    doc = json.loads(proc.stdout)
    assert sf.info(out16).subtype == "PCM_16"
    assert doc["output"]["integrated_lufs"] == pytest.approx(-16.0, abs=0.5)
    assert doc["output"]["true_peak_dbtp"] <= -1.9
    y16, _ = sf.read(out16, dtype="int16")
    assert len(np.unique(y16[:, 0] & 1)) == 2     # dithered words use the LSB


def test_mono_input_gives_mono_output(masterbox_cmd, tmp_path):
    src = tmp_path / "mono.flac"
    sf.write(src, render_programme(6.0, 44100, seed=2, peak_dbfs=-10.0)[:, 0], 44100, subtype="PCM_16")
    out = tmp_path / "mono_out.flac"
    doc = json.loads(master(masterbox_cmd, src, out, "--preset", "podcast", "--json").stdout)
    info = sf.info(out)
    assert info.channels == 1 and info.frames == sf.info(src).frames and info.samplerate == 44100
    # the target is what the mono file measures (BS.1770: its one channel), not the dual mono
    # the chain hears, and the printed analysis says the same
    assert ffmpeg_ebur128(out, tmp_path)["integrated_lufs"] == pytest.approx(-16.0, abs=0.5)
    assert deman_lufs(out) == pytest.approx(-16.0, abs=0.5)
    assert doc["output"]["integrated_lufs"] == pytest.approx(-16.0, abs=0.5) and doc["target_reached"]
    assert "mono file: the target is its loudness as a mono file" in master(masterbox_cmd, src, out).stdout


@pytest.mark.parametrize("channels", [2, 1])
def test_nonfinite_input_samples_are_mastered_as_silence_and_reported(masterbox_cmd, tmp_path, channels):
    x = render_programme(6.0, RATE, seed=5, peak_dbfs=-6.0)[:, :channels].astype(np.float32)
    rng = np.random.default_rng(channels)
    places = rng.choice(x.size, size=40, replace=False)
    x.reshape(-1)[places] = np.resize([np.nan, np.inf, -np.inf, 1e30], places.size)
    src = tmp_path / "dirty.wav"
    sf.write(src, x, RATE, subtype="FLOAT")
    out = tmp_path / "out.wav"
    proc = master(masterbox_cmd, src, out, "--preset", "streaming", "--json")
    doc = json.loads(proc.stdout)
    assert doc["input_faults"] == 40
    assert "40 samples that are NaN, infinite or beyond +80 dBFS: mastered as silence" in proc.stderr
    assert set(doc["input"]) == set(doc["output"])      # the same keys for mono and stereo
    y, _ = sf.read(out, always_2d=True)
    assert y.shape == x.shape and np.isfinite(y).all()
    ff = ffmpeg_ebur128(out, tmp_path)
    assert ff["integrated_lufs"] == pytest.approx(-14.0, abs=0.5)
    assert ff["true_peak_dbtp"] <= -1.0 + 0.1
    text = master(masterbox_cmd, src, tmp_path / "out2.wav", "--preset", "streaming").stdout
    assert "40 samples that are NaN" in text
    clean = master(masterbox_cmd, tmp_path / "out2.wav", tmp_path / "out3.wav", "--json")
    assert json.loads(clean.stdout)["input_faults"] == 0 and "NaN" not in clean.stderr


def test_unreachable_target_is_reported(masterbox_cmd, song, tmp_path):
    out = tmp_path / "hot.wav"
    proc = master(masterbox_cmd, song, out, "--preset", "streaming", "--target-lufs", "-5",
                  "--ceiling-dbtp", "-9")
    assert "not reached" in proc.stdout and "LU short" in proc.stdout
    assert out.exists()


def test_the_quietest_target_is_reached_from_a_loud_mix(masterbox_cmd, tmp_path):
    """A -30 LUFS target from a -6 LUFS mix through `transparent` needs 24 dB less: the drive's floor was
    -12 dB, so the search stopped 12 LU over and blamed the ceiling. The drive now goes down to -36 dB."""
    src = tmp_path / "loud-mix.wav"
    x = render_programme(12.0, RATE, seed=5, peak_dbfs=-6.0)
    gain = 10 ** ((-6.0 - ffmpeg_ebur128_of(x, tmp_path)) / 20)
    sf.write(src, np.clip(x * gain, -1.0, 1.0), RATE, subtype="FLOAT")
    out = tmp_path / "quiet.wav"
    doc = json.loads(master(masterbox_cmd, src, out, "--preset", "transparent", "--target-lufs", "-30",
                            "--json").stdout)
    assert doc["target_reached"] is True and doc["message"] is None
    assert doc["drive_db"] < -12.0
    assert ffmpeg_ebur128(out, tmp_path)["integrated_lufs"] == pytest.approx(-30.0, abs=0.5)
    assert deman_lufs(out) == pytest.approx(-30.0, abs=0.5)


def ffmpeg_ebur128_of(x, tmp_path):
    """ffmpeg's integrated loudness of the samples ``x`` (written as a float WAV)."""
    p = tmp_path / "measure.wav"
    sf.write(p, x, RATE, subtype="FLOAT")
    return ffmpeg_ebur128(p, tmp_path)["integrated_lufs"]


def test_a_target_over_by_the_drive_floor_does_not_blame_the_ceiling():
    from firmware.commands.master import target_message

    over = target_message(-36.0, False, -30.0, -1.0, ["output drive is at its minimum (-36 dB)"], "output")
    assert over.startswith("target -36.0 LUFS not reached: output is -30.0 LUFS, 6.0 LU over")
    short = target_message(-5.0, False, -8.0, -1.0, [], "output")
    assert short.startswith("target -5.0 LUFS not reached at a -1.0 dBTP ceiling: output is -8.0 LUFS, 3.0 LU short")


@pytest.mark.parametrize("kind,channels", [("silent", 2), ("silent", 1), ("short", 2), ("short", 1)])
def test_a_target_without_loudness_to_measure_says_why(masterbox_cmd, tmp_path, kind, channels):
    """Digital silence, or a file under 400 ms: no loudness, so the target cannot apply; say so, still write.

    A mono file under 400 ms gets what a stereo one does (until 2026-11-24 it was written, then the
    command failed, exit 2 and no JSON, measuring it with ``analyze``, which refuses it): loudness
    undefined, peaks as ffmpeg and the samples say."""
    src, out = tmp_path / "in.wav", tmp_path / "out.wav"
    n = 3 * RATE if kind == "silent" else RATE // 10
    x = np.zeros((n, channels)) if kind == "silent" else np.random.default_rng(2).normal(0, 0.1, (n, channels))
    sf.write(src, x, RATE, subtype="PCM_24")
    if kind == "silent":                                  # the oracle agrees: no loudness
        assert pyloudnorm.Meter(RATE).integrated_loudness(x) == -np.inf
    else:
        with pytest.raises(ValueError, match="block size"):
            pyloudnorm.Meter(RATE).integrated_loudness(x)
    proc = master(masterbox_cmd, src, out, "--preset", "streaming", "--json")
    doc = json.loads(proc.stdout)
    assert doc["target_reached"] is False and doc["output"]["integrated_lufs"] is None
    reason = "silent (no 400 ms block above -70 LUFS)" if kind == "silent" else "100 ms long, shorter than the 400 ms"
    assert doc["message"].startswith("target -14.0 LUFS not applied") and reason in doc["message"], doc["message"]
    assert doc["message"] in proc.stderr
    assert sf.info(out).frames == n and sf.info(out).channels == channels
    if kind == "silent":                                  # digital black in, digital black out (no dither noise)
        assert not np.any(sf.read(out, dtype="int32")[0])
    else:
        assert set(doc["input"]) == set(doc["output"]) == set(json.loads(master(
            masterbox_cmd, tmp_path / "out.wav", tmp_path / "again.wav", "--json").stdout)["input"])
        for side, path in (("input", src), ("output", out)):
            a = doc[side]
            assert all(a[k] is None for k in ("integrated_lufs", "max_momentary_lufs", "max_short_term_lufs",
                                              "loudness_range_lu", "plr_db")), a
            assert (a["channels"], a["frames"], a["sample_rate"]) == (channels, n, RATE)
            y = sf.read(path, always_2d=True)[0]
            assert a["sample_peak_dbfs"] == pytest.approx(20 * np.log10(np.abs(y).max()), abs=0.01)
            assert a["true_peak_dbtp"] == pytest.approx(ffmpeg_ebur128(path, tmp_path)["true_peak_dbtp"], abs=0.2)
    table = master(masterbox_cmd, src, tmp_path / "out2.wav", "--preset", "streaming")
    assert doc["message"] in table.stdout
    plain = json.loads(master(masterbox_cmd, src, tmp_path / "out3.wav", "--preset", "transparent", "--json").stdout)
    assert plain["target_reached"] is None and plain["message"] is None              # no target, nothing to say


@pytest.mark.parametrize("channels", [2, 1])
def test_rate_conversion_before_the_chain_holds_the_ceiling_at_the_new_rate(masterbox_cmd, tmp_path, channels):
    """A 96 kHz mix mastered for CD: 44.1 kHz, 16-bit, the ceiling and the target held at 44.1 kHz
    (ffmpeg measures the file), the input's duration, an ordinary file's permissions, no
    temporary file left; NaN in the input counted and mastered as silence, not smeared."""
    rate_in = 96000
    x = render_programme(8.0, rate_in, seed=6, peak_dbfs=-3.0)[:, :channels].astype(np.float32)
    x.reshape(-1)[[1000, 200000, 400001]] = [np.nan, np.inf, 1e30]
    src = tmp_path / "mix96.wav"
    sf.write(src, x, rate_in, subtype="FLOAT")
    out = tmp_path / "cd.wav"
    proc = subprocess.run([*masterbox_cmd, "master", str(src), str(out), "--rate", "44100", "--bit-depth", "16",
                           "--preset", "streaming", "--json"], capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: os.umask(0o022))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["converted_from_rate"] == 96000 and doc["output"]["sample_rate"] == 44100
    assert doc["input_faults"] == 3
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.subtype) == (44100, channels, "PCM_16")
    assert info.frames == round(len(x) * 44100 / rate_in)
    ff = ffmpeg_ebur128(out, tmp_path)
    assert ff["true_peak_dbtp"] <= -1.0 + 0.1
    assert ff["integrated_lufs"] == pytest.approx(-14.0, abs=0.5)
    y, _ = sf.read(out, always_2d=True)
    assert np.isfinite(y).all()
    # the NaN at 1000 (96 kHz) is silence at 459 (44.1 kHz), not a hole as long as the filter:
    # the output around it follows the music
    assert np.abs(y[400:520]).max() > 0.01
    assert (out.stat().st_mode & 0o777) == 0o644
    assert not list(tmp_path.glob(".*.tmp*"))
    same = json.loads(master(masterbox_cmd, out, tmp_path / "again.wav", "--rate", "44100", "--json").stdout)
    assert same["converted_from_rate"] is None        # already at that rate: nothing to convert


def test_errors(masterbox_cmd, song, tmp_path):
    def fails(*args, words):
        proc = master(masterbox_cmd, *args, check=False)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        for w in words:
            assert w in proc.stderr, (w, proc.stderr)
        return proc

    fails(tmp_path / "missing.wav", tmp_path / "o.wav", words=["no such file"])
    fails(song, tmp_path / "o.wav", "--preset", "nope", words=["nope", "streaming"])
    fails(song, tmp_path / "o.wav", "--set", "eq9.gain_db=1", words=["eq9.gain_db", "unknown"])
    fails(song, tmp_path / "o.wav", "--set", "eq1.gain_db=99", words=["out of range"])
    fails(song, tmp_path / "o.wav", "--set", "eq1.gain_db", words=["id=value"])
    fails(song, tmp_path / "o.wav", "--ceiling-dbtp", "3", words=["--ceiling-dbtp"])
    fails(song, song, words=["refusing to overwrite the input"])
    fails(song, tmp_path / "nodir" / "o.wav", words=["does not exist"])
    fails(song, tmp_path / "o.mp3", words=["unsupported output"])
    fails(song, tmp_path / "o.wav", "--rate", "1000", words=["sample rate 1000 Hz", "8000..384000"])
    fails(song, tmp_path / "o.wav", "--rate", "fast", words=["--rate", "invalid int"])
    fails(song, song, "--rate", "44100", words=["refusing to overwrite the input"])
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        fails(song, ro / "o.wav", words=["not writable"])
    assert not list(tmp_path.glob(".*.tmp"))
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("bits,channels", [("24", 2), ("16", 1), ("24", 1)])
def test_wav_output_is_what_libsndfile_writes_for_the_same_samples(masterbox_cmd, song, tmp_path, bits, channels):
    """The 16/24-bit WAV output comes from firmware/wav_writer.py: libsndfile, given the samples
    read back from it, writes the very same file (header, words, pad byte) but for the Broadcast
    Wave chunk libsndfile was not asked for."""
    src = song
    if channels == 1:
        src = tmp_path / "mono.wav"
        sf.write(src, sf.read(song)[0][:RATE * 3 + 1, 0], RATE, subtype="PCM_24")   # 24-bit: a pad byte
    out = tmp_path / "out.wav"
    master(masterbox_cmd, src, out, "--preset", "loud", "--bit-depth", bits)
    y, rate = sf.read(out, always_2d=True)
    assert y.shape == (sf.info(src).frames, channels) and np.abs(y).max() > 0.5
    again = tmp_path / "again.wav"
    sf.write(again, y, rate, subtype=f"PCM_{bits}", format="WAV")
    assert without_bext(out) == again.read_bytes()


def test_progress_follows_every_pass_and_changes_nothing(masterbox_cmd, song, tmp_path):
    """``--progress`` (what the web UI reads while a capture is mastered): one line per whole percent
    of each pass, the measuring pass first, then as many passes as the JSON reports, each to 100 %;
    the file is the same as without it."""
    from firmware.commands.master import parse_progress

    quiet = master(masterbox_cmd, song, tmp_path / "a.wav", "--preset", "loud", "--json")
    told = master(masterbox_cmd, song, tmp_path / "b.wav", "--preset", "loud", "--json", "--progress")
    assert without_bext(tmp_path / "a.wav") == without_bext(tmp_path / "b.wav")
    doc = json.loads(told.stdout)
    assert json.loads(quiet.stdout)["passes"] == doc["passes"]
    steps = [parse_progress(ln) for ln in told.stderr.splitlines() if ln.startswith("progress: ")]
    assert steps and None not in steps, told.stderr
    stages = list(dict.fromkeys(s["stage"] for s in steps))
    assert stages == ["measuring"] + [f"pass {k}" for k in range(1, doc["passes"] + 1)], stages
    for stage in stages:
        pct = [s["percent"] for s in steps if s["stage"] == stage]
        assert pct[0] == 0 and pct[-1] == 100 and pct == sorted(pct) and len(pct) > 5, (stage, pct)
    # without a target: one pass; with a rate conversion, said first
    told = master(masterbox_cmd, song, tmp_path / "c.wav", "--preset", "transparent", "--rate", "44100",
                  "--progress")
    steps = [parse_progress(ln) for ln in told.stderr.splitlines() if ln.startswith("progress: ")]
    assert list(dict.fromkeys(s["stage"] for s in steps)) == ["converting", "pass 1"], told.stderr
    converting = [s["percent"] for s in steps if s["stage"] == "converting"]
    assert converting[0] == 0 and converting[-1] == 100 and converting == sorted(converting), converting


@pytest.mark.parametrize("name,extra", [("x.flac", []), ("x.aiff", []), ("x.wav", ["--bit-depth", "32f"]),
                                        ("x.wav", ["--rate", "44100"]), ("x.wav", [])])
def test_a_full_disk_is_one_line_and_leaves_nothing(masterbox_cmd, tmp_path, name, extra):
    """A 1 MB disk and a master of 1.7 MB (FLAC) to 2.9 MB: every output type (libsndfile's FLAC, AIFF and float WAV,
    the --rate conversion's temporary file, our 16/24-bit WAV writer) says the same sentence, exit 2,
    and leaves the disk empty (until 2026-11-24 libsndfile's failures were a traceback and exit 1)."""
    src = tmp_path / "in.wav"
    sf.write(src, render_programme(10.0, RATE, seed=7, peak_dbfs=-6.0), RATE, subtype="PCM_24")
    with tmpfs(tmp_path / "disk", "1m") as disk:
        proc = master(masterbox_cmd, src, disk / name, *extra, check=False)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == \
            f"masterbox master: {disk / name}: cannot write: No space left on device"
        assert sorted(os.listdir(disk)) == []            # no master, no temporary file, no conversion


def test_a_disk_that_fills_at_the_end_of_a_flac_is_an_error_not_a_corrupt_master(masterbox_cmd, tmp_path):
    """libsndfile's FLAC encoder writes its last frames and its header while the file is closed, and a
    failure there is not reported: with 1000 bytes less room than the master needs, the master was a
    truncated FLAC (no length in its header; ffmpeg: "invalid residual") renamed into place, exit 0.
    Now the file is read back before the rename: one line, exit 2, nothing left but the filler."""
    src = tmp_path / "in.wav"
    sf.write(src, render_programme(10.0, RATE, seed=7, peak_dbfs=-6.0), RATE, subtype="PCM_24")
    ref = tmp_path / "ref.flac"
    one_pass = ("--preset", "transparent")                   # one pass: the file is written once, in full
    master(masterbox_cmd, src, ref, *one_pass)               # the same master on a roomy disk: its size
    with tmpfs(tmp_path / "disk", "8m") as disk:
        fill = leave_free(disk, ref.stat().st_size - 1000)
        proc = master(masterbox_cmd, src, disk / "x.flac", *one_pass, check=False)
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert proc.stderr.strip().splitlines()[-1] == \
            f"masterbox master: {disk / 'x.flac'}: cannot write: No space left on device"
        assert os.listdir(disk) == [fill.name]
        fill.unlink()                                        # with the room, the same command writes it whole
        master(masterbox_cmd, src, disk / "x.flac", *one_pass)
        decoded = subprocess.run(["ffmpeg", "-v", "error", "-i", str(disk / "x.flac"), "-f", "null", "-"],
                                 capture_output=True, text=True)
        assert decoded.returncode == 0 and decoded.stderr == ""
        assert sf.info(disk / "x.flac").frames == sf.info(src).frames


def terminate_at(cmd, stage: str, percent: int = 5) -> tuple[int, str]:
    """Run ``cmd`` (with ``--progress``), SIGTERM it once it reports ``stage`` at ``percent`` %; (exit code, stderr)."""
    from firmware.commands.master import parse_progress

    proc = subprocess.Popen([*map(str, cmd)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            step = parse_progress(line)
            if step and step["stage"] == stage and step["percent"] >= percent:
                proc.send_signal(signal.SIGTERM)
                break
        lines += proc.stderr.read()
        return proc.wait(timeout=60), "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("stage,extra", [("converting", ["--rate", "44100"]), ("pass 1", ["--rate", "44100"]),
                                         ("measuring", []), ("pass 1", [])])
def test_sigterm_cleans_up_like_ctrl_c(masterbox_cmd, tmp_path, stage, extra):
    """``timeout``, ``systemctl stop``, a CI cancel: SIGTERM mid-way leaves nothing beside the output
    (until 2026-11-24 the hidden master and the --rate conversion's file stayed, 12 MB each here, 100s of MB
    for a song) and exits 143."""
    src = tmp_path / "in" / "mix96.wav"
    src.parent.mkdir()
    sf.write(src, render_programme(30.0, 96000, seed=8, peak_dbfs=-6.0), 96000, subtype="PCM_24")
    out = tmp_path / "out"
    out.mkdir()
    code, err = terminate_at([*masterbox_cmd, "master", src, out / "o.wav", "--progress", *extra], stage)
    assert f"progress: {stage} " in err and "Traceback" not in err, err
    assert os.listdir(out) == []
    assert code == 143, err


LONG_NAMES = ["a" * 245 + ".wav", "日本語" * 27 + ".wav", "ü" * 120 + "-x.flac"]      # 249, 247, 247 bytes


@pytest.mark.parametrize("name", LONG_NAMES)
@pytest.mark.parametrize("rate", [None, 44100])
def test_a_long_but_legal_output_name_is_written(masterbox_cmd, tmp_path, name, rate):
    """A 240+ byte name is legal (255 bytes), but ``.NAME.XXXXXXXX.tmp`` is not: until 2026-11-24 this failed
    with "File name too long". The temporary names are cut to fit (firmware.atomic.temporary_prefix)."""
    src = tmp_path / "in.wav"
    sf.write(src, render_programme(3.0, RATE, seed=9, peak_dbfs=-6.0), RATE, subtype="PCM_24")
    out = tmp_path / "out"
    out.mkdir()
    master(masterbox_cmd, src, out / name, *(["--rate", str(rate)] if rate else []))
    assert os.listdir(out) == [name]
    info = sf.info(out / name)
    assert (info.samplerate, info.frames) == (rate or RATE, round(3.0 * (rate or RATE)))


def test_an_output_name_too_long_for_the_filesystem_is_refused_before_the_render(masterbox_cmd, tmp_path, song):
    name = "b" * 252 + ".wav"                                   # 256 bytes
    proc = master(masterbox_cmd, song, tmp_path / name, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"masterbox master: {tmp_path / name}: the file name is 256 bytes long; " \
                                  "a file name holds at most 255"
    assert "pass 1" not in proc.stderr and [p.name for p in tmp_path.iterdir()] == ["mbhome"]


def test_temporary_names_fit_and_the_stale_sweep_recognises_them(masterbox_cmd, tmp_path):
    """The cut temporary names stay within 255 bytes, keep whole characters, differ for two long names
    that begin alike, keep the usual ``.NAME.`` form when that fits (the web UI's cancel looks for it);
    the one a killed master leaves is what ``remove_stale_temporaries`` (and the Captures page's sweep,
    which calls it) removes."""
    from firmware.atomic import remove_stale_temporaries, temporary_prefix

    for name in LONG_NAMES + ["x" * 251 + ".wav", "é" * 125 + ".wav", "short.wav"]:
        for tag, suffix in (("", ".tmp"), ("384000", ".tmp.wav")):
            prefix = temporary_prefix(tmp_path, name, tag, suffix)
            whole = (prefix + "XXXXXXXX" + suffix).encode("utf-8")          # strict: no character cut in two
            assert len(whole) <= 255 and prefix.startswith(".") and prefix.endswith(f".{tag}." if tag else ".")
            if len(f".{name}.{tag}.XXXXXXXX{suffix}".encode()) <= 255:
                assert prefix == f".{name}." + (f"{tag}." if tag else "")
    assert temporary_prefix(tmp_path, "a" * 250 + "1.wav") != temporary_prefix(tmp_path, "a" * 250 + "2.wav")
    src = tmp_path / "in.wav"
    sf.write(src, render_programme(30.0, RATE, seed=9, peak_dbfs=-6.0), RATE, subtype="PCM_24")
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([*masterbox_cmd, "master", str(src), str(out / LONG_NAMES[0]), "--progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if line.startswith("progress: pass 1 5"):
            proc.kill()                                     # a power cut, as far as the files know
            break
    proc.wait()
    left = os.listdir(out)
    assert len(left) == 1 and left[0].startswith(".") and left[0].endswith(".tmp"), left
    assert [n for n, _ in remove_stale_temporaries(out, older_than_s=0)] == left
    assert os.listdir(out) == []


@pytest.mark.parametrize("command", ["analyze", "master"])
def test_a_stdout_that_cannot_be_written_is_one_line(masterbox_cmd, song, tmp_path, command):
    """``> /dev/full`` (stdout on a full disk): one sentence on stderr and exit 1, as coreutils do (until
    2026-11-24: a traceback of the OSError). The master itself is written: only its report was lost."""
    args = [song, "--json"] if command == "analyze" else [song, tmp_path / "o.wav", "--json"]
    with open("/dev/full", "w") as full:
        proc = subprocess.run([*masterbox_cmd, command, *map(str, args)], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"masterbox {command}: cannot write to standard output: "
                                                "No space left on device"]
    if command == "master":
        assert sf.info(tmp_path / "o.wav").frames == sf.info(song).frames


def with_ultrasonics(seconds: float, rate: int, channels: int) -> np.ndarray:
    """A programme at ``rate`` with a 30 kHz tone at -8 dBFS: what a 96 kHz file holds and a 44.1 kHz
    conversion cannot (its true peak and loudness fall when converted)."""
    x = render_programme(seconds, rate, seed=6, peak_dbfs=-9.0)[:, :channels]
    tone = 10 ** (-8 / 20) * np.sin(2 * np.pi * 30000 * np.arange(len(x)) / rate)
    return x + tone[:, None]


@pytest.mark.parametrize("channels", [2, 1])
def test_rate_reports_the_input_file_not_the_converted_audio(masterbox_cmd, tmp_path, channels):
    """``master --rate``'s "input" is the input file (rate, length, loudness, true peak: soundfile and
    ffmpeg on the file), measured as it is read for the conversion. Until 2026-11-24 a stereo file's
    was the converted audio's (44100 Hz, its length, a true peak several dB lower)."""
    src = tmp_path / "hf96.wav"
    sf.write(src, with_ultrasonics(8.0, 96000, channels), 96000, subtype="PCM_24")
    doc = json.loads(master(masterbox_cmd, src, tmp_path / "cd.wav", "--rate", "44100", "--json").stdout)
    a, info, ff = doc["input"], sf.info(src), ffmpeg_ebur128(src, tmp_path)
    assert (a["sample_rate"], a["frames"], a["channels"]) == (96000, info.frames, channels)
    assert a["duration_s"] == pytest.approx(8.0)
    assert a["integrated_lufs"] == pytest.approx(ff["integrated_lufs"], abs=0.1)
    assert a["true_peak_dbtp"] == pytest.approx(ff["true_peak_dbtp"], abs=0.2)
    x = sf.read(src, always_2d=True)[0]
    assert a["sample_peak_dbfs"] == pytest.approx(20 * np.log10(np.abs(x).max()), abs=0.01)
    assert a["integrated_lufs"] == pytest.approx(deman_lufs(src), abs=0.1)
    assert doc["output"]["sample_rate"] == 44100 and set(a) == set(doc["output"])


@pytest.mark.parametrize("extra", [[], ["--rate", "44100"]])
def test_a_damaged_input_is_one_line(masterbox_cmd, tmp_path, extra):
    """A FLAC with 1000 zero bytes in its middle (ffmpeg too finds it damaged): libsndfile loses sync there.
    One sentence, exit 2, nothing written (until 2026-11-24: a LibsndfileError traceback, exit 1)."""
    good = tmp_path / "good.flac"
    sf.write(good, render_programme(10.0, RATE, seed=1, peak_dbfs=-6.0), RATE, subtype="PCM_24")
    data = good.read_bytes()
    bad = tmp_path / "in" / "damaged.flac"
    bad.parent.mkdir()
    bad.write_bytes(data[:len(data) // 2] + bytes(1000) + data[len(data) // 2 + 1000:])
    assert subprocess.run(["ffmpeg", "-v", "error", "-i", str(bad), "-f", "null", "-"],
                          capture_output=True, text=True).stderr != ""
    proc = master(masterbox_cmd, bad, tmp_path / "in" / "o.wav", *extra, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"masterbox master: {bad}: reading failed after ") and "lost sync" in last, last
    assert os.listdir(bad.parent) == [bad.name]
