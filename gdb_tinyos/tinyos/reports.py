"""What ``cow-status`` and ``cow-stats`` show: the shell's ``~1``/``~2`` figures, per-page
rows with each sharer's live PTE, and cross-checks of the statistics — as models.

Pure logic (no gdb): :func:`build_status` and :func:`build_stats` take a decoded
:class:`~gdb_tinyos.tinyos.cow.CowManagerState`; the live PTEs come from a ``lookup(pid, va)``
callable returning a :class:`~.mappings.Pte` (the per-stop state's
:meth:`~.state.KernelState.pte_lookup`; None when the kernel has no process table, which
costs the column, not the answer), so tests feed synthetic states and lookups. Each
kernel's figures follow its own :class:`~.conventions.Conventions`.

The figures are the kernel's own (kernel/src/shell/commands/system.rs): ``~1`` prints the
statistics' cow_pages_count, cow_faults_handled, pages_duplicated, memory_saved_bytes and
peak_cow_pages; ``~2`` adds metadata_memory_bytes and ``Memory Efficiency`` =
memory_saved_bytes × 100 / (Σ ref_count × 4096), integer division, 0 when nothing is
tracked (``CowManager::memory_efficiency_percent``).

Example::

    status = build_status(state.cow(), state.pte_lookup(), pid=2, limit=64)
    status.figures.memory_saved_bytes, [p.pa for p in status.pages]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from ..core import render
from ..core.address import PAGE_SIZE, Address, page_base
from .conventions import Conventions
from .cow import CowManagerState
from .cow_columns import CowSummary
from .mappings import Pte
from .status_rows import PageView, SharerView, StatusRows, status_rows  # noqa: F401 (the row models, with their columns)

# Lines of pages the shell's `~1` prints before summarising: the same default here.
DEFAULT_LIMIT = 64


PteLookup = Callable[[int, int], Pte]


@dataclass(frozen=True)
class StatusFigures:
    """The figures of the shell's ``~1`` header, named as it prints them."""

    cow_pages: int
    cow_faults: int
    pages_duplicated: int
    memory_saved_bytes: int
    peak_cow_pages: int


@dataclass(frozen=True)
class CowStatus:
    symbol: str
    address: Address
    initialised: bool
    lock_held: bool | None
    capacity: int
    active_pages: int
    figures: StatusFigures | None
    pages: Sequence[PageView] = ()  # the rows shown (a StatusRows: columns, PageViews on demand)
    matched: int = 0  # pages the filters select
    omitted: int = 0  # selected but beyond the limit (not walked)
    omitted_refs: int = 0
    filters: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what this kernel or this stop leaves out, one line each

    def __post_init__(self) -> None:
        object.__setattr__(self, "pages", StatusRows.of_views(self.pages))

    @property
    def flagged(self) -> int:
        return self.pages.flagged


@dataclass(frozen=True)
class CrossCheck:
    """A stored figure next to the same figure recomputed from the pages."""

    name: str
    stored: int
    derived: int
    how: str

    @property
    def ok(self) -> bool:
        return self.stored == self.derived


@dataclass(frozen=True)
class CowStats:
    """The figures of the shell's ``~2`` (same names, same arithmetic) plus cross-checks."""

    symbol: str
    initialised: bool
    lock_held: bool | None
    total_cow_pages: int = 0
    total_cow_faults: int = 0
    pages_duplicated: int = 0
    memory_saved_bytes: int = 0
    metadata_memory_bytes: int = 0
    peak_cow_pages: int = 0
    memory_efficiency_percent: int = 0
    tracked_pages: int = 0  # occupied slots
    total_mappings: int = 0  # Σ ref_count
    capacity: int = 0
    checks: tuple[CrossCheck, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


# -- building ---------------------------------------------------------------------------

def build_status(cow: CowManagerState | CowSummary, lookup: PteLookup | None, pid: int | None = None,
                 pa: int | tuple[int, int] | None = None, limit: int = DEFAULT_LIMIT,
                 conventions: Conventions = Conventions(), notes: tuple[str, ...] = ()) -> CowStatus:
    """The status model; only the first ``limit`` selected pages (0 = all) are decoded and
    walked (a ``pid`` filter needs every page's sharers: all are decoded).
    ``pa``: the page holding that address, or ``(start, end)``: the frames in [start, end).
    ``lookup`` None: no live PTEs (the kernel has no process table; ``notes`` says so)."""
    cow = _summary(cow)
    where = f"{Address(pa[0])}-{Address(pa[1])}" if isinstance(pa, tuple) else Address(pa) if pa is not None else None
    filters = {k: str(v) for k, v in (("pid", pid), ("pa", where)) if v is not None}
    base = dict(symbol=cow.symbol, address=Address(cow.address), initialised=cow.initialised,
                lock_held=cow.lock_held, capacity=cow.capacity, active_pages=cow.active_pages,
                filters=filters, warnings=tuple(_warnings(cow)), notes=notes)
    if not cow.initialised or cow.statistics is None:
        return CowStatus(figures=None, **base)
    s = cow.statistics
    figures = StatusFigures(s.cow_pages_count, s.cow_faults_handled, s.pages_duplicated,
                            s.memory_saved_bytes, s.peak_cow_pages)
    selected = [k for k, frame in enumerate(cow.pas) if _in_pa(frame, pa)] if pa is not None else range(cow.tracked)
    if pid is not None:  # whose sharers: every selected page's, read once
        sharers = cow.sharers(selected)
        selected = [selected[k] for k in sorted({sharers.pages[i] for i, p in enumerate(sharers.pids) if p == pid})]
    shown = selected if limit <= 0 else selected[:limit]
    rest = selected[len(shown):]
    omitted_refs = sum(cow.refs[rest.start:rest.stop] if isinstance(rest, range) else (cow.refs[k] for k in rest))
    return CowStatus(figures=figures, pages=status_rows(cow, shown, lookup, conventions),
                     matched=len(selected), omitted=len(rest), omitted_refs=omitted_refs, **base)


def build_stats(cow: CowManagerState | CowSummary, manager_size: int | None = None,
                conventions: Conventions = Conventions(), notes: tuple[str, ...] = ()) -> CowStats:
    """The ``~2`` figures and their cross-checks against the pages (and the manager's
    DWARF size for ``metadata_memory_bytes``, when given). A statistic the kernel does not
    maintain is not cross-checked; ``notes`` says which. Totals only: no page is decoded."""
    cow = _summary(cow)
    warnings = tuple(_warnings(cow))
    if not cow.initialised or cow.statistics is None:
        return CowStats(cow.symbol, False, cow.lock_held, capacity=cow.capacity, warnings=warnings, notes=notes)
    s = cow.statistics
    mappings = cow.total_refs
    checks = [
        CrossCheck("cow_pages_count", s.cow_pages_count, cow.tracked, "occupied slots"),
        CrossCheck("active_pages", cow.active_pages, cow.tracked, "occupied slots"),
        CrossCheck("peak_cow_pages", s.peak_cow_pages, max(s.peak_cow_pages, cow.tracked), "≥ occupied slots"),
    ]
    if conventions.maintains("memory_saved_bytes"):
        checks.insert(2, CrossCheck("memory_saved_bytes", s.memory_saved_bytes, conventions.saved_bytes_of(cow.refs),
                                    conventions.saved_formula))
    if manager_size is not None and conventions.maintains("metadata_memory_bytes"):
        checks.append(CrossCheck("metadata_memory_bytes", s.metadata_memory_bytes, manager_size,
                                 "size of CowManager (DWARF)"))
    unkept = [n for n in ("memory_saved_bytes", "metadata_memory_bytes") if not conventions.maintains(n)]
    if unkept:
        notes = notes + (f"not cross-checked: {', '.join(unkept)} (this kernel does not maintain "
                         f"{'it' if len(unkept) == 1 else 'them'}) [{conventions.sources.get('maintained', 'default')}]",)
    return CowStats(
        symbol=cow.symbol, initialised=True, lock_held=cow.lock_held,
        total_cow_pages=s.cow_pages_count, total_cow_faults=s.cow_faults_handled,
        pages_duplicated=s.pages_duplicated, memory_saved_bytes=s.memory_saved_bytes,
        metadata_memory_bytes=s.metadata_memory_bytes, peak_cow_pages=s.peak_cow_pages,
        memory_efficiency_percent=memory_efficiency_percent(
            s.memory_saved_bytes, s.cow_pages_count if conventions.efficiency == "pages" else mappings),
        tracked_pages=cow.tracked, total_mappings=mappings, capacity=cow.capacity,
        checks=tuple(checks), warnings=warnings, notes=notes,
    )


def memory_efficiency_percent(memory_saved_bytes: int, pages: int) -> int:
    """The kernel's formula: saved bytes over ``pages`` × 4096 (ours: Σ ref_count; upstream:
    cow_pages_count), in whole percent (u64 division), 0 when nothing is counted."""
    mapped = pages * PAGE_SIZE
    return 0 if mapped == 0 else memory_saved_bytes * 100 // mapped


def _summary(cow: CowManagerState | CowSummary) -> CowSummary:
    return cow if isinstance(cow, CowSummary) else CowSummary.of_manager(cow)


def _warnings(cow: CowSummary):
    if cow.lock_held:
        yield f"{cow.symbol}'s lock is held: the state may be mid-update"


def _in_pa(frame: int, pa: int | tuple[int, int]) -> bool:
    """Whether the tracked ``frame`` is the page of ``pa``, or lies in ``pa`` = [start, end)."""
    return pa[0] <= frame < pa[1] if isinstance(pa, tuple) else frame == page_base(pa)


# -- text faces ------------------------------------------------------------------------

# Pages per write of a long cow-status listing: gdb's pager can stop between writes, and
# each write costs ~0.1 ms beyond its bytes.
CHUNK_PAGES = 2000


def status_text(status: CowStatus) -> str:
    """The shell's ``~1`` header lines (same labels), then one table row per sharer."""
    return "\n".join(status_chunks(status))


def status_chunks(status: CowStatus) -> Iterator[str]:
    """:func:`status_text` in pieces, each written as it comes (``cow-status --limit 0`` on
    20 000 pages is 40 000 rows: gdb's pager can stop it between pieces)."""
    before, after = _status_lines(status)
    pieces = status.pages.table_chunks(CHUNK_PAGES) if status.pages else iter(())
    # the table's first piece goes with the lines before it: a piece ending in an empty
    # line would lose it when written (gdb.write adds a newline only where none ends it)
    yield "\n".join(before + [piece for piece in [next(pieces, None)] if piece is not None])
    yield from pieces
    if after:
        yield "\n".join(after)


def _status_lines(status: CowStatus) -> tuple[list[str], list[str]]:
    """The lines before the table and after it."""
    lines = [f"warning: {w}" for w in status.warnings] + list(status.notes)
    if status.figures is None:
        lines.append(f"COW manager not initialised: {status.symbol} holds None (nothing is shared copy-on-write)")
        return lines, []
    f = status.figures
    lines += [
        f"=== COW Status === ({status.symbol} at {status.address}: {status.active_pages} of {status.capacity} slots used)",
        f"COW Pages: {f.cow_pages}",
        f"COW Faults: {f.cow_faults}",
        f"Pages Duplicated: {f.pages_duplicated}",
        f"Memory Saved: {f.memory_saved_bytes} bytes",
        f"Peak COW Pages: {f.peak_cow_pages}",
        "",
    ]
    selection = ", ".join(f"{k} {v}" for k, v in status.filters.items())
    if not status.pages:
        lines.append(f"no tracked page{' for ' + selection if selection else ''}")
    elif selection:
        lines.append(f"pages for {selection}: {status.matched}")
    after = []
    if status.omitted:
        after.append(f"... {status.omitted} more page(s) ({status.omitted_refs} refs) not shown: "
                     "`--limit 0` shows all, `cow-check` checks all")
    if status.flagged:
        after.append(f"{status.flagged} page(s) flagged: the live page tables contradict the metadata")
    return lines, after




def render_table(rows: list[list[str]], headers: list[str]) -> str:
    return render.table([dict(zip(headers, r)) for r in rows], headers)


def stats_text(stats: CowStats) -> str:
    """The shell's ``~2`` lines (same labels and values), then the cross-checks."""
    lines = [f"warning: {w}" for w in stats.warnings] + list(stats.notes)
    if not stats.initialised:
        lines.append(f"COW manager not initialised: {stats.symbol} holds None (nothing is shared copy-on-write)")
        return "\n".join(lines)
    lines += [
        "=== COW Statistics ===",
        f"Total COW Pages: {stats.total_cow_pages}",
        f"Total COW Faults: {stats.total_cow_faults}",
        f"Pages Duplicated: {stats.pages_duplicated}",
        f"Memory Saved: {stats.memory_saved_bytes} bytes",
        f"Metadata Memory: {stats.metadata_memory_bytes} bytes",
        f"Peak COW Pages: {stats.peak_cow_pages}",
        f"Memory Efficiency: {stats.memory_efficiency_percent}%",
        "",
        f"Derived: {stats.tracked_pages} of {stats.capacity} slots occupied, {stats.total_mappings} mappings (Σ refs)",
        render_table([[c.name, str(c.stored), str(c.derived), c.how, "ok" if c.ok else "MISMATCH"] for c in stats.checks],
                     ["figure", "stored", "recomputed", "from", "check"]),
    ]
    bad = [c.name for c in stats.checks if not c.ok]
    if bad:
        lines.append(f"{len(bad)} figure(s) disagree with the pages: {', '.join(bad)} (run `cow-check`)")
    return "\n".join(lines)
