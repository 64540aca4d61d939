"""Snapshots of the COW state at a stop, and what changed between two of them.

A :class:`CowSnapshot` keeps the decoded facts that a COW bug changes: every tracked
frame (refs, COW flag, original permissions, recorded sharers), every live process's user
PTEs (page by page: frame and effective permissions), the statistics and the process
list. :func:`diff` compares two snapshots: frames tracked or untracked, refs/flags/sharers
changed, each *affected* PTE (one that maps a tracked frame or is a recorded sharer in
either snapshot) whose frame or permissions changed, statistics deltas, processes started
or gone.

Pure logic: :func:`take_snapshot` reads through a :class:`~gdb_tinyos.tinyos.state.KernelState`
(live gdb or a core dump's ``CoreTarget`` alike); :func:`diff` works on plain snapshots, so
tests build them by hand. Snapshots round-trip through JSON (:func:`snapshot_from_plain`),
never pickle.

Example::

    before = take_snapshot(view, "before")
    ...                                    # the kernel runs, stops again
    change = diff(before, take_snapshot(view, "now"))
    print(diff_text(change))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..core import render
from ..core.address import Address, page_base
from .cow import CowManagerState
from .state import KernelState
from .processes import ProcessTable


@dataclass(frozen=True)
class PageRecord:
    pa: Address
    refs: int
    is_cow: bool
    original: str
    sharers: tuple[tuple[Address, int], ...]  # (va, pid), sorted


@dataclass(frozen=True)
class PteRecord:
    pa: Address
    perms: str

    def describe(self) -> str:
        return f"{self.pa} {self.perms}"


@dataclass
class CowSnapshot:
    label: str
    pages: dict[int, PageRecord] = field(default_factory=dict)  # by frame PA
    ptes: dict[tuple[int, int], PteRecord] = field(default_factory=dict)  # (pid, page VA) -> what it maps
    statistics: dict[str, int] = field(default_factory=dict)
    processes: dict[int, str] = field(default_factory=dict)  # pid -> name
    initialised: bool = True

    def relevant(self, pid: int, va: int) -> bool:
        """A PTE the COW state speaks of: it maps a tracked frame, or it is a recorded sharer."""
        pte = self.ptes.get((pid, va))
        if pte is not None and pte.pa in self.pages:
            return True
        return any((va, pid) in page.sharers for page in self.pages.values())


def snapshot_of(label: str, cow: CowManagerState, table: ProcessTable,
                ptes: dict[tuple[int, int], PteRecord]) -> CowSnapshot:
    """A snapshot from decoded models (``ptes``: every live user PTE, by (pid, page VA))."""
    pages = {
        int(p.physical_addr): PageRecord(Address(p.physical_addr), p.ref_count, p.is_cow, p.original_permissions,
                                         tuple(sorted((Address(s.va), s.pid) for s in p.sharers)))
        for p in cow.pages
    }
    stats = asdict(cow.statistics) if cow.statistics is not None else {}
    if cow.initialised:
        stats["active_pages"] = cow.active_pages
    processes = {p.pid: p.name for p in table.live()}
    return CowSnapshot(label, pages, ptes, stats, processes, cow.initialised)


def take_snapshot(state: KernelState, label: str) -> CowSnapshot:
    """The manager, the process table and every live process's user PTEs at this stop
    (the stop's own decodes: taking a snapshot reads nothing a command already read)."""
    ptes: dict[tuple[int, int], PteRecord] = {}
    for run in state.mappings().runs:
        for page in range(run.pages):
            pte = run.ref(page)
            ptes[(pte.pid, int(pte.va))] = PteRecord(Address(page_base(pte.pa)), pte.perms)
    return snapshot_of(label, state.cow(), state.processes(), ptes)


# -- the difference ------------------------------------------------------------------------

@dataclass(frozen=True)
class PageChange:
    pa: Address
    change: str  # "tracked", "untracked" or "changed"
    refs: tuple[int | None, int | None]
    is_cow: tuple[bool | None, bool | None]
    sharers_added: tuple[tuple[Address, int], ...] = ()
    sharers_removed: tuple[tuple[Address, int], ...] = ()


@dataclass(frozen=True)
class PteChange:
    pid: int
    va: Address
    before: PteRecord | None
    after: PteRecord | None


@dataclass(frozen=True)
class StatisticDelta:
    name: str
    before: int | None
    after: int | None

    @property
    def delta(self) -> int | None:
        return None if self.before is None or self.after is None else self.after - self.before


@dataclass
class CowDiff:
    before: str
    after: str
    pages: list[PageChange] = field(default_factory=list)
    ptes: list[PteChange] = field(default_factory=list)
    statistics: list[StatisticDelta] = field(default_factory=list)
    processes_started: dict[int, str] = field(default_factory=dict)
    processes_gone: dict[int, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.pages or self.ptes or self.statistics or self.processes_started or self.processes_gone)


def diff(before: CowSnapshot, after: CowSnapshot) -> CowDiff:
    out = CowDiff(before.label, after.label)
    for pa in sorted(before.pages.keys() | after.pages.keys()):
        change = _page_change(before.pages.get(pa), after.pages.get(pa))
        if change is not None:
            out.pages.append(change)
    for key in sorted(before.ptes.keys() | after.ptes.keys() | _sharer_keys(before) | _sharer_keys(after)):
        old, new = before.ptes.get(key), after.ptes.get(key)
        if old != new and (before.relevant(*key) or after.relevant(*key)):
            out.ptes.append(PteChange(key[0], Address(key[1]), old, new))
    names = list(before.statistics) + [n for n in after.statistics if n not in before.statistics]
    out.statistics = [StatisticDelta(n, before.statistics.get(n), after.statistics.get(n)) for n in names
                      if before.statistics.get(n) != after.statistics.get(n)]
    out.processes_started = {pid: name for pid, name in after.processes.items() if pid not in before.processes}
    out.processes_gone = {pid: name for pid, name in before.processes.items() if pid not in after.processes}
    return out


def _sharer_keys(snap: CowSnapshot) -> set[tuple[int, int]]:
    return {(pid, page_base(va)) for page in snap.pages.values() for va, pid in page.sharers}


def _page_change(old: PageRecord | None, new: PageRecord | None) -> PageChange | None:
    if old == new:
        return None
    if old is None:
        return PageChange(new.pa, "tracked", (None, new.refs), (None, new.is_cow), new.sharers)
    if new is None:
        return PageChange(old.pa, "untracked", (old.refs, None), (old.is_cow, None), (), old.sharers)
    added = tuple(s for s in new.sharers if s not in old.sharers)
    removed = tuple(s for s in old.sharers if s not in new.sharers)
    return PageChange(new.pa, "changed", (old.refs, new.refs), (old.is_cow, new.is_cow), added, removed)


# -- JSON round trip (snapshots saved to disk load as data, never as code) -----------------

def snapshot_to_plain(snap: CowSnapshot) -> dict[str, Any]:
    return {
        "label": snap.label, "initialised": snap.initialised,
        "pages": [render.to_plain(p) for p in snap.pages.values()],
        "ptes": [{"pid": pid, "va": hex(va), "pa": hex(p.pa), "perms": p.perms} for (pid, va), p in snap.ptes.items()],
        "statistics": dict(snap.statistics),
        "processes": {str(pid): name for pid, name in snap.processes.items()},
    }


def snapshot_from_plain(data: dict[str, Any]) -> CowSnapshot:
    """The inverse of :func:`snapshot_to_plain`; ValueError/KeyError/TypeError on malformed data."""
    pages = {}
    for p in data["pages"]:
        record = PageRecord(Address(int(p["pa"], 16)), int(p["refs"]), bool(p["is_cow"]), str(p["original"]),
                            tuple((Address(int(va, 16)), int(pid)) for va, pid in p["sharers"]))
        pages[int(record.pa)] = record
    ptes = {(int(e["pid"]), int(e["va"], 16)): PteRecord(Address(int(e["pa"], 16)), str(e["perms"])) for e in data["ptes"]}
    stats = {str(k): int(v) for k, v in data["statistics"].items()}
    processes = {int(k): str(v) for k, v in data["processes"].items()}
    return CowSnapshot(str(data["label"]), pages, ptes, stats, processes, bool(data["initialised"]))


# -- text face ----------------------------------------------------------------------------------

def _sharers(items: tuple[tuple[Address, int], ...]) -> str:
    return ", ".join(f"{va}/pid {pid}" for va, pid in items)


def _pair(values: tuple[Any, Any]) -> str:
    old, new = values
    return str(new) if old == new else f"{'-' if old is None else old} -> {'-' if new is None else new}"


def diff_text(d: CowDiff) -> str:
    lines = [f"cow-diff: {d.before} -> {d.after}"]
    if d.empty:
        lines.append("no change in the COW state")
        return "\n".join(lines)
    if d.pages:
        rows = []
        for c in d.pages:
            cow = {True: "yes", False: "no", None: "-"}
            sharers = "; ".join(x for x in (f"+ {_sharers(c.sharers_added)}" if c.sharers_added else "",
                                             f"- {_sharers(c.sharers_removed)}" if c.sharers_removed else "") if x)
            rows.append({"frame": str(c.pa), "change": c.change, "refs": _pair(c.refs),
                         "cow": _pair(tuple(cow[v] for v in c.is_cow)), "sharers (va/pid)": sharers or "-"})
        lines += [f"frames ({len(d.pages)}):", render.table(rows, list(rows[0]))]
    if d.ptes:
        rows = [{"pid": str(c.pid), "va": str(c.va), "before": c.before.describe() if c.before else "not mapped",
                 "after": c.after.describe() if c.after else "not mapped"} for c in d.ptes]
        lines += [f"PTEs ({len(d.ptes)}):", render.table(rows, list(rows[0]))]
    if d.statistics:
        rows = [{"statistic": s.name, "before": _num(s.before), "after": _num(s.after),
                 "delta": "-" if s.delta is None else f"{s.delta:+d}"} for s in d.statistics]
        lines += ["statistics:", render.table(rows, list(rows[0]))]
    for what, procs in (("started", d.processes_started), ("gone", d.processes_gone)):
        if procs:
            lines.append(f"processes {what}: " + ", ".join(f"{pid} ({render.printable(name)})"
                                                            for pid, name in sorted(procs.items())))
    return "\n".join(lines)


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


