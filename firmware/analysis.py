"""Loudness and peak analysis of an audio file: what ``masterbox analyze`` reports.

The file is streamed through :class:`dsp.meter.LoudnessMeter` in blocks, so a two-hour
recording costs no more memory than a two-second one. (Decoding the next block in a second
thread was tried: on this shared two-core machine the hand-offs made it slower, not faster.)

Heavy modules (numpy, soundfile, numba) are imported inside :func:`analyze_file` so that
importing this module, e.g. to catch :class:`AnalysisError`, stays cheap.
"""

from __future__ import annotations

import os
from pathlib import Path

MIN_DURATION_S = 0.4  # one 400 ms gating block: below that, integrated loudness is undefined
ROUND_DIGITS = 3

# The analysis keys, in the order a person reads them: the meter's readings, then the file's facts.
METER_KEYS = (
    "integrated_lufs",
    "loudness_range_lu",
    "true_peak_dbtp",
    "sample_peak_dbfs",
    "max_momentary_lufs",
    "max_short_term_lufs",
    "plr_db",
    "lra_low_lufs",
    "lra_high_lufs",
)
KEYS = METER_KEYS + (
    "duration_s",
    "sample_rate",
    "channels",
    "frames",
    "nonfinite_samples",
)
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")   # the only encodings that can hold NaN or infinity


class AnalysisError(Exception):
    """The file cannot be analysed; the message says why, for a person to act on."""


def _open(path: Path):
    """The file, read by numpy when it is a plain WAV (firmware/wav_reader.py: libsndfile's values,
    a few times faster, and a recording whose header was never finished is read whole), else by
    soundfile."""
    from firmware.wav_reader import open_wav

    if not path.exists():
        raise AnalysisError(f"{path}: no such file")
    if path.is_dir():
        raise AnalysisError(f"{path}: is a directory, not an audio file")
    if not os.access(path, os.R_OK):
        raise AnalysisError(f"{path}: permission denied (the file is not readable)")
    if path.stat().st_size == 0:
        raise AnalysisError(f"{path}: the file is empty (0 bytes)")
    snd = open_wav(path)
    if snd is not None:
        return snd
    import soundfile as sf

    try:
        return sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        detail = str(e).split(":")[-1].strip() or "unknown format"
        raise AnalysisError(
            f"{path}: not an audio file that can be read (WAV, FLAC, AIFF, ...): {detail}"
        ) from None


def _too_short(path: Path, seconds: float) -> AnalysisError:
    return AnalysisError(
        f"{path}: too short to measure loudness ({seconds * 1000:.0f} ms of audio; integrated "
        f"loudness needs at least {MIN_DURATION_S * 1000:.0f} ms)"
    )


def _blocks(snd, block: int):
    """Yield float64 (frames, channels) blocks decoded into one reused buffer."""
    import numpy as np

    buf = np.empty((block, snd.channels))
    while True:
        try:
            x = snd.read(block, dtype="float64", always_2d=True, out=buf)
        except Exception as e:
            raise AnalysisError(f"{snd.name}: reading failed after {snd.tell()} frames: {e}") from None
        if len(x) == 0:
            return
        yield x


class SampleFaults:
    """Replaces a float file's faulty samples by silence, counting them: NaN, infinity, and values
    beyond +80 dBFS (``dsp.chain.BIG``), the same test as the chain's input sanitising. The
    analysis uses it, and so does ``firmware.rate_convert`` before its filter.

    Why: one NaN in the K-weighting filters' state makes every reading after it NaN, so a float
    file with a single bad sample would read "undefined" with no hint why; one sample of 1e5 would
    read +100 dBTP and +60 LUFS where ``master`` treats it as the fault it is. The box treats such
    samples as silence, so the analysis measures what the box would hear, and says how many there
    were (``nonfinite_samples``, channel samples).
    """

    def __init__(self, block: int, channels: int):
        import numpy as np

        from dsp.chain import BIG  # here: only a float file needs it (the chain module costs ~0.1 s)

        self._big = BIG
        self._ok = np.empty((block, channels), dtype=bool)
        self._mag = np.empty((block, channels))
        self.count = 0

    def clean(self, x) -> None:
        import numpy as np

        ok, mag = self._ok[: len(x)], self._mag[: len(x)]
        np.abs(x, out=mag)
        np.less_equal(mag, self._big, out=ok)     # False for NaN too
        if not ok.all():
            bad = ~ok
            self.count += int(np.count_nonzero(bad))
            x[bad] = 0.0


def analyze_file(path, block: int = 65536) -> dict:
    """Measure ``path``: integrated loudness, loudness range, peaks, maxima, PLR.

    Returns a dict with :data:`KEYS` (``None`` where a value is undefined, e.g. silence, or the
    loudness range of a file shorter than one 3 s short-term window). NaN, infinite and
    beyond-+80-dBFS samples of a float file are measured as silence and counted in
    ``nonfinite_samples``. A WAV whose recorder never finished its header is read to its end. Raises
    :class:`AnalysisError` for a missing, unreadable, empty or too-short (< 400 ms) file.
    """
    path = Path(path)
    nonfinite = None
    with _open(path) as snd:
        rate, channels = snd.samplerate, snd.channels
        if snd.frames == 0:
            raise AnalysisError(f"{path}: contains no audio (0 frames)")
        if snd.frames < MIN_DURATION_S * rate:
            raise _too_short(path, snd.frames / rate)
        from dsp.meter import LoudnessMeter  # numba: only once there is something to measure

        try:
            meter = LoudnessMeter(rate, channels)
        except ValueError as e:
            raise AnalysisError(f"{path}: {e}") from None
        if snd.subtype in FLOAT_SUBTYPES:
            nonfinite = SampleFaults(block, channels)
        for x in _blocks(snd, block):
            if nonfinite is not None:
                nonfinite.clean(x)
            meter.process(x)
    frames = meter.frames
    duration = frames / rate
    if frames == 0:
        raise AnalysisError(f"{path}: contains no audio (0 frames could be decoded)")
    if duration < MIN_DURATION_S:
        raise _too_short(path, duration)
    r = meter.readings()
    out = {k: (None if r[k] is None else round(r[k], ROUND_DIGITS)) for k in METER_KEYS}
    out.update(duration_s=round(duration, 6), sample_rate=int(rate), channels=int(channels), frames=int(frames),
               nonfinite_samples=0 if nonfinite is None else nonfinite.count)
    return out
