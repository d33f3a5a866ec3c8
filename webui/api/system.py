"""System: audio settings, engine health, board temperature/throttling, disk, version, log lines."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from flask import current_app, jsonify

import firmware
from firmware import paths
from webui.api import bp
from webui.backend import call, control, jsonable
from webui.errors import ApiError, field, json_body

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
    """The engine's own status, or ``{"running": false, "error": ...}`` when it is down."""
    reply = control().engine_status()
    if isinstance(reply, dict) and reply.get("ok") is False:
        return {"running": False, "error": reply.get("error")}
    return {"running": True, **jsonable(reply)}


@bp.get("/system")
def get_system():
    ctx = current_app.extensions["masterbox"]
    m = ctx.read_meters() or {}
    audio = dict(ctx.config.get("audio", {}))
    return jsonify({
        "version": firmware.__version__,
        "audio": jsonable(audio),
        "engine": engine_status(),
        "load": m.get("load"),
        "xruns": m.get("xruns"),
        "cpu_temperature_c": cpu_temperature_c(),
        "throttling": throttling(),
        "disk": disk(),
        "web": {"threads": ctx.settings["threads"], "sse_max_clients": ctx.hub.max_clients,
                "sse_clients": ctx.hub.clients, "sse_frames_dropped": ctx.hub.dropped},
        "log": ctx.logbuffer.lines(),
        "can_apply_audio": callable(getattr(control(), "apply_audio_settings", None)),
    })


@bp.post("/system/audio")
def set_audio():
    """Change device/rate/period/periods; applied by restarting the engine (through Control)."""
    data = json_body()
    known = {"device", "rate", "period", "periods"}
    extra = set(data) - known
    if extra:
        raise ApiError(400, f"unknown field(s): {', '.join(sorted(extra))} (known: {', '.join(sorted(known))})")
    out = {}
    device = field(data, "device", str, required=False)
    if device is not None:
        if not device.strip() or len(device) > 200 or any(ord(c) < 32 for c in device):
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
    apply = getattr(control(), "apply_audio_settings", None)
    if not callable(apply):
        raise ApiError(409, "this control process cannot restart the engine; edit [audio] in the config file")
    result = call(apply, out)
    current_app.extensions["masterbox"].config.setdefault("audio", {}).update(out)
    return jsonify({"applied": out, "result": jsonable(result)})
