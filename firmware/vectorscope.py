"""The vectorscope (goniometer) the Live page draws: the output's last 40 ms as a cloud of points.

The stereo picture at a glance, as every mastering suite shows it beside the correlation meter:
each sample pair (L, R) becomes a point with the mid, (L+R)/sqrt(2), upwards and the side,
(R-L)/sqrt(2), across. A mono signal is a vertical line, the left channel alone a line leaning
left, the right alone one leaning right, out-of-phase material a horizontal smear, a wide mix a
broad cloud. The points are scaled so the loudest one sits at 0.9 of the display (``gain_db``
says by how much, up to 60 dB), since what matters is the shape, not the level; ``correlation``
and ``side_to_mid_db`` of the same 40 ms are given as numbers.

Like the spectrum (:mod:`firmware.spectrum`) it is computed in the control process from the
engine's audio ring (:mod:`firmware.scope_shm`), at most :data:`MIN_INTERVAL_S` apart however
many pages ask, and only while one asks.
"""

from __future__ import annotations

import math

import numpy as np

from firmware.spectrum import FLOOR_DB, SharedView

WINDOW_S = 0.040
POINTS = 512
MIN_INTERVAL_S = 0.1
MAX_GAIN_DB = 60.0


class Vectorscope(SharedView):
    def __init__(self, reader, min_interval: float = MIN_INTERVAL_S):
        super().__init__(reader, min_interval)

    def _analyse(self) -> dict | None:
        if not self.reader.latest(1):            # (re)attach: the rate may have changed
            return None
        got = self.reader.latest(int(round(WINDOW_S * self.reader.rate)))
        if got is None:
            return None
        rate, x = got
        left, right = x[:, 2], x[:, 3]
        np.nan_to_num(left, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        np.nan_to_num(right, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
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
