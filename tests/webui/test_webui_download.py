"""Capture downloads under waitress: streamed from disk (not loaded into memory), with HTTP Range."""

from __future__ import annotations

import http.client
import json
import os
import re
import resource
import subprocess
import urllib.parse
import zipfile

from mbweb_helpers import PASSWORD, set_password, write_wav

from webui import create_app
from webui.server import ServerThread

SIZE = 300 * 1024 * 1024


def _logged_in(port: int) -> tuple[http.client.HTTPConnection, str]:
    """A connection to the server on ``port`` and the session cookie of a login."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/api/v1/auth/session")
    r = conn.getresponse()
    cookie = r.getheader("Set-Cookie").split(";")[0]
    csrf = json.loads(r.read())["csrf_token"]
    conn.request("POST", "/api/v1/auth/login", json.dumps({"password": PASSWORD}),
                 {"Content-Type": "application/json", "X-CSRF-Token": csrf, "Cookie": cookie})
    r = conn.getresponse()
    cookie = r.getheader("Set-Cookie").split(";")[0]
    r.read()
    return conn, cookie


def test_large_download_streams_with_range(control, _isolated_home):
    wav = write_wav(_isolated_home / "captures" / "big.wav", seconds=0.5)
    with open(wav, "r+b") as f:
        f.truncate(SIZE)  # sparse: a 300 MB capture without writing 300 MB
    app = create_app(control, {"web": {"threads": 6, "sse_max_clients": 2}})
    set_password(app)
    server = ServerThread(app, host="127.0.0.1", port=0).start()
    try:
        conn, cookie = _logged_in(server.port)
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


def test_a_range_header_it_cannot_use_is_ignored_and_the_whole_file_sent(control, _isolated_home):
    """RFC 9110 §14.2: a Range header with invalid syntax, another unit or (here) several ranges is
    ignored (200, the whole file); only a valid range past the end is 416."""
    wav = write_wav(_isolated_home / "captures" / "take.wav", seconds=0.1)
    data = wav.read_bytes()
    size = len(data)
    app = create_app(control, {"web": {"threads": 2, "sse_max_clients": 2}})
    set_password(app)
    server = ServerThread(app, host="127.0.0.1", port=0).start()
    try:
        conn, cookie = _logged_in(server.port)

        def get(rng):
            conn.request("GET", "/api/v1/captures/take/download", headers={"Cookie": cookie, "Range": rng})
            r = conn.getresponse()
            return r.status, r.getheader("Content-Range"), r.read()

        for ignored in ("bytes=abc", "bytes=", "bytes=5-3", "bytes=-0", "abc", "items=0-3", "bytes=0-1,4-5"):
            status, content_range, body = get(ignored)
            assert (status, content_range) == (200, None), ignored
            assert body == data, ignored
        assert get("bytes=4-11") == (206, f"bytes 4-11/{size}", data[4:12])
        assert get(" bytes = 4-11 ")[:2] == (206, f"bytes 4-11/{size}")
        status, content_range, _ = get(f"bytes={size + 10}-")
        assert (status, content_range) == (416, f"bytes */{size}")
    finally:
        server.stop()


def test_several_captures_download_as_one_streamed_zip(control, _isolated_home, tmp_path):
    """Ticked captures and their sidecars as one ZIP (names as people type them): streamed under
    waitress (a 300 MB member does not grow the server's memory), checked by Info-ZIP's ``unzip -t``
    (every CRC) and member by member against the files."""
    folder = _isolated_home / "captures"
    small = write_wav(folder / "Take 1 – Süß.wav", seconds=0.5)
    (folder / "Take 1 – Süß.json").write_text('{"integrated_lufs": -14.0}\n')
    big = write_wav(folder / "take-2.wav", seconds=0.5)
    with open(big, "r+b") as f:
        f.truncate(SIZE)
    app = create_app(control, {"web": {"threads": 6, "sse_max_clients": 2}})
    set_password(app)
    server = ServerThread(app, host="127.0.0.1", port=0).start()
    try:
        conn, cookie = _logged_in(server.port)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
        first = urllib.parse.quote("Take 1 – Süß")
        conn.request("GET", f"/api/v1/captures.zip?name={first}&name=take-2&name={first}", headers={"Cookie": cookie})
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("Content-Type") == "application/zip"
        assert re.fullmatch(r'attachment; filename="masterbox-captures-\d{8}-\d{4}\.zip"',
                            r.getheader("Content-Disposition"))
        archive = tmp_path / "got.zip"
        with open(archive, "wb") as out:
            while chunk := r.read(1 << 20):
                out.write(chunk)
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
        assert grown_mb < 64, f"peak memory grew {grown_mb:.0f} MB serving a {SIZE >> 20} MB capture in a ZIP"
        test = subprocess.run(["unzip", "-t", str(archive)], capture_output=True, text=True)
        assert test.returncode == 0 and "No errors detected" in test.stdout, test.stdout + test.stderr
        with zipfile.ZipFile(archive) as zf:
            assert zf.namelist() == ["Take 1 – Süß.wav", "Take 1 – Süß.json", "take-2.wav"]     # once each, in order
            assert zf.read("Take 1 – Süß.wav") == small.read_bytes()
            assert zf.read("Take 1 – Süß.json") == (folder / "Take 1 – Süß.json").read_bytes()
            assert zf.getinfo("take-2.wav").file_size == SIZE
            with zf.open("take-2.wav") as m, open(big, "rb") as f:
                assert m.read(1 << 16) == f.read(1 << 16)

        def status(query):
            conn.request("GET", f"/api/v1/captures.zip{query}", headers={"Cookie": cookie})
            resp = conn.getresponse()
            resp.read()
            return resp.status

        assert status("") == 400
        assert status("?name=..%2Fetc") == 400
        assert status("?name=take-2&name=nope") == 404
        marker = folder / ".t.recording"
        marker.write_text(json.dumps({"pid": os.getpid(), "files": ["take-2.wav"]}))
        assert status("?name=take-2") == 409
        marker.unlink()
        conn.close()
    finally:
        server.stop()


def test_zip_members_of_2_gib_and_more_get_zip64_records(tmp_path, monkeypatch):
    """ZIP64 as it is used for a capture of 2 GiB or more, shown on a small file by lowering
    zipfile's limit (writing 2 GiB here would only take time): Info-ZIP reads it and every CRC."""
    from webui.zipstream import zip_stream

    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1 << 20)
    wav = write_wav(tmp_path / "long.wav", seconds=20.0)      # 5.8 MB
    archive = tmp_path / "z.zip"
    archive.write_bytes(b"".join(zip_stream([("long.wav", wav)], chunk=1 << 16)))
    test = subprocess.run(["unzip", "-t", str(archive)], capture_output=True, text=True)
    assert test.returncode == 0 and "No errors detected" in test.stdout, test.stdout + test.stderr
    assert _local_extra_ids(archive.read_bytes()) == [1]             # a ZIP64 extra field (tag 0x0001)
    monkeypatch.undo()
    with zipfile.ZipFile(archive) as zf:
        assert zf.read("long.wav") == wav.read_bytes()
    plain = b"".join(zip_stream([("long.wav", wav)]))                 # under the real limit: none
    assert _local_extra_ids(plain) == []


def _local_extra_ids(data: bytes) -> list[int]:
    """The header IDs of the extra fields of the first member's local header."""
    import struct

    assert data[:4] == b"PK\x03\x04"
    name_len, extra_len = struct.unpack("<HH", data[26:30])
    extra = data[30 + name_len:30 + name_len + extra_len]
    ids, o = [], 0
    while o + 4 <= len(extra):
        tag, size = struct.unpack("<HH", extra[o:o + 4])
        ids.append(tag)
        o += 4 + size
    return ids
