"""True-peak interpolator design (ITU-R BS.1770 Annex 2), numpy only.

True peak is the peak of the signal reconstructed between its samples. The meter estimates it
by oversampling: 4x below 88.2 kHz, 2x at 88.2/96 kHz, and not at all from 176.4 kHz up (the
samples are already close enough together: true peak then equals sample peak, which is within
the standard's intent of "at least 192 kHz" and is documented in docs/meter.md).

The interpolator is a Kaiser-windowed sinc (a Nyquist filter): its phase 0 passes the original
samples unchanged, so the meter only computes the ``factor - 1`` in-between phases and takes the
original samples as the remaining one. That also removes the phase-0 under-read of the
48-tap example filter in the standard. With 32 taps per phase and beta 8 every phase is flat
within 0.001 dB up to 0.4 fs (19.2 kHz at 48 kHz) and at most 0.6 dB down at 0.45 fs. The
shorter 12-16-tap designs read up to 0.3 dB low on hard-clipped masters (energy right up to
Nyquist); this one stays within 0.05 dB of ffmpeg's 192 kHz resampling there.
"""

from __future__ import annotations

import numpy as np

TAPS_PER_PHASE = 32
KAISER_BETA = 8.0


def oversampling_factor(rate: float) -> int:
    """How many times the meter oversamples at ``rate`` Hz for true peak (1 = sample peak only)."""
    if rate < 88200:
        return 4
    if rate < 176400:
        return 2
    return 1


def interpolator_phases(factor: int, taps: int = TAPS_PER_PHASE, beta: float = KAISER_BETA) -> np.ndarray:
    """The in-between phases of the interpolator, shape ``(factor - 1, taps)``.

    Row ``p - 1`` gives output phase ``p`` (the point ``p / factor`` of a sample period
    after a reference sample) as a dot product with the last ``taps`` input samples, oldest
    first. Empty for ``factor == 1``.
    """
    if factor < 2:
        return np.zeros((0, taps))
    n = np.arange(factor * taps + 1)
    h = np.sinc((n - factor * taps / 2) / factor) * np.kaiser(factor * taps + 1, beta)
    phases = np.empty((factor - 1, taps))
    for p in range(1, factor):
        # Output phase p uses h[p + factor*m] on x[n - m], m = 0..taps-1; oldest first.
        phases[p - 1] = h[p + factor * np.arange(taps)][::-1]
    # Unity gain at DC for every phase (the window leaves each a few thousandths of a dB off).
    phases /= phases.sum(axis=1, keepdims=True)
    return phases
