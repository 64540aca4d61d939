"""Which user PTEs map which frame: one answer for every command that asks.

:class:`Pte` is one page of one process's address space as its tables hold it now (or why
it holds nothing). :class:`MappingIndex` expands each live process's merged ranges into
pages, indexed by frame and by (pid, page VA): ``cow-check`` builds it for every process,
``cow-status`` looks up single VAs and lets :class:`PteLookup` build a process's index only
when it asks about many of its pages; a listing asks for thousands at once
(:meth:`PteLookup.columns`, answered as columns: no ``Pte`` per row).

Example::

    index = MappingIndex.build({pid: state.address_space(process) for ...})
    index.at(0x4001_2000)            # [Pte(pid=1, va=0x10000000, ...), Pte(pid=2, ...)]
    index.lookup(2, 0x1000_0008)     # the Pte of that page, or None
    index.columns([1, 2], [0x1000_0000, 0x1000_0000]).pas   # [0x4001_2000, 0x4001_2000]
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, count, islice, repeat
from typing import NamedTuple

from ..aarch64 import AddressSpace, Walk
from ..core.address import PAGE_SIZE, Address, page_base
from ..core.columns import interleaved
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
        # By (pid, VA): each run keyed pid << 64 | its first page; a bisection of the keys
        # gives the position in the other columns, behind a sentinel that ends before any
        # key (an address below every run lands on it and maps nothing).
        ordered = sorted(runs, key=_key)
        self._keys = list(map(_key, ordered))
        self._starts = [-1, *self._keys]
        self._ends = [-1, *(_key(r) + r.pages * PAGE_SIZE for r in ordered)]
        self._runs: list[MappedRun | None] = [None, *ordered]
        # key + _shift[k] is the frame a key inside run k maps (the sentinel's: the key itself)
        self._shift = [0, *(r.pa - _key(r) for r in ordered)]
        self._perms = ["", *(r.perms for r in ordered)]
        self._writable = [False, *(r.writable for r in ordered)]
        self._segments: tuple[list[int], list[tuple[MappedRun, ...]]] | None = None  # by PA, when asked

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
        cuts, covering = self._by_pa()
        k = bisect_right(cuts, frame) - 1
        if k < 0 or k >= len(covering):
            return []
        return [run.ref((frame - page_base(run.pa)) // PAGE_SIZE) for run in covering[k]]

    def lookup(self, pid: int, va: int) -> Pte | None:
        found = self.run_at(pid, va)
        return found[0].ref(found[1]) if found is not None else None

    def run_at(self, pid: int, va: int) -> tuple[MappedRun, int] | None:
        """The run of ``pid`` mapping ``va`` and the page's index in it (no Pte made)."""
        if pid < 0:
            return None
        key = pid << 64 | va & _PAGE_MASK
        k = bisect_right(self._keys, key)
        return (self._runs[k], (key - self._starts[k]) // PAGE_SIZE) if key < self._ends[k] else None

    def columns(self, pids: Sequence[int], vas: Sequence[int]) -> PteColumns:
        """:meth:`lookup` of every (pid, va) pair, as columns (in C, a column at a time; a
        pid the index does not hold maps nothing). Pids are the kernel's (unsigned); VAs
        are taken modulo 2**64, as the CPU does."""
        found = self._resolve(pids, vas)
        at = found.at
        out = PteColumns(found.frames, list(map(self._perms.__getitem__, at)),
                         list(map(self._writable.__getitem__, at)), [None] * len(at))
        if False in found.inside:
            for i in compress(range(len(at)), map(operator.not_, found.inside)):
                out.pas[i], out.perms[i], out.writable[i], out.problems[i] = None, "", False, NOT_IN_TABLES
        return out

    def maps_exactly(self, pids: Sequence[int], vas: Sequence[int], frames: Sequence[int]) -> bool:
        """Whether the (pid, va) pages are distinct and each maps its frame (``frames[i]``, a
        page address): what :meth:`columns` would say, proven in C without its columns."""
        found = self._resolve(pids, vas)
        return False not in found.inside and found.frames == list(frames) and found.distinct()

    def _resolve(self, pids: Sequence[int], vas: Sequence[int]) -> _Resolved:
        """Each pair's run position (0: before every run), frame and whether its run holds
        it: by stretches of climbing pages when the pairs come that way, else pair by pair."""
        return self._by_stretches(pids, vas) or self._pair_by_pair(pids, vas)

    def _pair_by_pair(self, pids: Sequence[int], vas: Sequence[int]) -> _Resolved:
        """One key (pid << 64 | page) and one bisection per pair."""
        keys = _keys(pids, vas)
        at = list(map(bisect_right, repeat(self._keys), keys))
        return _Resolved(at, list(map(int.__add__, keys, map(self._shift.__getitem__, at))),
                         list(map(int.__lt__, keys, map(self._ends.__getitem__, at))),
                         lambda: len(set(keys)) == len(keys))

    def _by_stretches(self, pids: Sequence[int], vas: Sequence[int]) -> _Resolved | None:
        """:meth:`_pair_by_pair`'s answer for pairs whose pids repeat with a short period
        (one process, or a fork's parent and child alternating) and whose pages, every
        period-th pair, climb in few stretches (a manager records a fork in address
        order): per stretch, a bisection per run it crosses, and each piece of a stretch
        inside one run is answered whole. None when the pairs do not come that way."""
        n = len(pids)
        period = next((p for p in range(1, _MAX_PERIOD + 1) if n >= _MIN_STRETCHED * p and pids[p:] == pids[:-p]), None)
        if period is None:
            return None
        spans: dict[int, list[tuple[int, int]]] = defaultdict(list)  # per pid: each stretch's first and last page
        columns = []  # per k: (positions, frames, inside) of the pairs k, k + period, ...
        for k in range(period):
            pid = pids[k]
            pages = list(map(_PAGE_MASK.__and__, vas[k::period]))
            cuts = list(compress(count(1), map(int.__ge__, pages, islice(pages, 1, None))))  # each stretch climbs
            if len(cuts) * _MIN_STRETCHED > len(pages):
                return None
            columns.append(self._stretch_columns(pid, pages, [0, *cuts, len(pages)], spans[pid]))
        at, frames, inside = map(interleaved, zip(*columns))
        return _Resolved(at, frames, inside, lambda: _disjoint(spans) or len(set(_keys(pids, vas))) == n)

    def _stretch_columns(self, pid: int, pages: list[int], bounds: list[int],
                         spans: list[tuple[int, int]]) -> tuple[list[int], list[int], list[bool]]:
        """Positions, frames and inside flags of one pid's climbing ``pages`` (stretches
        between consecutive ``bounds``), each stretch's span added to ``spans``."""
        high = pid << 64
        base = bisect_right(self._keys, high - 1)  # the runs before this pid's
        starts = [key - high for key in self._keys[base:bisect_right(self._keys, high + _PAGE_MASK)]]
        at: list[int] = []
        frames: list[int] = []
        inside: list[bool] = []
        for a, b in zip(bounds, bounds[1:]):
            spans.append((pages[a], pages[b - 1]))
            pos, last = a, bisect_right(starts, pages[b - 1])
            for j in range(bisect_right(starts, pages[a]), last + 1):
                end = bisect_left(pages, starts[j], pos, b) if j < last else b  # this run's pages end here
                if end == pos:
                    continue  # no page of the stretch falls before this run's successor starts
                g = base + j
                piece = pages[pos:end]
                at += repeat(g, end - pos)
                frames += map((self._shift[g] + high).__add__, piece)
                stop = self._ends[g] - high
                inside += repeat(True, end - pos) if pages[end - 1] < stop else map(stop.__gt__, piece)
                pos = end
        return at, frames, inside

    def segments(self) -> Iterator[tuple[int, int, tuple[MappedRun, ...]]]:
        """``(start, end, runs)``: maximal PA spans mapped by the same runs, in PA order."""
        cuts, covering = self._by_pa()
        for k, runs in enumerate(covering):
            if runs:
                yield cuts[k], cuts[k + 1], runs

    def _by_pa(self) -> tuple[list[int], list[tuple[MappedRun, ...]]]:
        if self._segments is None:
            self._segments = _segments(self.runs)
        return self._segments

    @property
    def mappings(self) -> int:
        return sum(run.pages for run in self.runs)


class _Resolved(NamedTuple):
    """What :meth:`MappingIndex._resolve` says of each (pid, VA) pair, and whether the
    pairs are distinct (asked only by who needs it)."""

    at: list[int]
    frames: list[int]
    inside: list[bool]
    distinct: Callable[[], bool]


# A short period of pids (a fork's parent and child: 2) and enough pairs per stretch to be
# worth a bisection per stretch and run.
_MAX_PERIOD = 8
_MIN_STRETCHED = 16


def _keys(pids: Sequence[int], vas: Sequence[int]) -> list[int]:
    """Each pair's pid << 64 | page: ordered by pid, then page."""
    high = {pid: pid << 64 for pid in set(pids)}  # a few pids: each shifted once, not once per pair
    return list(map(operator.add, map(high.__getitem__, pids), map(_PAGE_MASK.__and__, vas)))


def _disjoint(spans: Mapping[int, list[tuple[int, int]]]) -> bool:
    """Whether each pid's climbing stretches (first, last page) overlap none of the others:
    then no page repeats (when they overlap, one still may not)."""
    for stretches in spans.values():
        ordered = sorted(stretches)
        if any(map(operator.ge, (last for _, last in ordered[:-1]), (first for first, _ in ordered[1:]))):
            return False
    return True


def _key(run: MappedRun) -> int:
    return run.pid << 64 | page_base(run.va)


# A 64-bit VA's page: keeps every key of a pid below the next pid's (pid << 64 | page).
_PAGE_MASK = (1 << 64) - PAGE_SIZE


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
        why = self._not_live(pid)
        if why is not None:
            return Pte.absent(pid, va, why)
        try:
            index = self._index(pid, lambda: 1)
            if index is not None:
                return index.lookup(pid, va) or Pte.absent(pid, va, NOT_IN_TABLES)
            self._walks[pid] += 1
            return Pte.from_walk(pid, va, self._walk(pid, va))
        except TinyOSError as exc:
            return Pte.absent(pid, va, f"walk failed: {exc}")

    def columns(self, pids: Sequence[int], vas: Sequence[int]) -> PteColumns:
        """The PTEs of many (pid, va) pages at once, as columns in the same order (what a
        listing of thousands of rows asks: no Pte object per row)."""
        indexed, one_by_one = {}, []
        for pid in dict.fromkeys(pids):  # in order of first appearance
            try:
                index = None if self._not_live(pid) is not None else self._index(pid, lambda: pids.count(pid))
            except TinyOSError:
                index = None  # asked row by row: each row says why
            if index is None:
                one_by_one.append(pid)
            else:
                indexed[pid] = index
        merged = _merged(indexed.values())
        if merged is not self._full:
            self._indexes.update(dict.fromkeys(indexed, merged))  # merged once per stop
        out = merged.columns(pids, vas)
        if one_by_one:
            alone = set(one_by_one)
            for i in [i for i, pid in enumerate(pids) if pid in alone]:
                out.put(i, self(pids[i], vas[i]))
        return out

    def _not_live(self, pid: int) -> str | None:
        """Why ``pid`` has no tables (None: it is live), asked once per pid."""
        if pid not in self._why:
            self._why[pid] = self._live(pid)
        return self._why[pid]

    def _index(self, pid: int, wanted: Callable[[], int]) -> MappingIndex | None:
        """The index answering ``wanted()`` more look-ups of ``pid`` (counted only when no
        index is there yet), or None when walking them one by one stays within the budget."""
        index = self._full or self._indexes.get(pid)
        if index is None and self._walks[pid] + wanted() > self.walk_budget:
            index = self._indexes[pid] = MappingIndex.build({pid: self._space(pid)})
        return index


def pte_columns(lookup: Callable[[int, int], Pte], pids: Sequence[int], vas: Sequence[int]) -> PteColumns:
    """:meth:`PteLookup.columns`, or any ``lookup(pid, va) -> Pte`` asked row by row."""
    if isinstance(lookup, PteLookup):
        return lookup.columns(pids, vas)
    out = PteColumns([None] * len(vas), [""] * len(vas), [False] * len(vas), [None] * len(vas))
    for i, pte in enumerate(map(lookup, pids, vas)):
        out.put(i, pte)
    return out


def _merged(indexes) -> MappingIndex:
    """One index of the runs of several (the same object when there is one)."""
    distinct = list({id(i): i for i in indexes}.values())
    if len(distinct) == 1:
        return distinct[0]
    # a merged index may already hold another's runs: each run once
    return MappingIndex(list({id(run): run for index in distinct for run in index.runs}.values()), [])


NOT_IN_TABLES = "not mapped (absent from the process's page tables)"


class PteColumns(NamedTuple):
    """PTEs as columns: the frame mapped (None: nothing, see ``problems``), effective
    permissions, whether EL1 or EL0 may write, and why nothing is mapped."""

    pas: list[int | None]
    perms: list[str]
    writable: list[bool]
    problems: list[str | None]

    def put(self, i: int, pte: Pte) -> None:
        self.pas[i], self.perms[i], self.writable[i], self.problems[i] = pte.pa, pte.perms, pte.writable, pte.problem
