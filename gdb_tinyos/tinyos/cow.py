"""The CowManager, decoded from raw target memory through DWARF layouts.

The manager is found by its symbol (``COW_MANAGER``) and unwrapped generically: whatever
lies between the static and the ``CowManager`` struct — our ``SpinLock<CowManager>``,
upstream's ``spin::Mutex<Option<CowManager>>`` or a bare ``Option<CowManager>`` — is walked
through struct members and enum variants, with the lock word and the enum discriminants
checked on the bytes read. All offsets, sizes and capacities come from DWARF. The whole
static is read once; only occupied page slots are decoded field by field.

Example::

    info = DebugInfo.open(kernel_elf)
    where = locate_manager(info)
    state = read_manager(target, where, ram=(0x4000_0000, 0x4800_0000))
    for page in state.pages:
        print(hex(page.physical_addr), page.ref_count, [hex(s.va) for s in page.sharers])
"""

from __future__ import annotations

import operator
from itertools import compress
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

from ..core.address import PAGE_SIZE, Address, page_base
from ..debuginfo import DebugInfo, decode, plain
from ..debuginfo.layouts import ArrayType, RustEnumType, StructType, Type
from ..core.errors import CorruptStructure, LayoutError
from ..debuginfo.locate import Found, find_struct, has_members, member
from ..core.target import Target

# -- the model ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Sharer:
    """One mapping of a tracked frame: virtual address ``va`` in process ``pid`` (None when
    the kernel keeps its sharers as a set that cannot be paired with the VAs)."""

    va: Address
    pid: int | None


@dataclass(frozen=True)
class CowPage:
    """One occupied slot of ``cow_pages``: the raw lists, and the sharers paired from them."""

    slot: int
    physical_addr: Address
    ref_count: int
    is_cow: bool
    original_permissions: str
    sharers: tuple[Sharer, ...]
    virtual_addresses: tuple[Address, ...] = ()
    process_ids: tuple[int, ...] = ()

    @property
    def recorded_mappings(self) -> int:
        """How many mappings the record lists (its VAs; the sharers when built without them)."""
        return len(self.virtual_addresses) if self.virtual_addresses else len(self.sharers)


def pair_sharers(vas: list[int], pids: list[int], parallel: bool | None = None) -> tuple[Sharer, ...]:
    """(va, pid) pairs. ``parallel``: pids[i] belongs to vas[i]; False: pids is a set of
    sharers; None: parallel when the lengths agree. A set pairs only when it holds one pid
    (every VA is that process's) or every VA is the same (each pid maps it there); else
    the pids are unknown (None)."""
    if parallel is None:
        parallel = len(vas) == len(pids)
    if parallel:
        return tuple(Sharer(Address(va), pids[i] if i < len(pids) else None) for i, va in enumerate(vas))
    distinct = list(dict.fromkeys(pids))
    if len(distinct) == 1:
        return tuple(Sharer(Address(va), distinct[0]) for va in vas)
    if vas and len(set(vas)) == 1 and len(vas) == len(distinct):
        return tuple(Sharer(Address(vas[0]), pid) for pid in distinct)
    return tuple(Sharer(Address(va), None) for va in vas)


@dataclass(frozen=True)
class CowStatistics:
    cow_pages_count: int
    cow_faults_handled: int
    pages_duplicated: int
    memory_saved_bytes: int
    metadata_memory_bytes: int
    peak_cow_pages: int


@dataclass(frozen=True)
class CowManagerState:
    """The manager at one stop. ``initialised`` is False when the manager sits in an
    ``Option`` that holds ``None`` (then pages and statistics are empty/None)."""

    symbol: str
    address: Address
    initialised: bool
    lock_held: bool | None
    capacity: int
    active_pages: int = 0
    next_process_id: int = 0
    memory_manager: Address = Address(0)
    statistics: CowStatistics | None = None
    pages: tuple[CowPage, ...] = ()

    def page(self, pa: int) -> CowPage | None:
        """The tracked page holding physical address ``pa`` (any byte of the frame)."""
        frame = page_base(pa)
        return next((p for p in self.pages if p.physical_addr == frame), None)

    @property
    def saved_bytes(self) -> int:
        """Σ (ref_count − 1) × 4096 over the pages: what ``statistics.memory_saved_bytes``
        holds when the bookkeeping is right (each extra sharer is a frame not copied)."""
        return sum(max(p.ref_count - 1, 0) for p in self.pages) * PAGE_SIZE

    @property
    def total_refs(self) -> int:
        return sum(p.ref_count for p in self.pages)


# -- where the manager lives --------------------------------------------------------------

@dataclass(frozen=True)
class _PageFields:
    """Offsets inside one ``cow_pages`` element, resolved once from DWARF."""

    stride: int
    count: int
    slot_enum: RustEnumType | None
    occupied: frozenset[str]  # variant names that carry a page (when slot_enum)
    page_offset: int  # of the CowPage struct inside the element
    pa: tuple[int, int]
    refs: tuple[int, int]
    is_cow: int
    perms: tuple[int, Type]
    vas: tuple[int, int, int, int, int]  # data offset, element size, capacity, len offset, len size
    pids: tuple[int, int, int, int, int]

    @cached_property
    def codec(self) -> _SlotCodec:
        """The element's unpackers, compiled on first use (once per located manager)."""
        return _codec(self)


@dataclass(frozen=True)
class ManagerLocation:
    """Everything needed to decode the manager from the static's bytes."""

    symbol: str
    address: int
    size: int
    found: Found
    pages_offset: int
    page_fields: _PageFields
    statistics: tuple[int, Type]


def locate_manager(info: DebugInfo, symbol: str = "COW_MANAGER") -> ManagerLocation:
    """Find the CowManager behind ``symbol`` and resolve its layout. LayoutError when
    DWARF does not show the expected shape."""
    static = info.static(symbol)
    found = find_struct(static.layout, _is_manager, f"{static.symbol.path}: is this a TinyOS kernel? It")
    pages_offset, pages = member(found.struct, "cow_pages")
    if not isinstance(pages, ArrayType):
        raise LayoutError(f"{found.struct.name}.cow_pages is {pages.name}, not an array")
    stats_offset, stats = member(found.struct, "statistics")
    return ManagerLocation(
        symbol=static.symbol.path, address=static.address, size=static.layout.size, found=found,
        pages_offset=found.offset + pages_offset, page_fields=_page_fields(pages),
        statistics=(found.offset + stats_offset, stats),
    )


def _is_manager(t: StructType) -> bool:
    return t.name.split("::")[-1] == "CowManager" and has_members(t, "cow_pages")


def _page_fields(pages: ArrayType) -> _PageFields:
    element = pages.row().strip_typedefs()
    slot_enum = element if isinstance(element, RustEnumType) else None
    page_offset, page = 0, element
    occupied: set[str] = set()
    if slot_enum is not None:
        for v in slot_enum.variants:
            try:
                found = find_struct(v.payload, lambda t: has_members(t, "physical_addr"), element.name)
            except LayoutError:
                continue
            page_offset, page = found.offset, found.struct
            occupied.add(v.name)
        if not occupied:
            raise LayoutError(f"no variant of {element.name} carries a page with physical_addr")
    if not isinstance(page, StructType):
        raise LayoutError(f"cow_pages elements are {element.name}, not pages")

    def scalar(name: str) -> tuple[int, int]:
        off, t = member(page, name)
        return page_offset + off, t.size

    def simple_vec(name: str) -> tuple[int, int, int, int, int]:
        off, vec = member(page, name)
        if not isinstance(vec, StructType):
            raise LayoutError(f"{page.name}.{name} is {vec.name}, not a SimpleVec")
        data_off, data = member(vec, "data")
        len_off, len_t = member(vec, "len")
        if not isinstance(data, ArrayType):
            raise LayoutError(f"{vec.name}.data is {data.name}, not an array")
        return (page_offset + off + data_off, data.row().size, data.count, page_offset + off + len_off, len_t.size)

    perms_off, perms_t = member(page, "original_permissions")
    return _PageFields(
        stride=pages.row().size, count=pages.count, slot_enum=slot_enum,
        occupied=frozenset(occupied), page_offset=page_offset,
        pa=scalar("physical_addr"), refs=scalar("ref_count"), is_cow=scalar("is_cow")[0],
        perms=(page_offset + perms_off, perms_t),
        vas=simple_vec("virtual_addresses"), pids=simple_vec("process_ids"),
    )


# -- decoding ------------------------------------------------------------------------------

def read_manager(target: Target, where: ManagerLocation, ram: tuple[int, int] | None = None,
                 pids_parallel: bool | None = None) -> CowManagerState:
    """Decode the manager with one read of the whole static. ``ram`` = (start, end) of
    physical RAM, to validate addresses; ``pids_parallel`` as :func:`pair_sharers`.
    CorruptStructure names the field and why."""
    data = target.read_virtual(where.address, where.size)
    return decode_manager(data, where, ram, pids_parallel)


def decode_manager(data: bytes, where: ManagerLocation, ram: tuple[int, int] | None = None,
                   pids_parallel: bool | None = None) -> CowManagerState:
    """Decode the manager from the static's bytes (see :func:`read_manager`)."""
    base = dict(symbol=where.symbol, address=Address(where.address), capacity=where.page_fields.count,
                lock_held=where.found.lock_held(data, where.symbol))
    if not where.found.present(data, where.symbol):
        return CowManagerState(initialised=False, **base)
    active_pages = where.found.member_int(data, "active_pages")
    capacity = where.page_fields.count
    if active_pages > capacity:
        raise CorruptStructure(
            f"{where.symbol}: active_pages is {active_pages}, more than the {capacity} slots of cow_pages")
    stats_off, stats_t = where.statistics
    stats = CowStatistics(**plain(decode(stats_t, data, stats_off, f"{where.symbol}.statistics")))
    pages = tuple(_pages(data, where, ram, pids_parallel))
    return CowManagerState(
        initialised=True, active_pages=active_pages,
        next_process_id=where.found.member_int(data, "next_process_id"),
        memory_manager=_plain_address(data, where.found.offset, where.found.struct),
        statistics=stats, pages=pages, **base,
    )


def _plain_address(data: bytes, m: int, manager: StructType) -> Address:
    """``memory_manager`` as an address whatever its shape (usize, pointer, Option of one)."""
    off, t = member(manager, "memory_manager")
    value = plain(decode(t, data, m + off, "memory_manager"))
    while isinstance(value, dict):
        inner = [v for k, v in value.items() if k != "variant"]
        value = inner[0] if inner else 0
    return Address(value or 0)


def _pages(data: bytes, where: ManagerLocation, ram: tuple[int, int] | None,
           pids_parallel: bool | None) -> Iterator[CowPage]:
    """The occupied slots' pages, in slot order; the first corrupt slot raises."""
    f = where.page_fields
    slots, bad_slot = _occupied_slots(data, where)
    codec = f.codec
    names: dict[bytes, str] = {}  # original_permissions by raw bytes: a handful of values
    for slot in slots:
        yield _page(data, where.pages_offset + slot * f.stride, slot, f, codec, names, where.symbol, ram, pids_parallel)
    if bad_slot is not None:
        e = f.slot_enum
        at = where.pages_offset + bad_slot * f.stride
        raise CorruptStructure(
            f"{where.symbol}.cow_pages[{bad_slot}]: {e.name} discriminant {e.discriminant(data, at)} selects no variant")


def _occupied_slots(data: bytes, where: ManagerLocation) -> tuple[list[int] | range, int | None]:
    """The slots holding a page before the first slot whose discriminant selects no
    variant, and that slot (None when there is none). The discriminants of all slots
    come from one strided slice of the static; each distinct value is looked up once."""
    f = where.page_fields
    e = f.slot_enum
    if e is None:
        return range(f.count), None
    if e.discr_offset is None:  # one variant, no discriminant field: every slot alike
        variant = e.select(None)
        if variant is None:
            return [], 0 if f.count else None
        return (range(f.count) if variant.name in f.occupied else []), None
    tags = _column(data, where.pages_offset + e.discr_offset, f.stride, f.count, e.discr_size, e.discr_signed)
    stop, occupied = f.count, []
    for value in set(tags):
        variant = e.select(value)
        if variant is None:
            stop = min(stop, tags.index(value))
        elif variant.name in f.occupied:
            occupied.append(value)
    wanted = set(occupied)  # one membership test per slot, in C
    slots = list(compress(range(stop), map(wanted.__contains__, tags[:stop])))
    return slots, (stop if stop < f.count else None)


def _column(data: bytes, start: int, stride: int, count: int, size: int, signed: bool) -> bytes | list[int]:
    """The ``size``-byte little-endian integers at ``start``, ``start + stride``, ... (``count``
    of them): one slice in C when the host is little-endian and the stride allows."""
    if count == 0:
        return []
    if size == 1 and not signed:
        return data[start : start + (count - 1) * stride + 1 : stride]
    code = _INT_CODES.get(size)
    if code is not None and stride % size == 0 and sys.byteorder == "little":
        view = memoryview(data)[start : start + (count - 1) * stride + size]
        return view.cast(code.lower() if signed else code)[:: stride // size].tolist()
    return [int.from_bytes(data[start + i * stride : start + i * stride + size], "little", signed=signed)
            for i in range(count)]


_INT_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}


@dataclass(frozen=True)
class _SlotCodec:
    """Precompiled unpackers of one ``cow_pages`` element: the fixed fields in one
    ``unpack_from`` (physical_addr, ref_count, is_cow, the two SimpleVec lengths, the raw
    original_permissions, put in that order by ``fields``), each SimpleVec's whole data
    array in another."""

    head: struct.Struct
    fields: Callable[[tuple], tuple]  # head's tuple -> (pa, refs, is_cow, vas_len, pids_len, perms)
    vas: struct.Struct
    pids: struct.Struct


def _codec(f: _PageFields) -> _SlotCodec:
    perms_size = f.perms[1].size
    fields = [(f.pa[0], f.pa[1], "pa"), (f.refs[0], f.refs[1], "refs"), (f.is_cow, 1, "is_cow"),
              (f.vas[3], f.vas[4], "vas_len"), (f.pids[3], f.pids[4], "pids_len"), (f.perms[0], perms_size, "perms")]
    fmt, at, names = "<", 0, []
    for offset, size, name in sorted(fields):
        if offset < at:
            raise LayoutError(f"cow_pages element: field {name} at offset {offset} overlaps the previous one")
        code = "s" if name == "perms" else _INT_CODES.get(size)
        if code is None:
            raise LayoutError(f"cow_pages element: {name} is {size} bytes, not a machine integer")
        fmt += f"{offset - at}x" if offset > at else ""
        fmt += f"{size}s" if code == "s" else code
        at, names = offset + size, names + [name]
    order = [names.index(n) for n in ("pa", "refs", "is_cow", "vas_len", "pids_len", "perms")]

    def array(shape: tuple[int, int, int, int, int]) -> struct.Struct:
        _, size, capacity, _, _ = shape
        if size not in _INT_CODES:
            raise LayoutError(f"cow_pages element: SimpleVec items of {size} bytes are not machine integers")
        return struct.Struct(f"<{capacity}{_INT_CODES[size]}")

    return _SlotCodec(struct.Struct(fmt), operator.itemgetter(*order), array(f.vas), array(f.pids))


def _page(data: bytes, at: int, slot: int, f: _PageFields, codec: _SlotCodec, names: dict[bytes, str],
          symbol: str, ram: tuple[int, int] | None, pids_parallel: bool | None) -> CowPage:
    pa, refs, is_cow, vas_len, pids_len, perms_raw = codec.fields(codec.head.unpack_from(data, at))
    perms_name = names.get(perms_raw)
    mismatched = pids_parallel and vas_len != pids_len
    if (perms_name is None or is_cow > 1 or pa % PAGE_SIZE or mismatched or vas_len > f.vas[2]
            or pids_len > f.pids[2] or (ram is not None and not ram[0] <= pa < ram[1])):
        # something to look at: every check, in order (the first failing one raises)
        perms_name = _checked(data, at, slot, f, names, symbol, ram, pa, is_cow, vas_len, pids_len, perms_raw,
                              pids_parallel)
    vas = codec.vas.unpack_from(data, at + f.vas[0])[:vas_len]
    pids = codec.pids.unpack_from(data, at + f.pids[0])[:pids_len]
    return CowPage(slot, Address(pa), refs, is_cow == 1, perms_name, pair_sharers(vas, pids, pids_parallel),
                   tuple(map(Address, vas)), pids)


def _checked(data: bytes, at: int, slot: int, f: _PageFields, names: dict[bytes, str], symbol: str,
             ram: tuple[int, int] | None, pa: int, is_cow: int, vas_len: int, pids_len: int, perms_raw: bytes,
             pids_parallel: bool | None) -> str:
    """Raise CorruptStructure for the first field of the slot that is wrong; else the
    permissions' name (decoded, and remembered for the next slots)."""
    where = _slot(symbol, slot)
    if ram is not None and not ram[0] <= pa < ram[1]:
        raise CorruptStructure(f"{where}.physical_addr is {pa:#x}, outside RAM {ram[0]:#x}-{ram[1]:#x}")
    if pa % PAGE_SIZE:
        raise CorruptStructure(f"{where}.physical_addr is {pa:#x}, not page aligned")
    if is_cow > 1:
        raise CorruptStructure(f"{where}.is_cow holds {is_cow}, not 0 or 1")
    perms_name = names.get(perms_raw)
    if perms_name is None:
        perms_name = names[perms_raw] = permissions_name(data, at, f, f"{where}.original_permissions")
    for name, length, capacity in (("virtual_addresses", vas_len, f.vas[2]), ("process_ids", pids_len, f.pids[2])):
        if length > capacity:
            raise CorruptStructure(f"{where}.{name}.len is {length}, more than its capacity {capacity}")
    if pids_parallel and vas_len != pids_len:
        raise CorruptStructure(f"{where}: {vas_len} virtual addresses but {pids_len} process ids "
                               "(this kernel keeps them parallel)")
    return perms_name


def permissions_name(data: bytes, at: int, f: _PageFields, what: str) -> str:
    """The name of the ``original_permissions`` of the slot at ``at`` (CorruptStructure
    when its bytes hold no variant)."""
    perms_off, perms_t = f.perms
    perms = decode(perms_t, data, at + perms_off, what)
    return perms.variant if hasattr(perms, "variant") else str(perms)


def _slot(symbol: str, slot: int) -> str:
    """How errors name a slot (made only when one is raised)."""
    return f"{symbol}.cow_pages[{slot}]"


# -- one slot -------------------------------------------------------------------------------

def slot_address(where: ManagerLocation, slot: int) -> int:
    """The virtual address of ``cow_pages[slot]``."""
    return where.address + where.pages_offset + slot * where.page_fields.stride


def slot_fields(where: ManagerLocation) -> tuple[tuple[str, int, int], ...]:
    """(name, offset, size) inside a slot of what changes when the frame's sharing does:
    ``ref_count``, ``is_cow``, the sharer lists' lengths and the occupied/free tag (the
    enum's discriminant, which may share its byte with ``is_cow``), overlaps merged away.
    A push or remove always writes a length, so watching these sees every change."""
    f = where.page_fields
    fields = [("ref_count", *f.refs), ("is_cow", f.is_cow, 1),
              ("virtual_addresses.len", f.vas[3], f.vas[4]), ("process_ids.len", f.pids[3], f.pids[4])]
    e = f.slot_enum
    if e is not None and e.discr_offset is not None:
        fields.append(("tag", e.discr_offset, e.discr_size))
    kept: list[tuple[str, int, int]] = []
    for name, offset, size in sorted(fields, key=lambda x: x[1]):
        if kept and offset < kept[-1][1] + kept[-1][2]:
            continue  # inside the previous one (is_cow holding the tag): one watch covers both
        kept.append((name, offset, size))
    return tuple(kept)


@dataclass(frozen=True)
class SlotFields:
    """One ``cow_pages`` element as its bytes hold it, unchecked: a slot in the middle of an
    update (one sharer list already shortened, the other not) reads as it is."""

    occupied: bool
    physical_addr: int
    ref_count: int
    is_cow: int
    virtual_addresses: tuple[int, ...]
    process_ids: tuple[int, ...]


def decode_slot(data: bytes, where: ManagerLocation) -> SlotFields:
    """``cow_pages[slot]`` from its own ``stride`` bytes; the lists' lengths are clipped to
    their capacity, nothing else is checked (see :func:`read_manager` for that)."""
    f = where.page_fields
    e = f.slot_enum
    variant = e.select(e.discriminant(data, 0)) if e is not None else None
    occupied = e is None or (variant is not None and variant.name in f.occupied)
    codec = f.codec
    pa, refs, is_cow, vas_len, pids_len, _ = codec.fields(codec.head.unpack_from(data, 0))
    vas = codec.vas.unpack_from(data, f.vas[0])[: min(vas_len, f.vas[2])]
    pids = codec.pids.unpack_from(data, f.pids[0])[: min(pids_len, f.pids[2])]
    return SlotFields(occupied, pa, refs, is_cow, tuple(vas), tuple(pids))
