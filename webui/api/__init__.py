"""The JSON API under ``/api/v1`` (documented in ``webui/openapi.yaml``), used by every page.

Rules every view follows: GET never changes anything; the body is checked completely
(:func:`webui.errors.json_body`, the parameter schema, :func:`webui.errors.check_name`)
before the box is touched, so a refused request changes nothing; the box is reached only
through ``Control`` (:mod:`webui.backend`). Authentication is required for every route here;
the auth routes live in :mod:`webui.auth`.
"""

from __future__ import annotations

from flask import Blueprint

from webui.security import login_required

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.before_request
@login_required
def _require_login():
    return None


from webui.api import captures, eq, live, multiband, panel, presets, reference, system, uploads  # noqa: E402,F401  (routes register on import)
