"""The preset library: read-only factory presets plus the user's own, one JSON file each.

File format (``docs/interfaces.md``)::

    {"format": "masterbox-preset", "schema_version": 2, "name": "streaming",
     "description": "one line", "params": {"<every schema id>": <user value>, ...}}

Why it is built this way:

* **Names are whatever a person types** (any Unicode, ``AC/DC ../master`` included), except
  a name that looks like a path (``../x``, ``/x``, ``..``, ``.hidden``: :func:`path_like`): the
  store refuses to save, rename or import under one, with the web's own message, so the web, the
  CLI and the front panel share one rule. The file name is derived, never taken from the name: an
  ASCII slug plus a hash of the case-folded name, so no name can reach outside the folder and two
  names differing only in case are the same preset. The real name lives inside the file.
* **Every write is atomic** (:func:`firmware.atomic.write_atomic`): after a power cut or a
  ``kill -9`` a preset file holds its old or its new content, never a mix.
* **Validation names the field and why** (unknown parameter, wrong type, out of range,
  missing), from :func:`dsp.schema.validate`. An invalid import raises before anything is
  written: it changes nothing.
* **Nothing is lost across versions**: unknown top-level fields are kept and written back;
  files older than :data:`dsp.schema.SCHEMA_VERSION` are migrated on load
  (:data:`MIGRATIONS`); files from a *newer* firmware load with the parameters this firmware
  knows, and the ones it does not know are kept aside and written back on save.
* **Listing is fast**: one ``scandir`` per call, and a file is parsed again only when its
  (inode, size, mtime) changed. The listing rows are also kept in a hidden cache file
  (``.index.json``, keyed by the same stat signature and by a fingerprint of the parameter
  schema), so the first listing after boot does not parse every file either. 1,000 presets
  list in a few milliseconds.
* A damaged file in the folder never stops the store from loading: it is listed with its
  error and can be deleted or overwritten.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
import time
import unicodedata
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsp import schema
from firmware import paths
from firmware.atomic import write_atomic
from firmware.names import has_control

FORMAT = "masterbox-preset"
MAX_FILE_BYTES = 256 * 1024  # a full preset is ~6 KB; anything huge is refused unread
MAX_NAME_CHARS = 80
MAX_ZIP_ENTRIES = 5000
MAX_ZIP_BYTES = 64 * 1024 * 1024
FACTORY_DIR = Path(schema.__file__).resolve().parent / "presets"
_KNOWN_KEYS = ("format", "schema_version", "name", "description", "params")


class PresetError(ValueError):
    """A preset operation that cannot be done; ``errors`` lists (field, reason) pairs."""

    def __init__(self, message: str, errors: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.errors = errors or []


# -- migrations ---------------------------------------------------------------------------
def _from_v0(doc: dict) -> dict:
    """v0 = files written before presets carried a schema version: ``params`` could be a
    partial set (the rest meant "default"). v1 requires a complete set."""
    params = doc.get("params")
    if isinstance(params, Mapping):
        doc["params"] = {**schema.defaults(), **params}
    return doc


_ADDED_IN_V2 = ("eq.tone_db", "eq.tone_freq")


def _from_v1(doc: dict) -> dict:
    """v2 added the tone control (``eq.tone_db``, ``eq.tone_freq``). A v1 file gets it at rest
    (0 dB, flat), so it sounds as it did; its bands, including any tilt the TONE knob used to set
    on band 4, are kept as they were."""
    params = doc.get("params")
    if isinstance(params, Mapping):
        doc["params"] = {**params, **{k: schema.BY_ID[k].default for k in _ADDED_IN_V2 if k not in params}}
    return doc


MIGRATIONS: dict[int, Callable[[dict], dict]] = {0: _from_v0, 1: _from_v1}  # version N -> N + 1


def migrate(doc: dict) -> dict:
    """Bring a preset document up to :data:`schema.SCHEMA_VERSION` (in place, returned)."""
    v = doc.get("schema_version", 0)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise PresetError(f"schema_version must be a whole number, got {v!r}", [("schema_version", "not a version")])
    while v < schema.SCHEMA_VERSION:
        step = MIGRATIONS.get(v)
        if step is None:
            raise PresetError(f"no migration from schema version {v}", [("schema_version", f"{v} is not supported")])
        doc = step(doc)
        v += 1
        doc["schema_version"] = v
    return doc


# -- names --------------------------------------------------------------------------------
def clean_name(name: Any) -> str:
    """A preset name as stored: NFC, trimmed, no control characters, not empty, not too long."""
    if not isinstance(name, str):
        raise PresetError(f"a preset name must be text, got {type(name).__name__}", [("name", "not text")])
    name = unicodedata.normalize("NFC", name).strip()
    if not name:
        raise PresetError("a preset name cannot be empty", [("name", "empty")])
    if has_control(name):
        raise PresetError("a preset name cannot contain control characters", [("name", "control characters")])
    if len(name) > MAX_NAME_CHARS:
        raise PresetError(f"a preset name is at most {MAX_NAME_CHARS} characters", [("name", "too long")])
    return name


def path_like(name: str) -> str | None:
    """Why ``name`` looks like a path (a leading separator, a ``.`` or ``..`` segment, a leading dot), or None.

    The store maps any name to a safe file name, so such a name could not escape the folder; but
    the web refuses it everywhere it takes a name (:func:`webui.errors.check_name` asks this), so a
    preset that came in under one could be neither recalled, renamed, exported nor deleted there.
    The store refuses to give a preset such a name (:func:`new_name`: save, save-as, duplicate,
    rename, imports), whoever asks. A file written before that rule still loads under its name, so
    it can be renamed.
    """
    stripped = name.strip()
    parts = stripped.replace("\\", "/").split("/")
    if stripped[:1] in ("/", "\\") or any(part.strip() in (".", "..") for part in parts):
        return f"must not look like a path ('/', '..'): got {stripped!r}"
    if stripped.startswith("."):
        return f"must not start with '.' (got {stripped!r})"
    return None


def new_name(name: Any) -> str:
    """A name a preset may be given (:func:`clean_name`), refused as the web refuses it if it looks like a
    path: the message is the one :func:`webui.errors.check_name` gives for a "preset name"."""
    name = clean_name(name)
    why = path_like(name)
    if why is not None:
        raise PresetError(f"preset name {why}", [("name", why)])
    return name


def _importable(p: Preset) -> Preset:
    """``p`` if its name is one the web can address, else :class:`PresetError` saying why not."""
    new_name(p.name)
    return p


def file_name(name: str) -> str:
    """The safe file name of a preset: ASCII slug + hash of the case-folded name (never a path)."""
    key = clean_name(name).casefold()  # names equal but for case share one file (slug included)
    slug = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", slug).strip("-").lower()[:40].strip("-") or "preset"
    return f"{slug}-{hashlib.sha1(key.encode('utf-8')).hexdigest()[:10]}.json"


# -- the preset record --------------------------------------------------------------------
# the keys of a listing row (Preset.summary), in order
ROW_FIELDS = ("name", "description", "factory", "file", "target_lufs", "level_to_target", "ceiling_dbtp", "error")


@dataclass
class Preset:
    name: str
    params: dict[str, Any]
    description: str = ""
    factory: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # unknown top-level fields, kept
    extra_params: dict[str, Any] = field(default_factory=dict)  # params of a newer firmware, kept
    source_version: int = schema.SCHEMA_VERSION
    file: str | None = None

    def to_doc(self) -> dict[str, Any]:
        params = {**self.params, **self.extra_params}
        version = max(self.source_version, schema.SCHEMA_VERSION) if self.extra_params else schema.SCHEMA_VERSION
        return {**self.extra, "format": FORMAT, "schema_version": version, "name": self.name,
                "description": self.description, "params": params}

    def to_json(self) -> str:
        return json.dumps(self.to_doc(), indent=1, ensure_ascii=False, sort_keys=False) + "\n"

    def summary(self) -> dict[str, Any]:
        """The listing's row (ROW_FIELDS, which the listing cache's fingerprint covers)."""
        return dict(zip(ROW_FIELDS, (self.name, self.description, self.factory, self.file,
                                     self.params.get("target.lufs"),
                                     bool(self.extra.get("level_to_target", True)),   # False: `master` keeps the level
                                     self.params.get("lim.ceiling_dbtp"), None), strict=True))


def parse_doc(doc: Any, *, name: str | None = None, factory: bool = False, file: str | None = None) -> Preset:
    """Validate a decoded preset document (any version) into a :class:`Preset`."""
    if not isinstance(doc, dict):
        raise PresetError(f"a preset must be a JSON object, got {type(doc).__name__}", [("preset", "not an object")])
    fmt = doc.get("format", FORMAT)
    if fmt != FORMAT:
        raise PresetError(f"not a masterbox preset (format {fmt!r})", [("format", f"must be {FORMAT!r}")])
    doc = migrate(dict(doc))
    version = doc["schema_version"]
    nm = clean_name(name if name is not None else doc.get("name"))
    desc = doc.get("description", "")
    if not isinstance(desc, str):
        raise PresetError("description must be text", [("description", f"must be text, got {type(desc).__name__}")])
    params = doc.get("params")
    if not isinstance(params, Mapping):
        raise PresetError("params must be an object of id: value", [("params", "missing or not an object")])
    extra_params: dict[str, Any] = {}
    if version > schema.SCHEMA_VERSION:  # newer firmware: keep what we do not know, default what is missing
        extra_params = {k: v for k, v in params.items() if k not in schema.BY_ID}
        params = {**schema.defaults(), **{k: v for k, v in params.items() if k in schema.BY_ID}}
    try:
        values = schema.validate(params)
    except schema.SchemaErrors as e:
        errs = [(x.field, x.reason) for x in e.errors]
        shown = "; ".join(f"{f}: {r}" for f, r in errs[:8]) + (f"; and {len(errs) - 8} more" if len(errs) > 8 else "")
        raise PresetError(f"invalid preset {nm!r}: {shown}", errs) from None
    extra = {k: v for k, v in doc.items() if k not in _KNOWN_KEYS}
    return Preset(nm, values, desc[:500], factory, extra, extra_params, version, file)


def parse_bytes(data: bytes | str, **kw) -> Preset:
    """Decode and validate preset JSON (refusing huge, non-UTF-8 or malformed input)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_FILE_BYTES:
        raise PresetError(f"preset file too large ({len(data)} bytes, at most {MAX_FILE_BYTES})",
                          [("file", "too large")])
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise PresetError("preset file is not UTF-8 text", [("file", "not UTF-8")]) from None
    except (ValueError, RecursionError) as e:
        raise PresetError(f"preset file is not valid JSON: {e}", [("file", "not valid JSON")]) from None
    return parse_doc(doc, **kw)


def _refuse_constant(c: str):
    raise ValueError(f"{c} is not a number JSON allows")


def _read_limited(path: Path) -> bytes:
    with open(path, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    return data


def _read_entry(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """One zip entry's bytes, or :class:`PresetError` when the entry is damaged or cannot be read
    (a CRC mismatch or bad header: BadZipFile; damaged deflate data: zlib.error; cut short:
    EOFError; an unsupported compression method: NotImplementedError; encrypted: RuntimeError)."""
    import lzma
    import zlib

    try:
        return z.read(info)
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, NotImplementedError,
            RuntimeError, ValueError) as e:
        raise PresetError(f"damaged or unreadable entry: {e}", [("file", "damaged")]) from None


# -- the on-disk listing cache --------------------------------------------------------------
INDEX_FILE = ".index.json"  # hidden: never taken for a preset


def _schema_fingerprint() -> str:
    """Changes whenever the parameter table or the listing's row does (ROW_FIELDS), so a cached validity
    verdict or row is never stale."""
    table = {"params": schema.describe(), "row": ROW_FIELDS}
    return hashlib.sha1(json.dumps(table, sort_keys=True, default=str).encode()).hexdigest()[:16]


class _Listed:
    """A user preset known only from the listing cache: enough to list it, loaded in full on use."""

    factory = False

    def __init__(self, row: dict[str, Any]):
        self.row = row
        self.name = row["name"]
        self.file = row["file"]

    def summary(self) -> dict[str, Any]:
        return dict(self.row)


# -- the store ----------------------------------------------------------------------------
class PresetStore:
    """Factory presets (read-only) and user presets in :func:`firmware.paths.presets_dir`."""

    def __init__(self, user_dir: Path | str | None = None, factory_dir: Path | str | None = None):
        self.user_dir = Path(user_dir) if user_dir is not None else paths.presets_dir()
        self.factory_dir = Path(factory_dir) if factory_dir is not None else FACTORY_DIR
        self._lock = threading.RLock()
        self._cache: dict[tuple[str, str], tuple[tuple, Preset | _Listed | PresetError]] = {}
        self._disk_index: dict[str, Any] | None = None  # the listing cache file, read once
        self._index_dirty = False
        self._changes = 0       # user preset files written or removed through this store (see `version`)
        self._folder_sig: tuple | None = None   # the user folder's (inode, mtime) when `version` last looked
        self._folder_moves = 0  # times it had moved: another process (``masterbox presets``) changed it
        self._sweep_temp_files()

    @property
    def version(self) -> int:
        """A number that grows with every change to the user presets: pages that list the presets (the
        Live page's quick recall, the Presets page) list them again when it moves (it is in the state
        they follow).

        It counts what this store writes, renames or removes, and also each time the user folder's
        modification time has moved since the last look: a ``masterbox presets import`` or ``delete``
        run from a shell is another process with its own store, and every file it writes or removes
        is a rename or an unlink in that folder. One ``stat`` per look; the listing cache this store
        writes there does not count."""
        sig = self._folder_stat()
        if sig != self._folder_sig:
            with self._lock:
                if sig != self._folder_sig:
                    self._folder_sig = sig
                    self._folder_moves += 1
        return self._changes + self._folder_moves

    def _folder_stat(self) -> tuple | None:
        try:
            st = os.stat(self.user_dir)
            return st.st_ino, st.st_mtime_ns
        except OSError:
            return None

    # -- reading ------------------------------------------------------------------------
    def _scan(self, directory: Path, factory: bool) -> list[Preset | tuple[str, PresetError]]:
        out: list = []
        kind = "f" if factory else "u"
        seen = set()
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            entries = []
        for e in entries:
            if e.name.startswith(".") or not e.name.endswith(".json"):
                continue
            try:
                st = e.stat()
            except FileNotFoundError:
                continue
            if not e.is_file():
                continue
            key = (kind, e.name)
            seen.add(key)
            sig = (st.st_ino, st.st_size, st.st_mtime_ns)
            hit = self._cache.get(key)
            if hit is None or hit[0] != sig:
                item = None if factory else self._from_disk_index(e.name, sig)
                if item is None:
                    item = self._load(Path(e.path), factory, st.st_size)
                    self._index_dirty = self._index_dirty or not factory
                self._cache[key] = (sig, item)
                hit = self._cache[key]
            item = hit[1]
            out.append(item if not isinstance(item, PresetError) else (e.name, item))
        gone = [k for k in self._cache if k[0] == kind and k not in seen]
        for key in gone:
            del self._cache[key]
        if not factory and (self._index_dirty or gone):
            self._write_disk_index()
        return out

    def _from_disk_index(self, file: str, sig: tuple) -> _Listed | PresetError | None:
        if self._disk_index is None:
            self._disk_index = {}
            try:
                with open(self.user_dir / INDEX_FILE, "rb") as f:
                    doc = json.loads(f.read())
                if doc.get("schema") == _schema_fingerprint() and isinstance(doc.get("entries"), dict):
                    self._disk_index = doc["entries"]
            except (OSError, ValueError, AttributeError):
                pass  # no cache, or a torn one: rebuilt from the files
        entry = self._disk_index.get(file)
        if not isinstance(entry, dict) or entry.get("sig") != list(sig):
            return None
        if entry.get("error"):
            return PresetError(entry["error"], [tuple(x) for x in entry.get("errors", [])])
        row = entry.get("row")
        return _Listed(row) if isinstance(row, dict) and row.get("file") == file else None

    def _write_disk_index(self) -> None:
        """Save the listing cache (no fsync: it is rebuilt from the files if a crash tears it)."""
        entries: dict[str, Any] = {}
        for (kind, file), (sig, item) in self._cache.items():
            if kind != "u":
                continue
            if isinstance(item, PresetError):
                entries[file] = {"sig": list(sig), "error": str(item), "errors": [list(x) for x in item.errors]}
            else:
                entries[file] = {"sig": list(sig), "row": item.summary()}
        self._disk_index = entries
        self._index_dirty = False
        seen = self._folder_stat() == self._folder_sig   # no move from elsewhere left to count
        try:
            tmp = self.user_dir / f"{INDEX_FILE}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps({"schema": _schema_fingerprint(), "entries": entries}, ensure_ascii=False))
            os.replace(tmp, self.user_dir / INDEX_FILE)
            if seen:
                self._folder_sig = self._folder_stat()   # the cache's own write is no change to the presets
        except OSError:
            pass  # a read-only or full disk only costs speed

    def _full(self, item: Preset | _Listed) -> Preset:
        """A preset in full (loads it when only its listing row is known)."""
        if isinstance(item, Preset):
            return item
        p = self._user_direct_file(item.file)
        if not isinstance(p, Preset):
            raise p if isinstance(p, PresetError) else PresetError(f"{item.file}: gone", [("file", "not found")])
        return p

    @staticmethod
    def _load(path: Path, factory: bool, size: int) -> Preset | PresetError:
        if size > MAX_FILE_BYTES:
            return PresetError(f"{path.name}: file too large ({size} bytes)", [("file", "too large")])
        try:
            return parse_bytes(_read_limited(path), factory=factory, file=path.name)
        except PresetError as e:
            return PresetError(f"{path.name}: {e}", e.errors)
        except OSError as e:
            return PresetError(f"{path.name}: cannot read: {e.strerror}", [("file", "unreadable")])

    def _all(self) -> tuple[dict[str, Preset], dict[str, Preset], list[tuple[str, PresetError]]]:
        """(factory by key, user by key, broken files); key = case-folded name."""
        with self._lock:
            factory, user, broken = {}, {}, []
            for item in self._scan(self.factory_dir, True):
                if isinstance(item, Preset):
                    factory[item.name.casefold()] = item
            for item in self._scan(self.user_dir, False):
                if isinstance(item, (Preset, _Listed)):
                    key = item.name.casefold()
                    if key in factory:
                        broken.append((item.file, PresetError(f"{item.file}: name {item.name!r} is a factory preset")))
                    elif key not in user or item.file == file_name(item.name):  # a hand-copied twin loses
                        user[key] = item
                else:
                    broken.append(item)
            return factory, user, broken

    def _factory(self) -> dict[str, Preset]:
        with self._lock:
            return {p.name.casefold(): p for p in self._scan(self.factory_dir, True) if isinstance(p, Preset)}

    def _user_direct(self, name: str) -> Preset | PresetError | None:
        """The user preset stored under the name's own file name (one stat, no folder scan)."""
        item = self._user_direct_file(file_name(name))
        if isinstance(item, Preset) and item.name.casefold() != clean_name(name).casefold():
            return None
        return item

    def _user_direct_file(self, fn: str) -> Preset | PresetError | None:
        path = self.user_dir / fn
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        with self._lock:
            key, sig = ("u", fn), (st.st_ino, st.st_size, st.st_mtime_ns)
            hit = self._cache.get(key)
            if hit is None or hit[0] != sig or isinstance(hit[1], _Listed):
                if hit is None or hit[0] != sig:
                    self._index_dirty = True
                hit = self._cache[key] = (sig, self._load(path, False, st.st_size))
            return hit[1]

    def list(self, include_broken: bool = True) -> list[dict[str, Any]]:
        """Summaries, factory presets first, then the user's, each sorted by name."""
        factory, user, broken = self._all()
        rows = [p.summary() for p in sorted(factory.values(), key=lambda p: p.name.casefold())]
        rows += [p.summary() for p in sorted(user.values(), key=lambda p: p.name.casefold())]
        if include_broken:
            rows += [{"name": None, "description": "", "factory": False, "file": f, "target_lufs": None,
                      "ceiling_dbtp": None, "error": str(e)} for f, e in sorted(broken, key=lambda b: b[0])]
        return rows

    def names(self) -> list[str]:
        return [r["name"] for r in self.list(include_broken=False)]

    def get(self, name: str) -> Preset:
        key = clean_name(name).casefold()
        p = self._factory().get(key)
        if p is not None:
            return p
        direct = self._user_direct(name)
        if isinstance(direct, Preset):
            return direct
        if isinstance(direct, PresetError):
            raise direct
        p = self._all()[1].get(key)  # a file copied in by hand under another file name
        if p is None:
            raise PresetError(f"no preset named {name!r}", [("name", "not found")])
        return self._full(p)

    def exists(self, name: str) -> bool:
        try:
            self.get(name)
            return True
        except PresetError:
            return False

    def is_factory(self, name: str) -> bool:
        return clean_name(name).casefold() in self._factory()

    # -- writing ------------------------------------------------------------------------
    def _write(self, p: Preset) -> Preset:
        self.user_dir.mkdir(parents=True, exist_ok=True)
        p = Preset(p.name, dict(p.params), p.description, False, dict(p.extra), dict(p.extra_params),
                   p.source_version, file_name(p.name))
        write_atomic(self.user_dir / p.file, p.to_json())
        self._changes += 1
        return p

    def save(self, name: str, params: Mapping[str, Any], description: str | None = None,
             *, overwrite: bool = True) -> Preset:
        """Write a user preset (a complete, valid parameter set). Factory names and names that look
        like a path (:func:`new_name`) are refused."""
        name = new_name(name)
        with self._lock:
            if self.is_factory(name):
                raise PresetError(f"{name!r} is a factory preset and cannot be changed; save it under another name",
                                  [("name", "factory preset")])
            old = self._user_direct(name)
            if isinstance(old, PresetError):
                old = None  # a damaged file under this name: the save replaces it
            if old is not None and not overwrite:
                raise PresetError(f"a preset named {name!r} already exists", [("name", "exists")])
            p = parse_doc({"format": FORMAT, "schema_version": schema.SCHEMA_VERSION, "name": name,
                           "description": description if description is not None else (old.description if old else ""),
                           "params": dict(params)})
            if old is not None:
                p.extra, p.extra_params, p.source_version = old.extra, old.extra_params, old.source_version
            written = self._write(p)
            if old is not None and old.file and old.file != written.file:
                self._unlink(old.file)  # a file copied in by hand under another file name
            return written

    def save_as(self, name: str, params: Mapping[str, Any], description: str | None = None) -> Preset:
        return self.save(name, params, description, overwrite=False)

    def rename(self, old: str, new: str) -> Preset:
        new = new_name(new)
        with self._lock:
            p = self.get(old)
            if p.factory:
                raise PresetError(f"{p.name!r} is a factory preset and cannot be renamed", [("name", "factory preset")])
            if new.casefold() != p.name.casefold() and self.exists(new):
                raise PresetError(f"a preset named {new!r} already exists", [("name", "exists")])
            old_file = p.file
            p = Preset(new, p.params, p.description, False, p.extra, p.extra_params, p.source_version)
            written = self._write(p)  # new file first: a crash in between leaves both, never neither
            if old_file and old_file != written.file:
                self._unlink(old_file)
            return written

    def duplicate(self, name: str, new: str | None = None) -> Preset:
        with self._lock:
            p = self.get(name)
            if new is None:
                base = f"{p.name} copy"
                new, n = base, 1
                while self.exists(new):
                    n += 1
                    new = f"{base} {n}"
            return self.save(new, p.params, p.description, overwrite=False)

    def delete(self, name: str) -> None:
        with self._lock:
            try:
                p = self.get(name)
            except PresetError:
                fn = file_name(name)
                if (self.user_dir / fn).exists():  # a damaged file under this name: let it go
                    self._unlink(fn)
                    return
                raise
            if p.factory:
                raise PresetError(f"{p.name!r} is a factory preset and cannot be deleted", [("name", "factory preset")])
            self._unlink(p.file)

    def delete_file(self, file: str) -> None:
        """Remove a damaged file shown in the listing (by its file name, never a path)."""
        if Path(file).name != file or not file.endswith(".json") or file.startswith("."):
            raise PresetError(f"not a preset file name: {file!r}", [("file", "bad name")])
        if not (self.user_dir / file).exists():
            raise PresetError(f"no preset file {file!r}", [("file", "not found")])
        self._unlink(file)

    def _unlink(self, file: str) -> None:
        from firmware.atomic import fsync_dir

        (self.user_dir / file).unlink(missing_ok=True)
        self._changes += 1
        fsync_dir(self.user_dir)

    # -- import / export ----------------------------------------------------------------
    def export_json(self, name: str) -> str:
        return self.get(name).to_json()

    def import_json(self, data: bytes | str, *, name: str | None = None, overwrite: bool = False) -> Preset:
        """Import one preset; it is fully validated before anything is written."""
        p = _importable(parse_bytes(data, name=name))
        with self._lock:
            if self.is_factory(p.name):
                raise PresetError(f"{p.name!r} is the name of a factory preset; import it under another name",
                                  [("name", "factory preset")])
            if not overwrite and self.exists(p.name):
                raise PresetError(f"a preset named {p.name!r} already exists", [("name", "exists")])
            return self._write(p)

    def export_zip(self, include_factory: bool = False) -> bytes:
        """Every user preset (and optionally the factory ones) as one zip of JSON files."""
        factory, user, _ = self._all()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for item in list(user.values()) + (list(factory.values()) if include_factory else []):
                p = self._full(item)
                z.writestr(("factory/" if p.factory else "") + file_name(p.name), p.to_json())
        return buf.getvalue()

    def import_zip(self, data: bytes, *, overwrite: bool = False) -> list[Preset]:
        """Import every preset of a zip, all or nothing: one bad entry and nothing is written."""
        try:
            z = zipfile.ZipFile(io.BytesIO(data))
            infos = [i for i in z.infolist() if not i.is_dir() and i.filename.endswith(".json")
                     and not i.filename.startswith("factory/")]
        except zipfile.BadZipFile as e:
            raise PresetError(f"not a zip file: {e}", [("file", "not a zip")]) from None
        if len(infos) > MAX_ZIP_ENTRIES or sum(i.file_size for i in infos) > MAX_ZIP_BYTES:
            raise PresetError("zip holds too many or too large files", [("file", "too large")])
        presets, errors = [], []
        for i in infos:
            try:
                if i.file_size > MAX_FILE_BYTES:
                    raise PresetError("file too large", [("file", "too large")])
                presets.append(_importable(parse_bytes(_read_entry(z, i))))
            except PresetError as e:
                errors.append((i.filename, str(e)))
        names = [p.name.casefold() for p in presets]
        dupes = {n for n in names if names.count(n) > 1}
        errors += [("zip", f"name {n!r} appears more than once") for n in dupes]
        with self._lock:
            factory, user, _ = self._all()
            for p in presets:
                if p.name.casefold() in factory:
                    errors.append((p.name, "is the name of a factory preset"))
                elif not overwrite and p.name.casefold() in user:
                    errors.append((p.name, "already exists"))
            if errors:
                raise PresetError("import refused, nothing was changed: "
                                  + "; ".join(f"{f}: {r}" for f, r in errors[:8]), errors)
            return [self._write(p) for p in presets]

    # -- housekeeping -------------------------------------------------------------------
    def _sweep_temp_files(self, older_than_s: float = 3600) -> None:
        """Remove temp files a crash left behind mid-save (old ones only: a save may be running)."""
        now = time.time()
        try:
            for e in os.scandir(self.user_dir):
                if e.name.startswith(".") and e.name.endswith(".tmp"):
                    try:
                        if now - e.stat().st_mtime > older_than_s:
                            os.unlink(e.path)
                    except FileNotFoundError:
                        pass
        except OSError:
            pass   # missing, or another user's (a `masterbox master` with a factory preset needs none of it)
