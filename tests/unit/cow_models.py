"""Synthetic COW states built by hand: a parent (pid 1) that forked a child (pid 2).

The healthy state is what issue 3's fork rules give, written out directly: each process
maps one read-only code frame (shared, not tracked) and N heap pages; every heap frame is
shared by both processes read-only, tracked with ref_count 2, and counted twice by the
frame allocator. Tests corrupt a copy of it in one place and expect the matching finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from gdb_tinyos.aarch64 import AddressSpace, Attributes, MemoryAttribute, Permissions, Range
from gdb_tinyos.tinyos.cow import CowManagerState, CowPage, CowStatistics, Sharer
from gdb_tinyos.tinyos.frames import FrameAllocatorState
from gdb_tinyos.tinyos.processes import Process, ProcessTable

RAM = 0x4000_0000
FRAMES = 64
CODE_VA, CODE_PA = 0x40_0000, RAM + 0x1000
HEAP_VA = 0x1000_0000
HEAP_PA = RAM + 0x10_000  # heap page i is frame HEAP_PA + i * 4096
MANAGER_SIZE = 4242


def attrs(writable: bool, user_exec: bool = False) -> Attributes:
    perms = Permissions(el1_read=True, el1_write=writable, el1_exec=False,
                        el0_read=True, el0_write=writable, el0_exec=user_exec)
    return Attributes(perms=perms, pxn=True, uxn=not user_exec, memory=MemoryAttribute.decode(1, 0xFF),
                      shareability="inner", af=True, ng=True, contiguous=False, dbm=False, ns=False)


def page_range(va: int, pa: int, writable: bool = False, pages: int = 1, user_exec: bool = False) -> Range:
    return Range(va, va + pages * 4096, pa, attrs(writable, user_exec), pages, (3,))


def space(ranges: list[Range], asid: int) -> AddressSpace:
    return AddressSpace(name="TTBR0", root_table=RAM + 0x8000 + asid * 0x1000, asid=asid, granule="4K",
                        input_bits=48, start_level=0, va_start=0, va_end=1 << 48, ranges=list(ranges))


def process(pid: int, state: str = "Ready") -> Process:
    return Process(slot=pid - 1, pid=pid, state=state, ttbr0=RAM + 0x8000 + pid * 0x1000, asid=pid,
                   parent=pid - 1, name="forkpause", running=False)


@dataclass
class Forked:
    """The parts of a forked state, editable before :meth:`manager` etc. assemble them."""

    heap_pages: int = 3
    pages: list[CowPage] = field(default_factory=list)
    ranges: dict[int, list[Range]] = field(default_factory=dict)
    refs: dict[int, int] = field(default_factory=dict)  # frame PA -> allocator count
    processes: list[Process] = field(default_factory=list)
    statistics: CowStatistics | None = None
    active_pages: int | None = None
    lock_held: bool = False

    def __post_init__(self) -> None:
        n = self.heap_pages
        self.pages = [
            CowPage(slot=16 + i, physical_addr=HEAP_PA + i * 4096, ref_count=2, is_cow=True,
                    original_permissions="UserData",
                    sharers=(Sharer(HEAP_VA + i * 4096, 1), Sharer(HEAP_VA + i * 4096, 2)))
            for i in range(n)
        ]
        for pid in (1, 2):
            self.ranges[pid] = [page_range(CODE_VA, CODE_PA, user_exec=True),
                                page_range(HEAP_VA, HEAP_PA, writable=False, pages=n)]
        self.refs = {CODE_PA: 2, **{HEAP_PA + i * 4096: 2 for i in range(n)}}
        self.processes = [process(1), process(2)]
        self.statistics = CowStatistics(cow_pages_count=n, cow_faults_handled=0, pages_duplicated=0,
                                        memory_saved_bytes=n * 4096, metadata_memory_bytes=MANAGER_SIZE,
                                        peak_cow_pages=n)

    def set_page(self, index: int, **changes) -> None:
        self.pages[index] = replace(self.pages[index], **changes)

    def manager(self) -> CowManagerState:
        return CowManagerState(symbol="COW_MANAGER", address=0xFFFF_0000_4009_0000, initialised=True,
                               lock_held=self.lock_held, capacity=FRAMES,
                               active_pages=len(self.pages) if self.active_pages is None else self.active_pages,
                               statistics=self.statistics, pages=tuple(self.pages))

    def table(self) -> ProcessTable:
        return ProcessTable(tuple(self.processes), lock_held=False)

    def spaces(self) -> dict[int, AddressSpace]:
        live = {p.pid for p in self.table().live()}
        return {pid: space(r, pid) for pid, r in self.ranges.items() if pid in live}

    def frames(self) -> FrameAllocatorState:
        counts = tuple(self.refs.get(RAM + i * 4096, 0) for i in range(FRAMES))
        return FrameAllocatorState(base_pa=RAM, frame_count=FRAMES, total_frames=FRAMES,
                                   free_frames=counts.count(0), lock_held=False, reserved_value=0xFFFF,
                                   ref_counts=counts)
