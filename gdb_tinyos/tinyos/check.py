"""Invariants that cross-reference the COW manager, the page tables and the frame allocator.

Pure logic over decoded models (no gdb, no target): the command layer decodes the
manager, the process table, every live process's user address space and the frame
allocator once, and :func:`check_cow` compares them. What must hold (issue 3's rules,
which the kernel keeps whenever ``COW_MANAGER`` is unlocked):

- a tracked frame's ``ref_count`` equals the number of live user PTEs that map it, across
  all live processes, and the number of recorded (va, pid) sharers;
- the recorded sharers are exactly those PTEs: each recorded pid is live, each recorded
  va maps the frame in that pid, each PTE mapping the frame is recorded;
- every mapping of a COW frame is read-only (a writable one lets a write bypass the copy;
  with ``ref_count > 1`` it leaks into the other sharers);
- the statistics agree with the pages: ``cow_pages_count`` and ``active_pages`` = occupied
  slots, ``memory_saved_bytes`` = Σ (ref_count − 1) × 4096, ``peak_cow_pages`` ≥ current,
  ``metadata_memory_bytes`` = the manager's size (when known);
- no tracked frame is free in the frame allocator, and every user-mapped frame's
  allocator count is at least its number of mappings (else a free could hand out a frame
  still mapped).

Example::

    index = MappingIndex.build({p.pid: view.address_space(p) for p in table.live()})
    report = check_cow(view.cow(), table, index, frames=view.frames())
    report.ok, [v.describe() for v in report.violations]
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from ..core.address import PAGE_SIZE, Address, page_base
from ..aarch64 import AddressSpace
from .cow import CowManagerState, CowPage
from .frames import FrameAllocatorState
from .processes import ProcessTable


@dataclass(frozen=True)
class PteRef:
    """One live user mapping of a 4 KiB frame: page ``va`` of process ``pid``."""

    pid: int
    va: Address
    pa: Address
    writable: bool
    perms: str = ""  # the effective permissions, as Permissions.describe() words them

    def describe(self) -> str:
        return f"pid {self.pid} va {self.va} ({'writable' if self.writable else 'read-only'})"


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

    def ref(self, page: int) -> PteRef:
        """The PTE of the run's ``page``-th page."""
        offset = page * PAGE_SIZE
        return PteRef(self.pid, Address(self.va + offset), Address(self.pa + offset), self.writable, self.perms)


class MappingIndex:
    """Every live user PTE, by frame and by (pid, page VA). Built once per check.

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

    def at(self, pa: int) -> list[PteRef]:
        """The PTEs mapping the frame of ``pa``, in the order the spaces listed them."""
        frame = page_base(pa)
        k = bisect_right(self._cuts, frame) - 1
        if k < 0 or k >= len(self._covering):
            return []
        return [run.ref((frame - page_base(run.pa)) // PAGE_SIZE) for run in self._covering[k]]

    def lookup(self, pid: int, va: int) -> PteRef | None:
        found = self.run_at(pid, va)
        return found[0].ref(found[1]) if found is not None else None

    def run_at(self, pid: int, va: int) -> tuple[MappedRun, int] | None:
        """The run of ``pid`` mapping ``va`` and the page's index in it (no PteRef made)."""
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


@dataclass(frozen=True)
class Violation:
    """One broken invariant: ``kind`` (a stable short name), one sentence, the evidence."""

    kind: str
    pa: Address | None
    message: str
    evidence: tuple[str, ...] = ()
    count: int = 1  # frames with this same finding, from ``pa`` to ``last`` (see grouping.py)
    last: Address | None = None

    def describe(self) -> str:
        where = f" frame {self.pa}" if self.pa is not None else ""
        if self.count > 1:
            where = f" frames {self.pa}-{self.last} ({self.count} frames)"
        lines = [f"[{self.kind}]{where}: {self.message}"]
        lines += [f"    {e}" for e in self.evidence]
        return "\n".join(lines)


@dataclass(frozen=True)
class CheckReport:
    pages: int
    mappings: int  # live user PTEs examined
    processes: int
    violations: tuple[Violation, ...]
    warnings: tuple[str, ...] = ()
    omitted: int = 0  # violations found beyond those listed (cow-check --max)

    @property
    def ok(self) -> bool:
        return not self.violations and not self.omitted

    def summary(self) -> str:
        if self.ok:
            return f"cow-check: OK ({self.pages} pages, {self.mappings} mappings checked)"
        found = len(self.violations) + self.omitted
        shown = f" ({self.omitted} not shown: --max 0 lists all)" if self.omitted else ""
        return f"cow-check: {found} violation{'s' if found != 1 else ''}{shown}"

    def describe(self) -> str:
        lines = [f"warning: {w}" for w in self.warnings]
        lines += [v.describe() for v in self.violations]
        lines.append(self.summary())
        return "\n".join(lines)


def check_cow(
    cow: CowManagerState,
    processes: ProcessTable,
    index: MappingIndex,
    frames: FrameAllocatorState | None = None,
    manager_size: int | None = None,
) -> CheckReport:
    """Every invariant of the module docstring; the report lists all violations found."""
    warnings = list(_lock_warnings(cow, processes, frames)) + index.problems
    if not cow.initialised:
        return CheckReport(0, index.mappings, len(processes.live()), (),
                           tuple(warnings + [f"{cow.symbol} is not initialised: no pages to check"]))
    live = {p.pid for p in processes.live()}
    violations: list[Violation] = []
    for page in cow.pages:
        violations += _page_violations(page, index.at(page.physical_addr), live, index)
    violations += _duplicate_frames(cow.pages)
    violations += _statistics_violations(cow, manager_size)
    if frames is not None:
        violations += _frame_violations(cow, index, frames)
    return CheckReport(len(cow.pages), index.mappings, len(live), tuple(violations), tuple(warnings))


def _lock_warnings(cow: CowManagerState, processes: ProcessTable, frames: FrameAllocatorState | None):
    held = [(cow.symbol, cow.lock_held), ("the process table", processes.lock_held)]
    if frames is not None:
        held.append(("the frame allocator", frames.lock_held))
    for what, lock in held:
        if lock:
            yield f"{what}'s lock is held: the state may be mid-update, violations may be transient"


def _page_violations(page: CowPage, ptes: list[PteRef], live: set[int], index: MappingIndex) -> Iterable[Violation]:
    pa = Address(page.physical_addr)
    # the evidence, worded only for a violation (a clean page of 20 000 costs none)
    def recorded() -> tuple[str, ...]:
        return tuple(f"recorded: va {Address(s.va)} pid {s.pid}" for s in page.sharers)

    def found() -> tuple[str, ...]:
        return tuple(f"PTE: {r.describe()}" for r in ptes)

    if page.ref_count != len(page.sharers):
        yield Violation("ref-count-metadata", pa,
                        f"ref_count is {page.ref_count} but {len(page.sharers)} sharers are recorded", recorded())
    if page.ref_count != len(ptes):
        yield Violation("ref-count", pa,
                        f"ref_count is {page.ref_count} but {len(ptes)} live user PTEs map the frame",
                        found() or ("no live user PTE maps it",))
    if not page.is_cow:
        yield Violation("not-cow", pa, f"slot {page.slot} tracks the frame with is_cow false")
    for sharer, times in Counter(page.sharers).items():
        if times > 1:
            yield Violation("duplicate-sharer", pa, f"va {Address(sharer.va)} pid {sharer.pid} is recorded {times} times")
    for sharer in page.sharers:
        yield from _sharer_violations(pa, sharer.va, sharer.pid, live, index)
    recorded_pairs = {(s.pid, page_base(s.va)) for s in page.sharers}
    for ref in ptes:
        if (ref.pid, page_base(ref.va)) not in recorded_pairs:
            yield Violation("unrecorded-mapping", pa, f"{ref.describe()} maps the frame but is not a recorded sharer",
                            recorded())
        if ref.writable and page.is_cow:
            shared = page.ref_count > 1 or len(ptes) > 1
            kind, consequence = (("writable-shared", "a write there reaches the other sharers without a copy")
                                 if shared else
                                 ("writable-cow", "the manager expects a write fault that will never come"))
            yield Violation(kind, pa, f"{ref.describe()} maps a COW frame writable: {consequence}",
                            (f"ref_count {page.ref_count}",) + found())


def _sharer_violations(pa: Address, va: int, pid: int, live: set[int], index: MappingIndex) -> Iterable[Violation]:
    where = f"va {Address(va)} pid {pid}"
    if pid not in live:
        yield Violation("dead-sharer", pa, f"recorded sharer {where}: pid {pid} is not a live process")
        return
    ref = index.lookup(pid, va)
    if ref is None:
        yield Violation("stale-sharer", pa, f"recorded sharer {where}: the VA is not mapped in pid {pid}")
    elif page_base(ref.pa) != pa:
        yield Violation("stale-sharer", pa, f"recorded sharer {where}: the VA maps frame {Address(page_base(ref.pa))} instead",
                        (f"PTE: {ref.describe()} -> {Address(ref.pa)}",))


def _duplicate_frames(pages: Iterable[CowPage]) -> Iterable[Violation]:
    slots: dict[int, list[int]] = defaultdict(list)
    for page in pages:
        slots[page.physical_addr].append(page.slot)
    for pa, used in slots.items():
        if len(used) > 1:
            yield Violation("duplicate-frame", Address(pa), f"tracked by {len(used)} slots: {', '.join(map(str, used))}")


def _statistics_violations(cow: CowManagerState, manager_size: int | None) -> Iterable[Violation]:
    stats = cow.statistics
    if stats is None:
        return
    occupied = len(cow.pages)
    expected = [
        ("statistics.cow_pages_count", stats.cow_pages_count, occupied, "occupied slots"),
        ("active_pages", cow.active_pages, occupied, "occupied slots"),
        ("statistics.memory_saved_bytes", stats.memory_saved_bytes, cow.saved_bytes, "Σ(ref_count − 1) × 4096 over the pages"),
    ]
    if manager_size is not None:
        expected.append(("statistics.metadata_memory_bytes", stats.metadata_memory_bytes, manager_size,
                         "the size of CowManager"))
    for name, stored, recomputed, what in expected:
        if stored != recomputed:
            yield Violation("statistics", None, f"{name} is {stored}, expected {recomputed} ({what})")
    if stats.peak_cow_pages < stats.cow_pages_count or stats.peak_cow_pages < occupied:
        yield Violation("statistics", None,
                        f"statistics.peak_cow_pages is {stats.peak_cow_pages}, below the current "
                        f"{max(stats.cow_pages_count, occupied)} pages")
    if stats.pages_duplicated > stats.cow_faults_handled:
        yield Violation("statistics", None,
                        f"statistics.pages_duplicated ({stats.pages_duplicated}) exceeds "
                        f"cow_faults_handled ({stats.cow_faults_handled}): every copy comes from a fault")


def _frame_violations(cow: CowManagerState, index: MappingIndex, frames: FrameAllocatorState) -> Iterable[Violation]:
    for page in cow.pages:
        if frames.is_free(page.physical_addr):
            yield Violation("frame-free", Address(page.physical_addr),
                            "tracked by the COW manager but free in the frame allocator (count 0)")
    for start, end, runs in index.segments():
        yield from _span_violations(start, end, runs, frames)


def _span_violations(start: int, end: int, runs: tuple[MappedRun, ...], frames: FrameAllocatorState) -> Iterable[Violation]:
    """The allocator findings on frames [start, end), each mapped by the same ``runs``:
    consecutive frames with the same finding make one violation (with its count), so a
    1 GiB block costs a few violations, not one per frame."""
    ptes = len(runs)
    ram_start, ram_end = frames.ram

    def finding(first: int, frames_alike: int, kind: str, message: str) -> Violation:
        evidence = tuple(run.ref((first - page_base(run.pa)) // PAGE_SIZE).describe() for run in runs)
        last = first + (frames_alike - 1) * PAGE_SIZE
        return Violation(kind, Address(first), message, evidence, frames_alike, Address(last) if frames_alike > 1 else None)

    outside = f"mapped by {ptes} user PTEs but outside RAM"
    if start < ram_start:
        yield finding(start, (min(end, ram_start) - start) // PAGE_SIZE, "frame-outside-ram", outside)
    lo, hi = max(start, ram_start), min(end, ram_end)
    counts = frames.ref_counts[(lo - frames.base_pa) // PAGE_SIZE:(hi - frames.base_pa) // PAGE_SIZE] if lo < hi else ()
    group_start, group = 0, None
    for k, refs in enumerate((*counts, None)):  # None closes the last group
        if refs == frames.reserved_value:
            now = ("frame-reserved", "a user PTE maps a frame of the kernel image")
        elif refs is not None and refs < ptes:
            now = ("frame-refs", f"the frame allocator counts {refs} reference(s) but {ptes} user PTEs map it")
        else:
            now = None
        if now != group:
            if group is not None:
                yield finding(lo + group_start * PAGE_SIZE, k - group_start, *group)
            group_start, group = k, now
    if end > ram_end:
        first = max(start, ram_end)
        yield finding(first, (end - first) // PAGE_SIZE, "frame-outside-ram", outside)
