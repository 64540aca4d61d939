"""The physical frame allocator (``FRAME_ALLOCATOR``), decoded from memory.

Kernel contract (kernel/src/memory/frame.rs): a struct with ``base_pa``, ``frame_count``,
``total_frames``, ``free_frames`` and ``ref_counts`` (one unsigned count per RAM frame;
0 = free, the type's maximum = reserved for the kernel image), behind a lock. Frame ``i``
is the physical address ``base_pa + i * 4096``. Layouts come from DWARF.

Example::

    frames = read_frames(target, locate_frames(info))
    frames.refs(0x4100_0000), frames.free_frames
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..core.address import PAGE_SIZE, Address
from ..debuginfo import DebugInfo
from ..debuginfo.layouts import ArrayType
from ..core.errors import CorruptStructure, LayoutError
from ..debuginfo.locate import Found, find_struct, has_members, member, uint
from ..core.target import Target

_FIELDS = ("base_pa", "frame_count", "total_frames", "free_frames")


@dataclass(frozen=True)
class FrameAllocatorState:
    base_pa: Address
    frame_count: int
    total_frames: int
    free_frames: int
    lock_held: bool | None
    reserved_value: int
    ref_counts: tuple[int, ...]

    @property
    def ram(self) -> tuple[int, int]:
        """Physical RAM as ``(start, end)``: the allocator covers all of it."""
        return self.base_pa, self.base_pa + self.frame_count * PAGE_SIZE

    def refs(self, pa: int) -> int | None:
        """The reference count of the frame holding ``pa`` (None outside RAM)."""
        index = (pa - self.base_pa) // PAGE_SIZE
        return self.ref_counts[index] if 0 <= index < self.frame_count else None

    def is_free(self, pa: int) -> bool:
        return self.refs(pa) == 0

    def is_reserved(self, pa: int) -> bool:
        return self.refs(pa) == self.reserved_value


@dataclass(frozen=True)
class FramesLocation:
    symbol: str
    address: int
    size: int
    found: Found
    counts_offset: int
    count_size: int
    capacity: int


def locate_frames(info: DebugInfo, symbol: str = "FRAME_ALLOCATOR") -> FramesLocation:
    static = info.static(symbol)
    found = find_struct(static.layout, lambda t: has_members(t, "ref_counts", *_FIELDS), static.symbol.path)
    offset, counts = member(found.struct, "ref_counts")
    if not isinstance(counts, ArrayType):
        raise LayoutError(f"{found.struct.name}.ref_counts is {counts.name}, not an array")
    return FramesLocation(static.symbol.path, static.address, static.layout.size, found,
                          found.offset + offset, counts.row().size, counts.count)


def read_frames(target: Target, where: FramesLocation) -> FrameAllocatorState:
    """One read of the whole static; CorruptStructure when the counters disagree with
    the array's capacity."""
    data = target.read_virtual(where.address, where.size)
    if not where.found.present(data, where.symbol):
        raise CorruptStructure(f"{where.symbol} is not initialised")
    values = {name: where.found.member_int(data, name) for name in _FIELDS}
    if values["frame_count"] > where.capacity:
        raise CorruptStructure(
            f"{where.symbol}.frame_count is {values['frame_count']}, more than ref_counts holds ({where.capacity})")
    if values["free_frames"] > values["total_frames"] or values["total_frames"] > values["frame_count"]:
        raise CorruptStructure(
            f"{where.symbol}: free_frames {values['free_frames']} / total_frames {values['total_frames']} / "
            f"frame_count {values['frame_count']} are inconsistent")
    size = where.count_size
    counts = _unsigned_array(data, where.counts_offset, size, values["frame_count"])
    values["base_pa"] = Address(values["base_pa"])
    return FrameAllocatorState(lock_held=where.found.lock_held(data, where.symbol),
                               reserved_value=(1 << (8 * size)) - 1, ref_counts=counts, **values)


def _unsigned_array(data: bytes, start: int, size: int, count: int) -> tuple[int, ...]:
    """``count`` little-endian unsigned ``size``-byte integers (one C-speed unpack when it can)."""
    code = {1: "B", 2: "H", 4: "I", 8: "Q"}.get(size)
    if code is not None:
        return struct.unpack_from(f"<{count}{code}", data, start)
    return tuple(uint(data, start + i * size, size) for i in range(count))
