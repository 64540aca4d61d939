"""``DebugInfo``: one kernel ELF's symbols and type layouts, cached by build-id.

Opening reads the ELF header, the build-id, the section header table (the cache entry's
fingerprint) and, on a cache hit, nothing else: DWARF is
parsed only for a layout not cached yet. On a miss it reads the symbol table and indexes
the program's own DWARF units (not the standard library's), then writes the cache.

Example::

    info = DebugInfo.open(kernel_elf)
    static = info.static("COW_MANAGER")        # Symbol + layout
    raw = target.read_virtual(static.address, static.layout.size)
    manager = decode(static.layout, raw)
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from ..core.errors import DebugInfoError, LayoutError
from ..core.image import ImageMap, LoadSegment
from . import cache
from .buildid import read_build_id
from .demangle import demangle
from .dwarf import PARSE_ERRORS, DwarfIndex, LayoutReader, build_index
from .layouts import PointerType, Type
from .symbols import Symbol, SymbolTable, split_path

_SYMBOL_KINDS = {"STT_OBJECT": "object", "STT_FUNC": "function", "STT_NOTYPE": "notype", "STT_TLS": "object"}
_DEFAULT = object()


@dataclass(frozen=True)
class Static:
    """A static variable: where it lives and how its bytes are laid out."""

    symbol: Symbol
    layout: Type

    @property
    def address(self) -> int:
        return self.symbol.address

    def member(self, path: str) -> tuple[int, Type]:
        """Address and type of ``path`` inside the static (``"data.value"``)."""
        offset, layout = self.layout.member_path(path)
        return self.symbol.address + offset, layout


class DebugInfo:
    """Symbols and DWARF layouts of one ELF. Use :meth:`open`; close it (or use ``with``)."""

    def __init__(self, path: Path, fh: IO[bytes], elf: ELFFile, cache_dir: Path | None) -> None:
        self.path = path
        self._fh = fh
        self._elf = elf
        self._cache_dir = cache_dir
        self._reader: LayoutReader | None = None
        self._image: ImageMap | None = None
        self.build_id = read_build_id(elf)
        self.cache_key = self.build_id.hex() if self.build_id else "sha1-" + _file_digest(path)
        self.fingerprint = cache.fingerprint(fh.fileno(), os.fstat(fh.fileno()).st_size, elf["e_shoff"],
                                             elf["e_shnum"], elf["e_shentsize"])
        data = cache.load(cache_dir, self.cache_key, self.fingerprint) if cache_dir else None
        self.from_cache = data is not None
        if data is None:
            index = self._index(library=False, index=None)
            data = cache.CacheData(self.cache_key, _elf_symbols(elf), index, fingerprint=self.fingerprint)
            self._dirty = True
        else:
            self._dirty = False
        self._data = data
        self.symbols = SymbolTable(_merge(data.symbols, data.index), str(path))
        self.save_cache()

    @classmethod
    def open(cls, path: str | Path, cache_dir: str | Path | None | object = _DEFAULT) -> DebugInfo:
        """Open ``path``. ``cache_dir=None`` disables the disk cache; the default is
        :func:`cache.default_cache_dir`. Raises DebugInfoError for a missing file, a file
        that is not ELF, or an ELF without DWARF."""
        path = Path(path)
        directory = cache.default_cache_dir() if cache_dir is _DEFAULT else cache_dir
        directory = Path(directory) if isinstance(directory, str) else directory
        try:
            fh = open(path, "rb")
        except OSError as exc:
            raise DebugInfoError(f"cannot open the kernel ELF {path}: {exc.strerror}") from exc
        try:
            elf = ELFFile(fh)
            if elf.get_section_by_name(".debug_info") is None:
                raise DebugInfoError(
                    f"{path} has no DWARF debug info (stripped, or built without debug info): "
                    "load the unstripped kernel ELF")
            return cls(path, fh, elf, directory)  # type: ignore[arg-type]
        except ELFError as exc:
            fh.close()
            raise DebugInfoError(f"{path} is not a readable ELF file: {exc}") from exc
        except BaseException:
            fh.close()
            raise

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> DebugInfo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- symbols -------------------------------------------------------------------
    def symbol(self, query: str) -> Symbol:
        """The symbol named ``query``, with Rust path ``query``, or whose path ends in it."""
        return self.symbols.lookup(query)

    def static(self, query: str) -> Static:
        """A static with its DWARF layout; LayoutError when DWARF does not describe it."""
        symbol = self.symbol(query)
        if symbol.type_offset is None:
            raise LayoutError(
                f"{symbol.path} at {symbol.address:#x} has an ELF symbol but no DWARF description in {self.path}")
        return Static(symbol, self.type_at(symbol.type_offset))

    def image(self) -> ImageMap:
        """The ELF's load segments: where each linked address is loaded in physical memory."""
        if self._image is None:
            self._image = ImageMap(tuple(
                LoadSegment(seg["p_vaddr"], seg["p_paddr"], seg["p_memsz"])
                for seg in self._elf.iter_segments() if seg["p_type"] == "PT_LOAD" and seg["p_memsz"]))
        return self._image

    def initial_bytes(self, va: int, size: int) -> bytes:
        """The bytes the ELF file holds for ``[va, va + size)`` (a static's initial value,
        as loaded); zeros past a segment's file size (.bss). LayoutError when no segment
        holds the range."""
        for seg in self._elf.iter_segments():
            start, memsz, filesz = seg["p_vaddr"], seg["p_memsz"], seg["p_filesz"]
            if seg["p_type"] == "PT_LOAD" and start <= va and va + size <= start + memsz:
                self._fh.seek(seg["p_offset"] + (va - start))
                present = max(0, min(size, filesz - (va - start)))
                return self._fh.read(present) + bytes(size - present)
        raise LayoutError(f"{va:#x}+{size:#x} is not inside a loaded segment of {self.path}")

    def require_build_id(self) -> bytes:
        if self.build_id is None:
            raise DebugInfoError(f"{self.path} has no GNU build-id note: link it with --build-id=sha1")
        return self.build_id

    # -- types ---------------------------------------------------------------------
    def type(self, query: str) -> Type:
        """The named type with path ``query`` or the unique path ending in it
        (``"memory::cow::CowPage"``, ``"Option<tinyos::memory::cow::CowPage>"``)."""
        offset = self._data.index.find_type(query)
        if offset is None and not self._data.index.library_scanned:
            self._index(library=True, index=self._data.index)
            self._dirty = True
            offset = self._data.index.find_type(query)
        if offset is None:
            raise LayoutError(
                f"no type named or ending in {query!r} in {self.path} "
                f"(searched {len(self._data.index.types)} named types in its DWARF)")
        return self.type_at(offset)

    def type_at(self, offset: int) -> Type:
        """The layout of the type DIE at ``.debug_info`` offset ``offset``."""
        memo = self._data.layouts
        if offset not in memo:
            self._layout_reader().layout_at(offset)
            self._dirty = True
            self.save_cache()
        return memo[offset]

    def pointee(self, pointer: PointerType) -> Type:
        """The type a pointer points at (LayoutError for ``void`` pointers)."""
        if pointer.target_offset is None:
            raise LayoutError(f"{pointer.name} points at void: no layout to follow")
        return self.type_at(pointer.target_offset)

    # -- cache ---------------------------------------------------------------------
    def save_cache(self) -> bool:
        """Write what is parsed so far, if anything changed; False if it could not be written."""
        if not self._dirty or self._cache_dir is None:
            return False
        self._dirty = False
        return cache.store(self._cache_dir, self._data)

    def _dwarf(self):
        try:
            return self._elf.get_dwarf_info()
        except PARSE_ERRORS as exc:
            raise DebugInfoError(f"the DWARF in {self.path} is malformed: {exc}") from exc

    def _index(self, library: bool, index: DwarfIndex | None) -> DwarfIndex:
        try:
            return build_index(self._dwarf(), library, index)
        except PARSE_ERRORS as exc:
            raise DebugInfoError(f"the DWARF in {self.path} is malformed: {exc}") from exc

    def _layout_reader(self) -> LayoutReader:
        if self._reader is None:
            self._reader = LayoutReader(self._dwarf(), self._data.layouts)
        return self._reader


def _elf_symbols(elf: ELFFile) -> list[Symbol]:
    symtab = elf.get_section_by_name(".symtab")
    if not isinstance(symtab, SymbolTableSection):
        return []
    out = []
    for sym in symtab.iter_symbols():
        kind = _SYMBOL_KINDS.get(sym["st_info"]["type"])
        # Mapping symbols ($x, $d) mark code/data runs, not things a user names.
        if kind is None or not sym.name or sym.name.startswith("$") or sym["st_shndx"] == "SHN_UNDEF":
            continue
        out.append(Symbol(sym.name, demangle(sym.name) or sym.name, sym["st_value"], sym["st_size"], kind))
    return out


def _merge(elf_symbols: list[Symbol], index: DwarfIndex) -> list[Symbol]:
    """ELF symbols with the DWARF path and type of the static at the same address."""
    statics = {s.address: s for s in index.statics.values()}
    merged = []
    for sym in elf_symbols:
        static = statics.get(sym.address)
        # Linker symbols may share the address (__build_id_end is where .data starts):
        # only the object the static was linked as takes its path.
        if static is not None and sym.kind == "object" and sym.name in (static.linkage_name, split_path(static.path)[-1]):
            del statics[sym.address]
            sym = Symbol(sym.name, static.path, sym.address, sym.size, sym.kind, static.type_offset)
        merged.append(sym)
    for static in statics.values():
        merged.append(Symbol(static.linkage_name or static.path, static.path, static.address, 0, "static", static.type_offset))
    return merged


def _file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
