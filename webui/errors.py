"""One shape for every refusal: ``{"error": "<what is wrong>", ...}`` with a 4xx status.

The API promises that a malformed request never produces a 500 nor a partial change. Views
therefore check everything they were given *before* they touch the box, raising
:class:`ApiError` with a sentence a person can act on; the handlers registered here turn
that (and werkzeug's own HTTP errors, such as 413 for an oversized body) into JSON for the
API and into a plain page for the browser.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Request, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from firmware.names import NAME_MAX_CHARS, has_control
from firmware.presets import path_like

log = logging.getLogger("masterbox.web")

MAX_NAME = NAME_MAX_CHARS     # the names the box makes are cut to it (firmware.names)


class ApiError(Exception):
    """Refuse a request: ``status`` (4xx), ``message``, optional extra JSON fields."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def wants_json(req: Request) -> bool:
    return req.path.startswith("/api/") or req.accept_mimetypes.best == "application/json"


def refuse_unknown(data: dict, known: set[str]) -> None:
    """400 naming every field of ``data`` that is not one of ``known`` (and the known ones)."""
    extra = set(data) - known
    if extra:
        raise ApiError(400, f"unknown field(s): {', '.join(sorted(extra))} (known: {', '.join(sorted(known))})")


def json_body(limit: int = 64 * 1024) -> dict:
    """The request's JSON object, or an ApiError naming what is wrong with it."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"request body too large: {request.content_length} bytes, the limit is {limit}")
    if request.mimetype != "application/json":
        got = request.mimetype or "none"
        raise ApiError(415, f"send the body as JSON with Content-Type: application/json (got {got})")
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise ApiError(413, f"request body too large: {len(raw)} bytes, the limit is {limit}")
    if not raw.strip():
        raise ApiError(400, "request body is empty; expected a JSON object")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not UTF-8 text") from None
    except ValueError as e:
        raise ApiError(400, f"request body is not valid JSON: {e}") from None
    except RecursionError:      # "[" * 30000: the parser's recursion runs out long before the size limit
        raise ApiError(400, "request body is not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(data).__name__}")
    return data


def field(data: dict, key: str, kind: type | tuple, *, required: bool = True, default: Any = None) -> Any:
    """``data[key]`` checked against ``kind`` (bool is never accepted as a number)."""
    if key not in data or data[key] is None:
        if required:
            raise ApiError(400, f"missing field '{key}'")
        return default
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ApiError(400, f"field '{key}' must be {_kind_name(kinds)}, got a boolean")
    if not isinstance(value, kinds):
        raise ApiError(400, f"field '{key}' must be {_kind_name(kinds)}, got {type(value).__name__}")
    return value


def _kind_name(kinds: tuple) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "an object",
             list: "a list"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def check_name(name: object, what: str = "name") -> str:
    """A preset or capture name as a person types it, refused if it could address a path.

    Stores map names to safe file names themselves (a preset may be called "Rock/Pop"); the
    web layer additionally refuses anything that looks like path traversal (``..`` or ``.``
    segments, a leading separator or dot) and control characters, so a hostile name is a
    clear 400 rather than something that depends on each store's escaping.
    """
    if not isinstance(name, str):
        raise ApiError(400, f"{what} must be a string")
    stripped = name.strip()
    if not stripped:
        raise ApiError(400, f"{what} must not be empty")
    if len(stripped) > MAX_NAME:
        raise ApiError(400, f"{what} is too long ({len(stripped)} characters, at most {MAX_NAME})")
    why = path_like(stripped)   # the preset store's imports refuse the same names (firmware.presets)
    if why is not None:
        raise ApiError(400, f"{what} {why}")
    if has_control(stripped):
        raise ApiError(400, f"{what} must not contain control characters")
    return stripped


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(e: ApiError):
        body = {"error": e.message, **e.extra}
        resp = jsonify(body) if wants_json(request) else _page(e.status, e.message)
        resp.status_code = e.status
        if "retry_after" in e.extra:
            resp.headers["Retry-After"] = str(e.extra["retry_after"])
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        message = _HTTP_MESSAGES.get(e.code, e.description or e.name)
        if e.code == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"request body too large (the limit is {limit} bytes)"
        elif e.code == 404:
            message = f"not found: {request.path}"
        elif e.code == 405:
            message = f"{request.method} is not allowed on {request.path}"
        if wants_json(request):
            resp = jsonify({"error": message})
            resp.status_code = e.code or 500
        else:
            resp = _page(e.code or 500, message)
        if e.code == 405 and getattr(e, "valid_methods", None):
            resp.headers["Allow"] = ", ".join(e.valid_methods)
        if e.code == 416 and getattr(e, "length", None) is not None:   # RFC 9110 §15.5.17: the size it has
            resp.headers["Content-Range"] = f"{e.units} */{e.length}"
        return resp

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        log.exception("unhandled error in %s %s", request.method, request.path)
        message = "internal error; the box's log has the details"
        if wants_json(request):
            resp = jsonify({"error": message})
        else:
            resp = _page(500, message)
        resp.status_code = 500
        return resp


_HTTP_MESSAGES = {
    400: "bad request",
    404: "not found",
}


def _page(status: int, message: str):
    from flask import make_response

    return make_response(render_template("error.html", status=status, message=message), status)
