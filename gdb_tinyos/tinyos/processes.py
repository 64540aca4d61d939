"""The process table (``PROCESSES``, ``CURRENT``), decoded from memory.

Kernel contract (kernel/src/process/mod.rs): an array of ``Process { pid, state, ttbr0,
asid, parent, ... }`` behind a lock; ``ttbr0`` is the PA of the process's L0 table, so any
process's address space can be walked, not just the running one's. ``CURRENT`` holds the
running slot, or the maximum value while the shell runs.

Example::

    table = read_processes(target, locate_processes(info))
    for p in table.live():
        print(p.pid, p.state, hex(p.ttbr0), p.asid)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.address import Address
from ..debuginfo import DebugInfo
from ..debuginfo.decode import EnumValue, StructValue, decode_rows
from ..debuginfo.layouts import ArrayType
from ..core.errors import CorruptStructure, LayoutError, MemoryReadError
from ..debuginfo.locate import Found, find_struct
from ..core.target import Target

_DEAD_STATES = ("Unused", "Zombie")
_MAX_NAME = 64
_READ = frozenset({"pid", "state", "ttbr0", "asid", "parent", "name"})  # the members a Process holds


@dataclass(frozen=True)
class Process:
    slot: int
    pid: int
    state: str
    ttbr0: Address
    asid: int
    parent: int
    name: str
    running: bool

    @property
    def live(self) -> bool:
        """Has an address space and may run again."""
        return self.state not in _DEAD_STATES and self.ttbr0 != 0


@dataclass(frozen=True)
class ProcessTable:
    processes: tuple[Process, ...]
    lock_held: bool | None

    def live(self) -> tuple[Process, ...]:
        return tuple(p for p in self.processes if p.live)

    def by_pid(self, pid: int) -> Process | None:
        return next((p for p in self.processes if p.pid == pid and p.state != "Unused"), None)

    def by_asid(self, asid: int) -> Process | None:
        return next((p for p in self.live() if p.asid == asid), None)

    @property
    def current(self) -> Process | None:
        return next((p for p in self.processes if p.running), None)


@dataclass(frozen=True)
class ProcessesLocation:
    symbol: str
    address: int
    size: int
    found: Found
    table_offset: int
    table: ArrayType
    current: tuple[int, int] | None  # address and size of CURRENT


def locate_processes(info: DebugInfo, symbol: str = "process::PROCESSES",
                     current: str | None = "process::CURRENT") -> ProcessesLocation:
    """The table behind ``symbol``; ``current`` names the running-slot static (None: the
    kernel has none, so no process is marked running)."""
    static = info.static(symbol)
    found = _find_table(static.layout, static.symbol.path)
    cur_at: tuple[int, int] | None = None
    if current is not None:
        try:
            cur = info.static(current)
            cur_at = (cur.address, cur.layout.size)
        except LayoutError:
            cur_at = None
    return ProcessesLocation(static.symbol.path, static.address, static.layout.size, found[0],
                             found[1], found[2], cur_at)


def _find_table(layout, what: str) -> tuple[Found, int, ArrayType]:
    """The process array sits inside the lock's data; find_struct looks for structs, so
    look for the struct that *contains* the array (the UnsafeCell) and take its member."""
    def holds_table(t) -> bool:
        return any(_is_table(m.type.strip_typedefs()) for m in t.members)

    found = find_struct(layout, holds_table, what)
    m = next(m for m in found.struct.members if _is_table(m.type.strip_typedefs()))
    return found, found.offset + m.offset, m.type.strip_typedefs()


def _is_table(t) -> bool:
    if not isinstance(t, ArrayType):
        return False
    row = t.row().strip_typedefs()
    names = {m.name for m in getattr(row, "members", ())}
    return {"pid", "state", "ttbr0", "asid"} <= names


def read_processes(target: Target, where: ProcessesLocation) -> ProcessTable:
    data = target.read_virtual(where.address, where.size)
    running_slot = None
    if where.current is not None:
        raw = target.read_virtual(*where.current)
        running_slot = int.from_bytes(raw, "little")
    rows = decode_rows(where.table, data, where.table_offset, where.symbol, _READ)
    processes = tuple(_process(target, i, row, running_slot, where.symbol) for i, row in enumerate(rows))
    return ProcessTable(processes, where.found.lock_held(data, where.symbol))


def _process(target: Target, slot: int, row: StructValue, running_slot: int | None, symbol: str) -> Process:
    state = row.state.variant if isinstance(row.state, EnumValue) else str(row.state)
    asid = row.asid
    if asid >> 16:
        raise CorruptStructure(f"{symbol}[{slot}].asid is {asid:#x}, wider than 16 bits")
    return Process(slot=slot, pid=row.pid, state=state, ttbr0=Address(row.ttbr0), asid=asid,
                   parent=getattr(row, "parent", 0), name=_name(target, row),
                   running=slot == running_slot)


def _name(target: Target, row: StructValue) -> str:
    """``name: &'static str`` is a (pointer, length) pair; unreadable names are shown as ``?``."""
    name = getattr(row, "name", None)
    if not isinstance(name, StructValue):
        return ""
    ptr, length = name.data_ptr, name.length
    if length == 0:
        return ""
    if length > _MAX_NAME:
        # Validated like any other field: reading it would show the bytes after the name.
        return f"<corrupt name: length {length} > {_MAX_NAME}>"
    try:
        return target.read_virtual(ptr, length).decode("utf-8", "replace")
    except MemoryReadError:
        return "?"
