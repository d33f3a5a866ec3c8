"""Login, setup (claim from the front panel), CSRF, rate limiting, sessions and headers."""

from __future__ import annotations

import re

from mbweb_helpers import PASSWORD, Api, set_password


def test_no_default_password_every_page_leads_to_setup(anon):
    r = anon.get("/live")
    assert r.status_code == 302 and r.headers["Location"].endswith("/setup")
    r = anon.get("/login")
    assert r.status_code == 302 and r.headers["Location"].endswith("/setup")
    r = anon.get("/api/v1/state")
    assert r.status_code == 401
    assert "no password is set" in r.get_json()["error"]
    anon.token()
    r = anon.post("/api/v1/auth/login", json={"password": ""})
    assert r.status_code == 409


def test_claim_with_front_panel_button(app, anon, control):
    assert anon.get("/setup").status_code == 200
    # choosing a password before the button is pressed is refused
    assert anon.post("/api/v1/auth/claim", json={}).status_code == 200
    r = anon.post("/api/v1/auth/claim/password", json={"password": "a long password"})
    assert r.status_code == 403 and "front panel" in r.get_json()["error"]
    assert anon.get("/api/v1/auth/claim").get_json()["state"] == "waiting"
    # a second browser cannot arm while the first waits
    other = Api(app.test_client())
    other.token()
    r = other.post("/api/v1/auth/claim", json={})
    assert r.status_code == 409 and "already waiting" in r.get_json()["error"]
    # the panel controller's hook is attached to Control
    assert control.claim.armed
    assert control.claim.press("BYPASS") is True
    assert control.claim.press("BYPASS") is False  # consumed once
    assert anon.get("/api/v1/auth/claim").get_json()["state"] == "pressed"
    # the other browser's session did not arm it: it cannot set the password
    r = other.post("/api/v1/auth/claim/password", json={"password": "attacker password"})
    assert r.status_code == 403
    r = anon.post("/api/v1/auth/claim/password", json={"password": "short"})
    assert r.status_code == 400 and "at least 8" in r.get_json()["error"]
    r = anon.post("/api/v1/auth/claim/password", json={"password": "the chosen one!"})
    assert r.status_code == 200, r.get_json()
    anon.csrf = r.get_json()["csrf_token"]
    assert anon.get("/api/v1/state").status_code == 200
    assert app.extensions["masterbox"].passwords.verify("the chosen one!")
    assert anon.post("/api/v1/auth/claim", json={}).status_code == 409


def test_press_without_armed_window_does_nothing(control, app):
    assert control.claim.press("CAPTURE") is False


def test_login_logout_and_wrong_password(app, anon):
    set_password(app)
    anon.token()
    r = anon.post("/api/v1/auth/login", json={"password": "wrong password"})
    assert r.status_code == 401 and r.get_json()["error"] == "wrong password"
    assert anon.login().status_code == 200
    assert anon.get("/api/v1/state").status_code == 200
    assert anon.post("/api/v1/auth/logout", json={}).status_code == 200
    assert anon.get("/api/v1/state").status_code == 401


def test_login_form_page(app, anon):
    set_password(app)
    page = anon.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = anon.c.post("/login?next=/chain", data={"password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303 and r.headers["Location"] == "/chain"
    assert anon.get("/chain").status_code == 200


def test_login_never_redirects_off_site(app, anon):
    set_password(app)
    page = anon.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = anon.c.post("/login?next=//evil.example/x", data={"password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303 and r.headers["Location"] == "/live"


def test_login_rate_limited(app, anon):
    set_password(app)
    anon.token()
    codes = [anon.post("/api/v1/auth/login", json={"password": f"guess {i}"}).status_code for i in range(7)]
    assert codes[:5] == [401] * 5
    assert codes[5] == 429
    r = anon.post("/api/v1/auth/login", json={"password": PASSWORD})
    assert r.status_code == 429, "even the right password waits out the window"
    assert "try again in" in r.get_json()["error"] and int(r.headers["Retry-After"]) > 0


def test_password_change_logs_other_sessions_out(app, api):
    other = Api(app.test_client())
    assert other.login().status_code == 200
    r = api.post("/api/v1/auth/password", json={"current": "nope nope", "new": "new password 1"})
    assert r.status_code == 403
    r = api.post("/api/v1/auth/password", json={"current": PASSWORD, "new": "new password 1"})
    assert r.status_code == 200
    api.csrf = r.get_json()["csrf_token"]
    assert api.get("/api/v1/state").status_code == 200
    assert other.get("/api/v1/state").status_code == 401


def test_csrf_required_on_every_state_change(api):
    r = api.req("PATCH", "/api/v1/state", json={"values": {"in.trim_db": 1.0}}, csrf=False)
    assert r.status_code == 403 and "CSRF" in r.get_json()["error"]
    r = api.req("PATCH", "/api/v1/state", json={"values": {"in.trim_db": 1.0}},
                headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403 and "does not match" in r.get_json()["error"]
    assert api.get("/api/v1/state").get_json()["values"]["in.trim_db"] == 0.0
    for method, path in (("POST", "/api/v1/bypass"), ("POST", "/api/v1/capture/start"),
                         ("DELETE", "/api/v1/presets/x"), ("POST", "/api/v1/presets-import"),
                         ("POST", "/api/v1/auth/logout"), ("POST", "/logout")):
        assert api.req(method, path, json={}, csrf=False).status_code == 403, path


def test_cross_site_origin_refused(api):
    r = api.req("POST", "/api/v1/bypass", json={"on": True}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.get_json()["error"]


def test_get_never_changes_state(api, control):
    before = control.state.snapshot()
    for path in ("/api/v1/bypass", "/api/v1/capture/start", "/api/v1/presets/streaming/recall",
                 "/api/v1/learn/start", "/logout"):
        assert api.get(path).status_code in (404, 405), path
    assert control.state.snapshot()["values"] == before["values"]
    assert control.bypassed is False


def test_cookie_and_security_headers(app, anon):
    set_password(app)
    anon.token()
    r = anon.post("/api/v1/auth/login", json={"password": PASSWORD})
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    r = anon.get("/live")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    html = r.get_data(as_text=True)
    assert "<script>" not in html and " style=" not in html and "onclick=" not in html


def test_no_inline_script_or_style_in_any_template():
    from pathlib import Path

    for t in (Path(__file__).parents[2] / "webui" / "templates").glob("*.html"):
        text = t.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), t.name
        assert " style=" not in text and "<style" not in text, t.name
        assert not re.search(r"\son[a-z]+=", text), t.name
        assert "http://" not in text and "https://" not in text, f"{t.name}: no external resources"


def test_passwd_command_sets_password(tmp_path, masterbox_cmd):
    import subprocess

    r = subprocess.run(masterbox_cmd + ["passwd", "--stdin"], input="from the console\n", capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    from firmware.passwords import PasswordFile

    assert PasswordFile().verify("from the console")
    r = subprocess.run(masterbox_cmd + ["passwd", "--stdin"], input="short\n", capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "at least 8" in r.stderr
