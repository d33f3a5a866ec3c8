"""Uploads: a mix from the user's computer into the captures folder, in pieces (firmware/capture_upload.py).

* ``POST /uploads`` ``{"file": "mix.wav", "size": N}``: 201 and the upload's status (``id``,
  ``offset`` 0, ``chunk_bytes``), or 507 before a byte is sent when the disk has no room.
* ``PUT /uploads/<id>?offset=K``, the next piece as ``application/octet-stream``: the status.
  The piece that completes the file answers ``state`` "done" and the new capture's name.
  A piece at the wrong offset is a 409 that says the right one (``offset``).
* ``GET /uploads/<id>``: where the next piece goes (after a dropped link), or the outcome.
* ``DELETE /uploads/<id>``: stop, and remove what arrived.
* ``GET /uploads``: the uploads receiving now.
"""

from __future__ import annotations

from flask import jsonify, request

from firmware.capture_upload import CHUNK_BYTES
from webui.api import bp
from webui.backend import call, control
from webui.errors import ApiError, field, json_body, refuse_unknown


def _uploads():
    return control().uploads


@bp.get("/uploads")
def list_uploads():
    return jsonify({"uploads": _uploads().active(), "chunk_bytes": CHUNK_BYTES})


@bp.post("/uploads")
def begin_upload():
    data = json_body()
    refuse_unknown(data, {"file", "size"})
    name, size = field(data, "file", str), field(data, "size", int)
    return jsonify(call(_uploads().begin, name, size)), 201


@bp.put("/uploads/<uid>")
def upload_piece(uid):
    raw = request.args.get("offset")
    if raw is None or not raw.isdigit():
        raise ApiError(400, "offset must be given as ?offset=N, the byte the piece starts at")
    if request.mimetype != "application/octet-stream":
        raise ApiError(415, f"send the piece as application/octet-stream (got {request.mimetype or 'none'})")
    return jsonify(call(_uploads().append, uid, int(raw), request.get_data(cache=False)))


@bp.get("/uploads/<uid>")
def upload_status(uid):
    return jsonify(call(_uploads().status, uid))


@bp.delete("/uploads/<uid>")
def cancel_upload(uid):
    return jsonify(call(_uploads().cancel, uid))
