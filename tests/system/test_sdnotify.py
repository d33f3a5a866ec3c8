"""The sd_notify protocol against a real Unix datagram socket, as systemd would receive it."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from firmware import sdnotify
from firmware.sdnotify import Notifier


def _parse(datagram: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.decode().split("\n") if line)


@pytest.fixture
def listener(tmp_path):
    """A bound datagram socket standing where systemd's notify socket would be (a path)."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    yield str(path), sock
    sock.close()


def test_ready_status_watchdog_stopping_arrive_as_systemd_reads_them(listener):
    path, sock = listener
    n = Notifier(path)
    assert n.enabled
    assert n.ready("audio flowing at 48000 Hz")
    msg = _parse(sock.recv(4096))
    assert msg["READY"] == "1"
    assert msg["STATUS"] == "audio flowing at 48000 Hz"
    assert msg["MAINPID"] == str(os.getpid())
    assert n.watchdog()
    assert _parse(sock.recv(4096)) == {"WATCHDOG": "1"}
    assert n.status("load 12%, xruns 0")
    assert _parse(sock.recv(4096)) == {"STATUS": "load 12%, xruns 0"}
    assert n.extend_timeout(30)
    assert _parse(sock.recv(4096)) == {"EXTEND_TIMEOUT_USEC": "30000000"}
    assert n.stopping("engine stopped")
    assert _parse(sock.recv(4096)) == {"STOPPING": "1", "STATUS": "engine stopped"}
    n.close()


def test_abstract_namespace_socket():
    name = f"masterbox-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2.0)
    try:
        n = Notifier("@" + name)
        assert n.ready()
        assert _parse(sock.recv(4096))["READY"] == "1"
    finally:
        sock.close()


def test_environment_is_read_when_no_address_given(listener, monkeypatch):
    path, sock = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert Notifier().watchdog()
    assert _parse(sock.recv(4096)) == {"WATCHDOG": "1"}


def test_without_systemd_every_call_is_a_quiet_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    assert not n.enabled
    assert not n.ready() and not n.watchdog() and not n.stopping() and not n.status("x")


def test_a_vanished_socket_never_raises(tmp_path):
    n = Notifier(str(tmp_path / "gone.sock"))
    assert n.enabled
    assert n.watchdog() is False


def test_newlines_in_a_status_cannot_forge_other_fields(listener):
    path, sock = listener
    Notifier(path).status("line one\nREADY=1")
    assert _parse(sock.recv(4096)) == {"STATUS": "line one READY=1"}


def test_watchdog_interval_honours_watchdog_pid():
    env = {"WATCHDOG_USEC": "5000000"}
    assert sdnotify.watchdog_interval(env) == 5.0
    assert sdnotify.watchdog_interval({**env, "WATCHDOG_PID": str(os.getpid())}) == 5.0
    assert sdnotify.watchdog_interval({**env, "WATCHDOG_PID": "1"}, pid=4242) is None
    assert sdnotify.watchdog_interval({}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
