"""On-disk cache of parsed debug info, one file per ELF build-id.

``~/.cache/gdb-tinyos/<build-id>.pickle`` (``$TINYOS_CACHE_DIR`` or ``$XDG_CACHE_HOME``
move it) holds the ELF symbols, the DWARF name index and every layout converted so far.
A build-id names what the linker produced, so a rebuilt kernel gets a new file. Tools
that edit an ELF in place (``llvm-objcopy``, ``llvm-strip``) keep its build-id note, so
each file also records the ELF's *fingerprint* (:func:`fingerprint`: file size and a hash
of the section header table, which such edits change) and is used only for the same one.
A file that cannot be read back, from another format version, for another build or
another fingerprint is ignored and rewritten; writes go through a temporary file and a
rename, so a crash never leaves half a cache.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .dwarf import DwarfIndex
from .layouts import Type
from .symbols import Symbol

# Bump when any pickled class changes shape: older files are then ignored.
FORMAT_VERSION = 2
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
    fingerprint: str = ""  # of the ELF the data was parsed from (see fingerprint())


def default_cache_dir() -> Path:
    if os.environ.get("TINYOS_CACHE_DIR"):
        return Path(os.environ["TINYOS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gdb-tinyos"


def cache_file(directory: Path, key: str) -> Path:
    return directory / f"{key}.pickle"


def fingerprint(fd: int, size: int, shoff: int, shnum: int, shentsize: int) -> str:
    """What tells two ELFs with one build-id apart: the file ``size`` and a hash of its
    section header table (``shnum`` entries of ``shentsize`` bytes at ``shoff``), read
    with one ``pread`` from the open file ``fd`` -- far cheaper than hashing the file."""
    headers = os.pread(fd, shnum * shentsize, shoff) if shnum and shentsize else b""
    return f"{size:x}-{hashlib.sha1(headers).hexdigest()[:16]}"


def load(directory: Path, key: str, elf_fingerprint: str = "") -> CacheData | None:
    """The cached data for ``key``, or None when absent, unreadable, not for this build or
    parsed from an ELF with another fingerprint."""
    try:
        with open(cache_file(directory, key), "rb") as f:
            data = pickle.load(f)
    except _LOAD_ERRORS:
        return None
    if not isinstance(data, CacheData) or data.version != FORMAT_VERSION or data.key != key:
        return None
    if data.fingerprint != elf_fingerprint:
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
