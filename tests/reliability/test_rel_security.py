"""Security checks (issue 9) against the real control process served by waitress (what a LAN
neighbour reaches), complementing tests/webui/test_webui_auth.py and test_webui_api.py (Flask's
test client): every write operation of the OpenAPI file refused without a session, without or
with a wrong CSRF token, and from a cross-site Origin, with nothing changed; path traversal in
every name-taking route refused, a symlink out of the captures folder refused; upload limits
enforced by the server (413) with the server still serving afterwards.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import time
from pathlib import Path

import pytest
from loadrig import Client, ControlProcess

OPENAPI = Path(__file__).resolve().parents[2] / "webui" / "openapi.yaml"
PUBLIC_WRITES = {"/auth/login", "/auth/logout", "/auth/claim", "/auth/claim/password"}  # the door itself


def write_operations() -> list[tuple[str, str]]:
    ops, current = [], None
    for line in OPENAPI.read_text().splitlines():
        m = re.match(r"^  (/\S*):\s*$", line)
        if m:
            current = m.group(1)
            continue
        m = re.match(r"^    (post|put|patch|delete):", line)
        if m and current and current not in PUBLIC_WRITES:
            ops.append((m.group(1).upper(), current))
    return ops


def fill(path: str) -> str:
    return "/api/v1" + path.replace("{name}", "mine")


def raw(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        conn.close()


@pytest.fixture
def box(_isolated_home):
    home = _isolated_home
    control = ControlProcess(dict(os.environ))
    admin = Client(control.port)
    r, body = admin.request("POST", "/api/v1/presets", {"name": "mine"})
    assert r.status == 201, body
    time.sleep(0.8)  # the state store's deferred write (0.25 s) lands before anything is compared
    yield control, admin, home
    control.stop()


def fingerprint(home: Path, admin: Client) -> dict:
    state = json.loads(admin.request("GET", "/api/v1/state")[1])
    files = {str(p.relative_to(home)): hashlib.sha1(p.read_bytes()).hexdigest()
             for p in sorted(home.rglob("*")) if p.is_file() and p.suffix in (".json", ".wav")
             and p.name != ".index.json" and "run" not in p.parts}
    return {"values": state["values"], "preset": state["active_preset"], "bypass": state["bypass"], "files": files}


def test_writes_need_a_session_a_csrf_token_and_a_same_site_origin(box):
    control, admin, home = box
    port = control.port
    ops = write_operations()
    assert len(ops) >= 15, ops
    before = fingerprint(home, admin)
    body = json.dumps({"values": {"out.drive_db": 5.0}, "on": True, "name": "x", "new_name": "y", "detents": 3,
                       "password": "p", "new_password": "new password 123"}).encode()
    anon = Client.__new__(Client)  # a client with a session but no login
    anon.port, anon.timeout, anon.cookie, anon.csrf = port, 10.0, "", ""
    anon.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    r, b = anon.request("GET", "/api/v1/auth/session")
    anon_csrf = json.loads(b)["csrf_token"]
    for method, path in ops:
        url = fill(path)
        h = {"Content-Type": "application/json"}
        # 1. nobody: no cookie at all
        st, b, _ = raw(port, method, url, body, h)
        assert st in (401, 403), (method, path, st, b[:200])
        # 2. a session that never logged in, with its valid CSRF token
        st, b, _ = raw(port, method, url, body, {**h, "Cookie": anon.cookie, "X-CSRF-Token": anon_csrf})
        assert st in (401, 403), (method, path, st, b[:200])
        # 3. logged in, no CSRF token / a wrong one
        st, b, _ = raw(port, method, url, body, {**h, "Cookie": admin.cookie})
        assert st == 403, (method, path, st, b[:200])
        st, b, _ = raw(port, method, url, body, {**h, "Cookie": admin.cookie, "X-CSRF-Token": "0" * 32})
        assert st == 403, (method, path, st, b[:200])
        # 4. logged in with the token, but sent from another site
        st, b, _ = raw(port, method, url, body, {**h, "Cookie": admin.cookie, "X-CSRF-Token": admin.csrf,
                                                 "Origin": "http://evil.example"})
        assert st == 403, (method, path, st, b[:200])
    assert fingerprint(home, admin) == before


TRAVERSALS = ["..", "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%2Fetc%2Fpasswd",
              "....//....//etc/passwd", "..%5c..%5cetc%5cpasswd", "%00", "captures%2F..%2Fstate"]


def test_path_traversal_is_refused_everywhere_and_symlinks_out_are_not_served(box):
    control, admin, home = box
    port = control.port
    secret = Path(home).parent / "secret.wav"
    secret.write_bytes(b"RIFF-not-for-you")
    caps = home / "captures"
    caps.mkdir(exist_ok=True)
    (caps / "link.wav").symlink_to(secret)
    get_routes = ["/api/v1/captures/{}", "/api/v1/captures/{}/download", "/api/v1/captures/{}/loudness",
                  "/api/v1/presets/{}", "/api/v1/presets/{}/export"]
    h = {"Cookie": admin.cookie}
    for route in get_routes:
        for t in TRAVERSALS:
            st, b, _ = raw(port, "GET", route.format(t), None, h)
            assert 400 <= st < 500, (route, t, st, b[:200])
            assert b"root:" not in b and b"RIFF-not-for-you" not in b and b'"values"' not in b, (route, t, b[:200])
    st, b, _ = raw(port, "GET", "/api/v1/captures/link/download", None, h)
    assert st in (403, 404) and b"RIFF-not-for-you" not in b, (st, b[:200])
    for t in TRAVERSALS:
        for method, route in (("DELETE", "/api/v1/presets/{}"), ("DELETE", "/api/v1/captures/{}")):
            st, b, _ = raw(port, method, route.format(t), None, {**h, "X-CSRF-Token": admin.csrf})
            assert 400 <= st < 500, (method, route, t, st)
    assert secret.exists() and (home / "state.json").exists()
    for name in ("../../evil", "/etc/evil"):
        r, b = admin.request("POST", "/api/v1/presets", {"name": name})
        if r.status == 201:  # a name is just a name: the file stays inside the presets folder
            assert all(p.parent == home / "presets" for p in (home / "presets").glob("*.json"))
    assert not (home.parent / "evil.json").exists() and not Path("/etc/evil.json").exists()


def test_upload_limits_are_enforced_by_the_server(box):
    control, admin, home = box
    port = control.port
    before = fingerprint(home, admin)
    h = {"Cookie": admin.cookie, "X-CSRF-Token": admin.csrf}
    big_json = b'{"values": {"out.drive_db": 1.0}, "pad": "' + b"x" * (100 * 1024) + b'"}'
    st, b, _ = raw(port, "PATCH", "/api/v1/state", big_json, {**h, "Content-Type": "application/json"})
    assert st == 413, (st, b[:200])
    preset = b'{"format": "masterbox-preset", "name": "big", "params": {}, "pad": "' + b"x" * (300 * 1024) + b'"}'
    st, b, _ = raw(port, "POST", "/api/v1/presets-import", preset, {**h, "Content-Type": "application/json"})
    assert st == 413, (st, b[:200])
    huge = os.urandom(9 * 1024 * 1024)  # past max_body_bytes (8 MiB): waitress refuses it
    try:
        st, b, _ = raw(port, "POST", "/api/v1/presets-import", huge, {**h, "Content-Type": "application/zip"})
        assert st == 413, (st, b[:200])
    except (ConnectionResetError, BrokenPipeError):
        pass  # refused before the body was read: the connection closed under the sender
    assert fingerprint(home, admin) == before
    r, body = admin.request("GET", "/api/v1/state")  # and the server still serves
    assert r.status == 200
