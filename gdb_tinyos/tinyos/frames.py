"""The physical frame allocator (``FRAME_ALLOCATOR``), decoded from memory.

Kernel contract (kernel/src/memory/frame.rs): a struct with ``base_pa``, ``frame_count``,
``total_frames``, ``free_frames`` and ``ref_counts`` (one unsigned count per RAM frame;
0 = free, the type's maximum = reserved for the kernel image), behind a lock. Frame ``i``
is the physical address ``base_pa + i * 4096``. Layouts come from DWARF.

Example::

    frames = read_frames(target, locate_frames(info))
    frames.refs(0x4100_0000), frames.free_frames
    read_ram(target, locate_frames(info))      # (start, end) from the header alone
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..core.address import PAGE_SIZE, Address
from ..core.columns import unsigned_column
from ..debuginfo import DebugInfo
from ..debuginfo.layouts import ArrayType
from ..core.errors import CorruptStructure, LayoutError
from ..debuginfo.locate import Found, find_struct, has_members, member
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
    ref_counts: Sequence[int]  # an array of machine words: one copy of the bytes

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
    header_size: int  # the static's first bytes holding RAM's bounds (and the enums around them)


def locate_frames(info: DebugInfo, symbol: str = "FRAME_ALLOCATOR") -> FramesLocation:
    static = info.static(symbol)
    found = find_struct(static.layout, lambda t: has_members(t, "ref_counts", *_FIELDS), static.symbol.path)
    offset, counts = member(found.struct, "ref_counts")
    if not isinstance(counts, ArrayType):
        raise LayoutError(f"{found.struct.name}.ref_counts is {counts.name}, not an array")
    ends = [check.offset + check.layout.size for check in found.checks]
    for name in ("base_pa", "frame_count"):
        at, t = member(found.struct, name)
        ends.append(found.offset + at + t.size)
    return FramesLocation(static.symbol.path, static.address, static.layout.size, found,
                          found.offset + offset, counts.row().size, counts.count, max(ends))


def read_ram(target: Target, where: FramesLocation) -> tuple[int, int]:
    """Physical RAM as ``(start, end)``, from one read of the allocator's first bytes (not
    its counts: a dump needs RAM's bounds only); CorruptStructure when the allocator is not
    initialised or counts more frames than its array holds (the other counters' agreement
    is :func:`read_frames`'s to check)."""
    data = target.read_virtual(where.address, where.header_size)
    base, count = _header(data, where)
    return base, base + count * PAGE_SIZE


def _header(data: bytes, where: FramesLocation) -> tuple[int, int]:
    """``base_pa`` and ``frame_count``, checked: the allocator initialised, its count within
    the array's capacity."""
    if not where.found.present(data, where.symbol):
        raise CorruptStructure(f"{where.symbol} is not initialised")
    count = where.found.member_int(data, "frame_count")
    if count > where.capacity:
        raise CorruptStructure(f"{where.symbol}.frame_count is {count}, more than ref_counts holds ({where.capacity})")
    return where.found.member_int(data, "base_pa"), count


def read_frames(target: Target, where: FramesLocation) -> FrameAllocatorState:
    """One read of the whole static; CorruptStructure when the counters disagree with
    the array's capacity."""
    data = target.read_virtual(where.address, where.size)
    _header(data, where)
    values = {name: where.found.member_int(data, name) for name in _FIELDS}
    if values["free_frames"] > values["total_frames"] or values["total_frames"] > values["frame_count"]:
        raise CorruptStructure(
            f"{where.symbol}: free_frames {values['free_frames']} / total_frames {values['total_frames']} / "
            f"frame_count {values['frame_count']} are inconsistent")
    size = where.count_size
    start = where.counts_offset
    counts = unsigned_column(memoryview(data)[start:start + size * values["frame_count"]], size)
    values["base_pa"] = Address(values["base_pa"])
    return FrameAllocatorState(lock_held=where.found.lock_held(data, where.symbol),
                               reserved_value=(1 << (8 * size)) - 1, ref_counts=counts, **values)

