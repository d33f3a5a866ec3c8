"""The control channel speaks strict JSON both ways.

Python's json reads ``NaN``, ``Infinity`` and ``-Infinity`` (and ``1e999`` as an infinite float), and writes
them back as the same tokens, which no strict JSON reader (a browser's JSON.parse, jq, Go, Rust) takes: a
request with ``"id": Infinity`` got a reply echoing ``"id": Infinity``. Such a request is now refused whole,
like any line that is not JSON, and every reply line parses as strict JSON. A real ControlServer on a Unix
socket, with a stand-in engine (the running engine's suite is tests/engine/test_control_channel.py).
"""

from __future__ import annotations

import json
import socket

import pytest

from firmware.control_channel import ControlServer, encode_reply


def _strict(line: bytes):
    """``line`` parsed as strict JSON: a NaN/Infinity token fails the test."""
    def refuse(token):
        raise AssertionError(f"reply is not strict JSON: {token} in {line!r}")
    return json.loads(line, parse_constant=refuse)


class Engine:
    def stall_once(self, seconds):
        pass


@pytest.fixture
def conn(tmp_path):
    server = ControlServer(Engine(), tmp_path / "engine.sock")
    server.start()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(str(tmp_path / "engine.sock"))
    f = s.makefile("rb")

    def ask(line: bytes) -> tuple[bytes, dict]:
        s.sendall(line + b"\n")
        raw = f.readline()
        assert raw.endswith(b"\n"), raw
        return raw, _strict(raw)

    yield ask
    f.close()
    s.close()
    server.stop()


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "[1, NaN]", '{"a": Infinity}'])
def test_an_id_that_is_not_strict_json_is_refused_and_never_echoed(conn, token):
    raw, reply = conn(b'{"cmd": "hello", "id": %s}' % token.encode())
    assert reply["ok"] is False and "id" not in reply, raw
    assert reply["error"].startswith("not a JSON object: "), reply
    if "NaN" in token or "Infinity" in token:
        assert "strict JSON has no NaN or Infinity" in reply["error"], reply
    else:
        assert "too large a number" in reply["error"], reply


@pytest.mark.parametrize("line", [b'{"cmd": "stall", "ms": NaN, "id": 1}', b'{"cmd": "hello", "v": Infinity}'])
def test_nan_anywhere_in_a_request_refuses_it_whole(conn, line):
    _, reply = conn(line)
    assert reply["ok"] is False and "not a JSON number" in reply["error"] and "id" not in reply, reply


@pytest.mark.parametrize("rid", [7, -0.5, 1e308, 10 ** 400, "x", None, [1, {"a": [2.5]}], {"n": -1e-300}])
def test_a_strict_json_id_is_echoed_as_it_came(conn, rid):
    _, reply = conn(json.dumps({"cmd": "hello", "id": rid}, allow_nan=False).encode())
    assert reply["ok"] is True
    assert reply.get("id") == rid if rid is not None else "id" not in reply


def test_a_number_of_more_digits_than_python_reads_is_a_refusal_not_a_dropped_client(conn):
    raw, reply = conn(b'{"cmd": "hello", "id": ' + b"9" * 5000 + b"}")
    assert reply["ok"] is False and reply["error"].startswith("not a JSON object: "), raw[:200]
    _, reply = conn(b'{"cmd": "hello", "id": 2}')   # the same connection still served
    assert reply["ok"] is True and reply["id"] == 2


def test_a_reply_holding_nan_is_sent_as_strict_json_with_null():
    line = encode_reply({"ok": True, "status": {"lufs": float("nan"), "peaks": [float("-inf"), -3.0]}, "id": 1})
    assert line.endswith(b"\n") and _strict(line) == {"ok": True, "status": {"lufs": None, "peaks": [None, -3.0]},
                                                      "id": 1}
