"""The box's configuration file (TOML): audio device, web server, storage, front panel.

``load_config()`` returns the defaults below deep-merged with the file at
:func:`firmware.paths.config_path` (a missing file means all defaults). Unknown sections are
kept for the modules that own them; a malformed file raises :class:`ConfigError` naming the
file, the line and what is wrong.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from firmware import paths

DEFAULTS: dict[str, Any] = {
    "audio": {
        "backend": "alsa",  # alsa | portaudio | sim
        "device": "default",
        "capture_device": "",  # empty: same as device
        "playback_device": "",
        "rate": 48000,
        "period": 128,
        "periods": 2,
        "format": "S32_LE",
    },
    "web": {"host": "0.0.0.0", "port": 8080},
    "storage": {"free_space_floor_mb": 500, "capture_format": "PCM_24", "capture_max_minutes": 0},
    "system": {"shutdown_command": "systemctl poweroff"},
    "panel": {},
}


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and line."""


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def load_config(path: Path | str | None = None) -> dict[str, Any]:
    path = Path(path) if path is not None else paths.config_path()
    if not path.exists():
        cfg = copy.deepcopy(DEFAULTS)
        cfg["_path"] = str(path)
        return cfg
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    cfg = _merge(DEFAULTS, data)
    cfg["_path"] = str(path)
    cfg["_text"] = text
    return cfg


def find_line(text: str, section: str, key: str | None = None) -> int | None:
    """1-based line of ``[section]`` (or of ``key`` inside it) in a TOML text, for error messages."""
    current = None
    header = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line.strip("[]").strip()
            if current == section:
                header = n
                if key is None:
                    return n
            continue
        if current == section and key is not None and "=" in line:
            if line.split("=", 1)[0].strip().strip('"') == key:
                return n
    return header
