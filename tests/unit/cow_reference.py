"""The COW manager's slot decoder as it was before the strided/struct decoder: one slot
at a time, each field read with int.from_bytes through the DWARF offsets, every enum
decoded generically. Kept (renamed; it now also records the raw lists) as the reference the fast decoder must
equal, results and errors alike (tests/unit/test_cow_fast_decode.py)."""

from __future__ import annotations

from gdb_tinyos.core.address import PAGE_SIZE, Address
from gdb_tinyos.core.errors import CorruptStructure
from gdb_tinyos.debuginfo import decode
from gdb_tinyos.debuginfo.locate import uint
from gdb_tinyos.tinyos.cow import CowPage, ManagerLocation, Sharer


def reference_pages(data: bytes, where: ManagerLocation, ram: tuple[int, int] | None):
    f = where.page_fields
    base = where.pages_offset
    for slot in range(f.count):
        at = base + slot * f.stride
        if f.slot_enum is not None:
            variant = f.slot_enum.select(f.slot_enum.discriminant(data, at))
            if variant is None:
                raise CorruptStructure(
                    f"{where.symbol}.cow_pages[{slot}]: {f.slot_enum.name} discriminant "
                    f"{f.slot_enum.discriminant(data, at)} selects no variant")
            if variant.name not in f.occupied:
                continue
        yield _page(data, at, slot, f, where.symbol, ram)


def _page(data: bytes, at: int, slot: int, f, symbol: str, ram) -> CowPage:
    where = f"{symbol}.cow_pages[{slot}]"
    pa = uint(data, at + f.pa[0], f.pa[1])
    if ram is not None and not ram[0] <= pa < ram[1]:
        raise CorruptStructure(f"{where}.physical_addr is {pa:#x}, outside RAM {ram[0]:#x}-{ram[1]:#x}")
    if pa % PAGE_SIZE:
        raise CorruptStructure(f"{where}.physical_addr is {pa:#x}, not page aligned")
    is_cow = data[at + f.is_cow]
    if is_cow > 1:
        raise CorruptStructure(f"{where}.is_cow holds {is_cow}, not 0 or 1")
    perms_off, perms_t = f.perms
    perms = decode(perms_t, data, at + perms_off, f"{where}.original_permissions")
    perms_name = perms.variant if hasattr(perms, "variant") else str(perms)  # str() only when needed: it is slow
    vas = _simple_vec(data, at, f.vas, f"{where}.virtual_addresses")
    pids = _simple_vec(data, at, f.pids, f"{where}.process_ids")
    if len(vas) != len(pids):
        raise CorruptStructure(
            f"{where}: {len(vas)} virtual addresses but {len(pids)} process ids (this kernel keeps them parallel)")
    return CowPage(
        slot=slot, physical_addr=Address(pa), ref_count=uint(data, at + f.refs[0], f.refs[1]),
        is_cow=bool(is_cow), original_permissions=perms_name,
        sharers=tuple(Sharer(Address(va), pid) for va, pid in zip(vas, pids)),
        # The lists themselves, which the model now carries beside the pairs.
        virtual_addresses=tuple(Address(va) for va in vas), process_ids=tuple(pids),
    )


def _simple_vec(data: bytes, at: int, shape: tuple[int, int, int, int, int], where: str) -> list[int]:
    data_off, size, capacity, len_off, len_size = shape
    length = uint(data, at + len_off, len_size)
    if length > capacity:
        raise CorruptStructure(f"{where}.len is {length}, more than its capacity {capacity}")
    return [uint(data, at + data_off + i * size, size) for i in range(length)]

