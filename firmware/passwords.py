"""The web UI's one password and the session signing key, kept in the data root.

There is no default password: until ``masterbox passwd`` (or a claim from the front panel)
writes ``web/auth.json``, every page leads to the setup page. The file holds only a werkzeug
password hash and a *generation* number that every successful change increments; sessions
carry the generation they logged in with, so changing the password logs every other browser
out. Both files are written atomically and readable by the box's user only.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from firmware import paths
from firmware.atomic import write_atomic
from firmware.names import has_control

MIN_LENGTH = 8
MAX_LENGTH = 256  # hashing a megabyte "password" is a cheap denial of service


class PasswordError(ValueError):
    """A password that cannot be used; the message says why."""


def web_dir(root: Path | None = None) -> Path:
    return (Path(root) if root is not None else paths.data_root()) / "web"


def check_new_password(password: object) -> str:
    if not isinstance(password, str):
        raise PasswordError("password must be a string")
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"password must be at most {MAX_LENGTH} characters long")
    if has_control(password):
        raise PasswordError("password must not contain control characters")
    return password


class PasswordFile:
    """``<data root>/web/auth.json``: ``{"hash": ..., "generation": N, "set_at": epoch}``."""

    def __init__(self, directory: Path | None = None):
        self.directory = Path(directory) if directory is not None else web_dir()
        self.path = self.directory / "auth.json"

    def _load(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # An unreadable file must not fall back to "no password" (that would reopen the
            # claim); treat it as set-but-unusable so only the console can repair it.
            return {"hash": "", "generation": -1}
        if not isinstance(data, dict) or not isinstance(data.get("hash"), str):
            return {"hash": "", "generation": -1}
        return data

    @property
    def is_set(self) -> bool:
        return self._load() is not None

    @property
    def generation(self) -> int:
        data = self._load()
        return int(data.get("generation", 0)) if data else 0

    def verify(self, password: object) -> bool:
        data = self._load()
        if not data or not data["hash"] or not isinstance(password, str) or len(password) > MAX_LENGTH:
            return False
        return check_password_hash(data["hash"], password)

    def set(self, password: str) -> int:
        """Store a new password (checked), bump the generation; returns the new generation."""
        check_new_password(password)
        data = self._load() or {}
        generation = max(int(data.get("generation", 0)), 0) + 1
        record = {"hash": generate_password_hash(password), "generation": generation, "set_at": int(time.time())}
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        write_atomic(self.path, json.dumps(record) + "\n", mode=0o600)
        return generation


def secret_key(directory: Path | None = None) -> bytes:
    """The session signing key: 32 random bytes made once per box and kept across restarts."""
    directory = Path(directory) if directory is not None else web_dir()
    path = directory / "secret_key"
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    write_atomic(path, key, mode=0o600)
    return key
