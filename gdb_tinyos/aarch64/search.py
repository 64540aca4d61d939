"""Searching an address space's memory for a byte pattern, physically, range by range.

An :class:`~gdb_tinyos.aarch64.ranges.AddressSpace` lists merged ranges that are contiguous
both virtually and physically, so each range is read with physical reads (in chunks of at
most ``chunk`` bytes, overlapping by ``len(needle) - 1`` so a match across two chunks is
found once) and every match is reported at its virtual *and* physical address. Device
ranges are never read: reading an MMIO register can change the device (a UART's data
register pops a character).

Example::

    space = dump(target, 0, root=ttbr0)
    found = search_space(target, space, b"child wrote", limit=10)
    for hit in found.hits: print(hex(hit.va), hex(hit.pa), hit.preview)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..core.address import Address
from ..core.errors import MemoryReadError
from ..core.target import Target
from .ranges import AddressSpace, Range

DEFAULT_CHUNK = 1 << 20
PREVIEW = 16  # bytes shown from each match's start


@dataclass(frozen=True)
class Hit:
    va: Address
    pa: Address
    perms: str
    preview: str  # printable ASCII, other bytes as '.': never raw target bytes on a terminal

    def describe(self) -> str:
        return f"{self.va:#018x}  pa {self.pa:#x}  {self.perms}  {self.preview}"


@dataclass
class SearchResult:
    needle: str  # the pattern as hex bytes
    hits: list[Hit] = field(default_factory=list)
    ranges_searched: int = 0
    bytes_searched: int = 0
    skipped: list[str] = field(default_factory=list)  # ranges not read, with the reason
    truncated: bool = False  # stopped at the limit


def needle_for(text: str | None = None, hex_bytes: str | None = None, u64: int | None = None,
               u32: int | None = None) -> bytes:
    """The byte pattern for exactly one of: a string (UTF-8), hex bytes (``"de ad be ef"``,
    ``"deadbeef"``), a little-endian 64-bit or 32-bit value. ValueError says what is wrong."""
    given = [v is not None for v in (text, hex_bytes, u64, u32)]
    if sum(given) != 1:
        raise ValueError("give exactly one pattern: a string, --bytes HEX, --u64 V or --u32 V")
    if text is not None:
        needle = text.encode()
    elif hex_bytes is not None:
        digits = "".join(hex_bytes.replace("0x", "").split())
        try:
            needle = bytes.fromhex(digits)
        except ValueError:
            raise ValueError(f"not hex bytes: {hex_bytes!r} (write e.g. 'de ad be ef')") from None
    elif u64 is not None:
        if not 0 <= u64 < 1 << 64:
            raise ValueError(f"{u64:#x} does not fit in 64 bits")
        needle = struct.pack("<Q", u64)
    else:
        if not 0 <= u32 < 1 << 32:
            raise ValueError(f"{u32:#x} does not fit in 32 bits")
        needle = struct.pack("<I", u32)
    if not needle:
        raise ValueError("the pattern is empty")
    return needle


def preview(data: bytes) -> str:
    return "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in data)


def search_space(target: Target, space: AddressSpace, needle: bytes, *, limit: int = 100,
                 chunk: int = DEFAULT_CHUNK, result: SearchResult | None = None) -> SearchResult:
    """Every match of ``needle`` in ``space``'s normal-memory ranges, up to ``limit`` in all
    (``limit=0``: no limit). ``result`` accumulates across several spaces."""
    if not needle:
        raise ValueError("the pattern is empty")
    out = result if result is not None else SearchResult(needle.hex(" "))
    for rng in space.ranges:
        if out.truncated:
            break
        if rng.attrs.memory.is_device:
            out.skipped.append(f"{rng.va_start:#x}-{rng.va_end:#x}: device memory, not read")
            continue
        _search_range(target, rng, needle, limit, max(chunk, len(needle)), out)
    return out


def _search_range(target: Target, rng: Range, needle: bytes, limit: int, chunk: int, out: SearchResult) -> None:
    """Chunks [start, start + chunk) are read with ``len(needle) - 1`` bytes more, and only
    matches starting inside the chunk count: one crossing an edge is found exactly once."""
    out.ranges_searched += 1
    perms = rng.attrs.perms.describe()
    size, extra = rng.size, len(needle) - 1
    for start in range(0, size, chunk):
        n = min(chunk, size - start)
        try:
            data = target.read_physical(rng.pa_start + start, min(n + extra, size - start))
        except MemoryReadError as exc:
            out.skipped.append(f"{rng.va_start + start:#x}+{n:#x}: unreadable ({exc})")
            continue
        out.bytes_searched += n
        at = data.find(needle)
        while 0 <= at < n:
            out.hits.append(Hit(Address(rng.va_start + start + at), Address(rng.pa_start + start + at), perms,
                                preview(data[at:at + PREVIEW])))
            if limit and len(out.hits) >= limit:
                out.truncated = True
                return
            at = data.find(needle, at + 1)
