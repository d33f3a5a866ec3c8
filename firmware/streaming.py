"""What the streaming services' loudness normalisation does to a master: the rules, in one place.

Used twice: each capture's sidecar says what every service would do to it
(:func:`streaming_preview`), and the engine's **As streamed** listening preview plays the master
at the gain one service would apply (:func:`normalisation_gain`), so an engineer hears that a
master pushed to -8 LUFS comes back 6 dB quieter on Spotify, with the dynamics it gave up.

Rules encoded here (as the services publish them, default settings):

* **Spotify**: -14 LUFS integrated (ITU-R BS.1770). Loud tracks are turned down. Quiet tracks
  are turned up only as far as leaves 1 dB of true-peak headroom (peak <= -1 dBTP); Spotify
  does not limit in its default "normal" mode.
* **YouTube**: -14 LUFS; turns loud content down, never turns quiet content up.
* **Apple Music** (Sound Check): -16 LUFS; turns loud tracks down and quiet tracks up, the
  upward gain limited so peaks stay at or below -1 dBTP.
* **Tidal**: -14 LUFS; turns loud tracks down only.
* **Amazon Music**: -14 LUFS; turns loud tracks down only.

These are each service's normalisation target and direction as documented by the service
(or, where it publishes none, as commonly measured); services change them, so the table is
:data:`SERVICES`, one row each. No numba, no numpy: the control process and the web UI import it.
"""

from __future__ import annotations

from typing import Any

# (key, label, target LUFS, turns quiet tracks up?, true-peak limit for upward gain (dBTP))
SERVICES = (
    ("spotify", "Spotify", -14.0, True, -1.0),
    ("youtube", "YouTube", -14.0, False, None),
    ("apple_music", "Apple Music", -16.0, True, -1.0),
    ("tidal", "Tidal", -14.0, False, None),
    ("amazon_music", "Amazon Music", -14.0, False, None),
)
BY_KEY = {row[0]: row for row in SERVICES}
PREVIEWS = ("off",) + tuple(BY_KEY)    # the engine's listening preview: off, or as one service plays it


def preview_index(name: str) -> int:
    """The index of ``name`` in :data:`PREVIEWS`; ValueError naming the choices for anything else."""
    if name not in PREVIEWS:
        raise ValueError(f"unknown streaming preview {name!r}; one of {', '.join(PREVIEWS)}")
    return PREVIEWS.index(name)


def normalisation_gain(key: str, integrated_lufs: float | None,
                       true_peak_dbtp: float | None) -> tuple[float | None, str]:
    """(gain in dB, what happens in words) the service ``key`` applies to a track of that loudness
    and true peak; (None, why) when there is no loudness to normalise (silence)."""
    _, _, target, ups, tp_limit = BY_KEY[key]
    if integrated_lufs is None:
        return None, "silent: no loudness to normalise"
    gain = target - integrated_lufs
    if gain < 0:
        return gain, f"turned down {-gain:.1f} dB"
    if gain > 0 and not ups:
        return 0.0, f"quieter than {target:g} LUFS by {gain:.1f} LU; not turned up"
    if gain > 0 and tp_limit is not None and true_peak_dbtp is not None and true_peak_dbtp + gain > tp_limit:
        limited = max(tp_limit - true_peak_dbtp, 0.0)
        return limited, f"turned up {limited:.1f} dB only (of {gain:.1f}): true-peak headroom to {tp_limit:g} dBTP"
    return gain, "no change" if gain == 0 else f"turned up {gain:.1f} dB"


def streaming_preview(integrated_lufs: float | None, true_peak_dbtp: float | None) -> dict[str, Any]:
    """The gain each service in :data:`SERVICES` would apply, and where the track would land."""
    out: dict[str, Any] = {}
    for key, label, target, _, _ in SERVICES:
        gain, note = normalisation_gain(key, integrated_lufs, true_peak_dbtp)
        if gain is None:
            out[key] = {"service": label, "target_lufs": target, "gain_db": None, "result_lufs": None,
                        "result_true_peak_dbtp": None, "note": note}
            continue
        out[key] = {"service": label, "target_lufs": target, "gain_db": round(gain, 2),
                    "result_lufs": round(integrated_lufs + gain, 2),
                    "result_true_peak_dbtp": None if true_peak_dbtp is None else round(true_peak_dbtp + gain, 2),
                    "note": note}
    return out
