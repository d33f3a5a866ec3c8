"""Presets: list, show, recall, save, save as, rename, duplicate, delete, import and export.

The preset store (``firmware.presets``) validates documents and refuses factory names,
clashes and unknown presets with its own messages; these views check the request's shape
and names first and hand everything else to ``Control`` / the store, so the web and the
command line refuse the same things for the same reasons.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, jsonify, request

from webui.api import bp
from webui.backend import call, control, jsonable
from webui.errors import ApiError, check_name, field, json_body

MAX_PRESET_BYTES = 256 * 1024  # one preset file; a full set of parameters is a few kB
MAX_ZIP_BYTES = 8 * 1024 * 1024


def _store():
    return control().presets


def _get(name: str):
    return call(_store().get, name)


@bp.get("/presets")
def list_presets():
    version = _store().version      # read before the listing: a change meanwhile moves the state's past it
    return jsonify({"presets": jsonable(call(_store().list)), "active": control().state.active_preset,
                    "version": version})


@bp.get("/presets/<path:name>")
def show_preset(name):
    p = _get(check_name(name, "preset name"))
    return jsonify({**jsonable(p.to_doc()), "factory": p.factory})


@bp.post("/presets/<path:name>/recall")
def recall_preset(name):
    name = check_name(name, "preset name")
    _get(name)
    call(control().recall, name, source="web")
    from webui.api.live import state_snapshot

    return jsonify(state_snapshot())


def _description(data: dict) -> str | None:
    d = field(data, "description", str, required=False)
    if d is not None and len(d) > 500:
        raise ApiError(400, "description is too long (at most 500 characters)")
    return d


@bp.post("/presets")
def save_as():
    """Save the current parameters as a new preset: ``{"name", "description"?}``; it becomes active."""
    data = json_body()
    name = check_name(field(data, "name", str), "preset name")
    p = call(control().save_preset_as, name, _description(data))
    return jsonify({"saved": p.name, "preset": jsonable(p.summary())}), 201


@bp.put("/presets/<path:name>")
def save_into(name):
    """Save the current parameters into an existing user preset (the panel's hold PRESET+)."""
    name = check_name(name, "preset name")
    data = json_body() if request.get_data(cache=True) else {}
    _get(name)
    p = call(control().save_preset, name, _description(data))
    return jsonify({"saved": p.name, "preset": jsonable(p.summary())})


@bp.post("/presets/<path:name>/rename")
def rename(name):
    name = check_name(name, "preset name")
    new = check_name(field(json_body(), "new_name", str), "new_name")
    p = call(control().rename_preset, name, new)
    return jsonify({"renamed": name, "to": p.name})


@bp.post("/presets/<path:name>/duplicate")
def duplicate(name):
    name = check_name(name, "preset name")
    data = json_body()
    new = field(data, "new_name", str, required=False)
    new = check_name(new, "new_name") if new is not None else None
    p = call(_store().duplicate, name, new)
    return jsonify({"duplicated": name, "to": p.name}), 201


@bp.delete("/presets/<path:name>")
def delete(name):
    name = check_name(name, "preset name")
    _get(name)
    call(control().delete_preset, name)
    return jsonify({"deleted": name})


@bp.get("/presets/<path:name>/export")
def export_one(name):
    name = check_name(name, "preset name")
    text = call(_store().export_json, name)
    return _download(text.encode("utf-8"), "application/json", f"{name}.json")


@bp.get("/presets-export")
def export_all():
    return _download(call(_store().export_zip), "application/zip", "masterbox-presets.zip")


@bp.post("/presets-import")
def import_presets():
    """One preset (a JSON body) or many (a zip): all checked before any is stored.

    ``?overwrite=1`` replaces user presets of the same name; factory names are always refused.
    """
    overwrite = request.args.get("overwrite", "0")
    if overwrite not in ("0", "1", "true", "false"):
        raise ApiError(400, f"'overwrite' must be 0 or 1 (got {overwrite!r})")
    overwrite = overwrite in ("1", "true")
    if request.mimetype in ("application/zip", "application/x-zip-compressed"):
        raw = request.get_data(cache=True)
        if len(raw) > MAX_ZIP_BYTES:
            raise ApiError(413, f"zip too large ({len(raw)} bytes, the limit is {MAX_ZIP_BYTES})")
        if not raw:
            raise ApiError(400, "request body is empty; expected a zip of preset files")
        presets = call(control().import_presets, raw, zipped=True, overwrite=overwrite)
    else:
        doc = json_body(limit=MAX_PRESET_BYTES)  # shape and size checked here, content by the store
        check_name(doc.get("name"), "preset name")
        presets = call(control().import_presets, request.get_data(cache=True), zipped=False, overwrite=overwrite)
    return jsonify({"imported": [p.name for p in presets]}), 201


def _download(data: bytes, mimetype: str, filename: str) -> Response:
    resp = Response(data, mimetype=mimetype)
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\/' else "_" for c in filename)
    resp.headers["Content-Disposition"] = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return resp
