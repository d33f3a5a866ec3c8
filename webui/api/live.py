"""Parameters, A/B, learning and meter snapshots: what the Live and Chain pages drive."""

from __future__ import annotations

from flask import current_app, jsonify

from dsp import schema
from firmware import streaming
from webui.api import bp
from webui.backend import call, control, engine_reply, jsonable
from webui.errors import ApiError, field, json_body, refuse_unknown
from webui.sse import finite


def state_snapshot() -> dict:
    """The state as the pages show it (also the SSE ``state`` event)."""
    c = control()
    snap = c.state.snapshot()
    learner = getattr(c, "learner", None)
    learn = learner.status() if learner is not None else {}
    return {
        "values": jsonable(snap["values"]),
        "active_preset": snap.get("active_preset"),
        "modified": bool(snap.get("modified")),
        "can_undo": bool(snap.get("can_undo")),
        "can_redo": bool(snap.get("can_redo")),
        "slots": jsonable(snap["slots"]),
        "presets_version": c.presets.version,       # moves when a preset is saved, renamed, deleted, imported
        "safe_mode": bool(snap.get("safe_mode")),
        "bypass": bool(getattr(c, "bypassed", False)),
        "monitor": getattr(c, "monitor_mode", "stereo"),
        "preview": getattr(c, "preview", "off"),
        "learning": bool(getattr(learner, "running", False)),
        "learn": jsonable(learn),
    }


@bp.get("/schema")
def get_schema():
    return jsonify({
        "schema_version": schema.SCHEMA_VERSION,
        "groups": list(schema.GROUPS),
        "params": schema.describe(),
        "macros": {m.id: {"label": m.label} for m in schema.MACROS.values()},
    })


@bp.get("/state")
def get_state():
    return jsonify(state_snapshot())


@bp.post("/state/undo")
def undo_state():
    """Take the last change back (a recall, or one run of moves of one control: firmware/undo.py)."""
    if control().state.undo() is None:
        raise ApiError(409, "nothing to undo")
    return jsonify(state_snapshot())


@bp.post("/state/redo")
def redo_state():
    """Apply again what the last undo took back."""
    if control().state.redo() is None:
        raise ApiError(409, "nothing to redo")
    return jsonify(state_snapshot())


@bp.post("/state/slot")
def select_slot():
    """Play settings slot 1 or 2: ``{"slot": 2}``. The settings played now go to the other slot
    (firmware/settings_slots.py); the chain glides to the new ones, click-free."""
    data = json_body()
    slot = field(data, "slot", int)
    refuse_unknown(data, {"slot"})
    if slot not in (1, 2):
        raise ApiError(400, f"field 'slot' must be 1 or 2, got {slot}")
    call(control().state.select_slot, slot, "web")
    return jsonify(state_snapshot())


@bp.post("/state/slot/copy")
def copy_slot():
    """Put a copy of the settings played now over the other settings slot."""
    call(control().state.copy_to_other_slot, "web")
    return jsonify(state_snapshot())


@bp.patch("/state")
def patch_state():
    """Set some parameters: ``{"values": {id: value, ...}}``; all or nothing."""
    data = json_body()
    values = field(data, "values", dict)
    if not values:
        raise ApiError(400, "'values' is empty: name at least one parameter")
    refuse_unknown(data, {"values"})
    try:
        clean = schema.validate(values, partial=True)
    except schema.SchemaErrors as e:
        raise ApiError(422, str(e), errors=[{"param": x.field, "reason": x.reason} for x in e.errors]) from None
    changes = call(control().set, clean, "web")
    return jsonify({"changed": jsonable(changes), **state_snapshot()})


@bp.post("/bypass")
def post_bypass():
    data = json_body()
    on = field(data, "on", bool)
    level_match = field(data, "level_match", bool, required=False)
    reply = call(control().bypass, on, level_match)
    # An engine that is down gets the bypass pushed when it comes back (Control's watcher),
    # so the request succeeded; "engine" says whether it is audible yet.
    return jsonify({**state_snapshot(), "engine": jsonable(reply)})


@bp.post("/monitor")
def post_monitor():
    """The listening mode, ``{"mode": one of dsp.schema.MONITOR_MODES}``: what the speakers hear
    (mono, side, one channel on both); recordings and meters stay the stereo master."""
    mode = _choice(json_body(), "mode", schema.MONITOR_MODES, "listening mode")
    reply = call(control().monitor, mode)
    # As for bypass: an engine that is down gets the mode pushed when it comes back (Control's
    # watcher), so the request succeeded; "engine" says whether it is heard yet.
    return jsonify({**state_snapshot(), "ok": True, "engine": jsonable(reply)})


@bp.post("/preview")
def post_preview():
    """As streamed, ``{"service": one of firmware.streaming.PREVIEWS}``: the speakers hear the master
    at the gain that service's loudness normalisation would apply (``off``: as it is)."""
    service = _choice(json_body(), "service", streaming.PREVIEWS, "streaming preview")
    reply = call(control().set_preview, service)
    return jsonify({**state_snapshot(), "ok": True, "engine": jsonable(reply)})


def _choice(data, key: str, choices, what: str) -> str:
    """The one field ``key`` of ``data``, a string among ``choices``; a 400 naming them otherwise."""
    refuse_unknown(data, {key})
    names = ", ".join(choices)
    value = data.get(key)
    if value is None:
        raise ApiError(400, f"missing field '{key}': one of {names}")
    if not isinstance(value, str):
        kind = "a boolean" if isinstance(value, bool) else type(value).__name__
        raise ApiError(400, f"field '{key}' must be a string, one of {names} (got {kind})")
    if value not in choices:
        raise ApiError(400, f"unknown {what} {value[:40]!r}: one of {names}")
    return value


@bp.post("/learn/start")
def learn_start():
    data = json_body() if current_request_has_body() else {}
    seconds = field(data, "seconds", (int, float), required=False)
    if seconds is not None and not (1 <= seconds <= 3600):
        raise ApiError(400, f"'seconds' must be between 1 and 3600 (got {seconds})")
    result = call(control().learn_start, seconds)
    return jsonify({"learn": jsonable(result)})


@bp.post("/learn/stop")
def learn_stop():
    result = call(control().learn_stop)
    return jsonify({"learn": jsonable(result)})


@bp.get("/meters")
def get_meters():
    """One meter frame (the polling fallback when the live stream is not available)."""
    m = current_app.extensions["masterbox"].read_meters()
    return jsonify({"meters": finite(jsonable(m)) if m is not None else None})


def current_request_has_body() -> bool:
    from flask import request

    return bool(request.content_length) or bool(request.get_data(cache=True))


@bp.post("/meters/reset")
def meters_reset():
    """Restart integrated loudness, LRA and maxima (the engine's meters), and the loudness history."""
    engine_reply(call(control().meters_reset))
    current_app.extensions["masterbox"].history.clear()
    return jsonify({"reset": True})


@bp.get("/meters/spectrum")
def meters_spectrum():
    """The newest spectrum, input and output, in 1/6-octave bands (``firmware.spectrum``); null
    when no engine runs."""
    return jsonify({"spectrum": current_app.extensions["masterbox"].spectrum.latest()})


@bp.get("/meters/vectorscope")
def meters_vectorscope():
    """The output's last 40 ms as vectorscope points, with its correlation (``firmware.vectorscope``);
    null when no engine runs."""
    return jsonify({"vectorscope": current_app.extensions["masterbox"].vectorscope.latest()})


@bp.get("/meters/history")
def meters_history():
    """The short-term loudness of the last minutes, in and out (``webui.history``), oldest first."""
    return jsonify(current_app.extensions["masterbox"].history.snapshot())
