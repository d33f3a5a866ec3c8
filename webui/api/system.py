"""System: audio settings, engine health, board temperature/throttling, disk, version, log lines."""

from __future__ import annotations

import errno
import shutil
import subprocess
from pathlib import Path

from flask import current_app, jsonify

import firmware
from firmware import paths
from firmware.audio_settings import AudioApplyConflict, AudioConfigFileError
from firmware.names import has_control
from webui.api import bp
from webui.backend import call, control, jsonable
from webui.errors import ApiError, field, json_body, refuse_unknown

SIMULATED_DEVICE = "simulated (no sound card)"   # what the form's device field says on the sim backend
RATES = (44100, 48000, 88200, 96000)
PERIODS = (32, 64, 128, 256, 512, 1024, 2048)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_temperature_c() -> float | None:
    raw = _read("/sys/class/thermal/thermal_zone0/temp")
    try:
        return round(int(raw) / 1000.0, 1) if raw else None
    except ValueError:
        return None


def throttling() -> dict | None:
    """Raspberry Pi firmware flags (``vcgencmd get_throttled``) where the board has them."""
    exe = shutil.which("vcgencmd")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=1).stdout
        bits = int(out.strip().split("=")[1], 16)
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return None
    return {"raw": hex(bits), "under_voltage": bool(bits & 0x1), "freq_capped": bool(bits & 0x2),
            "throttled": bool(bits & 0x4), "soft_temp_limit": bool(bits & 0x8),
            "throttled_since_boot": bool(bits & 0x40000)}


def disk() -> dict:
    root = paths.captures_dir()
    probe = root if root.exists() else paths.data_root()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    u = shutil.disk_usage(probe)
    return {"path": str(root), "total_bytes": u.total, "free_bytes": u.free, "used_bytes": u.used}


def engine_status() -> dict:
    """The engine's own status, or ``{"running": false, "error": ...}`` when it is down (with
    ``start_failure``, why its last start failed, when it left that record)."""
    reply = control().engine_status()
    if isinstance(reply, dict) and reply.get("ok") is False:
        down = {"running": False, "error": reply.get("error")}
        if reply.get("start_failure"):
            down["start_failure"] = jsonable(reply["start_failure"])
        return down
    return {"running": True, **jsonable(reply)}


def current_audio(ctx) -> dict:
    """The [audio] values the engine starts with: the config file as it is now (it may have been
    changed by an apply), else what this process was started with."""
    read = getattr(control(), "audio_settings", None)
    if callable(read):
        try:
            return jsonable(read())
        except Exception:  # a config file broken by hand: show what we started with
            pass
    return jsonable(dict(ctx.config.get("audio", {})))


def running_audio(engine: dict) -> dict | None:
    """What the running engine opened, in the form's terms (``device``, ``rate``, ``period``, ``periods``,
    ``backend``), or None when it does not answer. On the ``sim`` backend (``masterbox demo``, ``run --sim``)
    the device is :data:`SIMULATED_DEVICE`: the engine was started with ``--backend sim`` whatever
    ``[audio]`` names, and the sim backend reports the config's device ("default") it never opens."""
    dev = engine.get("device") if engine.get("running") else None
    if not isinstance(dev, dict) or not dev.get("backend"):
        return None
    simulated = dev.get("backend") == "sim"
    return {"backend": dev.get("backend"),
            "device": SIMULATED_DEVICE if simulated else dev.get("playback_device"),
            "rate": dev.get("rate"), "period": dev.get("period"), "periods": dev.get("periods")}


def drawing_rate(ctx, default: int = 48000) -> int:
    """The sample rate a response curve is drawn for: the engine's (what the box does), else the one it
    will start with. Filters near Nyquist depend on it."""
    try:
        return int((ctx.read_meters() or {}).get("rate") or current_audio(ctx).get("rate") or default)
    except (TypeError, ValueError):
        return default


@bp.get("/system")
def get_system():
    ctx = current_app.extensions["masterbox"]
    m = ctx.read_meters() or {}
    audio = current_audio(ctx)
    engine = engine_status()
    running = running_audio(engine)
    return jsonify({
        "version": firmware.__version__,
        "audio": jsonable(audio),
        "audio_running": jsonable(running),
        "audio_simulated": bool(running and running["backend"] == "sim"),
        "engine": engine,
        "load": m.get("load"),
        "xruns": m.get("xruns"),
        "cpu_temperature_c": cpu_temperature_c(),
        "throttling": throttling(),
        "disk": disk(),
        "web": {"threads": ctx.settings["threads"], "sse_max_clients": ctx.hub.max_clients,
                "sse_clients": ctx.hub.clients, "sse_frames_dropped": ctx.hub.dropped},
        "log": ctx.logbuffer.lines(),
        "can_apply_audio": bool(getattr(control(), "can_apply_audio", False)),
        "audio_choices": {"rate": list(RATES), "period": list(PERIODS), "periods": [2, 8]},
    })


def _apply_or_conflict(out: dict) -> dict:
    """409 for "not now"; 503 (507: disk full) with the file's own reason when this process cannot
    read or replace the config file (the box's permissions, not the request: nothing was changed)."""
    try:
        return control().apply_audio_settings(out)
    except AudioApplyConflict as e:
        raise ApiError(409, str(e)) from None
    except AudioConfigFileError as e:
        raise ApiError(507 if e.errno == errno.ENOSPC else 503, str(e), config=str(e.path)) from None


@bp.post("/system/audio")
def set_audio():
    """Change device/rate/period/periods; applied by restarting the engine (through Control).

    Blocks until the engine is back with the new settings (200, with the timings), or until
    they were found unusable and rolled back (422, ``result.rolled_back``). 409: another apply
    is running, a capture is recording, or nothing would restart the engine. 503: the config
    file cannot be written by this process (named, with the reason); file and engine untouched.
    """
    data = json_body()
    refuse_unknown(data, {"device", "rate", "period", "periods"})
    out = {}
    device = field(data, "device", str, required=False)
    if device is not None:
        if not device.strip() or len(device) > 200 or has_control(device):
            raise ApiError(400, "'device' must be a non-empty ALSA device name without control characters")
        out["device"] = device.strip()
    rate = field(data, "rate", int, required=False)
    if rate is not None:
        if rate not in RATES:
            raise ApiError(400, f"'rate' must be one of {', '.join(map(str, RATES))} (got {rate})")
        out["rate"] = rate
    period = field(data, "period", int, required=False)
    if period is not None:
        if period not in PERIODS:
            raise ApiError(400, f"'period' must be one of {', '.join(map(str, PERIODS))} (got {period})")
        out["period"] = period
    periods = field(data, "periods", int, required=False)
    if periods is not None:
        if not 2 <= periods <= 8:
            raise ApiError(400, f"'periods' must be between 2 and 8 (got {periods})")
        out["periods"] = periods
    if not out:
        raise ApiError(400, "nothing to change: give at least one of device, rate, period, periods")
    if not getattr(control(), "can_apply_audio", False):
        raise ApiError(409, "nothing restarts the engine in this set-up (neither systemd nor `masterbox run`); "
                            "edit [audio] in the config file and restart the engine yourself")
    result = call(_apply_or_conflict, out)
    result = jsonable(result)
    if not result.get("ok"):
        # The engine could not run the new settings: the old ones are back (the answer says
        # whether the engine is, too). 422: the request was well formed, the box cannot do it.
        raise ApiError(422, result.get("error") or "the new audio settings could not be applied", result=result)
    current_app.extensions["masterbox"].config.setdefault("audio", {}).update(result.get("audio") or {})
    return jsonify({"applied": out, "result": result})
