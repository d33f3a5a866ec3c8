"""What the box accepts in a name a person gave it: how long it may be, and which characters are control
characters. (Also how a file names the settings it was made with: :func:`preset_label`.)

**Control characters: one definition.** :func:`is_control` is the one test, for every name or text a user
gives (preset names, capture names the web takes, uploads' file names, ``master --preset-label``, a job's
label, the ALSA device of the System page, passwords). Until 2026-11 each had its own: the web and the
preset store looked at Unicode categories (two different sets), the device field and passwords at ASCII
codes 0-31 and 127, master labels at ``Cc`` only, so a name one part took another refused (an upload
called "🏳️‍🌈 mix.wav" became a capture the web could then neither download nor delete). The callers keep
their own policy (refuse, or replace with a space or ``_``); this module only says which characters:

* ``Cc``: C0 controls, DEL and the C1 controls (a line break, a tab, an escape);
* ``Cf``: invisible format characters: bidi overrides that show a name backwards, zero-width joiners and
  spaces that make two names look the same, a byte order mark;
* ``Cs``: lone surrogates, which are no text at all (UTF-8 cannot hold them);
* ``Zl``, ``Zp``: the line and paragraph separators U+2028/U+2029, line breaks in all but name.

**Lengths.** File names hold 255 bytes, not 255 characters.

A capture called NAME is the files ``NAME.wav`` and ``NAME.json``, and while one is written a
temporary file beside it: ``.NAME.json.XXXXXXXX.tmp`` (:func:`firmware.atomic.write_atomic`), or
for a master converted to another rate ``.NAME.wav.96000.XXXXXXXX.tmp.wav``. Linux filesystems
(ext4, and FAT/exFAT sticks counting UTF-16 units, which UTF-8 bytes never undercount) refuse a
name over 255 bytes: a mix called with 96 Japanese characters (3 bytes each) fails with "File name
too long" at the last step. So every name the box makes from what a user typed (an upload's
file name, a master's ``NAME-master``) is cut to :data:`NAME_MAX_BYTES` of UTF-8 (and to the
:data:`NAME_MAX_CHARS` characters the web takes) with :func:`fit`, never inside a character; a
name it cannot cut (an album's outputs are named by ``masterbox album``) is checked with
:func:`fits` before anything is started.
"""

from __future__ import annotations

import os
import unicodedata

FILE_NAME_BYTES = 255     # NAME_MAX: one file name, in bytes
WRAP_BYTES = 30           # the most the box adds around a capture's name: "." ".wav" ".96000" ".XXXXXXXX" ".tmp.wav"
NAME_MAX_BYTES = 200      # the names the box makes: room left for WRAP_BYTES and an album's "-album-2" after them
NAME_MAX_CHARS = 120      # and characters: the web takes a name of at most this many (webui.errors.check_name)
CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})   # see the module's docstring


def is_control(char: str) -> bool:
    """Whether ``char`` (one character) is a control character in the box's one sense (the module's
    docstring): Unicode category Cc, Cf, Cs, Zl or Zp."""
    return unicodedata.category(char) in CONTROL_CATEGORIES


def has_control(text: str) -> bool:
    """Whether ``text`` holds any control character (:func:`is_control`)."""
    return any(is_control(c) for c in text)


def cut_bytes(data: bytes, size: int) -> str:
    """The first ``size`` bytes of a file name's ``data`` (``os.fsencode``), never ending inside a UTF-8
    character; a name that is not UTF-8 at all is cut as its bytes are."""
    data = data[:max(size, 0)]
    for drop in range(4):
        try:
            return data[:len(data) - drop].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return os.fsdecode(data)


def fit(name: str, max_bytes: int = NAME_MAX_BYTES, max_chars: int = NAME_MAX_CHARS) -> str:
    """``name`` cut to at most ``max_bytes`` bytes of UTF-8 and ``max_chars`` characters, never inside a
    character; trailing spaces dropped when it was cut."""
    cut = name[:max(max_chars, 0)]
    data = cut.encode("utf-8")
    if len(data) > max_bytes:
        cut = cut_bytes(data, max_bytes)
    return name if cut == name else cut.rstrip()


def fits(name: str) -> bool:
    """Whether every file the box makes for a capture called ``name`` (:data:`WRAP_BYTES` around it) has a
    name the filesystem takes, and the web can address it."""
    return len(name.encode("utf-8")) + WRAP_BYTES <= FILE_NAME_BYTES and len(name) <= NAME_MAX_CHARS


def preset_label(preset: str | None, modified: bool = False) -> str:
    """What a recording or a master says its settings were: the preset's name, ``NAME (modified)`` for the
    box's settings changed since that preset was recalled (what the Live page shows as "modified"), "" for
    settings that came from no preset. One function for both: a live capture's Broadcast Wave chunk
    (:func:`firmware.capture_writer.capture_bext`) and a mastering job's ``master --preset-label``
    (:mod:`firmware.capture_master`) say the same of the same settings. A job passes every value with
    ``--set`` over ``transparent``, so without the label every master would say "transparent"; the name is
    passed as text, not as ``--preset NAME``, because that preset may be renamed or deleted before the child
    starts. A control character (a state file edited by hand) becomes a space: the label is one line of the
    coding history, and metadata is no reason to fail a job or a recording."""
    if not preset:
        return ""
    name = "".join(" " if is_control(c) else c for c in preset)
    return f"{name} (modified)" if modified else name


def settings_phrase(label: str | None) -> str:
    """How a file names the settings it was made with: ``preset LABEL`` (:func:`preset_label`, e.g.
    ``streaming (modified)``), or ``no preset``, so a file made from values that came from no preset does
    not claim one."""
    return f"preset {label}" if label else "no preset"
