"""``masterbox album``: one shared drive for every track, the album's loudness on target (checked by
ffmpeg and pyloudnorm on the masters played back to back), the songs' relative levels kept, the
file contract of ``master`` for each track, and refusals that write nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from dsp.programme import render_programme
from tests.full_disk import leave_free, tmpfs
from tests.signals import ffmpeg_ebur128
from tests.wav_chunks import libsndfile_bext, without_bext

RATE = 48000
TARGET, CEILING = -14.0, -1.0          # the default preset's (streaming)
# (file name, seconds, seed, sample peak dBFS): a loud single the limiter works on, two quieter songs
TRACKS = [("01-single.wav", 12.0, 1, -2.0), ("02-ballad.wav", 10.0, 2, -20.0), ("03-mid.wav", 9.0, 3, -14.0)]


def run_cli(cmd, *args, check=True, env=None):
    proc = subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=300, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def deman_lufs(data, rate):
    return pyloudnorm.Meter(rate, filter_class="DeMan").integrated_loudness(data)


def pooled_blocks_lufs(datas, rate):
    """The album loudness as defined (BS.1770 gating over every track's 400 ms blocks pooled), from
    pyloudnorm's own per-track block loudnesses and a gating written out here: no code of ours."""
    blocks = []
    for x in datas:
        meter = pyloudnorm.Meter(rate, filter_class="DeMan")
        meter.integrated_loudness(x)
        blocks.extend(meter.blockwise_loudness)
    lv = np.array(blocks)
    energy = 10.0 ** ((lv + 0.691) / 10.0)
    kept = lv >= -70.0
    gate = -0.691 + 10.0 * np.log10(energy[kept].mean()) - 10.0
    kept &= lv > gate
    return -0.691 + 10.0 * np.log10(energy[kept].mean())


def write_tracks(folder: Path, tracks=TRACKS, rate=RATE, mono=False):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, seconds, seed, peak in tracks:
        x = render_programme(seconds, rate, seed=seed, peak_dbfs=peak)
        sf.write(folder / name, x[:, 0] if mono else x, rate, subtype="PCM_24")
        paths.append(folder / name)
    return paths


def played_back_to_back(paths, dst: Path) -> tuple[np.ndarray, int]:
    """The files' samples one after the other (the oracle's album), also written to ``dst`` for ffmpeg."""
    parts = [sf.read(p, always_2d=True) for p in paths]
    rate = parts[0][1]
    x = np.concatenate([d for d, _ in parts])
    sf.write(dst, x, rate, subtype="FLOAT")
    return x, rate


@pytest.fixture(scope="module")
def album(tmp_path_factory):
    """The album mastered once for the tests that read it (a data root of its own, as conftest gives each test)."""
    root = tmp_path_factory.mktemp("album")
    inputs = write_tracks(root / "mixes")
    out = root / "masters"
    out.mkdir()
    (root / "mbhome").mkdir()
    env = dict(os.environ, MASTERBOX_HOME=str(root / "mbhome"), MASTERBOX_CONFIG=str(root / "masterbox.toml"))
    exe = Path(sys.executable).with_name("masterbox")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "firmware.cli"]
    proc = run_cli(cmd, "album", out, *inputs, "--json", env=env)
    return {"root": root, "inputs": inputs, "out": out, "doc": json.loads(proc.stdout), "stderr": proc.stderr}


def test_album_loudness_lands_on_target_played_back_to_back(album):
    """The oracle: the masters concatenated, measured by ffmpeg's ebur128 and by pyloudnorm."""
    doc, root = album["doc"], album["root"]
    outputs = [album["out"] / p.name for p in album["inputs"]]
    y, rate = played_back_to_back(outputs, root / "album-out.wav")
    ff = ffmpeg_ebur128(root / "album-out.wav", root)
    assert ff["integrated_lufs"] == pytest.approx(TARGET, abs=0.5)
    assert deman_lufs(y, rate) == pytest.approx(TARGET, abs=0.5)
    a = doc["album"]
    assert a["target_lufs"] == TARGET and a["target_reached"] is True and a["shortfall_lu"] is None
    assert a["message"] is None and a["preset"] == "streaming"
    # what the command reports is the pooled gating, as defined: pyloudnorm's blocks, pooled here
    ins = [sf.read(p)[0] for p in album["inputs"]]
    outs = [sf.read(p)[0] for p in outputs]
    assert a["output"]["integrated_lufs"] == pytest.approx(pooled_blocks_lufs(outs, RATE), abs=0.02)
    assert a["input"]["integrated_lufs"] == pytest.approx(pooled_blocks_lufs(ins, RATE), abs=0.02)
    # and close to a meter over the concatenation: only the few blocks that straddle a join differ
    # (this album is a sensitive case: a whole song sits at the relative gate, ~0.1 LU here)
    assert a["output"]["integrated_lufs"] == pytest.approx(ff["integrated_lufs"], abs=0.2)
    played_back_to_back(album["inputs"], root / "album-in.wav")
    assert a["input"]["integrated_lufs"] == pytest.approx(ffmpeg_ebur128(root / "album-in.wav", root)
                                                          ["integrated_lufs"], abs=0.2)
    # and each master is NOT at the target on its own: the album is, the songs are where they fall
    per_track = [deman_lufs(sf.read(p)[0], RATE) for p in outputs]
    assert max(per_track) - min(per_track) > 5.0


def test_relative_levels_are_kept_where_the_limiter_leaves_the_songs_alone(album, tmp_path):
    doc = album["doc"]
    outputs = [album["out"] / p.name for p in album["inputs"]]
    lin = [deman_lufs(sf.read(p)[0], RATE) for p in album["inputs"]]
    lout = [deman_lufs(sf.read(p)[0], RATE) for p in outputs]
    # the limiter did nothing to a track whose master peaks well under the ceiling (ffmpeg's true peak)
    peaks = [ffmpeg_ebur128(p, tmp_path)["true_peak_dbtp"] for p in outputs]
    alone = [k for k, tp in enumerate(peaks) if tp < CEILING - 1.0]
    assert len(alone) >= 2, peaks                      # the ballad and the mid-tempo song
    for a in alone:
        for b in alone:
            assert lout[a] - lout[b] == pytest.approx(lin[a] - lin[b], abs=1.0), (lin, lout)
    # one drive for all: the untouched songs gained the same, within the chain's level-dependent glue
    gains = [lout[k] - lin[k] for k in alone]
    assert max(gains) - min(gains) < 1.0
    # the single is still the loudest and the ballad the quietest
    assert lout[0] > lout[2] > lout[1]
    assert [t["output_analysis"]["integrated_lufs"] for t in doc["tracks"]] == pytest.approx(lout, abs=0.1)


def test_each_master_keeps_the_file_contract(album, masterbox_cmd, tmp_path):
    doc = album["doc"]
    assert [t["input"] for t in doc["tracks"]] == [str(p) for p in album["inputs"]]
    assert [t["output"] for t in doc["tracks"]] == [str(album["out"] / p.name) for p in album["inputs"]]
    for src in album["inputs"]:
        out = album["out"] / src.name
        a, b = sf.info(src), sf.info(out)
        assert (b.frames, b.samplerate, b.channels, b.subtype) == (a.frames, a.samplerate, a.channels, "PCM_24")
        assert ffmpeg_ebur128(out, tmp_path)["true_peak_dbtp"] <= CEILING + 0.1
    assert sorted(p.name for p in album["out"].iterdir()) == sorted(p.name for p in album["inputs"])  # no temp
    # the same key names as `master --json`
    m = json.loads(run_cli(masterbox_cmd, "master", album["inputs"][1], tmp_path / "m.wav", "--json").stdout)
    for t in doc["tracks"]:
        assert set(t["input_analysis"]) == set(m["input"]) and set(t["output_analysis"]) == set(m["output"])
    assert set(m) - {"input", "output", "converted_from_rate"} <= set(doc["album"])
    assert doc["album"]["drive_db"] > 0 and doc["album"]["passes"] >= 1 and doc["album"]["latency_samples"] > 0


def test_one_track_album_is_what_master_writes(masterbox_cmd, tmp_path):
    """An album of one song is that song mastered on its own: the same samples and stamped loudness,
    the same drive (the bext description says which track of an album it is)."""
    src = write_tracks(tmp_path / "in", TRACKS[:1])[0]
    (tmp_path / "out").mkdir()
    a = json.loads(run_cli(masterbox_cmd, "album", tmp_path / "out", src, "--preset", "loud", "--json").stdout)
    m = json.loads(run_cli(masterbox_cmd, "master", src, tmp_path / "m.wav", "--preset", "loud", "--json").stdout)
    assert without_bext(tmp_path / "out" / src.name) == without_bext(tmp_path / "m.wav")
    a_bext, m_bext = libsndfile_bext(tmp_path / "out" / src.name), libsndfile_bext(tmp_path / "m.wav")
    assert "track 1 of 1" in a_bext["description"] and "track" not in m_bext["description"]
    assert a_bext["loudness_value"] == m_bext["loudness_value"] == round(m["output"]["integrated_lufs"] * 100)
    assert (a["album"]["drive_db"], a["album"]["passes"]) == (m["drive_db"], m["passes"])
    assert a["tracks"][0]["output_analysis"] == m["output"]


def test_mono_album_counts_as_the_mono_files_measure(masterbox_cmd, tmp_path):
    tracks = [("a.flac", 6.0, 4, -6.0), ("b.flac", 5.0, 5, -16.0)]
    inputs = write_tracks(tmp_path / "in", tracks, rate=44100, mono=True)
    out = tmp_path / "out"
    out.mkdir()
    doc = json.loads(run_cli(masterbox_cmd, "album", out, *inputs, "--preset", "podcast", "--json").stdout)
    y, rate = played_back_to_back([out / p.name for p in inputs], tmp_path / "all.wav")
    assert y.shape[1] == 1 and rate == 44100
    assert ffmpeg_ebur128(tmp_path / "all.wav", tmp_path)["integrated_lufs"] == pytest.approx(-16.0, abs=0.5)
    assert deman_lufs(y[:, 0], rate) == pytest.approx(-16.0, abs=0.5)
    assert doc["album"]["target_reached"] is True
    for p in inputs:
        assert sf.info(out / p.name).format == "FLAC" and sf.info(out / p.name).frames == sf.info(p).frames


def test_no_target_is_one_pass_at_the_drive_as_set(masterbox_cmd, tmp_path):
    inputs = write_tracks(tmp_path / "in", TRACKS[1:])            # both well under the ceiling
    (tmp_path / "out").mkdir()
    doc = json.loads(run_cli(masterbox_cmd, "album", tmp_path / "out", *inputs, "--preset", "transparent",
                             "--bit-depth", "32f", "--json").stdout)
    a = doc["album"]
    assert (a["passes"], a["passes_before_drive"], a["drive_db"], a["target_reached"]) == (1, 0, 0.0, None)
    for p in inputs:
        x, _ = sf.read(p)
        y, _ = sf.read(tmp_path / "out" / p.name)
        assert np.max(np.abs(y - x)) < 1e-6                 # the input, aligned, in float
    assert a["input"]["integrated_lufs"] == pytest.approx(a["output"]["integrated_lufs"], abs=0.01)


def test_suffix_writes_beside_the_inputs_and_progress_covers_each_pass(masterbox_cmd, tmp_path):
    """``--suffix`` names the masters so they can go into the inputs' own folder (the Captures page
    does this); the bytes are those of an album written under the inputs' names elsewhere.
    ``--progress`` reports every pass over the whole album, from 0 to 100 %."""
    from firmware.commands.master import parse_progress

    inputs = write_tracks(tmp_path / "in", [(n, 3.0, s, p) for n, _, s, p in TRACKS[:2]])
    (tmp_path / "plain").mkdir()
    run_cli(masterbox_cmd, "album", tmp_path / "plain", *inputs, "--json")
    proc = run_cli(masterbox_cmd, "album", tmp_path / "in", *inputs, "--suffix=-master", "--json", "--progress")
    doc = json.loads(proc.stdout)
    names = [f"{p.stem}-master.wav" for p in inputs]
    assert [Path(t["output"]).name for t in doc["tracks"]] == names
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == sorted([p.name for p in inputs] + names)
    for p, name in zip(inputs, names, strict=True):
        assert without_bext(tmp_path / "in" / name) == without_bext(tmp_path / "plain" / p.name)
    steps = [parse_progress(line) for line in proc.stderr.splitlines() if parse_progress(line)]
    stages = list(dict.fromkeys(s["stage"] for s in steps))
    assert stages == ["measuring"] + [f"pass {k + 1}" for k in range(doc["album"]["passes"])], stages
    for stage in stages:
        pct = [s["percent"] for s in steps if s["stage"] == stage]
        assert pct[0] == 0 and pct[-1] == 100 and pct == sorted(pct), (stage, pct)
    # a suffix that is not part of a file name is refused before anything is written
    bad = run_cli(masterbox_cmd, "album", tmp_path / "in", *inputs, "--suffix", "/../x", check=False)
    assert bad.returncode == 2 and "suffix" in bad.stderr
    assert len(list((tmp_path / "in").iterdir())) == 4


def test_rate_masters_an_album_of_mixed_rates_at_one(masterbox_cmd, tmp_path):
    """A CD from recordings at 48 and 44.1 kHz: ``--rate 44100`` converts the 48 kHz track first; the
    album (played back to back, ffmpeg) lands on the target, every master is 44.1 kHz with the
    converted length, its true peak (ffmpeg, at 44.1 kHz) within the ceiling, and no converted
    copy is left behind."""
    from firmware.commands.master import parse_progress

    a = write_tracks(tmp_path / "in", [("a-48k.wav", 6.0, 1, -2.0)], rate=48000)[0]
    b = write_tracks(tmp_path / "in", [("b-44k.wav", 5.0, 2, -14.0)], rate=44100)[0]
    out = tmp_path / "out"
    out.mkdir()
    proc = run_cli(masterbox_cmd, "album", out, a, b, "--rate", "44100", "--bit-depth", "16", "--json", "--progress")
    doc = json.loads(proc.stdout)
    assert [t["converted_from_rate"] for t in doc["tracks"]] == [48000, None]
    assert doc["album"]["sample_rate"] == 44100 and doc["album"]["target_reached"] is True
    infos = [sf.info(out / p.name) for p in (a, b)]
    assert [(i.samplerate, i.subtype) for i in infos] == [(44100, "PCM_16")] * 2
    assert abs(infos[0].frames - 6.0 * 44100) <= 1 and infos[1].frames == sf.info(b).frames
    y, rate = played_back_to_back([out / p.name for p in (a, b)], tmp_path / "cd.wav")
    assert rate == 44100 and ffmpeg_ebur128(tmp_path / "cd.wav", tmp_path)["integrated_lufs"] == \
        pytest.approx(TARGET, abs=0.5)
    for p in (a, b):
        assert ffmpeg_ebur128(out / p.name, tmp_path)["true_peak_dbtp"] <= CEILING + 0.1
    assert sorted(p.name for p in out.iterdir()) == [a.name, b.name]              # no converted copy left
    stages = list(dict.fromkeys(s["stage"] for s in map(parse_progress, proc.stderr.splitlines()) if s))
    assert stages[:2] == ["converting", "measuring"], stages
    # without --rate, the same inputs are refused, and the message says what to do
    bad = run_cli(masterbox_cmd, "album", out, a, b, check=False)
    assert bad.returncode == 2 and "--rate" in bad.stderr


def test_refusals_write_nothing(masterbox_cmd, tmp_path):
    inputs = write_tracks(tmp_path / "in", [(n, 3.0, s, p) for n, _, s, p in TRACKS])
    out = tmp_path / "out"
    out.mkdir()

    def refused(*args, words):
        proc = run_cli(masterbox_cmd, "album", *args, check=False)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        for w in words:
            assert w in proc.stderr, (w, proc.stderr)
        assert list(out.iterdir()) == []                   # no master, no temporary file
        return proc

    other = tmp_path / "other"
    other.mkdir()
    (other / inputs[0].name).write_bytes(inputs[1].read_bytes())
    refused(out, *inputs, other / inputs[0].name, words=["share the file name", inputs[0].name])
    refused(inputs[0].parent, *inputs, words=["refusing to overwrite the input"])
    refused(tmp_path / "missing", *inputs, words=["does not exist"])
    refused(inputs[0], *inputs[1:], words=["is not a folder"])
    rate44 = write_tracks(tmp_path / "cd", [("04-cd.wav", 3.0, 4, -6.0)], rate=44100)[0]
    refused(out, *inputs, rate44, words=["do not share one sample rate", "44100 Hz: 04-cd.wav", "48000 Hz"])
    garbage = tmp_path / "bad" / "05-garbage.wav"
    garbage.parent.mkdir()
    garbage.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + np.random.default_rng(0).bytes(3000))
    refused(out, *inputs, garbage, words=["05-garbage.wav", "not an audio file"])
    cut = tmp_path / "bad" / "06-cut.wav"
    cut.write_bytes(inputs[0].read_bytes()[:30])             # cut inside the header
    refused(out, *inputs, cut, words=["06-cut.wav"])
    refused(out, *inputs, tmp_path / "nope.wav", words=["no such file"])
    refused(out, *inputs, "--set", "eq9.gain_db=1", words=["eq9.gain_db", "unknown"])
    refused(out, *inputs, "--ceiling-dbtp", "3", words=["--ceiling-dbtp"])
    flac = write_tracks(tmp_path / "fl", [("07.flac", 3.0, 7, -6.0)])[0]
    refused(out, flac, "--bit-depth", "32f", words=["FLAC cannot hold 32-bit float"])


@pytest.mark.parametrize("fault", ["render", "disk"])
def test_a_failure_during_the_passes_leaves_no_temporary_file(tmp_path, monkeypatch, fault):
    """A track that fails mid-way (unreadable after the checks, or the disk full): the error comes
    out as it is, and OUTDIR holds nothing, not even the tracks rendered before it."""
    from dsp import schema
    from firmware import album as album_mod
    from firmware.render import RenderError

    inputs = write_tracks(tmp_path / "in", [(n, 3.0, s, p) for n, _, s, p in TRACKS])
    out = tmp_path / "out"
    out.mkdir()
    calls = []
    if fault == "render":
        real = album_mod.render_pass

        def failing(src, chain, write=None, tick=None):
            calls.append(src)
            if len(calls) == 5:                     # 3 first-part runs, then the 2nd track's first pass
                raise RenderError(f"{src}: the file changed while it was read")
            real(src, chain, write, tick)

        monkeypatch.setattr(album_mod, "render_pass", failing)
        expect = pytest.raises(RenderError, match="changed while it was read")
    else:
        real = album_mod._open_output

        def full(*args):
            calls.append(args)
            if len(calls) == 3:
                raise OSError(28, "No space left on device")
            return real(*args)

        monkeypatch.setattr(album_mod, "_open_output", full)
        expect = pytest.raises(OSError, match="No space left")
    with expect:
        album_mod.master_album(out, inputs, dict(schema.defaults()), target_lufs=-14.0, budget_bytes=0)
    assert len(calls) >= 3
    assert list(out.iterdir()) == []


def test_unreachable_target_is_reported_and_the_album_still_written(masterbox_cmd, tmp_path):
    inputs = write_tracks(tmp_path / "in", [(n, 4.0, s, p) for n, _, s, p in TRACKS])
    out = tmp_path / "out"
    out.mkdir()
    proc = run_cli(masterbox_cmd, "album", out, *inputs, "--target-lufs", "-5", "--ceiling-dbtp", "-9", "--json")
    a = json.loads(proc.stdout)["album"]
    assert a["target_reached"] is False and a["shortfall_lu"] > 0.5
    assert "not reached at a -9.0 dBTP ceiling" in a["message"] and "LU short" in a["message"]
    assert a["message"] in proc.stderr
    played_back_to_back([out / p.name for p in inputs], tmp_path / "all.wav")
    ff = ffmpeg_ebur128(tmp_path / "all.wav", tmp_path)
    assert -5.0 - ff["integrated_lufs"] == pytest.approx(a["shortfall_lu"], abs=0.3)
    assert ff["true_peak_dbtp"] <= -9.0 + 0.1
    text = run_cli(masterbox_cmd, "album", out, *inputs, "--target-lufs", "-5", "--ceiling-dbtp", "-9").stdout
    assert a["message"] in text and "shared drive" in text and "album" in text


def test_mixed_mono_and_stereo_album_pools_what_each_file_measures(masterbox_cmd, tmp_path):
    """A mono track counts as the mono file measures (its one channel), not as the dual mono the
    chain hears: the reported album loudness is pyloudnorm's blocks of the files, pooled."""
    mono = write_tracks(tmp_path / "m", [("a-mono.wav", 5.0, 8, -8.0)], mono=True)[0]
    stereo = write_tracks(tmp_path / "s", [("b-stereo.wav", 5.0, 9, -12.0)])[0]
    out = tmp_path / "out"
    out.mkdir()
    doc = json.loads(run_cli(masterbox_cmd, "album", out, mono, stereo, "--json").stdout)
    a = doc["album"]
    outs = [sf.read(out / p.name)[0] for p in (mono, stereo)]
    assert outs[0].ndim == 1 and outs[1].shape[1] == 2
    assert a["output"]["integrated_lufs"] == pytest.approx(pooled_blocks_lufs(outs, RATE), abs=0.02)
    assert a["input"]["integrated_lufs"] == pytest.approx(
        pooled_blocks_lufs([sf.read(p)[0] for p in (mono, stereo)], RATE), abs=0.02)
    assert pooled_blocks_lufs(outs, RATE) == pytest.approx(TARGET, abs=0.5)


@pytest.mark.parametrize("kind", ["flac", "rate"])
def test_a_full_disk_is_one_line_and_leaves_outdir_empty(masterbox_cmd, tmp_path, kind):
    """OUTDIR on a 1 MB disk, two tracks of 6 s (0.9-1.7 MB masters each): FLAC masters (libsndfile), or WAV
    masters whose --rate conversion fills the disk first. One sentence, exit 2, nothing left in
    OUTDIR (until 2026-11-24 libsndfile's failure was a traceback and exit 1)."""
    inputs = write_tracks(tmp_path / "in", [(f"{n[:-4]}.{'flac' if kind == 'flac' else 'wav'}", 6.0, s, p)
                                            for n, _, s, p in TRACKS[:2]], rate=RATE)
    with tmpfs(tmp_path / "disk", "1m") as out:
        proc = run_cli(masterbox_cmd, "album", out, *inputs, *(["--rate", "44100"] if kind == "rate" else []),
                       check=False)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines[-1].startswith("masterbox album: ") and lines[-1].endswith(": No space left on device"), lines
        assert "Traceback" not in proc.stderr
        assert sorted(os.listdir(out)) == []


def test_a_disk_that_fills_at_the_end_of_a_flac_album_is_an_error_not_corrupt_masters(masterbox_cmd, tmp_path):
    """Two FLAC tracks and 1000 bytes less room than their masters: the last track's FLAC lost its
    end while libsndfile closed it, unreported, and the album was renamed into place, exit 0. Now
    each file is read back first: one line, exit 2, OUTDIR left as it was (the filler only)."""
    inputs = write_tracks(tmp_path / "in", [(f"{n[:-4]}.flac", 5.0, s, p) for n, _, s, p in TRACKS[:2]])
    (tmp_path / "ref").mkdir()
    one_pass = ("--preset", "transparent")          # one pass: each track written once, in full, in order
    run_cli(masterbox_cmd, "album", tmp_path / "ref", *inputs, *one_pass)
    need = sum((tmp_path / "ref" / p.name).stat().st_size for p in inputs)
    with tmpfs(tmp_path / "disk", "8m") as out:
        fill = leave_free(out, need - 1000)
        proc = run_cli(masterbox_cmd, "album", out, *inputs, *one_pass, check=False)
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert proc.stderr.strip().splitlines()[-1] == \
            f"masterbox album: {out / inputs[-1].name}: No space left on device"
        assert os.listdir(out) == [fill.name]


def test_a_mono_track_under_400_ms_is_reported_as_a_stereo_one(masterbox_cmd, tmp_path):
    """A 100 ms mono jingle in an album: until 2026-11-24 every master was written and then the command
    failed (exit 2, no JSON) measuring the jingle with ``analyze``, which refuses a file under 400 ms.
    Now it is reported as a stereo track that short is: loudness undefined, peaks as ffmpeg and the
    samples say; the album's loudness is the other track's (pyloudnorm's blocks)."""
    song = write_tracks(tmp_path / "in", [("01-song.wav", 6.0, 1, -8.0)])[0]
    jingle = tmp_path / "in" / "02-jingle.wav"
    # faded in and out: a file that stops on a step overshoots (true peak) in the silence after it, which
    # the chain's meter hears (its latency's zeros) and ffmpeg does not
    sf.write(jingle, 0.3 * np.sin(np.arange(RATE // 10) / 5.0) * np.hanning(RATE // 10), RATE, subtype="PCM_24")
    out = tmp_path / "out"
    out.mkdir()
    doc = json.loads(run_cli(masterbox_cmd, "album", out, song, jingle, "--json").stdout)
    assert sorted(p.name for p in out.iterdir()) == [song.name, jingle.name]
    t = doc["tracks"][1]
    assert set(t["input_analysis"]) == set(t["output_analysis"]) == set(doc["tracks"][0]["input_analysis"])
    for key, path in (("input_analysis", jingle), ("output_analysis", out / jingle.name)):
        a = t[key]
        assert a["integrated_lufs"] is None and a["max_momentary_lufs"] is None and a["plr_db"] is None
        assert (a["channels"], a["frames"]) == (1, RATE // 10)
        y = sf.read(path)[0]
        assert a["sample_peak_dbfs"] == pytest.approx(20 * np.log10(np.abs(y).max()), abs=0.01)
        assert a["true_peak_dbtp"] == pytest.approx(ffmpeg_ebur128(path, tmp_path)["true_peak_dbtp"], abs=0.2)
    assert doc["album"]["output"]["integrated_lufs"] == pytest.approx(
        pooled_blocks_lufs([sf.read(out / song.name)[0]], RATE), abs=0.02)
    text = run_cli(masterbox_cmd, "album", out, song, jingle).stdout
    assert "02-jingle.wav" in text


@pytest.mark.parametrize("stage", ["converting", "pass 1"])
def test_sigterm_leaves_outdir_empty(masterbox_cmd, tmp_path, stage):
    """SIGTERM mid-album (``timeout``, ``systemctl stop``): exit 143 and no temporary file in OUTDIR
    (until 2026-11-24 the masters' and the conversions' temporaries stayed)."""
    from tests.test_master import terminate_at

    inputs = write_tracks(tmp_path / "in", [(n, 15.0, s, p) for n, _, s, p in TRACKS[:2]])
    out = tmp_path / "out"
    out.mkdir()
    code, err = terminate_at([*masterbox_cmd, "album", out, *inputs, "--progress", "--rate", "44100"], stage)
    assert f"progress: {stage} " in err and "Traceback" not in err, err
    assert os.listdir(out) == []
    assert code == 143, err


def test_long_but_legal_master_names(masterbox_cmd, tmp_path):
    """Inputs whose masters' names are 240+ bytes (legal: 255) with --suffix and --rate: until 2026-11-24
    the temporary names (``.NAME.XXXXXXXX.tmp``, ``.NAME.44100.XXXXXXXX.tmp.wav``) were too long and the
    album failed with "File name too long". A master name over 255 bytes is refused before any work."""
    names = ["c" * 236 + ".wav", "日本" * 39 + ".wav"]                    # 240 and 238 bytes
    inputs = write_tracks(tmp_path / "in", [(n, 3.0, s, p) for n, (_, _, s, p) in zip(names, TRACKS, strict=False)])
    out = tmp_path / "out"
    out.mkdir()
    doc = json.loads(run_cli(masterbox_cmd, "album", out, *inputs, "--suffix=-mastered", "--rate", "44100",
                             "--json").stdout)
    masters = [f"{p.stem}-mastered.wav" for p in inputs]
    assert sorted(os.listdir(out)) == sorted(masters) and [Path(t["output"]).name for t in doc["tracks"]] == masters
    for m in masters:
        assert sf.info(out / m).samplerate == 44100 and sf.info(out / m).frames == round(3.0 * 44100)
    bad = run_cli(masterbox_cmd, "album", out, *inputs, "--suffix=-mastered-again-and-again", check=False)
    assert bad.returncode == 2 and "bytes long; a file name holds at most 255" in bad.stderr, bad.stderr
    assert "pass 1" not in bad.stderr and sorted(os.listdir(out)) == sorted(masters)


def test_rate_reports_each_input_file_not_its_converted_audio(masterbox_cmd, tmp_path):
    """``album --rate``: a converted track's ``input_analysis`` and the album's input loudness are the
    files' (ffmpeg on the 96 kHz file; pyloudnorm's blocks of each file at its own rate, pooled), not the
    converted audio's (until 2026-11-24: 44100 Hz, and a true peak and loudness without the ultrasonics)."""
    from tests.test_master import with_ultrasonics

    hf = tmp_path / "in" / "a-96k.wav"
    hf.parent.mkdir()
    sf.write(hf, with_ultrasonics(6.0, 96000, 2), 96000, subtype="PCM_24")
    cd = write_tracks(tmp_path / "in", [("b-44k.wav", 5.0, 2, -14.0)], rate=44100)[0]
    out = tmp_path / "out"
    out.mkdir()
    doc = json.loads(run_cli(masterbox_cmd, "album", out, hf, cd, "--rate", "44100", "--json").stdout)
    a, ff = doc["tracks"][0]["input_analysis"], ffmpeg_ebur128(hf, tmp_path)
    assert (a["sample_rate"], a["frames"]) == (96000, sf.info(hf).frames)
    assert a["integrated_lufs"] == pytest.approx(ff["integrated_lufs"], abs=0.1)
    assert a["true_peak_dbtp"] == pytest.approx(ff["true_peak_dbtp"], abs=0.2)
    assert doc["tracks"][1]["input_analysis"]["sample_rate"] == 44100
    blocks = []
    for p in (hf, cd):
        x, rate = sf.read(p)
        meter = pyloudnorm.Meter(rate, filter_class="DeMan")
        meter.integrated_loudness(x)
        blocks.extend(meter.blockwise_loudness)
    lv = np.array(blocks)
    kept = lv >= -70.0
    gate = -0.691 + 10 * np.log10((10 ** ((lv[kept] + 0.691) / 10)).mean()) - 10
    kept &= lv > gate
    pooled = -0.691 + 10 * np.log10((10 ** ((lv[kept] + 0.691) / 10)).mean())
    assert doc["album"]["input"]["integrated_lufs"] == pytest.approx(pooled, abs=0.05)
    assert doc["album"]["input"]["true_peak_dbtp"] == pytest.approx(ff["true_peak_dbtp"], abs=0.2)


def test_inputs_a_master_cannot_be_get_wav_masters(masterbox_cmd, tmp_path):
    """MP3, Ogg Vorbis, W64 and CAF inputs: until 2026-11-24 "unsupported output type '.mp3'; use .wav,
    .flac or .aiff", which album gave no way to act on. Now their masters are WAV (soundfile reads the
    type), the input's length and rate, the album on target (ffmpeg, played back to back)."""
    x = render_programme(4.0, RATE, seed=3, peak_dbfs=-8.0)
    inputs = []
    for name, fmt, subtype in [("a.ogg", "OGG", "VORBIS"), ("b.w64", "W64", "PCM_24"), ("c.caf", "CAF", "PCM_24")]:
        sf.write(tmp_path / name, x, RATE, format=fmt, subtype=subtype)
        inputs.append(tmp_path / name)
    sf.write(tmp_path / "d.wav", x, RATE, subtype="PCM_24")
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "d.wav"), "-b:a", "192k", str(tmp_path / "d.mp3")],
                   check=True)
    inputs.append(tmp_path / "d.mp3")
    out = tmp_path / "out"
    out.mkdir()
    proc = run_cli(masterbox_cmd, "album", out, *inputs)
    assert "mastered as WAV" in proc.stdout and "d.mp3 -> d.wav" in proc.stdout
    masters = [out / f"{p.stem}.wav" for p in inputs]
    assert sorted(os.listdir(out)) == sorted(m.name for m in masters)
    for p, m in zip(inputs, masters, strict=True):
        a, b = sf.info(p), sf.info(m)
        assert (b.format, b.subtype, b.samplerate, b.frames) == ("WAV", "PCM_24", a.samplerate, a.frames)
    played_back_to_back(masters, tmp_path / "all.wav")
    assert ffmpeg_ebur128(tmp_path / "all.wav", tmp_path)["integrated_lufs"] == pytest.approx(TARGET, abs=0.5)
    # b.w64's master would be b.wav: an input b.wav beside it is two masters of one name, refused
    sf.write(tmp_path / "b.wav", x, RATE, subtype="PCM_24")
    bad = run_cli(masterbox_cmd, "album", out, tmp_path / "b.w64", tmp_path / "b.wav", check=False)
    assert bad.returncode == 2 and "both masters would be" in bad.stderr, bad.stderr
