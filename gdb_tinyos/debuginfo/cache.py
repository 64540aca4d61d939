"""On-disk cache of parsed debug info, one file per ELF build-id.

``~/.cache/gdb-tinyos/<build-id>.json`` (``$TINYOS_CACHE_DIR`` or ``$XDG_CACHE_HOME``
move it) holds the ELF symbols, the DWARF name index and every layout converted so far.
A build-id names what the linker produced, so a rebuilt kernel gets a new file. Tools
that edit an ELF in place (``llvm-objcopy``, ``llvm-strip``) keep its build-id note, so
each file also records the ELF's *fingerprint* (:func:`fingerprint`: file size and a hash
of the section header table, which such edits change) and is used only for the same one.
A file that cannot be read back, from another format version, for another build or
another fingerprint is ignored and rewritten; writes go through a temporary file and a
rename, so a crash never leaves half a cache.

Loading a file must never run code: the files are JSON, and only the dataclasses named
in :data:`_CLASSES` (plain records of names and numbers) are rebuilt from them. The
directory must be the user's own and writable by nobody else (:func:`usable_directory`):
one a stranger can write could hold a file crafted to mislead the decoders. The plugin
creates it 0700; any other is refused with one line on stderr, and the session runs
without a cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import layouts
from .dwarf import DwarfIndex, StaticEntry
from .layouts import Type
from .symbols import Symbol

# Bump when any cached class changes shape: older files are then ignored.
FORMAT_VERSION = 3
SUFFIX = ".json"
# What reading a damaged or foreign file can raise.
_LOAD_ERRORS = (OSError, ValueError, TypeError, KeyError, RecursionError, UnicodeDecodeError)


@dataclass
class CacheData:
    key: str
    symbols: list[Symbol]
    index: DwarfIndex
    layouts: dict[int, Type] = field(default_factory=dict)
    version: int = FORMAT_VERSION
    fingerprint: str = ""  # of the ELF the data was parsed from (see fingerprint())


# The only classes a cache file can name: data records, no behaviour at load time.
_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (CacheData, Symbol, DwarfIndex, StaticEntry, layouts.Member, layouts.Enumerator, layouts.Variant,
                *(c for c in vars(layouts).values()
                  if isinstance(c, type) and issubclass(c, Type) and dataclasses.is_dataclass(c)))
}


def default_cache_dir() -> Path:
    if os.environ.get("TINYOS_CACHE_DIR"):
        return Path(os.environ["TINYOS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gdb-tinyos"


def cache_file(directory: Path, key: str) -> Path:
    return directory / f"{key}{SUFFIX}"


def usable_directory(directory: Path, create: bool = False) -> str | None:
    """None when ``directory`` is safe to cache in (created 0700 when ``create``), else why not:
    owned by someone else, or writable by group or others."""
    try:
        if create and not directory.exists():
            directory.mkdir(parents=True, mode=0o700)
        info = directory.lstat()
    except FileNotFoundError:
        return "" if not create else f"{directory} could not be created"
    except OSError as exc:
        return f"{directory} is unusable ({exc.strerror})"
    if not stat.S_ISDIR(info.st_mode):
        return f"{directory} is not a directory"
    if info.st_uid != os.geteuid():
        return f"{directory} belongs to uid {info.st_uid}, not to you"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{directory} is writable by {'others' if info.st_mode & stat.S_IWOTH else 'its group'} (mode {stat.S_IMODE(info.st_mode):o})"
    return None


_WARNED: set[str] = set()


def _refuse(reason: str) -> None:
    """One line per directory and process: the cache is an optimisation, never an error."""
    if reason and reason not in _WARNED:
        _WARNED.add(reason)
        print(f"tinyos: not using the debug-info cache: {reason}; "
              "`chmod 700` it or set $TINYOS_CACHE_DIR to a directory of your own", file=sys.stderr)


def fingerprint(fd: int, size: int, shoff: int, shnum: int, shentsize: int) -> str:
    """What tells two ELFs with one build-id apart: the file ``size`` and a hash of its
    section header table (``shnum`` entries of ``shentsize`` bytes at ``shoff``), read
    with one ``pread`` from the open file ``fd`` -- far cheaper than hashing the file."""
    headers = os.pread(fd, shnum * shentsize, shoff) if shnum and shentsize else b""
    return f"{size:x}-{hashlib.sha1(headers).hexdigest()[:16]}"


def load(directory: Path, key: str, elf_fingerprint: str = "") -> CacheData | None:
    """The cached data for ``key``, or None when absent, unreadable, not for this build,
    parsed from an ELF with another fingerprint, or in a directory others can write."""
    reason = usable_directory(directory)
    if reason is not None:
        _refuse(reason)
        return None
    try:
        with open(cache_file(directory, key), encoding="utf-8") as f:
            data = from_json(json.load(f))
    except _LOAD_ERRORS:
        return None
    if not isinstance(data, CacheData) or data.version != FORMAT_VERSION or data.key != key:
        return None
    if data.fingerprint != elf_fingerprint:
        return None
    return data


def store(directory: Path, data: CacheData) -> bool:
    """Write ``data`` atomically; False when the directory is not writable or not safe
    (the cache is an optimisation: the caller carries on without it)."""
    reason = usable_directory(directory, create=True)
    if reason is not None:
        _refuse(reason)
        return False
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=SUFFIX)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(to_json(data), f, separators=(",", ":"))
            os.replace(tmp, cache_file(directory, data.key))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except (OSError, RecursionError):
        return False
    return True


# -- data <-> JSON --------------------------------------------------------------------------
# Dataclasses as {"$": class name, field: value...}; tuples as {"$t": [...]} and dicts as
# {"$d": [[key, value]...]} so frozen layouts and integer keys come back as they were.

def to_json(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        name = type(obj).__name__
        if _CLASSES.get(name) is not type(obj):
            raise TypeError(f"{name} is not a cacheable class")
        return {"$": name, **{f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, tuple):
        return {"$t": [to_json(v) for v in obj]}
    if isinstance(obj, list):
        return [to_json(v) for v in obj]
    if isinstance(obj, dict):
        return {"$d": [[to_json(k), to_json(v)] for k, v in obj.items()]}
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"cannot cache a {type(obj).__name__}")


def from_json(obj: Any) -> Any:
    """The inverse of :func:`to_json`; ValueError for anything it would not have written."""
    if isinstance(obj, list):
        return [from_json(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "$t" in obj:
        return tuple(from_json(v) for v in obj["$t"])
    if "$d" in obj:
        return {from_json(k): from_json(v) for k, v in obj["$d"]}
    cls = _CLASSES.get(obj.get("$"))
    if cls is None:
        raise ValueError(f"unknown record {obj.get('$')!r} in a cache file")
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: from_json(v) for k, v in obj.items() if k != "$"}
    if not values.keys() <= names:
        raise ValueError(f"unexpected fields for {cls.__name__} in a cache file")
    return cls(**values)
