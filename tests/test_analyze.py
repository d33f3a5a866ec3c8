"""``masterbox analyze`` and ``firmware.analysis``: files in, the architecture's keys out, clear errors.

Expected values come from the EBU test tones (known loudness) and from ffmpeg's ebur128
filter, not from the meter itself.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import soundfile as sf

from dsp.programme import render_programme
from firmware.analysis import KEYS, AnalysisError, analyze_file
from tests.signals import EBU3341, ffmpeg_ebur128, tone_segments

ARCHITECTURE_KEYS = {
    "integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "sample_peak_dbfs", "max_momentary_lufs",
    "max_short_term_lufs", "duration_s", "sample_rate", "channels",
}


def _run(cmd, *args):
    return subprocess.run([*cmd, "analyze", *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def music_wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("analyze") / "music.wav"
    sf.write(path, render_programme(20, 48000, seed=21), 48000, subtype="PCM_24")
    return path


def test_json_has_the_architecture_keys_and_matches_ffmpeg(masterbox_cmd, music_wav, tmp_path):
    proc = _run(masterbox_cmd, music_wav, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert ARCHITECTURE_KEYS <= set(result) and set(result) == set(KEYS) | {"bext"}
    assert result["bext"] is None           # libsndfile wrote it without a Broadcast Wave chunk
    assert result["sample_rate"] == 48000 and result["channels"] == 2
    assert result["duration_s"] == pytest.approx(20.0)
    ff = ffmpeg_ebur128(music_wav, tmp_path)
    assert result["integrated_lufs"] == pytest.approx(ff["integrated_lufs"], abs=0.1)
    assert result["true_peak_dbtp"] == pytest.approx(ff["true_peak_dbtp"], abs=0.2)
    assert result["loudness_range_lu"] == pytest.approx(ff["loudness_range_lu"], abs=1.0)
    assert result["plr_db"] == pytest.approx(result["true_peak_dbtp"] - result["integrated_lufs"], abs=0.01)


def test_human_table(masterbox_cmd, tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, tone_segments(EBU3341[1], 48000), 48000, subtype="PCM_24")
    proc = _run(masterbox_cmd, path)
    assert proc.returncode == 0, proc.stderr
    lines = {line[:24].strip(): line[24:].strip() for line in proc.stdout.splitlines()}
    assert lines["integrated loudness"] == "-23.0 LUFS"
    assert lines["true peak"] == "-23.0 dBTP"
    assert lines["loudness range"] == "0.0 LU"
    assert "48000 Hz, 2 channels, 0:00:20.000" in lines["format"]


@pytest.mark.parametrize(
    "fmt, subtype, rate, channels",
    [("FLAC", "PCM_24", 44100, 1), ("AIFF", "PCM_16", 96000, 2), ("WAV", "FLOAT", 48000, 6)],
)
def test_formats_rates_and_channel_counts(tmp_path, fmt, subtype, rate, channels):
    """EBU 3341 case 3 (I = -23.0 +- 0.1 on stereo) in other containers and layouts."""
    x = tone_segments(EBU3341[3], rate, channels=2)
    if channels == 1:  # one channel carries the energy of two at +3.01 dB
        x = x[:, :1] * 10 ** (3.0103 / 20)
    elif channels == 6:  # L R C LFE Ls Rs: the tone on L and R, a loud LFE that must not count
        x = np.column_stack([x[:, 0], x[:, 1], 0 * x[:, 0], 8 * x[:, 0], 0 * x[:, 0], 0 * x[:, 0]])
    path = tmp_path / f"case3.{fmt.lower()}"
    sf.write(path, x, rate, format=fmt, subtype=subtype)
    result = analyze_file(path)
    assert result["integrated_lufs"] == pytest.approx(-23.0, abs=0.1)
    assert (result["sample_rate"], result["channels"]) == (rate, channels)
    assert result["duration_s"] == pytest.approx(80.0)


def test_block_size_does_not_change_the_result(music_wav):
    assert analyze_file(music_wav, block=1000) == analyze_file(music_wav, block=65536)


def _spoil(x, seed):
    """A copy of ``x`` with NaN, +Inf and -Inf written at random places, and how many."""
    dirty = x.copy()
    rng = np.random.default_rng(seed)
    places = rng.choice(dirty.size, size=60, replace=False)
    dirty.reshape(-1)[places] = np.resize([np.nan, np.inf, -np.inf], places.size)
    return dirty, places.size


def test_nonfinite_samples_are_measured_as_silence_and_counted(masterbox_cmd, tmp_path):
    x = render_programme(8, 48000, seed=22, peak_dbfs=-3.0).astype(np.float32)
    dirty, count = _spoil(x, 1)
    path = tmp_path / "dirty.wav"
    sf.write(path, dirty, 48000, subtype="FLOAT")
    clean = tmp_path / "clean.wav"
    sf.write(clean, np.where(np.isfinite(dirty), dirty, 0.0), 48000, subtype="FLOAT")
    proc = _run(masterbox_cmd, path, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["nonfinite_samples"] == count
    ff = ffmpeg_ebur128(clean, tmp_path)      # what the box hears: the bad samples as silence
    assert result["integrated_lufs"] == pytest.approx(ff["integrated_lufs"], abs=0.1)
    assert result["true_peak_dbtp"] == pytest.approx(ff["true_peak_dbtp"], abs=0.2)
    table = _run(masterbox_cmd, path).stdout
    assert f"non-finite samples      {count} (NaN, infinite or beyond +80 dBFS: measured as silence)" in table
    pcm = tmp_path / "pcm.wav"
    sf.write(pcm, x, 48000, subtype="PCM_24")
    assert analyze_file(pcm)["nonfinite_samples"] == 0
    assert "non-finite" not in _run(masterbox_cmd, pcm).stdout


def test_absurd_float_samples_are_faults_as_master_treats_them(masterbox_cmd, tmp_path):
    """One sample of 1e5 (+100 dBFS) in a float file is a fault, as the chain treats it: measured as
    silence and counted, so `analyze` and `master`'s input column agree (before: +60 LUFS, +100 dBTP)."""
    x = render_programme(6, 48000, seed=23, peak_dbfs=-6.0)
    dirty = x.copy()
    dirty[30000, 0], dirty[50000, 1], dirty[70000, 0] = 1e5, -3e4, 1e30
    path = tmp_path / "hot.wav"
    sf.write(path, dirty, 48000, subtype="DOUBLE")
    clean = tmp_path / "clean.wav"
    sf.write(clean, np.where(np.abs(dirty) <= 1e4, dirty, 0.0), 48000, subtype="DOUBLE")
    result = analyze_file(path)
    assert result["nonfinite_samples"] == 3
    ff = ffmpeg_ebur128(clean, tmp_path)
    assert result["integrated_lufs"] == pytest.approx(ff["integrated_lufs"], abs=0.1)
    assert result["true_peak_dbtp"] == pytest.approx(ff["true_peak_dbtp"], abs=0.2)
    out = tmp_path / "out.wav"
    proc = subprocess.run([*masterbox_cmd, "master", str(path), str(out), "--json"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["input"]["integrated_lufs"] == pytest.approx(result["integrated_lufs"], abs=0.1)
    loud = tmp_path / "loud.wav"         # a hot but sane float file (+20 dBFS) is measured as it is
    sf.write(loud, x * 100.0, 48000, subtype="FLOAT")
    assert analyze_file(loud)["nonfinite_samples"] == 0
    assert analyze_file(loud)["sample_peak_dbfs"] == pytest.approx(-6.0 + 40.0, abs=0.01)


def _unfinished(path, subtype="PCM_24"):
    """A WAV as a recorder leaves it when it dies before writing the sizes: RIFF and data sizes 0."""
    data = bytearray(path.read_bytes())
    i = data.index(b"data")
    data[4:8] = bytes(4)
    data[i + 4:i + 8] = bytes(4)
    out = path.with_name("unfinished-" + path.name)
    out.write_bytes(bytes(data))
    return out


def test_a_wav_whose_header_was_never_finished_is_read_to_its_end(masterbox_cmd, music_wav, tmp_path):
    """A recording cut off by a crash or power cut elsewhere (sizes never written): libsndfile reads 0
    frames, so it used to be "contains no audio". It is read to the end of the file, as ffmpeg does."""
    broken = _unfinished(music_wav)
    assert sf.info(broken).frames == 0                  # what libsndfile makes of it
    whole = analyze_file(music_wav)
    got = analyze_file(broken)
    assert got == whole
    ff = ffmpeg_ebur128(broken, tmp_path)               # ffmpeg reads such files to their end too
    assert got["integrated_lufs"] == pytest.approx(ff["integrated_lufs"], abs=0.1)
    out = tmp_path / "m.wav"
    proc = subprocess.run([*masterbox_cmd, "master", str(broken), str(out), "--json"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sf.info(out).frames == sf.info(music_wav).frames
    assert "header was never finished" in proc.stderr      # said, not hidden
    assert "header was never finished" in _run(masterbox_cmd, broken).stderr
    assert "header was never finished" not in _run(masterbox_cmd, music_wav).stderr


def test_silence_reads_null_not_error(masterbox_cmd, tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros((48000 * 2, 2)), 48000)
    proc = _run(masterbox_cmd, path, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key in ("integrated_lufs", "true_peak_dbtp", "sample_peak_dbfs", "max_momentary_lufs", "plr_db"):
        assert result[key] is None, key
    assert result["duration_s"] == pytest.approx(2.0)
    table = _run(masterbox_cmd, path).stdout                   # the table says why, not only "undefined"
    assert "digital silence: every sample is zero" in table
    quiet = tmp_path / "quiet.wav"                               # -120 dBFS is not silence
    sf.write(quiet, np.full((48000 * 2, 2), 1e-6), 48000, subtype="FLOAT")
    assert "digital silence" not in _run(masterbox_cmd, quiet).stdout


def _bad_files(tmp_path):
    missing = tmp_path / "missing.wav"
    directory = tmp_path / "a-directory.wav"
    directory.mkdir()
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    garbage = tmp_path / "notes.wav"
    garbage.write_text("these are not samples\n" * 50)
    no_frames = tmp_path / "no-frames.wav"
    sf.write(no_frames, np.zeros((0, 2)), 48000)
    short = tmp_path / "short.flac"
    sf.write(short, tone_segments([(0.3, -20.0)], 48000), 48000)
    return {
        missing: "no such file",
        directory: "is a directory",
        empty: "empty (0 bytes)",
        garbage: "not an audio file",
        no_frames: "contains no audio",
        short: "too short",
    }


def test_bad_files_raise_analysis_error(tmp_path):
    for path, message in _bad_files(tmp_path).items():
        with pytest.raises(AnalysisError, match=message.replace("(", r"\(").replace(")", r"\)")):
            analyze_file(path)


def test_cli_errors_exit_nonzero_with_a_message(masterbox_cmd, tmp_path):
    for path, message in _bad_files(tmp_path).items():
        proc = _run(masterbox_cmd, path, "--json")
        assert proc.returncode != 0, path
        assert proc.stdout == ""
        assert message in proc.stderr and str(path) in proc.stderr
        assert "Traceback" not in proc.stderr
