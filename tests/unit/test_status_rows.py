"""cow-status's columnar rows (gdb_tinyos.tinyos.status_rows) and the bulk look-ups they use.

Each fast path is held equal to the plain definition it replaces, on random inputs:
- the table text equals the generic table (``render.table_lines``, itself checked against
  tabulate) of one row per sharer made from the page objects, placeholders and flags included;
- the rows are the page objects they were made from (``--json``, MI, cow-graph read them);
- ``MappingIndex.columns`` answers as ``MappingIndex.lookup`` row by row (and
  ``maps_exactly`` as asking it whether each distinct pair maps its frame), and
  ``PteLookup.columns`` as ``PteLookup`` asked row by row (index or walks, live or not);
- ``build_status`` on a hand-built fork gives, for every sharer, the live PTE and flags
  that asking the walker about that one sharer gives.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from gdb_tinyos.aarch64 import AddressSpace
from gdb_tinyos.core import render
from gdb_tinyos.core.address import Address
from gdb_tinyos.core.errors import TranslationError
from gdb_tinyos.tinyos.cow import Sharer
from gdb_tinyos.tinyos.mappings import NOT_IN_TABLES, MappingIndex, Pte, PteLookup
from gdb_tinyos.tinyos.reports import build_status
from gdb_tinyos.tinyos.status_rows import COLUMNS, PageView, SharerView, StatusRows

from cow_models import HEAP_PA, HEAP_VA, RAM, Forked, page_range, process, space

words = st.sampled_from(["-", "EL1:R-- EL0:R--", "EL1:RW- EL0:RW-", "not mapped (absent)", "?", "odd: 100% %s %d"])
flags = st.lists(st.sampled_from(["COW page mapped writable", "maps another frame (0x40001000)",
                                  "pid 9 is not live (no such process)"]), max_size=2).map(tuple)
addresses = st.integers(0, 2**48 - 1).map(Address)
sharers = st.builds(SharerView, addresses, st.one_of(st.none(), st.integers(0, 70000)), words,
                    st.one_of(st.none(), addresses), flags)
pages = st.builds(PageView, st.integers(0, 40000), addresses, st.integers(0, 300), st.booleans(),
                  st.sampled_from(["UserData", "UserCode", "KernelData"]), st.lists(sharers, max_size=4).map(tuple),
                  st.lists(st.sampled_from(["refs 3 != 2 recorded sharers", "tracked but not COW"]), max_size=2)
                  .map(tuple))


def rows_of(views: list[PageView]) -> list[list[str]]:
    """One row per sharer, the page's cells on its first row; the page's flags before the
    first sharer's; a page without sharers on one row of ``-``."""
    rows = []
    for page in views:
        head = [str(page.slot), str(page.pa), str(page.refs), "yes" if page.cow else "no", page.original_permissions]
        if not page.sharers:
            rows.append(head + ["-", "-", "-", "; ".join(page.flags) or "-"])
        for i, s in enumerate(page.sharers):
            cells = [str(s.va), "?" if s.pid is None else str(s.pid), s.pte,
                     "; ".join((page.flags if i == 0 else ()) + s.flags) or "-"]
            rows.append((head if i == 0 else [""] * len(head)) + cells)
    return rows


@settings(max_examples=150, deadline=None)
@given(st.lists(pages, max_size=12))
def test_the_table_is_the_generic_table_of_one_row_per_sharer(views):
    rows = StatusRows.of_views(views)
    assert rows.table_lines() == list(render.table_lines(rows_of(views), COLUMNS))
    assert list(rows) == views and rows == views
    assert rows.flagged == sum(p.flagged for p in views)


known = st.builds(SharerView, addresses, st.integers(0, 70000), words, st.one_of(st.none(), addresses), flags)


@st.composite
def alike_pages(draw):
    """Pages with the same number of sharers, every pid known: what a fork makes."""
    count = draw(st.integers(1, 3))
    return draw(st.lists(st.builds(PageView, st.integers(0, 40000), addresses, st.integers(0, 300), st.booleans(),
                                   st.sampled_from(["UserData", "UserCode"]),
                                   st.lists(known, min_size=count, max_size=count).map(tuple),
                                   st.lists(st.just("tracked but not COW"), max_size=1).map(tuple)), max_size=9))


@settings(max_examples=150, deadline=None)
@given(st.one_of(alike_pages(), st.lists(pages, max_size=12)), st.integers(1, 4))
def test_the_table_in_pieces_is_the_table(views, pages_per_piece):
    rows = StatusRows.of_views(views)
    pieces = list(rows.table_chunks(pages_per_piece))
    assert "\n".join(pieces) == "\n".join(rows.table_lines())
    if views and all(len(p.sharers) == len(views[0].sharers) > 0 for p in views):  # the header, then the pages
        assert len(pieces) == 1 + -(-len(views) // pages_per_piece)


runs = st.lists(st.tuples(st.integers(1, 4), st.integers(0, 64), st.integers(1, 8), st.booleans()), max_size=10)


def spaces_of(spec) -> dict[int, AddressSpace]:
    """Non-overlapping runs per pid: ``(pid, first page, pages, writable)`` at VA page * 4 KiB."""
    taken, ranges = set(), {}
    for pid, first, count, writable in spec:
        wanted = {(pid, first + k) for k in range(count)}
        if not wanted & taken:
            taken |= wanted
            ranges.setdefault(pid, []).append(page_range(first * 4096, RAM + (first * 7 + pid) * 4096, writable, count))
    return {pid: space(sorted(r, key=lambda x: x.va_start), pid) for pid, r in ranges.items()}


queries = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 80 * 4096)), max_size=30)


@settings(max_examples=150, deadline=None)
@given(runs, queries)
def test_index_columns_answer_as_lookup(spec, asked):
    index = MappingIndex.build(spaces_of(spec))
    got = index.columns([p for p, _ in asked], [v for _, v in asked])
    for i, (pid, va) in enumerate(asked):
        pte = index.lookup(pid, va)
        want = (pte.pa, pte.perms, pte.writable, None) if pte else (None, "", False, NOT_IN_TABLES)
        assert (got.pas[i], got.perms[i], got.writable[i], got.problems[i]) == want


@settings(max_examples=200, deadline=None)
@given(runs, queries, st.data())
def test_maps_exactly_is_every_pair_distinct_and_mapping_its_frame(spec, asked, data):
    index = MappingIndex.build(spaces_of(spec))
    if data.draw(st.booleans()):  # every page of every run, maybe one twice: the usual record
        asked = [(run.pid, run.va + k * 4096 + data.draw(st.integers(0, 4095))) for run in index.runs
                 for k in range(run.pages)]
        asked += asked[:data.draw(st.integers(0, 1))]
    found = [index.lookup(pid, va) for pid, va in asked]
    frames = [RAM if pte is None else pte.pa for pte in found]
    if frames and data.draw(st.booleans()):
        frames[data.draw(st.integers(0, len(frames) - 1))] += data.draw(st.sampled_from([4096, -4096, 1]))
    want = (len({(pid, va // 4096) for pid, va in asked}) == len(asked)
            and all(pte is not None and pte.pa == frame for pte, frame in zip(found, frames)))
    assert index.maps_exactly([p for p, _ in asked], [v for _, v in asked], frames) == want


def walker(spaces: dict[int, AddressSpace], broken: int | None):
    """``walk(pid, va)``: what a table walk of that process gives, from its ranges."""
    def walk(pid: int, va: int):
        if pid == broken:
            raise TranslationError("level 0 table unreadable")
        for r in spaces[pid].ranges if pid in spaces else ():
            if r.va_start <= va < r.va_end:
                return SimpleNamespace(mapping=SimpleNamespace(attrs=r.attrs), pa=r.pa_start + va - r.va_start,
                                       fault=None, steps=[])
        return SimpleNamespace(mapping=None, pa=None, fault=None, steps=[])

    return walk


def lookup_over(spaces: dict[int, AddressSpace], live: set[int], budget: int, broken: int | None) -> PteLookup:
    def dump(pid: int) -> AddressSpace:
        if pid == broken:
            raise TranslationError("level 0 table unreadable")
        return spaces.get(pid) or space([], pid)

    return PteLookup(walk=walker(spaces, broken), space=dump,
                     live=lambda pid: None if pid in live else f"pid {pid} is not live (no such process)",
                     walk_budget=budget)


@settings(max_examples=100, deadline=None)
@given(runs, queries, st.integers(0, 12), st.sampled_from([None, 1, 2]))
def test_pte_columns_answer_as_asking_row_by_row(spec, asked, budget, broken):
    spaces, live = spaces_of(spec), {1, 2, 3}
    got = lookup_over(spaces, live, budget, broken).columns([p for p, _ in asked], [v for _, v in asked])
    single = lookup_over(spaces, live, budget, broken)
    for i, (pid, va) in enumerate(asked):
        pte = single(pid, va)
        assert (got.pas[i], got.perms[i], got.writable[i]) == (pte.pa, pte.perms, pte.writable)
        # a walk and the dump word an absent page differently; both say why
        assert (got.problems[i] is None) == (pte.problem is None)
        if pte.problem is not None and not pte.problem.startswith("not mapped"):
            assert got.problems[i] == pte.problem


def test_status_rows_carry_what_one_walk_per_sharer_gives():
    state = Forked(heap_pages=5)
    state.ranges[2] = [page_range(HEAP_VA, HEAP_PA, writable=True),                 # COW page writable
                       page_range(HEAP_VA + 0x1000, RAM + 0x30_000),                # another frame
                       page_range(HEAP_VA + 0x3000, HEAP_PA + 0x3000, pages=2)]     # page 2 unmapped
    state.set_page(4, sharers=(Sharer(HEAP_VA + 0x4000, 1), Sharer(HEAP_VA + 0x4000, 9)))
    state.set_page(3, sharers=())
    state.processes.append(process(3, state="Zombie"))
    index = MappingIndex.build(state.spaces())
    live = {p.pid for p in state.table().live()}

    def one(pid, va):  # the per-sharer definition: this process's own tables, now
        if pid not in live:
            return Pte.absent(pid, va, f"pid {pid} is not live")
        return index.lookup(pid, va) or Pte.absent(pid, va, "not mapped")

    status = build_status(state.manager(), one, limit=0)
    for page in status.pages:
        for s in page.sharers:
            pte = one(s.pid, s.va)
            assert (s.pte, s.maps) == (pte.perms or "-", pte.pa)
            expected = (pte.problem,) if pte.problem else (f"maps another frame ({pte.pa})",) if pte.pa != page.pa \
                else ("COW page mapped writable",) if pte.writable else ()
            assert s.flags == expected
    assert [len(p.sharers) for p in status.pages] == [2, 2, 2, 0, 2]
    assert status.pages[3].flags == ("refs 2 != 0 recorded sharers",)
    assert status.flagged == 5  # pages 0, 1, 2 (pid 2's PTE), 3 (its refs) and 4 (pid 9)
    assert render.to_plain(status)["pages"][3]["sharers"] == []


def test_a_va_past_64_bits_never_reaches_another_pids_runs():
    """VAs count modulo 2**64, as the CPU's: pid 0's VA + 2**64 is pid 0's VA, not pid 1's."""
    index = MappingIndex.build(spaces_of([(1, 0x10, 4, False), (2, 0x10, 4, True)]))
    va = 0x10 * 4096
    assert index.lookup(1, va) is not None and index.lookup(1, va + (1 << 64)) == index.lookup(1, va)
    for pid, wrong in ((0, va + (1 << 64)), (1, -4096), (-1, va), (3, va)):
        assert index.lookup(pid, wrong) is None, (pid, wrong)
    got = index.columns([0, 1, 3], [va + (1 << 64), (1 << 64) - 4096, va])
    assert got.pas == [None, None, None] and got.problems == [NOT_IN_TABLES] * 3


def test_bulk_lookups_at_one_stop_keep_each_run_once():
    spaces = spaces_of([(1, 0, 2, False), (2, 8, 2, False), (3, 16, 2, False)])
    lookup = lookup_over(spaces, {1, 2, 3}, budget=0, broken=None)
    for pids in ([1, 2], [2, 3], [1, 3], [1, 2, 3]):
        lookup.columns(pids, [0] * len(pids))
    for pid in (1, 2, 3):
        runs = lookup._index(pid, 1).runs
        assert len(runs) == len(set(map(id, runs))) <= 3


@st.composite
def climbing_asks(draw):
    """Pairs as a manager lists a fork: pids repeating with a short period, each period-th
    pair's VA climbing page by page in a few stretches (which may overlap or repeat a page),
    some pages outside every run, some VAs not page-aligned, maybe a pid with no runs."""
    period = draw(st.integers(1, 3))
    pids = draw(st.lists(st.integers(0, 5), min_size=period, max_size=period))
    columns = []
    for _ in range(period):
        pages: list[int] = []
        for first, length in draw(st.lists(st.tuples(st.integers(0, 80), st.integers(1, 40)), min_size=1, max_size=3)):
            pages += range(first, first + length)
        if draw(st.booleans()):  # a page twice in a row
            at = draw(st.integers(0, len(pages) - 1))
            pages.insert(at, pages[at])
        columns.append([p * 4096 + draw(st.sampled_from([0, 0, 0, 8, 4095])) for p in pages])
    rows = min(map(len, columns))
    asked = [(pids[k], columns[k][i]) for i in range(rows) for k in range(period)]
    return asked


@settings(max_examples=300, deadline=None)
@given(runs, climbing_asks(), st.data())
def test_climbing_pairs_answer_as_pair_by_pair(spec, asked, data):
    """The stretch path (pids with a short period, pages climbing) says what one bisection
    per pair says: columns, and maps_exactly with its frames or one of them off by a page."""
    index = MappingIndex.build(spaces_of(spec))
    mine = sorted({run.pid for run in index.runs})
    if mine and data.draw(st.booleans()):  # every page each process maps, in address order: all mapped
        chosen = data.draw(st.lists(st.sampled_from(mine), min_size=1, max_size=2, unique=True))
        columns = [[run.va + k * 4096 for run in sorted(index.runs, key=lambda r: r.va) if run.pid == pid
                    for k in range(run.pages)] for pid in chosen]
        first, shape = columns[0], data.draw(st.sampled_from(["as is", "twice", "halves", "again"]))
        at = data.draw(st.integers(0, len(first) - 1))
        if shape == "twice":  # one page twice in a row
            first.insert(at, first[at])
        elif shape == "halves":  # two climbing stretches whose spans overlap, no page twice
            columns[0] = first[0::2] + first[1::2]
        elif shape == "again":  # a second stretch starting at the first one's last page
            columns[0] = first[:at + 1] + first[at:]
        asked = [(pid, column[i]) for i in range(min(map(len, columns))) for pid, column in zip(chosen, columns)]
    pids, vas = [p for p, _ in asked], [v for _, v in asked]
    got = index.columns(pids, vas)
    for i, (pid, va) in enumerate(asked):
        pte = index.lookup(pid, va)
        want = (pte.pa, pte.perms, pte.writable, None) if pte else (None, "", False, NOT_IN_TABLES)
        assert (got.pas[i], got.perms[i], got.writable[i], got.problems[i]) == want
    found = [index.lookup(pid, va) for pid, va in asked]
    frames = [RAM if pte is None else pte.pa for pte in found]
    if frames and data.draw(st.booleans()):
        frames[data.draw(st.integers(0, len(frames) - 1))] += 4096
    want = (len({(pid, va // 4096) for pid, va in asked}) == len(asked)
            and all(pte is not None and pte.pa == frame for pte, frame in zip(found, frames)))
    assert index.maps_exactly(pids, vas, frames) == want
    assert index._resolve(pids, vas)[:3] == index._pair_by_pair(pids, vas)[:3]


@pytest.mark.parametrize("shape, distinct", [("as is", True), ("twice", False), ("halves", True), ("again", False)])
def test_climbing_pairs_say_whether_a_page_repeats(shape, distinct):
    """A process's 24 mapped pages asked in stretches that climb (the stretch path): a page
    asked twice -- in a row, or where a stretch restarts at the last page of the one before
    -- is no exact mapping; two stretches whose spans overlap without sharing a page are."""
    index = MappingIndex.build(spaces_of([(1, 0, 8, False), (1, 10, 8, True), (1, 20, 8, False)]))
    pages = [run.va + k * 4096 for run in index.runs for k in range(run.pages)]
    vas = {"as is": pages, "twice": pages[:5] + pages[4:], "halves": pages[0::2] + pages[1::2],
           "again": pages[:12] + pages[11:]}[shape]
    frames = [index.lookup(1, va).pa for va in vas]
    assert index._by_stretches([1] * len(vas), vas) is not None  # the path under test
    assert index.maps_exactly([1] * len(vas), vas, frames) is distinct
