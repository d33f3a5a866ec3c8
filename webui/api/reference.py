"""The reference track (the Live page's REF button): a capture played in place of the master,
level-matched to it, so the master can be compared with a record one trusts at the same loudness.

The box's side is :class:`firmware.reference_track.ReferenceTrack` (``control().reference``):
``load`` prepares a capture at the engine's rate in a worker (a few seconds; the request waits for
it) and hands it to the engine switched off; ``switch`` turns it on (the engine chooses the gain,
held under the limiter's ceiling, unless ``gain_db`` names one) or off. Every answer carries the
reference's status, so a page shows what the box did rather than what it asked for.
"""

from __future__ import annotations

from flask import jsonify

from firmware.reference import MAX_GAIN_DB
from webui.api import bp
from webui.backend import call, control, engine_reply, jsonable
from webui.errors import ApiError, check_name, field, json_body, refuse_unknown


def _reference():
    return control().reference


def _answer(reply: dict):
    """``{"reference": status}`` from ReferenceTrack's reply; its ``ok: False`` as 409/503."""
    return jsonify({"reference": jsonable(engine_reply(reply)["reference"])})


@bp.get("/reference")
def get_reference():
    """Which capture is the reference, its facts, and the engine's side (on, heard, gain, match)."""
    return jsonify({"reference": jsonable(call(_reference().status))})


@bp.put("/reference")
def load_reference():
    """Make a capture the reference: ``{"capture": name}``; answers once it is prepared and loaded (off)."""
    data = json_body()
    refuse_unknown(data, {"capture"})
    name = check_name(field(data, "capture", str), "capture name")
    # no such capture (404), still being recorded or busy (409), not usable audio (400): the box's reason
    return _answer(call(_reference().load, name))


@bp.post("/reference/switch")
def switch_reference():
    """REF on or off: ``{"on": bool, "gain_db": number | null}``; no gain: level-matched to the master."""
    data = json_body()
    refuse_unknown(data, {"on", "gain_db"})
    on = field(data, "on", bool)
    gain_db = field(data, "gain_db", (int, float), required=False)
    # compared, not converted: NaN and infinities fail the comparison, and an integer of 400 digits
    # (JSON allows it) is no float at all
    if gain_db is not None and not -MAX_GAIN_DB <= gain_db <= MAX_GAIN_DB:
        raise ApiError(400, f"'gain_db' must be a number of dB in -{MAX_GAIN_DB:g}..{MAX_GAIN_DB:g}, "
                            "or null for a level match to the master")
    if _reference().info is None:
        raise ApiError(409, "no reference is loaded: choose one on the Captures page (Use as reference)")
    return _answer(call(_reference().switch, on, None if gain_db is None else float(gain_db)))


@bp.delete("/reference")
def clear_reference():
    """No reference any more (it fades out first if it was heard)."""
    return _answer(call(_reference().clear))
