"""How the limiter sounds: distortion and level against x42-dpl and ffmpeg's alimiter, same signals.

A limiter is heard by what its gain changes add to the music. On a sustained tone the gain
must follow the waveform's peaks, and every ripple of it within a cycle is distortion: low
notes (a bass line, a kick's tail) are where a limiter is heard first. So, at 48 kHz, each
limiter gets the same stereo test signals driven the same amount over a -1 dBTP ceiling:

* sines of 40 Hz, 100 Hz and 1 kHz at 0 dBFS peak, driven +6 dB (about 7 dB of gain reduction):
  **THD+N**, everything in 20 Hz-20 kHz that is not the fundamental, relative to it (dB), over
  4 s of the steady state (a Blackman-Harris window; the measurement's own floor is below
  -130 dB), and the fundamental's output level (dBFS peak: how much level the limiter gives);
* SMPTE intermodulation: 60 Hz and 7 kHz at 4:1, 0 dBFS peak, driven +6 dB: the sidebands
  7 kHz +- n x 60 Hz (n = 1..4) relative to the 7 kHz tone (dB);
* the demo music (``dsp.programme``, -6 dBFS peak) driven +8 dB: the output's true peak and
  integrated loudness by ffmpeg's ``ebur128`` (the loudness a limiter gives for its ceiling).

The limiters: ours (the chain with the ``transparent`` preset: only the limiter, its default
automatic 50 ms release; the chain's own code, run block by block in this process); x42-dpl
through ffmpeg's lv2 filter, true-peak mode, at its default 10 ms release and at 50 ms;
ffmpeg's ``alimiter`` (attack 1.33 ms, release 50 ms). Figures, never pass/fail; THD+N and IMD
under -140 dB read -140 (the 32-bit float signals every limiter gets have their own floor about there).
``--release MS,MS,...`` measures ours at those automatic releases instead of 50 ms (a row each,
``masterbox_<MS>ms``: the release is where the automatic release's two components can disagree),
``--no-peers`` leaves the peers out, ``--quick`` makes every signal 3 s long (the music 6 s) and measures
1 s of the steady state (rougher figures; seconds instead of about half a minute).

    .venv/bin/python bench/bench_limiter_sound.py [--json] [--release MS,...] [--no-peers] [--quick]
    masterbox bench --only limiter_sound
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal.windows import blackmanharris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the tests' ffmpeg oracle (tests.signals)

RATE = 48000
SECONDS = 9.0
FLOOR_DB = -140.0              # reported for anything lower: the 32-bit float signals' own floor is about -150
STEADY = (3.0, 7.0)            # the seconds measured (whole hertz sit on bins: 4 s = 0.25 Hz per bin)
QUICK = (3.0, (1.0, 2.0))      # --quick: SECONDS and STEADY (1 s measured, 1 Hz per bin: rougher figures)
CEILING = -1.0
SINE_DRIVE_DB = 6.0
MUSIC_DRIVE_DB = 8.0
SINES = (30.0, 40.0, 60.0, 100.0, 1000.0)
IMD_TONES = (60.0, 7000.0)
X42 = r"lv2=p=http\\://gareus.org/oss/lv2/dpl#stereo:c=threshold={ceiling}|truepeak=1|release={release}"
OURS = "masterbox"
NAMES = {OURS: "masterbox (automatic, 50 ms)", "x42_10ms": "x42-dpl (10 ms, its default)",
         "x42_50ms": "x42-dpl (50 ms)", "alimiter_50ms": "ffmpeg alimiter (50 ms)"}
PEERS = {   # ffmpeg filters after the drive
    "x42_10ms": X42.format(ceiling=CEILING, release=0.01),
    "x42_50ms": X42.format(ceiling=CEILING, release=0.05),
    "alimiter_50ms": f"alimiter=limit={10 ** (CEILING / 20):.4f}:attack=1.33:release=50:level=disabled",
}


def signals() -> dict[str, np.ndarray]:
    """The test signals, stereo float, before the drive."""
    from dsp.programme import render_programme

    t = np.arange(int(SECONDS * RATE)) / RATE
    out = {f"sine {f:g} Hz": np.sin(2 * np.pi * f * t) for f in SINES}
    lo, hi = IMD_TONES
    out["SMPTE IMD"] = 0.8 * np.sin(2 * np.pi * lo * t) + 0.2 * np.sin(2 * np.pi * hi * t)
    stereo = {k: np.stack([v, v], axis=1) for k, v in out.items()}
    stereo["music"] = render_programme(SECONDS * 2, RATE, seed=5, peak_dbfs=-6.0)
    return {k: as_float32(v) for k, v in stereo.items()}


def as_float32(x: np.ndarray) -> np.ndarray:
    """What every limiter gets: the signal as the 32-bit float WAV the peers read."""
    return x.astype(np.float32).astype(np.float64)


def ours(x: np.ndarray, drive_db: float, release_ms: float | None = None) -> np.ndarray:
    """The chain with only its limiter at work (``transparent``: automatic release, 50 ms unless
    ``release_ms``), float output, 1024-frame blocks."""
    from dsp import schema
    from dsp.chain import Chain

    params = json.loads((Path(schema.__file__).parent / "presets" / "transparent.json").read_text())["params"]
    if release_ms is not None:
        params = params | {"lim.release_ms": release_ms, "lim.auto_release": True}
    c = Chain(RATE, max_block=1024)
    c.set_values(params | {"out.drive_db": drive_db, "lim.ceiling_dbtp": CEILING})
    c.set_output_bits(None)
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.zeros_like(x)
    for i in range(0, len(x), 1024):
        c.process(x[i:i + 1024], y[i:i + 1024])
    return y


def peer(graph: str, x: np.ndarray, drive_db: float, work: Path) -> np.ndarray:
    src, dst = work / "in.wav", work / "out.wav"
    sf.write(src, x, RATE, subtype="FLOAT")
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-i", str(src), "-af", f"volume={drive_db}dB,{graph}",
                    "-c:a", "pcm_f32le", str(dst)], check=True)
    return sf.read(dst, dtype="float64")[0]


def _power(spec: np.ndarray, hz: float, half: int = 8) -> float:
    k = int(round(hz * (STEADY[1] - STEADY[0])))
    return float(spec[max(k - half, 0):k + half + 1].sum())


def _spectrum(y: np.ndarray) -> np.ndarray:
    """Power spectrum of the left channel's steady state, Blackman-Harris window."""
    seg = y[int(STEADY[0] * RATE):int(STEADY[1] * RATE), 0]
    return np.abs(np.fft.rfft(seg * blackmanharris(len(seg)))) ** 2


def thd_n(y: np.ndarray, f0: float) -> tuple[float, float]:
    """(THD+N in dB re the fundamental over 20 Hz-20 kHz, the fundamental's peak level in dBFS)."""
    spec = _spectrum(y)
    per_hz = STEADY[1] - STEADY[0]
    band = spec[int(20 * per_hz):int(20000 * per_hz)].sum()
    fund = _power(spec, f0)
    w = blackmanharris(int((STEADY[1] - STEADY[0]) * RATE))
    peak = np.sqrt(4 * fund / np.sum(w ** 2) / len(w))       # a sine's peak from its power in the window
    return max(10 * np.log10(max(band - fund, 1e-30) / fund), FLOOR_DB), 20 * np.log10(peak)


def smpte_imd(y: np.ndarray) -> float:
    spec = _spectrum(y)
    lo, hi = IMD_TONES
    sides = sum(_power(spec, hi + s * n * lo) for n in range(1, 5) for s in (-1, 1))
    return max(10 * np.log10(max(sides, 1e-30) / _power(spec, hi)), FLOOR_DB)


def loudness(y: np.ndarray, work: Path) -> tuple[float, float]:
    """(true peak dBTP, integrated LUFS) of ``y`` by ffmpeg's ebur128, full precision (the tests' oracle,
    ``tests.signals.ffmpeg_ebur128``)."""
    from tests.signals import ffmpeg_ebur128

    path = work / "music.wav"
    sf.write(path, y, RATE, subtype="FLOAT")
    m = ffmpeg_ebur128(path, work)
    return round(float(m["true_peak_dbtp"]), 3), round(float(m["integrated_lufs"]), 3)


def measure(releases: tuple[float, ...] = (), peers: bool = True) -> dict[str, dict[str, float]]:
    """Every figure per limiter; ``releases``: ours at those automatic releases (ms) instead of its default."""
    sig = signals()
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        runners = {f"{OURS}_{r:g}ms": (lambda x, g, r=r: ours(x, g, r)) for r in releases} or {OURS: ours}
        if peers:
            runners |= {name: (lambda x, g, graph=graph: peer(graph, x, g, work)) for name, graph in PEERS.items()}
        for name, limit in runners.items():
            row = {}
            for f in SINES:
                y = limit(sig[f"sine {f:g} Hz"], SINE_DRIVE_DB)
                row[f"thdn_{f:g}_db"], row[f"level_{f:g}_dbfs"] = (round(float(v), 2) for v in thd_n(y, f))
            row["imd_smpte_db"] = round(float(smpte_imd(limit(sig["SMPTE IMD"], SINE_DRIVE_DB))), 2)
            row["music_tp_dbtp"], row["music_lufs"] = loudness(limit(sig["music"], MUSIC_DRIVE_DB), work)
            rows[name] = row
    return rows


def run(quick: bool = False) -> dict:
    """For ``masterbox bench``: every figure as ``<limiter>_<figure>`` (it takes about a minute either way)."""
    return {f"{name}_{k}": v for name, row in measure().items() for k, v in row.items()}


def main(argv: list[str]) -> int:
    global SECONDS, STEADY
    if "--quick" in argv:
        SECONDS, STEADY = QUICK
    releases = ()
    if "--release" in argv:
        releases = tuple(float(v) for v in argv[argv.index("--release") + 1].split(","))
    rows = measure(releases, peers="--no-peers" not in argv)
    if "--json" in argv:
        print(json.dumps(rows, indent=1))
        return 0
    cols = [f"thdn_{f:g}_db" for f in SINES] + ["imd_smpte_db"] + [f"level_{f:g}_dbfs" for f in SINES] + [
        "music_tp_dbtp", "music_lufs"]
    heads = [f"THD+N {f:g} Hz" for f in SINES] + ["IMD SMPTE"] + [f"level {f:g} Hz" for f in SINES] + [
        "music TP", "music LUFS"]
    print(f"limiters at a {CEILING} dBTP ceiling; sines and IMD driven +{SINE_DRIVE_DB:g} dB, "
          f"music +{MUSIC_DRIVE_DB:g} dB")
    print("| limiter | " + " | ".join(heads) + " |")
    print("|---" * (len(heads) + 1) + "|")
    for name, row in rows.items():
        label = NAMES.get(name) or f"masterbox (automatic, {name.removeprefix(OURS + '_')})"
        print(f"| {label} | " + " | ".join(f"{row[c]:.2f}" for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
