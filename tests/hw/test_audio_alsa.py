"""The ALSA backend on real alsa-lib PCMs (``type file`` over ``null``), without the engine.

Run in a subprocess so the test's own ALSA configuration (XDG_CONFIG_HOME) is read fresh.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hw.audio.formats import FORMATS, from_bytes, quantize, to_bytes

SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    from hw.audio import StreamConfig, make_backend, OK
    fmt, n = sys.argv[1], int(sys.argv[2])
    b = make_backend("alsa", StreamConfig(rate=48000, period=128, periods=3, format=fmt,
                                         capture_device="mbin", playback_device="mbout"))
    b.open()
    x = np.zeros((128, 2))
    for _ in range(n):
        assert b.read(x) == OK
        assert b.write(x) == OK
    b.close()
    print(b.xruns, b.device_errors, b.io_latency_samples)
""")


def _asoundrc(tmp_path):
    (tmp_path / "alsa").mkdir()
    (tmp_path / "alsa" / "asoundrc").write_text(f"""
pcm.mbin {{ type file slave.pcm "null" file "/dev/null" infile "{tmp_path / 'in.raw'}" format "raw" }}
pcm.mbout {{ type file slave.pcm "null" file "{tmp_path / 'out.raw'}" format "raw" }}
pcm.mono {{ type multi slaves.a.pcm "mbin" slaves.a.channels 1 bindings.0 {{ slave a channel 0 }} }}
pcm.quad {{ type multi slaves.a.pcm "mbin" slaves.a.channels 4
  bindings.0 {{ slave a channel 0 }} bindings.1 {{ slave a channel 1 }}
  bindings.2 {{ slave a channel 2 }} bindings.3 {{ slave a channel 3 }} }}
""")
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}


def _run(env, *args):
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], env=env, capture_output=True, text=True,
                          timeout=60, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_samples_pass_through_bit_exact_after_the_primed_silence(tmp_path, fmt):
    env = _asoundrc(tmp_path)
    x = quantize(np.random.default_rng(3).uniform(-1, 1, (128 * 40, 2)), fmt)
    (tmp_path / "in.raw").write_bytes(to_bytes(x, fmt))
    r = _run(env, fmt, "40")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "0", str(128 * 3)]
    out = from_bytes((tmp_path / "out.raw").read_bytes(), fmt)
    assert not np.any(out[:384]) and np.array_equal(out[384:384 + len(x)], x)


def test_missing_device_and_unsupported_rate_are_refused_with_a_reason(tmp_path):
    env = _asoundrc(tmp_path)
    script = textwrap.dedent("""
        from hw.audio import StreamConfig, make_backend, DeviceError
        try:
            make_backend("alsa", StreamConfig(capture_device="nosuchpcm", playback_device="mbout")).open()
        except DeviceError as e:
            print(e)
        try:
            make_backend("alsa", StreamConfig(rate=22050))
        except DeviceError as e:
            print(e)
    """)
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "cannot open ALSA capture device 'nosuchpcm'" in r.stdout
    assert "rate 22050 Hz is not supported" in r.stdout


@pytest.mark.parametrize("device, channels", [("mono", 1), ("quad", 4)])
def test_a_device_that_is_not_stereo_is_refused_at_open_naming_what_it_gives(tmp_path, device, channels):
    """pyalsaaudio grants the nearest channel count without a word: a mono device used to run with every
    block eating two device periods, a 4-channel one to fail every read and flap lost/back for ever."""
    env = _asoundrc(tmp_path)
    (tmp_path / "in.raw").write_bytes(bytes(4 * 4 * 128 * 8))
    script = textwrap.dedent(f"""
        from hw.audio import StreamConfig, make_backend, DeviceError
        b = make_backend("alsa", StreamConfig(capture_device="{device}", playback_device="mbout"))
        try:
            b.open()
        except DeviceError as e:
            print("refused:", e)
        else:
            print("opened")
    """)
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert r.returncode == 0, r.stderr
    assert f"refused: ALSA capture device '{device}' gives {channels} channel(s); masterbox needs 2" in r.stdout
    assert "plughw:" in r.stdout


GRANTED = {"rate": 48000, "format_name": "S32_LE", "channels": 2, "period_size": 128, "periods": 2}


@pytest.mark.parametrize("granted, words", [
    ({}, None),
    ({"periods": 3}, None),  # a deeper buffer than asked: the prefill still sets the latency
    ({"rate": 44100}, "does not do 48000 Hz S32_LE (it offered 44100 Hz S32_LE)"),
    ({"channels": 1}, "gives 1 channel(s); masterbox needs 2"),
    ({"period_size": 512}, "grants a period of 512 frames, not 128: set period = 512"),
    ({"period_size": 64}, "grants a period of 64 frames, not 128: set period = 64"),
    ({"periods": 1}, "grants 1 periods, not 2: set periods = 1"),
])
def test_every_setting_the_device_may_not_grant_is_checked(granted, words):
    from hw.audio.alsa import granted_problem

    problem = granted_problem({**GRANTED, **granted}, "playback", "hw:1", 48000, "S32_LE", 2, 128, 2)
    if words is None:
        assert problem is None
    else:
        assert problem.startswith("ALSA playback device 'hw:1' ") and words in problem
