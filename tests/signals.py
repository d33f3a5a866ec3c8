"""Test signals generated from the descriptions in EBU Tech 3341 / 3342, plus oracle helpers.

Levels are per-channel sample peak in dBFS, as the EBU documents state them. Tones are in phase
on every channel and keep one continuous phase across level steps (no clicks at the joins).
Fades of 10 ms are applied where a test measures true peak, because a hard onset has real
inter-sample overshoot that would (correctly) read high.

Shared by the meter, analysis and chain tests; imports nothing of ours.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

# (seconds, dBFS) segments of 1 kHz stereo tone.
EBU3341 = {
    1: [(20.0, -23.0)],
    2: [(20.0, -33.0)],
    3: [(10.0, -36.0), (60.0, -23.0), (10.0, -36.0)],
    4: [(10.0, -72.0), (10.0, -36.0), (60.0, -23.0), (10.0, -36.0), (10.0, -72.0)],
    5: [(20.0, -26.0), (20.1, -20.0), (20.0, -26.0)],
    9: [(1.34, -20.0), (1.66, -30.0)] * 5,
    12: [(0.18, -20.0), (0.22, -30.0)] * 25,
}

# True-peak cases: (frequency as a fraction of fs, peak amplitude, phase in degrees, expected dBTP).
EBU3341_TRUE_PEAK = {
    15: (1 / 4, 0.50, 0.0, -6.0),
    16: (1 / 4, 0.50, 45.0, -6.0),
    17: (1 / 6, 0.50, 60.0, -6.0),
    18: (1 / 8, 0.50, 67.5, -6.0),
    19: (1 / 4, 1.41, 45.0, 3.0),
}

# Loudness-range cases: segments of 20 s and the expected LRA.
EBU3342 = {
    1: ([(20.0, -20.0), (20.0, -30.0)], 10.0),
    2: ([(20.0, -20.0), (20.0, -15.0)], 5.0),
    3: ([(20.0, -40.0), (20.0, -20.0)], 20.0),
    4: ([(20.0, -50.0), (20.0, -35.0), (20.0, -20.0), (20.0, -35.0), (20.0, -50.0)], 15.0),
}


def tone_segments(segments, rate: int, freq: float = 1000.0, channels: int = 2) -> np.ndarray:
    """Concatenated tone segments ``[(seconds, dBFS), ...]``, shape (frames, channels)."""
    lengths = [int(round(s * rate)) for s, _ in segments]
    amp = np.concatenate([np.full(n, 10.0 ** (db / 20.0)) for n, (_, db) in zip(lengths, segments, strict=True)])
    x = amp * np.sin(2 * np.pi * freq * np.arange(amp.size) / rate)
    return np.repeat(x[:, None], channels, axis=1)


def faded(x: np.ndarray, rate: int, fade_s: float = 0.010) -> np.ndarray:
    """``x`` with linear fades in and out."""
    n = int(round(fade_s * rate))
    ramp = np.linspace(0.0, 1.0, n)
    y = x.copy()
    y[:n] *= ramp[:, None] if y.ndim == 2 else ramp
    y[-n:] *= ramp[::-1, None] if y.ndim == 2 else ramp[::-1]
    return y


def true_peak_case(case: int, rate: int = 48000, seconds: float = 1.0) -> tuple[np.ndarray, float]:
    """EBU 3341 true-peak case: stereo signal (with 10 ms fades) and the expected dBTP."""
    frac, amp, phase, expected = EBU3341_TRUE_PEAK[case]
    n = np.arange(int(seconds * rate))
    x = amp * np.sin(2 * np.pi * frac * n + np.deg2rad(phase))
    return faded(np.repeat(x[:, None], 2, axis=1), rate), expected


# ---- ffmpeg's ebur128 filter as an independent meter ------------------------------------------------

_SUMMARY = {
    "integrated_lufs": r"I:\s+(-?[\d.]+|-inf|nan) LUFS",
    "loudness_range_lu": r"LRA:\s+(-?[\d.]+) LU",
    "true_peak_dbtp": r"Peak:\s+(-?[\d.]+|-inf) dBFS",
}


def ffmpeg_ebur128(path: Path, workdir: Path) -> dict:
    """Measure ``path`` with ``ffmpeg -af ebur128=peak=true``.

    The printed Summary rounds to 0.1, too coarse for 0.1 LU comparisons, so the full-precision
    values come from the filter's per-frame metadata (its last frame, which carries the
    programme values: I, LRA and the true peak as a linear amplitude). The Summary is parsed too
    and must agree with them to its rounding, which checks that we read the right numbers.
    """
    meta = workdir / (path.name + ".ebur128.txt")
    cmd = [
        "ffmpeg", "-nostats", "-hide_banner", "-i", str(path),
        "-af", f"ebur128=peak=true:metadata=1,ametadata=mode=print:file={meta}",
        "-f", "null", "-",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    summary_text = proc.stderr[proc.stderr.rindex("Summary:"):]
    summary = {k: float(re.search(p, summary_text).group(1)) for k, p in _SUMMARY.items()}
    last: dict = {}
    most = {"M": -np.inf, "S": -np.inf}
    for line in meta.read_text().splitlines():
        if line.startswith("lavfi.r128."):
            key, value = line[len("lavfi.r128."):].split("=")
            last[key] = float(value)
            if key in most:
                most[key] = max(most[key], float(value))
    precise = {
        "integrated_lufs": last["I"],
        "loudness_range_lu": last["LRA"],
        "true_peak_dbtp": 20 * np.log10(last["true_peak"]),
        "max_momentary_lufs": most["M"],       # the largest of the 100 ms updates
        "max_short_term_lufs": most["S"],
    }
    for k, v in summary.items():
        assert abs(precise[k] - v) <= 0.051 + (0.02 if k == "true_peak_dbtp" else 0.0), (k, precise[k], v)
    return precise


def thd_n_db(y: np.ndarray, rate: int, f0: float) -> float:
    """THD+N of the steady state (the left channel's 2nd and 3rd seconds): everything in 20 Hz-20 kHz
    but the fundamental, relative to it, in dB (numpy FFT, Blackman-Harris window)."""
    from scipy.signal.windows import blackmanharris

    seg = y[rate:3 * rate, 0]
    spec = np.abs(np.fft.rfft(seg * blackmanharris(len(seg)))) ** 2
    per_hz = len(seg) / rate
    k = int(round(f0 * per_hz))
    fund = spec[k - 8:k + 9].sum()
    band = spec[int(20 * per_hz):int(20000 * per_hz)].sum()
    return 10 * np.log10(max(band - fund, 1e-30) / fund)


def run_chain(chain, x, blocks=1024):
    """Process ``x`` through ``chain`` in blocks: a fixed size (int) or a list of sizes (cycled)."""
    y = np.zeros_like(x)
    sizes = [blocks] if isinstance(blocks, int) else list(blocks)
    i = k = 0
    while i < len(x):
        n = min(int(sizes[k % len(sizes)]), len(x) - i)
        chain.process(x[i:i + n], y[i:i + n])
        i += n
        k += 1
    return y
