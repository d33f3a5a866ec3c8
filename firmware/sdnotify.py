"""The systemd notification protocol (sd_notify), without libsystemd.

systemd passes ``$NOTIFY_SOCKET`` to a ``Type=notify`` service: a Unix datagram socket, either a
path or (leading ``@``) a name in the abstract namespace. Each datagram is newline-separated
``KEY=VALUE`` lines. We send:

- ``READY=1`` once audio flows, so units ordered after the engine start only then;
- ``WATCHDOG=1`` while the audio loop is alive (see :mod:`firmware.watchdog`); with ``WatchdogSec=``
  systemd restarts a service that stops pinging, so a hung loop is replaced;
- ``STOPPING=1`` at shutdown, ``STATUS=...`` as the one line ``systemctl status`` shows.

Outside systemd (no ``$NOTIFY_SOCKET``) every call is a cheap no-op, so the same code runs under
``masterbox run``, in tests and on a laptop. Sending never raises: losing a notification must not
take the engine down; :meth:`Notifier.send` returns whether the datagram went out.
"""

from __future__ import annotations

import os
import socket

ENV_SOCKET = "NOTIFY_SOCKET"
ENV_WATCHDOG_USEC = "WATCHDOG_USEC"
ENV_WATCHDOG_PID = "WATCHDOG_PID"


def socket_address(value: str | None) -> str | bytes | None:
    """The address to ``sendto`` for a ``$NOTIFY_SOCKET`` value (``@name`` -> abstract ``\\0name``)."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # vsock and other families: not used on the box


def watchdog_interval(environ: dict | None = None, pid: int | None = None) -> float | None:
    """Seconds systemd allows between ``WATCHDOG=1`` pings, or None when no watchdog is asked for.

    ``$WATCHDOG_PID``, when set, names the one process the watchdog applies to; any other process
    (a child, a forked helper) must not ping.
    """
    env = os.environ if environ is None else environ
    usec = env.get(ENV_WATCHDOG_USEC)
    if not usec:
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    if value <= 0:
        return None
    wpid = env.get(ENV_WATCHDOG_PID)
    if wpid:
        try:
            if int(wpid) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return value / 1_000_000


def format_message(fields: dict[str, object]) -> bytes:
    """``{"READY": 1, "STATUS": "x"}`` -> ``b"READY=1\\nSTATUS=x"``; newlines in values are flattened."""
    lines = []
    for key, value in fields.items():
        text = str(value).replace("\n", " ")
        lines.append(f"{key}={text}")
    return "\n".join(lines).encode()


class Notifier:
    """Sends sd_notify datagrams to the service manager that started this process (if any)."""

    def __init__(self, notify_socket: str | None = None):
        value = os.environ.get(ENV_SOCKET) if notify_socket is None else notify_socket
        self.address = socket_address(value)
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: object) -> bool:
        if self.address is None or not fields:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(format_message(fields), self.address)
            return True
        except OSError:
            return False

    def ready(self, status: str | None = None) -> bool:
        fields: dict[str, object] = {"READY": 1}
        if status:
            fields["STATUS"] = status
        fields["MAINPID"] = os.getpid()
        return self.send(**fields)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG=1)

    def watchdog_trigger(self) -> bool:
        """Ask systemd to act as if the watchdog expired now (the loop is known to be stuck)."""
        return self.send(WATCHDOG="trigger")

    def stopping(self, status: str | None = None) -> bool:
        fields: dict[str, object] = {"STOPPING": 1}
        if status:
            fields["STATUS"] = status
        return self.send(**fields)

    def status(self, text: str) -> bool:
        return self.send(STATUS=text)

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more start-up time (a cold numba cache compiles for a while before audio flows)."""
        return self.send(EXTEND_TIMEOUT_USEC=int(seconds * 1_000_000))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
