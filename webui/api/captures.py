"""Captures: start/stop, list with analysis, loudness curve, download (HTTP Range, streamed), delete,
several as one streamed ZIP, and mastering them offline (one capture, several one by one, or
several as an album; firmware/capture_master.py).

Downloads are confined to the captures folder: the capture index names the file, and it
must resolve to a regular file directly inside that folder (a symlink leading out is
refused). ``send_file`` streams it through the server's file wrapper and answers ``Range``
requests with 206, so a multi-gigabyte RF64 never sits in memory. A ``Range`` header the download
cannot use (malformed, another unit than bytes, several ranges) is ignored and the whole file sent
with 200, as RFC 9110 §14.2 asks; only a well-formed single range past the end is answered 416.
"""

from __future__ import annotations

from pathlib import Path

from flask import Response, current_app, jsonify, request, send_file

from webui.api import bp
from webui.api.live import current_request_has_body
from webui.backend import call, control, engine_reply, jsonable
from webui.errors import ApiError, check_name, field, json_body, refuse_unknown

TAPS = ("output", "input", "both")
MAX_ALBUM_TRACKS = 99          # a CD's limit (also for "each")
MAX_ZIP_CAPTURES = 200
OUTPUT_RATES = (44100, 48000, 88200, 96000)   # delivery rates a job may convert to (master/album --rate)
FORMATS = ("PCM_24", "FLOAT")


def _index():
    return control().captures


def confined(path: Path) -> Path:
    """``path`` if it is a regular file directly inside the captures folder, else 4xx."""
    root = Path(_index().directory).resolve()
    real = Path(path).resolve()
    if real.parent != root:
        raise ApiError(403, f"{Path(path).name!r} is outside the captures folder")
    if not real.is_file():
        raise ApiError(404, f"capture file {Path(path).name!r} is missing")
    return real


@bp.get("/captures")
def list_captures():
    items = call(_index().list)
    return jsonify({"captures": jsonable(items), "status": capture_status(items)})


@bp.get("/captures/<path:name>")
def show_capture(name):
    name = check_name(name, "capture name")
    return jsonify(jsonable(call(_index().get, name)))


@bp.get("/captures.zip")
def download_several():
    """The captures named by ``?name=A&name=B...`` and their analysis sidecars as one ZIP, streamed."""
    import datetime as _dt

    from firmware.captures import sidecar_path
    from webui.zipstream import zip_stream

    names = list(dict.fromkeys(check_name(n, "capture name") for n in request.args.getlist("name")))
    if not names or len(names) > MAX_ZIP_CAPTURES:
        raise ApiError(400, f"name one to {MAX_ZIP_CAPTURES} captures: ?name=A&name=B")
    members = []
    for name in names:
        rec = call(_index().get, name)
        if rec.get("recording"):
            raise ApiError(409, f"{name!r} is still being recorded")
        wav = confined(call(_index().path, name))
        members.append((wav.name, wav))
        side = sidecar_path(wav)
        if side.is_file() and side.resolve().parent == wav.parent:
            members.append((side.name, side))
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
    return Response(zip_stream(members), mimetype="application/zip", direct_passthrough=True,
                    headers={"Content-Disposition": f'attachment; filename="masterbox-captures-{stamp}.zip"',
                             "Cache-Control": "no-store"})


def _drop_unusable_range() -> None:
    """Remove this request's ``Range`` header unless it is one well-formed ``bytes`` range.

    RFC 9110 §14.2: a server MUST ignore a Range header field it does not understand or whose
    syntax is invalid, and MAY ignore one for any reason (we send one part, never multipart). Werkzeug
    answers all of these 416, which is meant for a valid range that the file cannot satisfy (that
    one stays: werkzeug still sees it and answers 416 with ``Content-Range: bytes */SIZE``).
    """
    from werkzeug.http import parse_range_header

    header = request.environ.get("HTTP_RANGE")
    if header is None:
        return
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        del request.environ["HTTP_RANGE"]


@bp.get("/captures/<path:name>/download")
def download(name):
    name = check_name(name, "capture name")
    path = confined(call(_index().path, name))
    _drop_unusable_range()
    return send_file(path, mimetype="audio/wav", as_attachment=True, download_name=path.name,
                     conditional=True, etag=True, max_age=0)


@bp.get("/captures/<path:name>/loudness")
def loudness(name):
    """Short-term loudness over time (computed once in a worker process, then cached)."""
    from webui import curves

    name = check_name(name, "capture name")
    path = confined(call(_index().path, name))
    rec = call(_index().get, name)
    if rec.get("recording"):
        raise ApiError(409, f"{name!r} is still being recorded")
    cache = current_app.extensions["masterbox"].curves
    try:
        return jsonify(cache.get(path))
    except curves.CurveError as e:
        raise ApiError(422, str(e)) from None


def _mastering_options(data: dict) -> dict:
    """What a mastering request asks for, checked: ``values`` (every parameter: the box's current
    settings, or those of ``preset``), ``preset`` and ``modified`` (where the values came from, for the
    masters' metadata: the state's active preset and whether they were changed since),
    ``target_lufs`` (default: the settings' target; None with ``level: false``), ``bit_depth`` and
    ``rate`` (None: the captures' own)."""
    from dsp import schema
    from firmware.capture_master import BIT_DEPTHS

    preset, modified = field(data, "preset", str, required=False), False
    if preset is None:
        snap = control().state.snapshot()
        values, preset, modified = snap["values"], snap.get("active_preset"), bool(snap.get("modified"))
    else:
        p = call(control().presets.get, check_name(preset, "preset name"))
        values, preset = call(schema.validate, p.params), p.name
    target = field(data, "target_lufs", (int, float), required=False, default=values["target.lufs"])
    if not field(data, "level", bool, required=False, default=True):
        target = None
    bit_depth = field(data, "bit_depth", str, required=False, default="24")
    if bit_depth not in BIT_DEPTHS:
        raise ApiError(400, f"bit_depth must be one of {', '.join(BIT_DEPTHS)}")
    if target is not None:
        target = call(schema.BY_ID["target.lufs"].check, target)
    rate = field(data, "rate", int, required=False)
    if rate is not None and rate not in OUTPUT_RATES:
        raise ApiError(400, f"rate must be one of {', '.join(map(str, OUTPUT_RATES))} (or absent: the captures' own)")
    return {"values": values, "preset": preset, "modified": modified, "target_lufs": target, "bit_depth": bit_depth,
            "rate": rate}


JOB_FIELDS = {"preset", "target_lufs", "level", "bit_depth", "rate"}


@bp.post("/captures/<path:name>/master")
def master_capture(name):
    """Master this capture offline with the box's current settings or a preset's (firmware/capture_master.py)."""
    name = check_name(name, "capture name")
    data = json_body() if current_request_has_body() else {}
    refuse_unknown(data, JOB_FIELDS)
    job = call(control().mastering.start, name, **_mastering_options(data))
    return jsonify({"job": jsonable(job)}), 202


def _start_several(start):
    """A job over the request's ``captures`` (checked names, at most MAX_ALBUM_TRACKS) started by ``start``."""
    data = json_body()
    refuse_unknown(data, JOB_FIELDS | {"captures"})
    names = field(data, "captures", list)
    if not all(isinstance(n, str) for n in names) or len(names) > MAX_ALBUM_TRACKS:
        raise ApiError(400, f"'captures' must be a list of at most {MAX_ALBUM_TRACKS} capture names")
    names = [check_name(n, "capture name") for n in names]
    job = call(start, names, **_mastering_options(data))
    return jsonify({"job": jsonable(job)}), 202


@bp.post("/mastering/album")
def master_album():
    """Master several captures as one album (``masterbox album``: one shared drive) with the box's settings."""
    return _start_several(control().mastering.start_album)


@bp.post("/mastering/each")
def master_each():
    """Master several captures one by one, each on its own to the target, as one job."""
    return _start_several(control().mastering.start_each)


@bp.get("/mastering")
def mastering_status():
    """The running mastering job, or the last one (null before the first)."""
    return jsonify({"job": jsonable(control().mastering.status())})


@bp.delete("/mastering")
def mastering_cancel():
    """Stop the running mastering job; nothing is written."""
    return jsonify({"job": jsonable(call(control().mastering.cancel))})


@bp.delete("/captures/<path:name>")
def delete_capture(name):
    name = check_name(name, "capture name")
    call(_index().delete, name)
    return jsonify({"deleted": name})


@bp.post("/capture/start")
def start():
    data = json_body()
    tap = field(data, "tap", str, required=False, default="output")
    if tap not in TAPS:
        raise ApiError(400, f"'tap' must be one of {', '.join(TAPS)} (got {tap!r})")
    fmt = field(data, "format", str, required=False, default="PCM_24")
    if fmt not in FORMATS:
        raise ApiError(400, f"'format' must be one of {', '.join(FORMATS)} (got {fmt!r})")
    max_seconds = field(data, "max_seconds", (int, float), required=False)
    if max_seconds is not None and not (1 <= max_seconds <= 24 * 3600):
        raise ApiError(400, f"'max_seconds' must be between 1 and 86400 (got {max_seconds})")
    refuse_unknown(data, {"tap", "format", "max_seconds"})
    reply = engine_reply(call(control().capture_start, tap=tap, fmt=fmt, max_seconds=max_seconds))
    return jsonify({"capturing": True, "engine": jsonable(reply)}), 201


@bp.post("/capture/stop")
def stop():
    reply = engine_reply(call(control().capture_stop))
    return jsonify({"capturing": False, "engine": jsonable(reply)})


def capture_status(items=None) -> dict:
    m = current_app.extensions["masterbox"].read_meters()
    recording = [r["name"] for r in items or [] if r.get("recording")]
    return {"capturing": bool((m and m.get("capturing")) or recording), "recording": recording}
