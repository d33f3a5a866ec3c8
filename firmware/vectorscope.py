"""The vectorscope (goniometer) the Live page draws: the output's last 40 ms as a cloud of points.

The stereo picture at a glance, as every mastering suite shows it beside the correlation meter:
each sample pair (L, R) becomes a point with the mid, (L+R)/sqrt(2), upwards and the side,
(R-L)/sqrt(2), across. A mono signal is a vertical line, the left channel alone a line leaning
left, the right alone one leaning right, out-of-phase material a horizontal smear, a wide mix a
broad cloud. The points are scaled so the loudest one sits at 0.9 of the display (``gain_db``
says by how much, up to 60 dB), since what matters is the shape, not the level; ``correlation``
and ``side_to_mid_db`` of the same 40 ms are given as numbers.

Like the spectrum (:mod:`firmware.spectrum`) it is computed in the control process from the
engine's audio ring (:mod:`firmware.scope_shm`), at most :data:`firmware.spectrum.MIN_INTERVAL_S` apart however
many pages ask, and only while one asks.
"""

from __future__ import annotations

import math

import numpy as np

from firmware.spectrum import FLOOR_DB, SharedView

WINDOW_S = 0.040
POINTS = 512
MAX_GAIN_DB = 60.0


class Vectorscope(SharedView):
    def _frames(self, rate: int) -> int:
        return int(round(WINDOW_S * rate))

    def _view(self, rate: int, x: np.ndarray) -> dict:
        left, right = x[:, 2], x[:, 3]
        mid = (left + right) / math.sqrt(2.0)
        side = (right - left) / math.sqrt(2.0)
        step = max(1, len(mid) // POINTS)
        px, py = side[::step][:POINTS], mid[::step][:POINTS]
        peak = float(max(np.max(np.abs(mid)), np.max(np.abs(side))))
        gain = min(0.9 / peak, 10.0 ** (MAX_GAIN_DB / 20.0)) if peak > 0.0 else 1.0
        ll, rr, lr = float(left @ left), float(right @ right), float(left @ right)
        mm, ss = float(mid @ mid), float(side @ side)
        return {
            "rate": rate,
            "points": np.round(np.stack([px, py], axis=1) * gain, 3).tolist(),
            "gain_db": round(20.0 * math.log10(gain), 1),
            "correlation": round(lr / math.sqrt(ll * rr), 3) if ll > 0.0 and rr > 0.0 else None,
            "side_to_mid_db": (round(max(10.0 * math.log10(ss / mm), FLOOR_DB), 1) if mm > 0.0 and ss > 0.0
                               else None if mm == 0.0 else FLOOR_DB),
        }
