"""Invariants that cross-reference the COW manager, the page tables and the frame allocator.

Pure logic over decoded models (no gdb, no target): the command layer decodes the
manager, the process table, every live process's user address space and the frame
allocator once, and :func:`check_cow` compares them. Each kernel is held to its own
:class:`~.conventions.Conventions` (what ref_count counts, whether sharer pids pair with
the VAs, which statistics it maintains), and a rule that needs a piece the kernel lacks
(no process table, no frame allocator) is listed as skipped with the reason. What must
hold whenever ``COW_MANAGER`` is unlocked (under our kernel's conventions):

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

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import repeat
from operator import floordiv, itemgetter

from ..core.address import PAGE_SIZE, Address, page_base
from .conventions import Conventions
from .check_columns import suspect_pages
from .cow import CowManagerState, CowPage
from .cow_columns import CowSummary
from .frames import FrameAllocatorState
from .mappings import MappedRun, MappingIndex, Pte
from .processes import ProcessTable


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
    skipped: tuple[str, ...] = ()  # rules not applied to this kernel, each with why

    @property
    def ok(self) -> bool:
        return not self.violations and not self.omitted

    def summary(self) -> str:
        if self.ok:
            return f"cow-check: OK ({self.pages} pages, {self.mappings} user PTEs checked)"
        found = len(self.violations) + self.omitted
        shown = f" ({self.omitted} not shown: --max 0 lists all)" if self.omitted else ""
        return f"cow-check: {found} violation{'s' if found != 1 else ''}{shown}"

    def describe(self) -> str:
        lines = [f"warning: {w}" for w in self.warnings]
        lines += [f"skipped: {s}" for s in self.skipped]
        lines += [v.describe() for v in self.violations]
        lines.append(self.summary())
        return "\n".join(lines)


def check_cow(
    cow: CowManagerState | CowSummary,
    processes: ProcessTable | None,
    index: MappingIndex | None,
    frames: FrameAllocatorState | None = None,
    manager_size: int | None = None,
    conventions: Conventions = Conventions(),
    missing: dict[str, str] | None = None,
) -> CheckReport:
    """Every invariant of the module docstring that this kernel's pieces and conventions
    allow; the report lists all violations found and every rule skipped, with why.
    ``processes``/``index`` None: no process table (the live-PTE rules are skipped);
    ``missing`` maps a missing piece ("process-table", "frame-allocator") to why."""
    missing = missing or {}
    cow = cow if isinstance(cow, CowSummary) else CowSummary.of_manager(cow)
    skipped = list(_skipped_rules(processes, frames, manager_size, conventions, missing))
    warnings = list(_lock_warnings(cow, processes, frames)) + (index.problems if index else [])
    mappings = index.mappings if index else 0
    live = {p.pid for p in processes.live()} if processes is not None else set()
    if not cow.initialised:
        return CheckReport(0, mappings, len(live), (),
                           tuple(warnings + [f"{cow.symbol} is not initialised: no pages to check"]), skipped=tuple(skipped))
    violations: list[Violation] = []
    tables = index is not None and processes is not None
    # the pages' own and PTE rules one page at a time, only where the columns see a difference
    for page in cow.pages_at(suspect_pages(cow, index if tables else None, live, conventions)):
        violations += _page_violations(page, conventions)
        if tables:
            violations += _pte_violations(page, index.at(page.physical_addr), live, index, conventions)
    violations += _duplicate_frames(cow)
    violations += _statistics_violations(cow, manager_size, conventions)
    if frames is not None:
        violations += _frame_violations(cow, index, frames)
    return CheckReport(cow.tracked, mappings, len(live), tuple(violations), tuple(warnings), skipped=tuple(skipped))


def _skipped_rules(processes, frames, manager_size, conventions: Conventions, missing: dict[str, str]):
    if processes is None:
        yield ("ref-count, stale-sharer, dead-sharer, unrecorded-mapping, writable-cow: no process table "
               f"({missing.get('process-table', 'not available')})")
    if frames is None:
        yield f"frame-free, frame-refs, frame-reserved: no frame allocator ({missing.get('frame-allocator', 'not available')})"
    for name in ("memory_saved_bytes", "metadata_memory_bytes"):
        if not conventions.maintains(name):
            yield f"statistics.{name}: this kernel does not maintain it [{conventions.sources.get('maintained', 'default')}]"
    if manager_size is None and conventions.maintains("metadata_memory_bytes"):
        yield "statistics.metadata_memory_bytes: the manager's size is unknown"
    if not conventions.pids_parallel:
        yield (f"sharer pairing: process_ids is a set [{conventions.sources.get('pids', 'default')}]; "
               "sharers whose pid cannot be told are checked by VA only")


def _lock_warnings(cow: CowSummary, processes: ProcessTable | None, frames: FrameAllocatorState | None):
    held = [(cow.symbol, cow.lock_held)]
    if processes is not None:
        held.append(("the process table", processes.lock_held))
    if frames is not None:
        held.append(("the frame allocator", frames.lock_held))
    for what, lock in held:
        if lock:
            yield f"{what}'s lock is held: the state may be mid-update, violations may be transient"


def _page_violations(page: CowPage, conventions: Conventions) -> Iterable[Violation]:
    """What the page's own record must satisfy, tables aside."""
    pa = Address(page.physical_addr)
    # the evidence, worded only for a violation (a clean page of 20 000 costs none)
    if page.ref_count != conventions.expected_refs(page.recorded_mappings):
        owner = " plus the owner" if conventions.refs == "owner" else ""
        yield Violation("ref-count-metadata", pa,
                        f"ref_count is {page.ref_count} but {page.recorded_mappings} mappings{owner} are recorded",
                        _recorded(page))
    if not page.is_cow:
        yield Violation("not-cow", pa, f"slot {page.slot} tracks the frame with is_cow false")
    known = [s for s in page.sharers if s.pid is not None]
    for sharer, times in Counter(known).items():
        if times > 1:
            yield Violation("duplicate-sharer", pa, f"va {Address(sharer.va)} pid {sharer.pid} is recorded {times} times")


def _recorded(page: CowPage) -> tuple[str, ...]:
    return tuple(f"recorded: va {Address(s.va)} pid {'?' if s.pid is None else s.pid}" for s in page.sharers)


def _pte_violations(page: CowPage, ptes: list[Pte], live: set[int], index: MappingIndex,
                    conventions: Conventions) -> Iterable[Violation]:
    """The record against the live tables."""
    pa = Address(page.physical_addr)

    def found() -> tuple[str, ...]:
        return tuple(f"PTE: {r.describe()}" for r in ptes)

    if conventions.mappings(page.ref_count) != len(ptes):
        yield Violation("ref-count", pa,
                        f"ref_count is {page.ref_count} but {len(ptes)} live user PTEs map the frame",
                        found() or ("no live user PTE maps it",))
    for sharer in page.sharers:
        if sharer.pid is not None:
            yield from _sharer_violations(pa, sharer.va, sharer.pid, live, index)
    pids = set(page.process_ids)
    for ref in ptes:
        if not _is_recorded(page, ref, pids):
            yield Violation("unrecorded-mapping", pa, f"{ref.describe()} maps the frame but is not a recorded sharer",
                            _recorded(page))
        if ref.writable and page.is_cow:
            shared = page.ref_count > 1 or len(ptes) > 1
            kind, consequence = (("writable-shared", "a write there reaches the other sharers without a copy")
                                 if shared else
                                 ("writable-cow", "the manager expects a write fault that will never come"))
            yield Violation(kind, pa, f"{ref.describe()} maps a COW frame writable: {consequence}",
                            (f"ref_count {page.ref_count}",) + found())


def _is_recorded(page: CowPage, ref: Pte, pids: set[int]) -> bool:
    for s in page.sharers:
        if page_base(s.va) != page_base(ref.va):
            continue
        if s.pid == ref.pid or (s.pid is None and ref.pid in pids):
            return True
    return False


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


def _duplicate_frames(cow: CowSummary) -> Iterable[Violation]:
    if len(set(cow.pas)) == cow.tracked:
        return
    slots: dict[int, list[int]] = defaultdict(list)
    for pa, slot in zip(cow.pas, cow.slots):
        slots[pa].append(slot)
    for pa, used in slots.items():
        if len(used) > 1:
            yield Violation("duplicate-frame", Address(pa), f"tracked by {len(used)} slots: {', '.join(map(str, used))}")


def _statistics_violations(cow: CowSummary, manager_size: int | None,
                           conventions: Conventions) -> Iterable[Violation]:
    stats = cow.statistics
    if stats is None:
        return
    occupied = cow.tracked
    expected = [
        ("statistics.cow_pages_count", stats.cow_pages_count, occupied, "occupied slots"),
        ("active_pages", cow.active_pages, occupied, "occupied slots"),
    ]
    if conventions.maintains("memory_saved_bytes"):
        expected.append(("statistics.memory_saved_bytes", stats.memory_saved_bytes, conventions.saved_bytes_of(cow.refs),
                         f"{conventions.saved_formula} over the pages"))
    if manager_size is not None and conventions.maintains("metadata_memory_bytes"):
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


def _frame_violations(cow: CowSummary, index: MappingIndex | None, frames: FrameAllocatorState) -> Iterable[Violation]:
    for pa in _maybe_free(cow.pas, frames):
        if frames.is_free(pa):
            yield Violation("frame-free", Address(pa), "tracked by the COW manager but free in the frame allocator (count 0)")
    for start, end, runs in index.segments() if index is not None else ():
        yield from _span_violations(start, end, runs, frames)


def _maybe_free(pas: tuple[int, ...], frames: FrameAllocatorState) -> tuple[int, ...]:
    """``pas``, or none of them when their allocator counts, picked in C, hold no 0."""
    if not pas or min(pas) < frames.base_pa or max(pas) >= frames.base_pa + frames.frame_count * PAGE_SIZE:
        return pas
    counts = itemgetter(*map(floordiv, map((-frames.base_pa).__add__, pas), repeat(PAGE_SIZE)))(frames.ref_counts)
    return pas if 0 in (counts if len(pas) > 1 else (counts,)) else ()


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
    if counts and min(counts) >= ptes and frames.reserved_value not in counts:
        counts = ()  # every frame counts its PTEs and none is reserved (decided in C): nothing to group
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
