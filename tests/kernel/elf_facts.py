"""Facts about the kernel ELF under test, read with pyelftools: load (physical) bounds
from the program headers, allocated sections with their flags, and symbols. Independent
of anything the running kernel prints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

KERNEL_OFFSET = 0xFFFF_0000_0000_0000
PAGE = 4096


@dataclass(frozen=True)
class Section:
    name: str
    va: int
    size: int
    writable: bool
    executable: bool


@dataclass(frozen=True)
class KernelImage:
    """What the ELF says about the image: load (physical) bounds, sections, symbols."""

    phys_start: int
    phys_end: int  # page aligned up, .bss included (p_memsz)
    sections: tuple[Section, ...]
    symbols: dict[str, int]

    def symbol(self, name: str) -> int:
        """Address of a symbol; exact name first, else the one demangled-path suffix match."""
        if name in self.symbols:
            return self.symbols[name]
        hits = [addr for sym, addr in self.symbols.items() if sym.endswith(name)]
        assert len(hits) == 1, f"symbol {name!r}: {len(hits)} matches in the ELF"
        return hits[0]

    def section_of(self, va: int) -> Section | None:
        return next((s for s in self.sections if s.va <= va < s.va + s.size), None)


def read_image(path: Path) -> KernelImage:
    with path.open("rb") as f:
        elf = ELFFile(f)
        loads = [seg for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD" and seg["p_memsz"]]
        start = min(seg["p_paddr"] for seg in loads)
        end = max(seg["p_paddr"] + seg["p_memsz"] for seg in loads)
        sections = tuple(
            Section(
                name=sec.name,
                va=sec["sh_addr"],
                size=sec["sh_size"],
                writable=bool(sec["sh_flags"] & 0x1),
                executable=bool(sec["sh_flags"] & 0x4),
            )
            for sec in elf.iter_sections()
            if sec["sh_flags"] & 0x2 and sec["sh_size"]  # SHF_ALLOC
        )
        symbols: dict[str, int] = {}
        for sec in elf.iter_sections():
            if isinstance(sec, SymbolTableSection):
                for sym in sec.iter_symbols():
                    if sym.name and sym["st_value"]:
                        symbols[sym.name] = sym["st_value"]
    return KernelImage(start, (end + PAGE - 1) // PAGE * PAGE, sections, symbols)
