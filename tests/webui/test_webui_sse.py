"""Live meters over Server-Sent Events: rate, fan-out, stream cap, and stalled clients.

The server-level tests run the app under waitress on an ephemeral port, because the promises
are about the server: streams never starve the API of threads, and a client that stops
reading has its frames skipped rather than buffered without bound.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest
from mbweb_helpers import PASSWORD, Api, set_password

from webui import create_app
from webui.server import ServerThread


def read_events(resp, n_meters, timeout=5.0):
    """Parse SSE chunks from a streaming test response until ``n_meters`` meter events."""
    events, buf, t0 = [], "", time.monotonic()
    for chunk in resp.response:
        buf += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buf:
            block, buf = buf.split("\n\n", 1)
            kind = data = None
            for line in block.splitlines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
            if kind:
                events.append((kind, data))
        if sum(1 for k, _ in events if k == "meters") >= n_meters or time.monotonic() - t0 > timeout:
            break
    return events


def test_stream_sends_state_then_meters_at_about_20_hz(api, app):
    resp = api.get("/api/v1/events", buffered=False)
    assert resp.status_code == 200 and resp.mimetype == "text/event-stream"
    t0 = time.monotonic()
    events = read_events(resp, 21)
    elapsed = time.monotonic() - t0
    resp.close()
    kinds = [k for k, _ in events]
    assert kinds[0] == "state" and "meters" in kinds
    seqs = [d["seq"] for k, d in events if k == "meters"]
    assert len(set(seqs)) == len(seqs) >= 21
    rate = (len(seqs) - 1) / elapsed
    assert 12 <= rate <= 25, f"{rate:.1f} frames/s"
    assert app.extensions["masterbox"].hub.clients == 0, "closing the stream frees its slot"


def test_state_change_reaches_stream(api, app):
    resp = api.get("/api/v1/events", buffered=False)
    read_events(resp, 1)
    api.req("PATCH", "/api/v1/state", json={"values": {"st.width": 140.0}})
    events = read_events(resp, 10)
    resp.close()
    states = [d for k, d in events if k == "state"]
    assert states and states[-1]["values"]["st.width"] == 140.0


def test_streams_are_capped(control, _isolated_home):
    app = create_app(control, {"testing": True, "web": {"threads": 6, "sse_max_clients": 2}})
    set_password(app)
    a = Api(app.test_client())
    a.login()
    r1 = a.get("/api/v1/events", buffered=False)
    r2 = a.get("/api/v1/events", buffered=False)
    r3 = a.get("/api/v1/events", buffered=False)
    assert (r1.status_code, r2.status_code, r3.status_code) == (200, 200, 503)
    assert "too many live streams" in r3.get_json()["error"] and r3.headers["Retry-After"] == "10"
    assert a.get("/api/v1/meters").status_code == 200, "the polling fallback still answers"
    r1.close()
    assert a.get("/api/v1/events", buffered=False).status_code == 200
    r2.close()
    app.extensions["masterbox"].broadcaster.stop()


def test_stream_requires_login(anon):
    assert anon.get("/api/v1/events").status_code == 401


# -- under waitress ------------------------------------------------------------------------
@pytest.fixture
def served(control, _isolated_home):
    cfg = {"web": {"threads": 12, "sse_max_clients": 8, "sse_backlog": 16384, "sse_max_seconds": 60}}
    app = create_app(control, cfg)
    set_password(app)
    # small kernel send buffers (inherited by accepted sockets) so a stalled reader fills up fast
    server = ServerThread(app, host="127.0.0.1", port=0)
    adj = server.server.adj
    adj.socket_options = list(adj.socket_options) + [(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)]
    server.start()
    yield app, server
    server.stop()


def login_cookie(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/api/v1/auth/session")
    r = conn.getresponse()
    cookie = r.getheader("Set-Cookie").split(";")[0]
    csrf = json.loads(r.read())["csrf_token"]
    conn.request("POST", "/api/v1/auth/login", body=json.dumps({"password": PASSWORD}),
                 headers={"Content-Type": "application/json", "X-CSRF-Token": csrf, "Cookie": cookie})
    r = conn.getresponse()
    assert r.status == 200, r.read()
    cookie = r.getheader("Set-Cookie").split(";")[0]
    r.read()
    conn.close()
    return cookie


def stalled_stream(port, cookie):
    """An SSE client that sends its request and then never reads (tiny receive buffer)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n".encode())
    return s


def test_stalled_streams_neither_starve_the_api_nor_buffer_without_bound(served):
    app, server = served
    ctx = app.extensions["masterbox"]
    cookie = login_cookie(server.port)
    stalled = [stalled_stream(server.port, cookie) for _ in range(ctx.hub.max_clients)]
    deadline = time.monotonic() + 5
    while ctx.hub.clients < ctx.hub.max_clients and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ctx.hub.clients == ctx.hub.max_clients
    # one more stream is refused, the API answers promptly while every stream slot is taken
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/api/v1/events", headers={"Cookie": cookie})
    r = conn.getresponse()
    assert r.status == 503
    r.read()
    latencies = []
    for _ in range(30):
        t0 = time.perf_counter()
        conn.request("GET", "/api/v1/state", headers={"Cookie": cookie})
        r = conn.getresponse()
        r.read()
        latencies.append(time.perf_counter() - t0)
        assert r.status == 200
    latencies.sort()
    assert latencies[len(latencies) // 2] < 0.25 and latencies[-1] < 2.0, latencies
    # the stalled clients fall behind: their frames are skipped, the server's buffer stays bounded
    deadline = time.monotonic() + 15
    while ctx.hub.dropped < 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ctx.hub.dropped >= 20, "frames for stalled clients are skipped"
    channels = list(server.server._map.values())
    backlog = max((getattr(ch, "total_outbufs_len", 0) for ch in channels), default=0)
    assert backlog < ctx.settings["sse_backlog"] + 8192, backlog
    print(f"\nAPI latency with {len(stalled)} stalled streams: median {latencies[len(latencies) // 2] * 1000:.1f} ms, "
          f"max {latencies[-1] * 1000:.1f} ms; frames skipped {ctx.hub.dropped}; largest backlog {backlog} B")
    for s in stalled:
        s.close()
    conn.close()
    # hanging up frees the stream slots (and their threads) promptly, not at sse_max_seconds
    deadline = time.monotonic() + 5
    while ctx.hub.clients and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ctx.hub.clients == 0


def test_many_reading_clients_all_get_frames(served):
    app, server = served
    cookie = login_cookie(server.port)
    counts = [0] * 8
    stop = threading.Event()

    def reader(i):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/api/v1/events", headers={"Cookie": cookie})
        r = conn.getresponse()
        assert r.status == 200
        while not stop.is_set():
            line = r.fp.readline()
            if line.startswith(b"event: meters"):
                counts[i] += 1
        conn.close()

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join(timeout=3)
    assert min(counts) >= 25, counts  # ~20 Hz for 2 s each, all eight at once


def test_a_browser_leaving_a_page_does_not_fill_the_log(served, caplog):
    """Every page view ends its live stream by disconnecting; waitress logs each such end ("Client
    disconnected while serving /api/v1/events"), which buried the System page's recent log. Those
    lines are dropped; the same message for any other path is kept."""
    import logging

    from webui.server import QuietStreamEnds

    app, server = served
    cookie = login_cookie(server.port)
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(f"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n".encode())
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
            s.close()                                     # the browser goes to another page
        time.sleep(1.5)                                   # frames at 20 Hz: the server has tried to write since
    ends = [r.getMessage() for r in caplog.records if r.name == "waitress"]
    assert not [m for m in ends if "/api/v1/events" in m], ends
    other = logging.LogRecord("waitress", logging.INFO, __file__, 0, "Client disconnected while serving %s",
                              ("/api/v1/captures/x/download",), None)
    assert QuietStreamEnds().filter(other)
    assert not QuietStreamEnds().filter(logging.LogRecord(
        "waitress", logging.INFO, __file__, 0, "Client disconnected while serving /api/v1/events", None, None))
