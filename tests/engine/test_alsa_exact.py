"""The live ALSA stream equals the offline ``masterbox master`` render, sample for sample.

A known programme goes in through a ``type file`` capture PCM (raw samples, ``infile``), the
engine streams it through the chain, a ``type file`` playback PCM records what was played. The
same input (as a WAV of the same word length) is rendered by ``masterbox master`` with the same
preset and settings. After dropping the buffers' delay (``io_latency_samples``: the silence the
engine primes the playback with) and the chain's latency, both must be identical: bit for bit
(for S32_LE within float32 resolution, the finest ``master`` writes).
No mocks: pyalsaaudio, alsa-lib and its plugins do the real work; only the sound card is absent.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf

from hw.audio.formats import from_bytes, quantize, to_bytes
from tests.engine.conftest import read_stats, run_engine

# a preset that does not chase a loudness target (so no drive search), made to work hard
SETTINGS = ["eq2.on=on", "eq2.gain_db=4", "eq2.freq=150", "eq5.on=on", "eq5.gain_db=-3", "mb.on=on",
            "mb.low.threshold_db=-24", "st.width=120", "out.drive_db=9", "lim.ceiling_dbtp=-1"]
WAV_SUBTYPE = {"S16_LE": "PCM_16", "S24_LE": "PCM_24", "S24_3LE": "PCM_24", "S32_LE": "PCM_32", "FLOAT_LE": "FLOAT"}
BIT_DEPTH = {"S16_LE": "16", "S24_LE": "24", "S24_3LE": "24", "S32_LE": "32f", "FLOAT_LE": "32f"}


def master_render(tmp_path, x: np.ndarray, rate: int, fmt: str, masterbox_cmd) -> tuple[np.ndarray, int]:
    src = tmp_path / "in.wav"
    dst = tmp_path / "ref.wav"
    sf.write(str(src), x, rate, subtype=WAV_SUBTYPE[fmt])
    cmd = [*masterbox_cmd, "master", str(src), str(dst), "--preset", "transparent", "--json",
           "--bit-depth", BIT_DEPTH[fmt]]
    for s in SETTINGS:
        cmd += ["--set", s]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    import json

    latency = json.loads(r.stdout)["latency_samples"]
    ref, _ = sf.read(str(dst), dtype="float64", always_2d=True)
    return ref, latency


def stream_through_alsa(alsa_rig, x: np.ndarray, rate: int, fmt: str, period: int, periods: int,
                        backend: str = "alsa", pad: int = 48000) -> tuple[np.ndarray, dict]:
    # pad with silence: past the end of its infile the file plugin returns stale data. Unpaced, the
    # engine streams far more than the programme in 1 s even on a loaded machine (the test checks)
    alsa_rig.infile.write_bytes(to_bytes(np.vstack([x, np.zeros((pad, 2))]), fmt))
    stats = alsa_rig.root.parent / f"stats-{backend}.json"
    args = ["--backend", backend, "--capture-device", "mbin", "--playback-device", "mbout", "--rate", str(rate),
            "--format", fmt, "--period", str(period), "--periods", str(periods), "--preset", "transparent",
            "--wait-ready", "--duration", "1.0", "--stats-json", str(stats), "--no-realtime", "--quiet"]
    for s in SETTINGS:
        args += ["--set", s]
    run_engine(args, alsa_rig.env)
    from hw.audio.formats import sample_format

    need = (len(x) + 32768) * 2 * sample_format(fmt).width  # the programme, the delays and some spare
    with open(alsa_rig.outfile, "rb") as f:
        out = from_bytes(f.read(need), fmt)
    alsa_rig.outfile.unlink()  # tens of MB: unpaced, the engine streams far past the programme
    return out, read_stats(stats)


@pytest.mark.parametrize("fmt,rate,period,periods", [
    ("S16_LE", 48000, 128, 2),
    ("S24_LE", 44100, 256, 3),
    ("S24_3LE", 96000, 64, 2),
    ("S32_LE", 88200, 128, 4),
    ("FLOAT_LE", 48000, 128, 2),
])
def test_alsa_stream_equals_offline_master(tmp_path, alsa_rig, masterbox_cmd, fmt, rate, period, periods):
    from tests.engine.conftest import programme

    x = quantize(programme(1.5, rate, seed=3), fmt)  # what the device would deliver
    ref, latency = master_render(tmp_path, x, rate, fmt, masterbox_cmd)
    out, stats = stream_through_alsa(alsa_rig, x, rate, fmt, period, periods)

    assert stats["xruns"] == 0 and stats["device_errors"] == 0
    assert stats["latency_samples"] == latency
    assert stats["io_latency_samples"] == period * periods
    start = stats["io_latency_samples"] + latency
    assert len(out) >= start + len(x), "the engine did not stream the whole programme"
    assert not np.any(out[:stats["io_latency_samples"]]), "the buffers are primed with silence"
    live = out[start:start + len(x)]
    expect = quantize(ref, fmt)  # the word length on the wire (a no-op for 16/24-bit renders)
    assert np.abs(expect).max() > 0.5  # the programme really came through the limiter
    if fmt == "S32_LE":
        # `master` writes at most 32-bit float, whose 24-bit mantissa cannot carry 32 bits: here the
        # live stream is compared within float32 resolution (half an ulp at full scale + one LSB)
        tol = 2.0 ** -24 + 2.0 ** -31
        assert np.abs(live - expect).max() <= tol
        return
    mismatch = np.flatnonzero(np.any(live != expect, axis=1))
    assert mismatch.size == 0, f"{mismatch.size} frames differ, first at {mismatch[:5]}"


def test_nan_burst_in_float_input_is_silenced_and_stream_goes_on(tmp_path, alsa_rig, masterbox_cmd):
    """NaN and infinities on a FLOAT_LE input become silence; everything else is untouched."""
    from tests.engine.conftest import programme

    rate, fmt = 48000, "FLOAT_LE"
    x = quantize(programme(1.0, rate, seed=5), fmt)
    bad = x.copy()
    bad[10000:10400] = np.nan
    bad[20000:20010, 0] = np.inf
    bad[30000:30003, 1] = -np.inf
    clean = np.where(np.isfinite(bad), bad, 0.0)
    ref, latency = master_render(tmp_path, clean, rate, fmt, masterbox_cmd)
    out, stats = stream_through_alsa(alsa_rig, bad, rate, fmt, 128, 2)
    assert np.all(np.isfinite(out))
    start = stats["io_latency_samples"] + latency
    live = out[start:start + len(x)]
    assert np.array_equal(live, quantize(ref, fmt))
    assert stats["xruns"] == 0


def test_portaudio_backend_streams_the_same_alsa_pcms(tmp_path, alsa_rig, masterbox_cmd):
    """PortAudio's ALSA host API opens the same file PCMs; its buffer delay is found, then exact."""
    from tests.engine.conftest import programme

    rate, fmt = 48000, "S24_3LE"  # PortAudio's paInt24
    x = quantize(programme(1.0, rate, seed=7), fmt)
    ref, latency = master_render(tmp_path, x, rate, fmt, masterbox_cmd)
    out, stats = stream_through_alsa(alsa_rig, x, rate, fmt, 128, 2, backend="portaudio")
    expect = quantize(ref, fmt)
    # PortAudio primes its own buffer with silence; find that delay, then demand bit equality
    probe = expect[:4000]
    starts = [d for d in range(0, 16384) if np.array_equal(out[d:d + len(probe)], probe)]
    assert starts, "the processed programme does not appear in PortAudio's output"
    start = starts[0]
    assert start >= latency and not np.any(out[:start - latency])
    live = out[start:start + len(x)]
    assert len(live) == len(x)
    assert np.array_equal(live, expect)
    assert stats["device_errors"] == 0
