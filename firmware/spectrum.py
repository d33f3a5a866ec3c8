"""The spectrum analyser the Live page draws: input and output, mid and side, in 1/6-octave bands.

Every mastering tool shows a spectrum: where the low end sits, what an EQ move did, whether the
side channel still carries bass after "mono below". The engine keeps the last 1.5 s of audio, before
and after the chain, in ``scope.shm`` (:mod:`firmware.scope_shm`); this module, in the control
process, turns the newest ~0.7 s of it into band levels when a page asks, at most
:data:`MIN_INTERVAL_S` apart, however many pages ask. The audio loop's only share is the copy.

What a reading means. The newest ``fft_size(rate)`` frames (a power of two, >= 0.6 s: 32768 at
44.1/48 kHz, 65536 at 88.2/96 kHz, so even the 20 Hz band holds a whole FFT bin) are Hann windowed
and transformed; the power of the bins whose frequencies fall in each band is summed and scaled so
that a band reads the mean square of the signal's content in that band, in dB relative to a
full-scale sine (AES17): a sine of peak amplitude A reads 20 log10(A) in its band, and pink noise
reads the same in every band (each 1/6 octave holds the same power). The bands are centred on
1 kHz x 2^(k/6) from 20 Hz to 20 kHz (61 bands). Three curves: the input's mid (L+R)/2, the
output's mid and the output's side (L-R)/2. Levels are rounded to 0.1 dB and floored at
:data:`FLOOR_DB`.
"""

from __future__ import annotations

import abc
import math
import threading
import time

import numpy as np

FLOOR_DB = -120.0
MIN_INTERVAL_S = 0.1        # a new analysis at most this often (10 Hz), shared by every client
BANDS_PER_OCTAVE = 6
LOWEST_HZ, HIGHEST_HZ = 20.0, 20000.0


def fft_size(rate: int) -> int:
    """The analysis length: the power of two at or above 0.6 s (bins <= 1.5 Hz apart)."""
    return 1 << math.ceil(math.log2(0.6 * rate))


def band_centres() -> np.ndarray:
    """1 kHz x 2^(k/6) for every k whose centre lies within 20 Hz - 20 kHz (to the nearest band)."""
    lo = math.floor(BANDS_PER_OCTAVE * math.log2(LOWEST_HZ / 1000.0) + 0.5)
    hi = math.ceil(BANDS_PER_OCTAVE * math.log2(HIGHEST_HZ / 1000.0) - 0.5)
    return 1000.0 * 2.0 ** (np.arange(lo, hi + 1) / BANDS_PER_OCTAVE)


class BandLayout:
    """Which FFT bins make up each band, for one sample rate."""

    def __init__(self, rate: int):
        self.rate = int(rate)
        self.n = fft_size(rate)
        self.centres = band_centres()
        half = 2.0 ** (0.5 / BANDS_PER_OCTAVE)
        bin_hz = self.rate / self.n
        first = np.ceil(self.centres / half / bin_hz).astype(np.int64)
        last = np.ceil(self.centres * half / bin_hz).astype(np.int64)  # exclusive
        last = np.maximum(last, first + 1)      # never an empty band (only at very low rates)
        self.first, self.last = first, np.minimum(last, self.n // 2 + 1)
        self.window = np.hanning(self.n + 1)[:-1]   # periodic Hann: the FFT's own
        # bins are one-sided: twice the power (but DC), over the window's energy
        self.scale = 2.0 / (self.n * float(np.sum(self.window ** 2)))

    def band_powers(self, signals: np.ndarray) -> np.ndarray:
        """Mean square per band of each row of ``signals`` ((k, n) float64)."""
        spec = np.fft.rfft(signals * self.window, axis=1)
        power = spec.real ** 2 + spec.imag ** 2
        csum = np.concatenate([np.zeros((power.shape[0], 1)), np.cumsum(power, axis=1)], axis=1)
        return (csum[:, self.last] - csum[:, self.first]) * self.scale


def levels_db(mean_square: np.ndarray) -> list[float]:
    """Band mean squares as dB re a full-scale sine (2 x mean square), rounded, floored."""
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(2.0 * np.maximum(mean_square, 0.0))
    return np.round(np.maximum(db, FLOOR_DB), 1).tolist()


class LongTermSpectrum:
    """The average spectrum of a whole recording, mid and side, in the analyser's bands.

    What a mastering engineer compares a master with a reference by ("tonal balance"): not one
    0.7 s look but the power in each band over the whole record. Fed in chunks of any size
    (``add``); each full analysis frame (:func:`fft_size` frames, Hann, no overlap: over minutes of
    music the frames' edges average out) adds its band powers; :meth:`levels` reads them as the
    analyser's levels (dB re a full-scale sine), so a steady signal reads the same here as on the
    Live page. A record shorter than one frame is repeated to fill one (its levels stay its own);
    a partial frame at the end of a longer one is left out.
    """

    def __init__(self, rate: int):
        self.layout = BandLayout(rate)
        self._frame = np.zeros((2, self.layout.n))     # mid, side
        self._fill = 0
        self._sum = np.zeros((2, len(self.layout.centres)))
        self._count = 0

    def add(self, x: np.ndarray) -> None:
        """Feed stereo samples ((frames, 2), finite)."""
        n = self.layout.n
        i = 0
        while i < len(x):
            take = min(n - self._fill, len(x) - i)
            left, right = x[i:i + take, 0], x[i:i + take, 1]
            np.add(left, right, out=self._frame[0, self._fill:self._fill + take])
            np.subtract(left, right, out=self._frame[1, self._fill:self._fill + take])
            self._fill += take
            i += take
            if self._fill == n:
                self._analyse()

    def _analyse(self) -> None:
        self._sum += self.layout.band_powers(self._frame) * 0.25     # (L +- R) / 2: a quarter of the power
        self._count += 1
        self._fill = 0

    def levels(self) -> dict:
        """``{"mid_db": [...], "side_db": [...]}``: the mean power per band, as the analyser reads it."""
        if self._count == 0 and self._fill > 0:
            for row in self._frame:
                row[:] = np.resize(row[:self._fill], row.shape)      # repeated
            self._analyse()
        mean = self._sum / max(self._count, 1)
        return {"mid_db": levels_db(mean[0]), "side_db": levels_db(mean[1])}


class SharedView(abc.ABC):
    """A view of the engine's newest audio that every web client shares: :meth:`latest` takes a new
    look when the last one is older than ``min_interval``, however many ask.

    A look reads the newest :meth:`_frames` frames (a one-frame read first: it (re)attaches to the
    engine's current file, whose rate may differ from the last one's), replaces NaN and infinities
    by silence (a broken input), and hands them to :meth:`_view`.

    ``reader``: a :class:`firmware.scope_shm.ScopeReader` (or anything with its ``latest(frames)``
    and ``rate`` after a successful read).
    """

    def __init__(self, reader, min_interval: float = MIN_INTERVAL_S):
        self.reader = reader
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._cached: dict | None = None
        self._at = -math.inf

    def latest(self) -> dict | None:
        """The newest view; None when the engine is not running (or has not yet written enough)."""
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._at >= self.min_interval:
                self._cached = self._look()   # no engine (None) costs a stat(): asked again at once
                self._at = now
            return self._cached

    def _look(self) -> dict | None:
        if not self.reader.latest(1):
            return None
        rate = self.reader.rate
        got = self.reader.latest(self._frames(rate))
        if got is None or got[0] != rate:          # replaced again in between: the next look
            return None
        x = got[1]
        np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return self._view(rate, x)

    @abc.abstractmethod
    def _frames(self, rate: int) -> int:
        """How many of the newest frames a view needs at ``rate``."""

    @abc.abstractmethod
    def _view(self, rate: int, x: np.ndarray) -> dict:
        """The view of ``x``: float64 ``(frames, 4)`` (in L, in R, out L, out R), all finite."""


class SpectrumAnalyser(SharedView):
    """Band levels of the engine's newest audio; :meth:`latest` is what the web UI serves."""

    _layout: BandLayout | None = None

    def _frames(self, rate: int) -> int:
        if self._layout is None or self._layout.rate != rate:
            self._layout = BandLayout(rate)
        return self._layout.n

    def _view(self, rate: int, x: np.ndarray) -> dict:
        layout = self._layout
        signals = np.empty((3, layout.n))
        np.add(x[:, 0], x[:, 1], out=signals[0])
        np.add(x[:, 2], x[:, 3], out=signals[1])
        np.subtract(x[:, 2], x[:, 3], out=signals[2])
        signals *= 0.5
        p = layout.band_powers(signals)
        return {
            "rate": rate,
            "fft_size": layout.n,
            "bands_hz": np.round(layout.centres, 1).tolist(),
            "in_mid_db": levels_db(p[0]),
            "out_mid_db": levels_db(p[1]),
            "out_side_db": levels_db(p[2]),
        }
