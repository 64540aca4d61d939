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

from dataclasses import dataclass

from ..core.address import PAGE_SIZE, Address, page_base
from ..debuginfo import DebugInfo, decode, plain
from ..debuginfo.layouts import ArrayType, RustEnumType, StructType, Type
from ..core.errors import CorruptStructure, LayoutError
from ..debuginfo.locate import Found, find_struct, has_members, member, uint
from ..core.target import Target

# -- the model ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Sharer:
    """One mapping of a tracked frame: virtual address ``va`` in process ``pid``."""

    va: Address
    pid: int


@dataclass(frozen=True)
class CowPage:
    """One occupied slot of ``cow_pages``."""

    slot: int
    physical_addr: Address
    ref_count: int
    is_cow: bool
    original_permissions: str
    sharers: tuple[Sharer, ...]


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

def read_manager(target: Target, where: ManagerLocation, ram: tuple[int, int] | None = None) -> CowManagerState:
    """Decode the manager with one read of the whole static. ``ram`` = (start, end) of
    physical RAM, to validate addresses. CorruptStructure names the field and why."""
    data = target.read_virtual(where.address, where.size)
    return decode_manager(data, where, ram)


def decode_manager(data: bytes, where: ManagerLocation, ram: tuple[int, int] | None = None) -> CowManagerState:
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
    pages = tuple(_pages(data, where, ram))
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


def _pages(data: bytes, where: ManagerLocation, ram: tuple[int, int] | None):
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


def _page(data: bytes, at: int, slot: int, f: _PageFields, symbol: str, ram) -> CowPage:
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
            f"{where}: {len(vas)} virtual addresses but {len(pids)} process ids")
    return CowPage(
        slot=slot, physical_addr=Address(pa), ref_count=uint(data, at + f.refs[0], f.refs[1]),
        is_cow=bool(is_cow), original_permissions=perms_name,
        sharers=tuple(Sharer(Address(va), pid) for va, pid in zip(vas, pids)),
    )


def _simple_vec(data: bytes, at: int, shape: tuple[int, int, int, int, int], where: str) -> list[int]:
    data_off, size, capacity, len_off, len_size = shape
    length = uint(data, at + len_off, len_size)
    if length > capacity:
        raise CorruptStructure(f"{where}.len is {length}, more than its capacity {capacity}")
    return [uint(data, at + data_off + i * size, size) for i in range(length)]

