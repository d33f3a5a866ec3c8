"""The web UI's only door to the box: calls on ``Control``, with the box's errors made into 4xx.

Views validate their input first and then call one function here. The stores raise their
own exceptions (an unknown preset, a read-only factory preset, a name already taken, an
invalid import); this module maps them by kind onto an :class:`ApiError` carrying the
store's own message, so the browser shows what the store said rather than a 500.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

from flask import current_app

from webui.errors import ApiError


def control():
    return current_app.extensions["masterbox"].control


def engine_unavailable(e: Exception) -> bool:
    return type(e).__name__ in ("EngineUnavailable", "ConnectionRefusedError") or isinstance(e, ConnectionError)


def call(fn: Callable, *args, **kwargs) -> Any:
    """Run a Control/store call, turning the box's refusals into 4xx answers."""
    try:
        return fn(*args, **kwargs)
    except ApiError:
        raise
    except Exception as e:  # mapped by kind below; anything else is a real bug and stays a 500
        mapped = map_error(e)
        if mapped is None:
            raise
        raise mapped from None


def map_error(e: Exception) -> ApiError | None:
    """The box's refusal ``e`` as a 4xx (or the status it names) carrying the box's own message (None: a real bug)."""
    name = type(e).__name__
    msg = str(e) or name
    if engine_unavailable(e):
        return ApiError(503, f"the audio engine is not running ({msg})")
    if name == "SchemaErrors":
        return ApiError(422, msg, errors=[{"param": x.field, "reason": x.reason} for x in e.errors])
    if name == "UploadError":   # firmware.capture_upload names its answer (409 with the offset, 507, ...)
        return ApiError(e.status, msg, **e.extra)
    reasons = []
    if name == "PresetError":
        reasons = [str(r) for f, r in getattr(e, "errors", None) or [] if isinstance(f, str)]
    low = msg.lower()
    if "not found" in reasons or low.startswith(("no preset named", "no capture named")):
        return ApiError(404, msg)
    if any("exists" in r or "factory preset" in r for r in reasons) or "being recorded" in low \
            or low.startswith("busy:"):
        return ApiError(409, msg)
    if isinstance(e, FileNotFoundError):
        return ApiError(404, msg)
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return ApiError(507, f"not enough disk space: {msg}")
    ours = type(e).__module__.split(".")[0] in ("firmware", "dsp", "hw")
    if isinstance(e, ValueError) or ours:
        errors = getattr(e, "errors", None)
        extra = {}
        if isinstance(errors, list) and errors:
            extra["errors"] = [{"field": str(x[0]), "reason": str(x[1])} if isinstance(x, tuple) and len(x) == 2
                               else str(x) for x in errors]
        return ApiError(422 if extra else 400, msg, **extra)
    return None


def engine_reply(reply: Any, conflict_status: int = 409) -> Any:
    """Control's engine actions answer ``{"ok": False, "error": ...}`` instead of raising."""
    if isinstance(reply, dict) and reply.get("ok") is False:
        err = str(reply.get("error") or "the engine refused")
        if "unavailable" in err.lower() or "not running" in err.lower():
            raise ApiError(503, f"the audio engine is not running ({err})")
        raise ApiError(conflict_status, err)
    return reply


def rounded(values, digits: int = 3) -> list[float]:
    """A numpy curve as a JSON list, each number rounded to ``digits`` (the pages draw pixels, not bits)."""
    return [round(float(v), digits) for v in values]


def jsonable(obj: Any) -> Any:
    """Store records as plain JSON (dataclasses, paths and sets included)."""
    import dataclasses
    import math
    from pathlib import Path

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return obj.name
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return jsonable(obj.item())
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)
