"""Login, logout, first-time setup (console or front-panel claim) and password change.

Pages (``/login``, ``/setup``) are plain forms that work without JavaScript; the same actions
exist as JSON under ``/api/v1/auth`` for scripts. Every POST is CSRF-checked by
:mod:`webui.security` before it reaches these views.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, session, url_for

from firmware.passwords import MAX_LENGTH, PasswordError, check_new_password
from webui.claim import ClaimBusy
from webui.errors import ApiError, field, json_body
from webui.security import client_address, csrf_token, logged_in, login_required, safe_next

log = logging.getLogger("masterbox.web.auth")

bp = Blueprint("auth", __name__)


def _ctx():
    return current_app.extensions["masterbox"]


def _start_session() -> None:
    """A fresh session (new CSRF token) after any privilege change: no session fixation."""
    session.clear()
    session.permanent = True
    session["auth"] = True
    session["gen"] = _ctx().passwords.generation
    csrf_token()


def _try_login(password) -> None:
    ctx = _ctx()
    client = client_address()
    wait = ctx.throttle.retry_after(client)
    if wait:
        raise ApiError(429, f"too many failed logins; try again in {wait} s", retry_after=wait)
    if not ctx.passwords.is_set:
        raise ApiError(409, "no password is set yet: open /setup or run `masterbox passwd` on the box")
    if not isinstance(password, str) or not password:
        raise ApiError(400, "password is missing")
    if len(password) > MAX_LENGTH:
        ctx.throttle.failed(client)
        raise ApiError(401, "wrong password")
    if not ctx.passwords.verify(password):
        ctx.throttle.failed(client)
        log.warning("failed web login from %s", client)
        raise ApiError(401, "wrong password")
    ctx.throttle.succeeded(client)
    _start_session()
    log.info("web login from %s", client)


# -- pages ---------------------------------------------------------------------------------
@bp.route("/login", methods=["GET", "POST"])
def login():
    if not _ctx().passwords.is_set:
        return redirect(url_for("auth.setup"))
    error = None
    status = 200
    if request.method == "POST":
        try:
            _try_login(request.form.get("password"))
            return redirect(safe_next(request.args.get("next")), code=303)
        except ApiError as e:
            error, status = e.message, e.status
    return render_template("login.html", error=error, next=request.args.get("next", "")), status


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("auth.login"), code=303)


@bp.get("/setup")
def setup():
    if _ctx().passwords.is_set:
        return redirect(url_for("auth.login"))
    csrf_token()
    return render_template("setup.html", seconds=int(_ctx().claim.seconds))


# -- JSON --------------------------------------------------------------------------------
@bp.get("/api/v1/auth/session")
def api_session():
    """Whether this browser is logged in, and the CSRF token its state-changing requests must send."""
    ctx = _ctx()
    return jsonify({"logged_in": logged_in(), "password_set": ctx.passwords.is_set, "csrf_token": csrf_token()})


@bp.post("/api/v1/auth/login")
def api_login():
    _try_login(field(json_body(), "password", str))
    return jsonify({"logged_in": True, "csrf_token": session["csrf"]})


@bp.post("/api/v1/auth/logout")
def api_logout():
    session.clear()
    return jsonify({"logged_in": False, "csrf_token": csrf_token()})


@bp.post("/api/v1/auth/password")
@login_required
def api_change_password():
    data = json_body()
    current = field(data, "current", str)
    new = field(data, "new", str)
    ctx = _ctx()
    wait = ctx.throttle.retry_after(client_address())
    if wait:
        raise ApiError(429, f"too many failed attempts; try again in {wait} s", retry_after=wait)
    if not ctx.passwords.verify(current):
        ctx.throttle.failed(client_address())
        raise ApiError(403, "the current password is wrong")
    try:
        ctx.passwords.set(new)
    except PasswordError as e:
        raise ApiError(400, str(e)) from None
    _start_session()
    log.info("web password changed from %s", client_address())
    return jsonify({"changed": True, "csrf_token": session["csrf"]})


@bp.post("/api/v1/auth/claim")
def api_claim_arm():
    """Start waiting for a front-panel button press (only while no password is set)."""
    ctx = _ctx()
    if ctx.passwords.is_set:
        raise ApiError(409, "a password is already set; log in, or reset it with `masterbox passwd`")
    try:
        session["claim"] = ctx.claim.arm(session.get("claim"))
    except ClaimBusy as e:
        raise ApiError(409, str(e), retry_after=e.retry_after) from None
    return jsonify(ctx.claim.status(session["claim"]))


@bp.get("/api/v1/auth/claim")
def api_claim_status():
    ctx = _ctx()
    if ctx.passwords.is_set:
        return jsonify({"state": "done", "remaining_s": 0})
    return jsonify(ctx.claim.status(session.get("claim")))


@bp.post("/api/v1/auth/claim/password")
def api_claim_password():
    """Set the first password after the button was pressed; logs this browser in."""
    ctx = _ctx()
    password = field(json_body(), "password", str)
    if ctx.passwords.is_set:
        raise ApiError(409, "a password is already set")
    try:
        check_new_password(password)
    except PasswordError as e:
        raise ApiError(400, str(e)) from None
    if not ctx.claim.consume(session.get("claim")):
        raise ApiError(403, "press a button on the box's front panel first (while this page waits)")
    ctx.passwords.set(password)
    _start_session()
    log.info("web UI claimed from the front panel by %s", client_address())
    return jsonify({"logged_in": True, "csrf_token": session["csrf"]})
