"""Which user PTEs map which frame: one answer for every command that asks.

:class:`Pte` is one page of one process's address space as its tables hold it now (or why
it holds nothing). :class:`MappingIndex` expands each live process's merged ranges into
pages, indexed by frame and by (pid, page VA): ``cow-check`` builds it for every process,
``cow-status`` looks up single VAs and lets :class:`PteLookup` build a process's index only
when it asks about many of its pages.

Example::

    index = MappingIndex.build({pid: state.address_space(process) for ...})
    index.at(0x4001_2000)            # [Pte(pid=1, va=0x10000000, ...), Pte(pid=2, ...)]
    index.lookup(2, 0x1000_0008)     # the Pte of that page, or None
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from ..aarch64 import AddressSpace, Walk
from ..core.address import PAGE_SIZE, Address, page_base
from ..core.errors import TinyOSError

# A leaf descriptor's software field is bits [58:55] (Arm ARM: ignored by the hardware).
SOFTWARE_FIELD_LOW_BIT = 55


@dataclass(frozen=True)
class Pte:
    """Page ``va`` of process ``pid``: the frame it maps (None: nothing, see ``problem``)."""

    pid: int
    va: Address
    pa: Address | None
    perms: str = ""  # effective permissions, as Permissions.describe() words them
    writable: bool = False  # EL1 or EL0 may write
    # The kernel's COW software bit: only a walk reads it (merged ranges do not keep it), so
    # it is not part of equality -- a walked and an indexed answer for one page are equal.
    cow_bit: bool | None = field(default=None, compare=False)
    problem: str | None = None

    def describe(self) -> str:
        """``pid 2 va 0x10000000 (read-only)``: which mapping, as evidence names it."""
        if self.pa is None:
            return f"pid {self.pid} va {self.va}: {self.problem or 'not mapped'}"
        return f"pid {self.pid} va {self.va} ({'writable' if self.writable else 'read-only'})"

    def detail(self) -> str:
        """``pid 2 va 0x10000000 -> 0x4001a000 EL1:R-- EL0:R-- COW``: the mapping in full."""
        if self.pa is None:
            return self.describe()
        return f"pid {self.pid} va {self.va:#x} -> {self.pa:#x} {self.perms}{' COW' if self.cow_bit else ''}"

    @classmethod
    def from_walk(cls, pid: int, va: int, walk: Walk, cow_bit: int | None = None) -> Pte:
        """The walk's leaf as a Pte; ``cow_bit``: the descriptor bit the kernel marks COW
        entries with (its contract's ``cow_pte_sw_bit``), None when it has none."""
        if walk.mapping is None or walk.pa is None:
            reason = f"level {walk.fault.level} {walk.fault.kind.value} fault" if walk.fault else "no mapping"
            return cls(pid, Address(va), None, problem=f"not mapped ({reason})")
        leaf = walk.steps[-1].decoded if walk.steps else None
        perms = walk.mapping.attrs.perms
        marked = None
        if cow_bit is not None and SOFTWARE_FIELD_LOW_BIT <= cow_bit < SOFTWARE_FIELD_LOW_BIT + 4:
            marked = bool(getattr(leaf, "software", 0) >> (cow_bit - SOFTWARE_FIELD_LOW_BIT) & 1)
        return cls(pid, Address(va), Address(page_base(walk.pa)), perms.describe(), perms.writable, marked)

    @classmethod
    def absent(cls, pid: int, va: int, problem: str) -> Pte:
        return cls(pid, Address(va), None, problem=problem)


@dataclass(frozen=True)
class MappedRun:
    """``pages`` consecutive 4 KiB pages of process ``pid``, ``va`` -> ``pa``, one permission
    (a merged range of its page tables: a 1 GiB block is one run, not 262 144 PTEs)."""

    pid: int
    va: int
    pa: int
    pages: int
    writable: bool
    perms: str

    @property
    def pa_end(self) -> int:
        return self.pa + self.pages * PAGE_SIZE

    def ref(self, page: int) -> Pte:
        """The PTE of the run's ``page``-th page."""
        offset = page * PAGE_SIZE
        return Pte(self.pid, Address(self.va + offset), Address(self.pa + offset), self.perms, self.writable)


class MappingIndex:
    """Every live user PTE, by frame and by (pid, page VA). Built once per stop.

    Kept as runs (one per merged range) and answered by bisection, so its size and cost
    follow the number of ranges, not of pages: the PA line is cut wherever a run starts or
    ends, and each segment between two cuts lists the runs covering it."""

    def __init__(self, runs: list[MappedRun], problems: list[str]) -> None:
        self.runs = runs
        self.problems = problems
        by_pid: dict[int, list[MappedRun]] = defaultdict(list)
        for run in runs:
            by_pid[run.pid].append(run)
        self._by_pid = {pid: ([r.va for r in rs], rs) for pid, rs in
                        ((pid, sorted(rs, key=lambda r: r.va)) for pid, rs in by_pid.items())}
        self._cuts, self._covering = _segments(runs)

    @classmethod
    def build(cls, spaces: Mapping[int, AddressSpace]) -> MappingIndex:
        """One run per merged range of each process (blocks too: a 2 MiB user block maps
        512 frames). ``spaces`` maps pid -> that process's user half."""
        runs: list[MappedRun] = []
        problems: list[str] = []
        for pid, space in spaces.items():
            for r in space.ranges:
                pages = -(-r.size // PAGE_SIZE)
                runs.append(MappedRun(pid, r.va_start, r.pa_start, pages, r.attrs.perms.writable, r.attrs.perms.describe()))
            problems += [f"pid {pid}: {p.describe()}" for p in space.problems]
        return cls(runs, problems)

    def at(self, pa: int) -> list[Pte]:
        """The PTEs mapping the frame of ``pa``, in the order the spaces listed them."""
        frame = page_base(pa)
        k = bisect_right(self._cuts, frame) - 1
        if k < 0 or k >= len(self._covering):
            return []
        return [run.ref((frame - page_base(run.pa)) // PAGE_SIZE) for run in self._covering[k]]

    def lookup(self, pid: int, va: int) -> Pte | None:
        found = self.run_at(pid, va)
        return found[0].ref(found[1]) if found is not None else None

    def run_at(self, pid: int, va: int) -> tuple[MappedRun, int] | None:
        """The run of ``pid`` mapping ``va`` and the page's index in it (no Pte made)."""
        found = self._by_pid.get(pid)
        if found is None:
            return None
        starts, runs = found
        k = bisect_right(starts, page_base(va)) - 1
        if k < 0:
            return None
        run = runs[k]
        page = (page_base(va) - page_base(run.va)) // PAGE_SIZE
        return (run, page) if page < run.pages else None

    def segments(self) -> Iterator[tuple[int, int, tuple[MappedRun, ...]]]:
        """``(start, end, runs)``: maximal PA spans mapped by the same runs, in PA order."""
        for k, runs in enumerate(self._covering):
            if runs:
                yield self._cuts[k], self._cuts[k + 1], runs

    @property
    def mappings(self) -> int:
        return sum(run.pages for run in self.runs)


def _segments(runs: list[MappedRun]) -> tuple[list[int], list[tuple[MappedRun, ...]]]:
    """Cut points of the PA line and, for each span between two cuts, the runs covering it
    (in ``runs`` order)."""
    starting: dict[int, list[int]] = defaultdict(list)
    ending: dict[int, list[int]] = defaultdict(list)
    for i, run in enumerate(runs):
        starting[page_base(run.pa)].append(i)
        ending[page_base(run.pa) + run.pages * PAGE_SIZE].append(i)
    cuts = sorted(starting.keys() | ending.keys())
    active: dict[int, MappedRun] = {}
    covering: list[tuple[MappedRun, ...]] = []
    for cut in cuts[:-1]:
        for i in ending.get(cut, ()):
            del active[i]
        for i in starting.get(cut, ()):
            active[i] = runs[i]
        covering.append(tuple(active[i] for i in sorted(active)))
    return cuts, covering



class PteLookup:
    """``lookup(pid, va)``: single walks for the first ``walk_budget`` pages of a process,
    then one dump of its whole user half, indexed -- so thousands of rows cost one dump
    per process, and a handful cost a handful of walks.

    ``walk(pid, va)`` and ``space(pid)`` read the process's own tables; ``live(pid)`` says
    why a pid has none (None when it is live). ``index`` may be a whole-kernel index
    already built (then every answer comes from it)."""

    def __init__(self, walk: Callable[[int, int], Walk], space: Callable[[int], AddressSpace],
                 live: Callable[[int], str | None], walk_budget: int, index: MappingIndex | None = None) -> None:
        self._walk, self._space, self._live = walk, space, live
        self.walk_budget = walk_budget
        self._full = index
        self._indexes: dict[int, MappingIndex] = {}
        self._walks: Counter[int] = Counter()
        self._why: dict[int, str | None] = {}  # live(pid), asked once per pid (a listing asks per row)

    def __call__(self, pid: int, va: int) -> Pte:
        va = page_base(va)
        why = self._why[pid] if pid in self._why else self._why.setdefault(pid, self._live(pid))
        if why is not None:
            return Pte.absent(pid, va, why)
        try:
            index = self._full or self._indexes.get(pid)
            if index is None and self._walks[pid] >= self.walk_budget:
                index = self._indexes[pid] = MappingIndex.build({pid: self._space(pid)})
            if index is not None:
                return index.lookup(pid, va) or Pte.absent(pid, va, "not mapped (absent from the process's page tables)")
            self._walks[pid] += 1
            return Pte.from_walk(pid, va, self._walk(pid, va))
        except TinyOSError as exc:
            return Pte.absent(pid, va, f"walk failed: {exc}")
