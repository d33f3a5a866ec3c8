"""The box's configuration file (TOML): audio device, web server, storage, front panel.

``load_config()`` returns the defaults below deep-merged with the file at
:func:`firmware.paths.config_path` (a missing file means all defaults). Unknown sections are
kept for the modules that own them; a malformed file raises :class:`ConfigError` naming the
file, the line and what is wrong. :func:`panel_spec` turns ``[panel]`` into a checked
:class:`hw.panel.PanelSpec` (the template with every key: ``firmware/config-template.toml``).
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
        # While the engine runs, ask the kernel to keep every CPU's wake-up latency at or below
        # this many microseconds (/dev/cpu_dma_latency; 0 = idle CPUs poll instead of sleeping).
        # -1 (default): leave the idle states alone. On bare metal with deep C-states 0 can
        # help; in a virtual machine it made the tail worse (docs/reliability.md, 2026-11-23).
        "cpu_latency_us": -1,
    },
    "web": {
        "host": "0.0.0.0",
        "port": 8080,
        "threads": 24,  # waitress worker threads: live streams + API requests
        "sse_max_clients": 16,  # live streams beyond this get 503 (the page polls instead)
        "sse_hz": 20.0,
        "sse_backlog": 65536,  # bytes unsent to one client before its frames are skipped
        "sse_max_seconds": 600.0,  # a stream ends after this; EventSource reconnects
        "max_body_bytes": 8 * 1024 * 1024,
        "login_attempts": 5,  # failed logins per address ...
        "login_window_s": 60.0,  # ... per this many seconds
        "claim_seconds": 120.0,
        "session_days": 30,
        "secure_cookies": False,  # True behind an HTTPS proxy
    },
    "storage": {"free_space_floor_mb": 500, "capture_format": "PCM_24", "capture_max_minutes": 0},
    "system": {"shutdown_command": "systemctl poweroff"},
    "panel": {},
}


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and line."""


def _number(lo: float, hi: float, integer: bool = False):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            return f"must be {'a whole number' if integer else 'a number'} from {lo:g} to {hi:g}"
        if not lo <= v <= hi:
            return f"{v!r} is out of range {lo:g}..{hi:g}"
        return None
    return check


def _one_of(*choices):
    def check(v):
        return None if v in choices and not isinstance(v, bool) else f"must be one of {', '.join(map(str, choices))}"
    return check


def _text(v):
    return None if isinstance(v, str) else "must be a string in quotes"


def _flag(v):
    return None if isinstance(v, bool) else "must be true or false"


# What each key of the sections other than [panel] (validated by hw.panel.spec) may hold.
RULES: dict[str, dict[str, Any]] = {
    "audio": {
        "backend": _one_of("alsa", "portaudio", "sim"), "device": _text, "capture_device": _text,
        "playback_device": _text, "rate": _one_of(44100, 48000, 88200, 96000),
        "period": _number(16, 8192, integer=True), "periods": _number(2, 16, integer=True),
        "format": _one_of("S16_LE", "S24_LE", "S24_3LE", "S32_LE", "FLOAT_LE"),
        "cpu_latency_us": _number(-1, 100000, integer=True), "cpu": _number(-1, 1023, integer=True),
    },
    "web": {
        "host": _text, "port": _number(0, 65535, integer=True), "threads": _number(2, 256, integer=True),
        "sse_max_clients": _number(0, 1024, integer=True), "sse_hz": _number(1, 60),
        "sse_backlog": _number(1024, 64 * 1024 * 1024, integer=True), "sse_max_seconds": _number(1, 86400),
        "max_body_bytes": _number(1024, 1 << 30, integer=True), "login_attempts": _number(1, 1000, integer=True),
        "login_window_s": _number(1, 86400), "claim_seconds": _number(5, 3600),
        "session_days": _number(1, 365, integer=True), "secure_cookies": _flag,
    },
    "storage": {
        "free_space_floor_mb": _number(0, 1e7), "capture_format": _one_of("PCM_24", "FLOAT"),
        "capture_max_minutes": _number(0, 1e6),
    },
    "system": {"shutdown_command": _text},
}


def _validate(cfg: dict[str, Any], path: Path, text: str) -> None:
    """Refuse a wrong type, value or unknown key in the checked sections, naming its line."""
    for section, rules in RULES.items():
        values = cfg.get(section)
        if not isinstance(values, dict):
            where = find_line(text, section)
            raise ConfigError(f"{path}{f' line {where}' if where else ''}: {section} must be a [{section}] table")
        for key, value in values.items():
            check = rules.get(key)
            problem = check(value) if check else f"unknown key (known: {', '.join(rules)})"
            if problem:
                where = find_line(text, section, key)
                raise ConfigError(f"{path}{f' line {where}' if where else ''}: [{section}] {key}: {problem}")


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
    _validate(cfg, path, text)
    cfg["_path"] = str(path)
    cfg["_text"] = text
    return cfg


def find_line(text: str, section: str, key: str | None = None) -> int | None:
    """1-based line of ``[section]`` (or of ``key`` inside it) in a TOML text, for error messages."""
    current = None
    header = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        head = line.split("#", 1)[0].strip()  # a header may carry a comment: [panel.knobs.tone]  # tilt
        if head.startswith("[") and head.endswith("]"):
            current = head.strip("[]").strip()
            if current == section:
                header = n
                if key is None:
                    return n
            continue
        if current == section and key is not None and "=" in line:
            if line.split("=", 1)[0].strip().strip('"') == key:
                return n
    return header


# -- [panel]: the front panel's pin map ----------------------------------------------------
_PANEL_KEYS = {"enabled", "refresh_hz", "status_led", "clip_led", "clip_hold", "adc", "knobs", "buttons", "meters"}
_KNOB_KEYS = {"param", "macro", "also_set", "pot", "encoder", "detents", "fine", "acceleration",
              "transitions_per_detent", "hysteresis", "pickup_window", "takeover", "centre_detent", "disabled"}
_BUTTON_KEYS = {"pin", "hold", "disabled"}
_METER_KEYS = {"kind", "source", "pins", "thresholds", "peak_hold", "pin", "scale", "span", "disabled"}
_GPIO_RANGE = range(0, 28)  # BCM GPIO 0-27 on the 40-pin header


def panel_spec(cfg: dict[str, Any]):
    """The ``[panel]`` section of a loaded config as a checked :class:`hw.panel.PanelSpec`.

    The file only needs what differs from the default map (:data:`hw.panel.DEFAULT_PANEL`):
    a ``[panel.knobs.NAME]``, ``[panel.meters.NAME]`` table replaces that default device
    (``disabled = true`` removes it), a ``[panel.buttons.ROLE]`` table changes that button's
    pin or hold time. Raises :class:`ConfigError` naming the file and line for an unknown
    parameter, macro, button, meter source or key, a bad value, or two devices on one pin.
    """
    from dsp import schema
    from hw.panel.panel import SOURCES
    from hw.panel.spec import (
        BUTTON_ROLES,
        DEFAULT_PANEL,
        AdcSpec,
        ButtonSpec,
        KnobSpec,
        MeterSpec,
        PanelSpec,
        default_centre_detent,
    )

    text = cfg.get("_text", "")
    where = cfg.get("_path", "config")
    section = cfg.get("panel", {}) or {}

    def line_of(sec: str, key: str | None = None) -> int | None:
        n = find_line(text, sec, key) if text else None
        if n is None and text and "." in sec:  # inline table: `name = { ... }` inside the parent
            parent, _, name = sec.rpartition(".")
            n = find_line(text, parent, name)
        return n

    def fail(sec: str, key: str | None, message: str):
        n = line_of(sec, key)
        at = f"{where} line {n}" if n else f"{where} [{sec}]"
        raise ConfigError(f"{at}: {message}")

    def table(value, sec: str) -> dict:
        if not isinstance(value, dict):
            fail(sec, None, f"[{sec}] must be a table")
        return value

    def unknown_keys(d: dict, allowed: set, sec: str):
        for k in d:
            if k not in allowed:
                fail(sec, k, f"unknown key {k!r} in [{sec}] (known: {', '.join(sorted(allowed))})")

    def gpio(value, sec: str, key: str) -> int:
        v = value
        if isinstance(v, str) and v.upper().startswith(("GPIO", "BCM")):
            v = v.upper().removeprefix("GPIO").removeprefix("BCM")
            v = int(v) if v.isdigit() else v
        if isinstance(v, bool) or not isinstance(v, int) or v not in _GPIO_RANGE:
            fail(sec, key, f"{key} = {value!r} is not a GPIO number (BCM 0-27, e.g. 17 or \"GPIO17\")")
        return v

    def number(d: dict, key: str, default, sec: str, lo: float, hi: float, integer: bool = False):
        if key not in d:
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)) \
                or not lo <= v <= hi:
            kind = "an integer" if integer else "a number"
            fail(sec, key, f"{key} = {v!r} must be {kind} in {lo:g}..{hi:g}")
        return v

    unknown_keys(section, _PANEL_KEYS, "panel")
    enabled = section.get("enabled", DEFAULT_PANEL.enabled)
    if not isinstance(enabled, bool):
        fail("panel", "enabled", "enabled must be true or false")
    refresh = number(section, "refresh_hz", DEFAULT_PANEL.refresh_hz, "panel", 30, 200)
    clip_hold = number(section, "clip_hold", DEFAULT_PANEL.clip_hold, "panel", 0, 10)

    # pins in use: pin -> (what, line); the first user of a pin keeps it
    used: dict[int, tuple[str, int | None]] = {}

    def claim(pin: int, what: str, sec: str, key: str):
        here = line_of(sec, key)
        if pin in used:
            other, other_line = used[pin]
            # lead with the line the person wrote (a default device has none)
            users = sorted([(here, what), (other_line, other)], key=lambda u: u[0] is None)
            n = users[0][0]
            at = f"{where} line {n}" if n else f"{where} [{sec}]"
            both = " and by ".join(f"{w} ({f'line {ln}' if ln else 'default pin map'})" for ln, w in users)
            raise ConfigError(f"{at}: GPIO{pin} is used twice: by {both}")
        used[pin] = (what, here)

    # -- ADC
    adc_cfg = table(section.get("adc", {}), "panel.adc")
    unknown_keys(adc_cfg, {"clock", "mosi", "miso", "select"}, "panel.adc")
    base = DEFAULT_PANEL.adc or AdcSpec()
    adc = AdcSpec(**{k: gpio(adc_cfg[k], "panel.adc", k) if k in adc_cfg else getattr(base, k)
                     for k in ("clock", "mosi", "miso", "select")})

    # -- knobs
    defaults = {k.name: k for k in DEFAULT_PANEL.knobs}
    knobs_cfg = table(section.get("knobs", {}), "panel.knobs")
    knobs: list[KnobSpec] = []
    channels: dict[int, str] = {}
    for name in list(defaults) + [n for n in knobs_cfg if n not in defaults]:
        sec = f"panel.knobs.{name}"
        if name not in knobs_cfg:
            k = defaults[name]
        else:
            d = table(knobs_cfg[name], sec)
            unknown_keys(d, _KNOB_KEYS, sec)
            if d.get("disabled") is True:
                continue
            if ("param" in d) == ("macro" in d):
                fail(sec, None, f"knob {name!r} needs exactly one of param = \"<parameter id>\" or macro = \"glue\"")
            param = macro = None
            if "param" in d:
                param = d["param"]
                if param not in schema.BY_ID:
                    close = [p.id for p in schema.PARAMS if str(param).split(".")[0] == p.id.split(".")[0]][:6]
                    hint = f" (known in that group: {', '.join(close)})" if close else ""
                    fail(sec, "param", f"knob {name!r}: unknown parameter {param!r}{hint}")
            else:
                macro = d["macro"]
                if macro not in schema.MACROS:
                    fail(sec, "macro", f"knob {name!r}: unknown macro {macro!r} (known: {', '.join(schema.MACROS)})")
            also = table(d.get("also_set", {}), sec)
            try:
                also = schema.validate(also, partial=True)
            except schema.SchemaErrors as e:
                fail(sec, "also_set", f"knob {name!r}: also_set: {e}")
            if ("pot" in d) == ("encoder" in d):
                fail(sec, None, f"knob {name!r} needs exactly one of pot = <MCP3008 channel> or encoder = [A, B, push]")
            kw: dict[str, Any] = {}
            if "pot" in d:
                kind = "pot"
                kw["channel"] = number(d, "pot", 0, sec, 0, 7, integer=True)
                kw["hysteresis"] = number(d, "hysteresis", 3, sec, 0, 64, integer=True)
                kw["pickup_window"] = number(d, "pickup_window", 0.02, sec, 0.0, 0.5)
                kw["centre_detent"] = number(d, "centre_detent", default_centre_detent(param), sec, 0.0, 0.2)
                kw["takeover"] = d.get("takeover", "pickup")
                if kw["takeover"] not in ("pickup", "jump"):
                    fail(sec, "takeover", "takeover must be \"pickup\" or \"jump\"")
            else:
                kind = "encoder"
                pins = d["encoder"]
                if not isinstance(pins, list) or len(pins) not in (2, 3):
                    fail(sec, "encoder", "encoder = [A, B] or [A, B, push] (GPIO numbers)")
                kw["pins"] = tuple(gpio(p, sec, "encoder") for p in pins)
                kw["detents"] = number(d, "detents", 96, sec, 1, 10000, integer=True)
                kw["fine"] = number(d, "fine", 10, sec, 1, 100, integer=True)
                kw["acceleration"] = number(d, "acceleration", 8.0, sec, 1, 50)
                kw["transitions_per_detent"] = number(d, "transitions_per_detent", 4, sec, 1, 4, integer=True)
                if kw["transitions_per_detent"] == 3:
                    fail(sec, "transitions_per_detent", "transitions_per_detent must be 1, 2 or 4")
            k = KnobSpec(name, kind, param=param, macro=macro, also_set=tuple(also.items()),
                         line=line_of(sec), **kw)
        if k.kind == "pot":
            if k.channel in channels:
                fail(sec, "pot", f"MCP3008 channel {k.channel} is used twice: by knob {name!r} and knob "
                                 f"{channels[k.channel]!r}")
            channels[k.channel] = name
        else:
            for pin in k.pins:
                claim(pin, f"knob {name!r}", sec, "encoder")
        knobs.append(k)
    if any(k.kind == "pot" for k in knobs):
        for key in ("clock", "mosi", "miso", "select"):
            claim(getattr(adc, key), f"the MCP3008 ({key})", "panel.adc", key)

    # -- buttons
    buttons_cfg = table(section.get("buttons", {}), "panel.buttons")
    for role in buttons_cfg:
        if role not in BUTTON_ROLES:
            fail(f"panel.buttons.{role}", None, f"unknown button {role!r} (known: {', '.join(BUTTON_ROLES)})")
    buttons: list[ButtonSpec] = []
    for b in DEFAULT_PANEL.buttons:
        sec = f"panel.buttons.{b.role}"
        d = table(buttons_cfg.get(b.role, {}), sec)
        unknown_keys(d, _BUTTON_KEYS, sec)
        if d.get("disabled") is True:
            continue
        pin = gpio(d["pin"], sec, "pin") if "pin" in d else b.pin
        hold = number(d, "hold", b.hold, sec, 0.1, 60)
        claim(pin, f"the {b.role} button", sec, "pin")
        buttons.append(ButtonSpec(b.role, pin, float(hold), line=line_of(sec)))

    # -- meters
    defaults_m = {m.name: m for m in DEFAULT_PANEL.meters}
    meters_cfg = table(section.get("meters", {}), "panel.meters")
    meters: list[MeterSpec] = []
    for name in list(defaults_m) + [n for n in meters_cfg if n not in defaults_m]:
        sec = f"panel.meters.{name}"
        if name not in meters_cfg:
            m = defaults_m[name]
        else:
            d = table(meters_cfg[name], sec)
            unknown_keys(d, _METER_KEYS, sec)
            if d.get("disabled") is True:
                continue
            kind = d.get("kind")
            if kind not in ("bar", "needle"):
                fail(sec, "kind", f"meter {name!r}: kind must be \"bar\" or \"needle\"")
            source = d.get("source")
            if source not in SOURCES:
                fail(sec, "source", f"meter {name!r}: unknown source {source!r} (known: {', '.join(SOURCES)})")
            if kind == "bar":
                pins = d.get("pins")
                th = d.get("thresholds")
                if not isinstance(pins, list) or not pins:
                    fail(sec, "pins", f"meter {name!r}: pins = [GPIO, ...] (bottom LED first)")
                if (not isinstance(th, list) or len(th) != len(pins)
                        or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in th)
                        or any(b <= a for a, b in zip(th, th[1:], strict=False))):
                    fail(sec, "thresholds", f"meter {name!r}: thresholds must be {len(pins)} ascending numbers, "
                                            "one per LED")
                m = MeterSpec(name, "bar", source, pins=tuple(gpio(p, sec, "pins") for p in pins),
                              thresholds=tuple(float(x) for x in th),
                              peak_hold=float(number(d, "peak_hold", 1.5, sec, 0, 30)), line=line_of(sec))
            else:
                if "pin" not in d:
                    fail(sec, None, f"meter {name!r}: a needle needs pin = <PWM-capable GPIO>")
                scale = d.get("scale", "vu")
                if scale not in ("vu", "linear"):
                    fail(sec, "scale", f"meter {name!r}: scale must be \"vu\" or \"linear\"")
                span = d.get("span", [0.0, 20.0])
                if (not isinstance(span, list) or len(span) != 2
                        or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in span)
                        or span[1] <= span[0]):
                    fail(sec, "span", f"meter {name!r}: span = [rest_dB, full_scale_dB], ascending")
                m = MeterSpec(name, "needle", source, pin=gpio(d["pin"], sec, "pin"), scale=scale,
                              span=(float(span[0]), float(span[1])), line=line_of(sec))
        sec = f"panel.meters.{name}"
        for pin in (m.pins if m.kind == "bar" else (m.pin,)):
            claim(pin, f"meter {name!r}", sec, "pins" if m.kind == "bar" else "pin")
        meters.append(m)

    # -- single LEDs
    leds = {}
    for key, default in (("status_led", DEFAULT_PANEL.status_pin), ("clip_led", DEFAULT_PANEL.clip_pin)):
        v = section.get(key, default)
        if v is False or v is None:
            leds[key] = None
            continue
        leds[key] = gpio(v, "panel", key)
        claim(leds[key], f"the {key.replace('_', ' ')}", "panel", key)

    return PanelSpec(enabled=enabled, refresh_hz=float(refresh), adc=adc, knobs=tuple(knobs), buttons=tuple(buttons),
                     meters=tuple(meters), status_pin=leds["status_led"], clip_pin=leds["clip_led"],
                     clip_hold=float(clip_hold))
