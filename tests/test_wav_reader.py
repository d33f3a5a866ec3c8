"""firmware/wav_reader.py reads exactly what libsndfile (soundfile) reads, or declines.

Files are written by libsndfile itself in every layout the reader claims; the oracle is
``soundfile.read(..., dtype="float64")`` of the same file, compared with ``array_equal``.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from firmware.wav_reader import open_wav


def content(frames, channels, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (frames, channels))
    x[:4] = [[1.0] * channels, [-1.0] * channels, [0.0] * channels, [2.0 ** -23] * channels]
    return x


def read_all(reader, sizes):
    out = np.zeros((reader.frames + 10, reader.channels))
    blocks = []
    k = 0
    while True:
        got = reader.read(sizes[k % len(sizes)], dtype="float64", always_2d=True, out=out)
        if len(got) == 0:
            break
        blocks.append(got.copy())
        k += 1
    return np.concatenate(blocks)


@pytest.mark.parametrize("fmt", ["WAV", "WAVEX", "RF64"])
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
@pytest.mark.parametrize("channels", [1, 2])
def test_reads_what_libsndfile_reads(tmp_path, fmt, subtype, channels):
    path = tmp_path / "x.wav"
    sf.write(path, content(10007, channels), 44100, format=fmt, subtype=subtype)
    ref, rate = sf.read(path, dtype="float64", always_2d=True)
    with open_wav(path) as r:
        assert (r.samplerate, r.channels, r.frames) == (rate, channels, len(ref))
        got = read_all(r, [4096, 1, 333])
    assert np.array_equal(got, ref)


def test_truncated_data_reads_what_is_there(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, content(5000, 2), 48000, subtype="PCM_24")
    data = path.read_bytes()
    path.write_bytes(data[:-1000])          # the header still promises 5000 frames
    ref, _ = sf.read(path, dtype="float64", always_2d=True)
    with open_wav(path) as r:
        assert r.frames == len(ref) < 5000
        assert np.array_equal(read_all(r, [4096]), ref)


def test_a_header_its_recorder_never_finished_is_read_to_the_end(tmp_path):
    """RIFF and data sizes 0 (the recorder died before writing them): every frame on disk, where
    libsndfile reads none; an empty data chunk that the RIFF size goes past is still empty."""
    path = tmp_path / "done.wav"
    sf.write(path, content(5000, 2), 48000, subtype="PCM_24")
    ref, _ = sf.read(path, dtype="float64", always_2d=True)
    data = bytearray(path.read_bytes())
    i = data.index(b"data")
    for riff_size in (0, i):       # never written, or written as the header's own length (data not counted)
        data[4:8] = riff_size.to_bytes(4, "little")
        data[i + 4:i + 8] = bytes(4)
        cut = tmp_path / "cut.wav"
        cut.write_bytes(bytes(data[:-7]))           # and cut mid-frame (6-byte frames), as a power cut leaves it
        assert sf.info(cut).frames == 0
        with open_wav(cut) as r:
            assert r.unfinished and r.frames == 4998
            assert np.array_equal(read_all(r, [4096]), ref[:4998])
    with open_wav(path) as r:
        assert not r.unfinished
    empty = tmp_path / "empty-then-list.wav"       # a finished file with an empty data chunk, then a LIST
    sf.write(empty, np.zeros((0, 2)), 48000, subtype="PCM_24")
    body = bytearray(empty.read_bytes()) + b"LIST" + (4).to_bytes(4, "little") + b"INFO"
    body[4:8] = (len(body) - 8).to_bytes(4, "little")
    empty.write_bytes(bytes(body))
    assert open_wav(empty) is None


def test_declines_what_it_does_not_read_exactly(tmp_path):
    cases = {"u8.wav": dict(subtype="PCM_U8"), "flac.flac": dict(subtype="PCM_16"),
             "aiff.aiff": dict(subtype="PCM_24")}
    for name, kw in cases.items():
        sf.write(tmp_path / name, content(100, 2), 48000, **kw)
        assert open_wav(tmp_path / name) is None, name
    sf.write(tmp_path / "six.wav", content(100, 6), 48000, subtype="PCM_24")
    assert open_wav(tmp_path / "six.wav") is None          # not a stereo-chain input: soundfile words it
    (tmp_path / "text.wav").write_text("not a wave file at all")
    assert open_wav(tmp_path / "text.wav") is None
    sf.write(tmp_path / "empty.wav", np.zeros((0, 2)), 48000, subtype="PCM_24")
    assert open_wav(tmp_path / "empty.wav") is None
    assert open_wav(tmp_path / "missing.wav") is None
