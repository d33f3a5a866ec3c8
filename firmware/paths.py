"""Where masterbox keeps things: one data root, one config file.

The data root is ``$MASTERBOX_HOME`` if set, else ``/var/lib/masterbox`` on the box (when it
exists and is writable), else ``./var`` for development. The config file is
``$MASTERBOX_CONFIG``, else ``/etc/masterbox/config.toml`` on the box, else ``./masterbox.toml``.
"""

from __future__ import annotations

import os
from pathlib import Path

BOX_ROOT = Path("/var/lib/masterbox")
BOX_CONFIG = Path("/etc/masterbox/config.toml")


def data_root() -> Path:
    env = os.environ.get("MASTERBOX_HOME")
    if env:
        return Path(env)
    if BOX_ROOT.is_dir() and os.access(BOX_ROOT, os.W_OK):
        return BOX_ROOT
    return Path.cwd() / "var"


def config_path() -> Path:
    env = os.environ.get("MASTERBOX_CONFIG")
    if env:
        return Path(env)
    if BOX_CONFIG.is_file():
        return BOX_CONFIG
    return Path.cwd() / "masterbox.toml"


def presets_dir() -> Path:
    return data_root() / "presets"


def captures_dir() -> Path:
    return data_root() / "captures"


def state_file() -> Path:
    return data_root() / "state.json"


def reference_file() -> Path:
    """The reference track prepared for the engine (firmware/reference.py): a cache, remade at will."""
    return data_root() / "cache" / "reference.f32"


def run_dir() -> Path:
    """Sockets and shared-memory names of the running box (engine control socket, meters)."""
    env = os.environ.get("MASTERBOX_RUN")
    return Path(env) if env else data_root() / "run"


def ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
