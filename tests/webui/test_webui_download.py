"""Capture downloads under waitress: streamed from disk (not loaded into memory), with HTTP Range."""

from __future__ import annotations

import http.client
import json
import resource

from mbweb_helpers import PASSWORD, set_password, write_wav

from webui import create_app
from webui.server import ServerThread

SIZE = 300 * 1024 * 1024


def test_large_download_streams_with_range(control, _isolated_home):
    wav = write_wav(_isolated_home / "captures" / "big.wav", seconds=0.5)
    with open(wav, "r+b") as f:
        f.truncate(SIZE)  # sparse: a 300 MB capture without writing 300 MB
    app = create_app(control, {"web": {"threads": 6, "sse_max_clients": 2}})
    set_password(app)
    server = ServerThread(app, host="127.0.0.1", port=0).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("GET", "/api/v1/auth/session")
        r = conn.getresponse()
        cookie = r.getheader("Set-Cookie").split(";")[0]
        csrf = json.loads(r.read())["csrf_token"]
        conn.request("POST", "/api/v1/auth/login", json.dumps({"password": PASSWORD}),
                     {"Content-Type": "application/json", "X-CSRF-Token": csrf, "Cookie": cookie})
        r = conn.getresponse()
        cookie = r.getheader("Set-Cookie").split(";")[0]
        r.read()

        conn.request("GET", "/api/v1/captures/big/download", headers={"Cookie": cookie, "Range": "bytes=4-11"})
        r = conn.getresponse()
        assert r.status == 206 and r.read() == wav.read_bytes()[4:12]
        assert r.getheader("Content-Range") == f"bytes 4-11/{SIZE}"

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
        conn.request("GET", "/api/v1/captures/big/download", headers={"Cookie": cookie})
        r = conn.getresponse()
        assert r.status == 200 and int(r.getheader("Content-Length")) == SIZE
        assert "attachment" in r.getheader("Content-Disposition")
        got = 0
        while chunk := r.read(1 << 20):
            got += len(chunk)
        assert got == SIZE
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
        assert grown_mb < 64, f"peak memory grew {grown_mb:.0f} MB serving a {SIZE >> 20} MB file"
        conn.close()
    finally:
        server.stop()
