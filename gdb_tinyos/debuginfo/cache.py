"""On-disk cache of parsed debug info, one file per ELF build-id.

``~/.cache/gdb-tinyos/<build-id>.pickle`` (``$TINYOS_CACHE_DIR`` or ``$XDG_CACHE_HOME``
move it) holds the ELF symbols, the DWARF name index and every layout converted so far.
A build-id names the ELF's contents, so a rebuilt kernel gets a new file and a stale one
is never used. A file that cannot be read back, from another format version, or for
another build is ignored and rewritten; writes go through a temporary file and a rename,
so a crash never leaves half a cache.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .dwarf import DwarfIndex
from .layouts import Type
from .symbols import Symbol

# Bump when any pickled class changes shape: older files are then ignored.
FORMAT_VERSION = 1
# What unpickling a damaged or foreign file can raise.
_LOAD_ERRORS = (
    OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, IndexError,
    KeyError, TypeError, ValueError, RecursionError,
)


@dataclass
class CacheData:
    key: str
    symbols: list[Symbol]
    index: DwarfIndex
    layouts: dict[int, Type] = field(default_factory=dict)
    version: int = FORMAT_VERSION


def default_cache_dir() -> Path:
    if os.environ.get("TINYOS_CACHE_DIR"):
        return Path(os.environ["TINYOS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gdb-tinyos"


def cache_file(directory: Path, key: str) -> Path:
    return directory / f"{key}.pickle"


def load(directory: Path, key: str) -> CacheData | None:
    """The cached data for ``key``, or None when absent, unreadable or not for this build."""
    try:
        with open(cache_file(directory, key), "rb") as f:
            data = pickle.load(f)
    except _LOAD_ERRORS:
        return None
    if not isinstance(data, CacheData) or data.version != FORMAT_VERSION or data.key != key:
        return None
    return data


def store(directory: Path, data: CacheData) -> bool:
    """Write ``data`` atomically; False when the directory is not writable (the cache is
    an optimisation: the caller carries on without it)."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".pickle")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, cache_file(directory, data.key))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        return False
    return True
