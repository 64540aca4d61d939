"""The COW manager's totals from columns equal those derived from the full decode, and
cow-check's column pre-pass finds every page the per-page rules would flag.

Summaries: synthetic managers as in test_cow_fast_decode (the fixture's upstream shapes
and the shipped kernel's 32 768-slot manager, random slots fine or corrupt), each read
both ways -- :func:`summarise_manager` on the bytes and :meth:`CowSummary.of_manager` on
the full decode -- must give the same columns, figures, page look-ups and lazily decoded
pages, or the same error. The figures on 20 000 pages are computed without building one
``CowPage``.

Check: the hand-built forked states of cow_models with random corruptions, checked with
the column pre-pass and with every page taken one by one (the pre-pass disabled), must give
the same report.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gdb_tinyos.tinyos.check as check_module
import gdb_tinyos.tinyos.check_columns as check_columns
import gdb_tinyos.tinyos.cow as cow_module
from gdb_tinyos.core.errors import CorruptStructure
from gdb_tinyos.tinyos.check import check_cow
from gdb_tinyos.tinyos.conventions import Conventions
from gdb_tinyos.tinyos.cow import Sharer, decode_manager
from gdb_tinyos.tinyos.cow_columns import CowSummary, sharers_of, summarise_manager
from gdb_tinyos.tinyos.mappings import MappingIndex
from gdb_tinyos.tinyos.reports import build_stats, build_status

from cow_models import HEAP_PA, HEAP_VA, MANAGER_SIZE, Forked, page_range, process
from test_cow_fast_decode import FIXTURE_SYMBOLS, RAM, manager, slot_strategy, synthetic
from test_debuginfo_fixture import fixture_elf  # noqa: F401  (pytest fixture)


def both_ways(data: bytes, where, parallel):
    """(summary from columns, summary from the full decode), or the error both raise."""
    try:
        fast = summarise_manager(data, where, RAM, parallel)
    except CorruptStructure as exc:
        fast = ("error", str(exc))
    try:
        full = CowSummary.of_manager(decode_manager(data, where, RAM, parallel))
    except CorruptStructure as exc:
        full = ("error", str(exc))
    return fast, full


def same_summaries(data: bytes, where, parallel) -> None:
    fast, full = both_ways(data, where, parallel)
    assert fast == full
    if isinstance(fast, tuple):
        return
    pages = full.pages_at(range(full.tracked))
    assert fast.pages_at(range(fast.tracked)) == pages
    assert fast.pages_at([fast.tracked - 1, 0] if fast.tracked else []) == ([pages[-1], pages[0]] if pages else [])
    assert (fast.total_refs, fast.saved_bytes) == (sum(p.ref_count for p in pages),
                                                 sum(max(p.ref_count - 1, 0) for p in pages) * 4096)
    for pa in [p.physical_addr + 8 for p in pages[:3]] + [0x4700_0000]:
        found = next((p for p in pages if p.physical_addr == pa & ~0xFFF), None)
        assert fast.refs_of(pa) == (found.ref_count if found else 0)
    if fast.reader is not None:  # many pages' sharers from columns: as decoding those pages gives
        for indices in (range(fast.tracked), list(range(fast.tracked))[::-2]):
            assert fast.reader(indices) == sharers_of(full.pages_at(indices))
    fast_sharers, full_sharers = fast.sharer_pages(), full.sharer_pages()
    if fast_sharers is not None:  # index-paired lists: the same triples as the pages' sharers
        assert sorted(zip(*fast_sharers)) == sorted(zip(*full_sharers))
    for owner in (None, "owner"):
        conv = Conventions(refs=owner) if owner else Conventions()
        assert build_stats(fast, MANAGER_SIZE, conv) == build_stats(full, MANAGER_SIZE, conv)
    assert build_status(fast, None, limit=2) == build_status(full, None, limit=2)
    if pages:
        pa = pages[-1].physical_addr
        assert build_status(fast, None, pa=(pa, pa + 4096), limit=0) == build_status(full, None, pa=(pa, pa + 4096), limit=0)
        pid = pages[0].sharers[0].pid if pages[0].sharers else None
        assert build_status(fast, None, pid=pid, limit=1) == build_status(full, None, pid=pid, limit=1)


parallel_strategy = st.sampled_from([None, True, False])


@pytest.mark.parametrize("symbol", FIXTURE_SYMBOLS)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slots=st.lists(slot_strategy, max_size=12), parallel=parallel_strategy)
def test_upstream_shapes_summarise_as_the_full_decode(fixture_elf, symbol, slots, parallel):
    where, initial = manager(fixture_elf, symbol)
    same_summaries(synthetic(where, initial, slots), where, parallel)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slots=st.lists(slot_strategy, max_size=12), parallel=parallel_strategy)
def test_the_kernels_manager_summarises_as_the_full_decode(tinyos_kernel, slots, parallel):
    where, initial = manager(tinyos_kernel, "COW_MANAGER")
    same_summaries(synthetic(where, initial, slots), where, parallel)


def forkpause(tinyos_kernel, pages: int = 20_000):
    """The kernel's manager with ``pages`` frames shared by pids 1 and 2 (forkpause's shape)."""
    where, initial = manager(tinyos_kernel, "COW_MANAGER")
    slots = [dict(slot=i, pa=0x4100_0000 + i * 4096, refs=2, is_cow=1, perms=3, vas=[0x1000_0000 + i * 4096] * 2,
                  pids=[1, 2], tag=None) for i in range(pages)]
    return where, synthetic(where, initial, slots)


def test_stats_on_20000_pages_build_no_page(tinyos_kernel, monkeypatch):
    where, data = forkpause(tinyos_kernel)
    full = CowSummary.of_manager(decode_manager(data, where, RAM))
    built = []
    real = cow_module.CowPage
    monkeypatch.setattr(cow_module, "CowPage", lambda *a, **k: built.append(1) or real(*a, **k))
    summary = summarise_manager(data, where, RAM)
    stats = build_stats(summary, MANAGER_SIZE, Conventions())
    status = build_status(summary, None, limit=20)
    assert len(built) == 20  # the rows shown, nothing else
    assert stats == build_stats(full, MANAGER_SIZE, Conventions())
    assert (stats.tracked_pages, stats.total_mappings) == (20_000, 40_000)  # by construction
    assert (status.matched, status.omitted, status.omitted_refs) == (20_000, 19_980, 2 * 19_980)
    assert summary.refs_of(0x4100_0000 + 19_999 * 4096) == 2 and summary.refs_of(0x4100_0000 - 4096) == 0


def test_a_clean_check_on_20000_pages_decodes_no_page(tinyos_kernel, monkeypatch):
    """Both processes map the 20 000 frames read-only where the record says: nothing to
    look at one by one; one sharer moved: that page alone is decoded, and reported."""
    where, data = forkpause(tinyos_kernel)
    spaces = {pid: Forked(heap_pages=1).spaces()[pid] for pid in (1, 2)}
    for pid in (1, 2):
        spaces[pid].ranges[:] = [page_range(0x1000_0000, 0x4100_0000, pages=20_000)]
    built = []
    real = cow_module.CowPage
    monkeypatch.setattr(cow_module, "CowPage", lambda *a, **k: built.append(1) or real(*a, **k))
    summary = summarise_manager(data, where, RAM)
    table = Forked().table()
    report = check_cow(summary, table, MappingIndex.build(spaces))
    assert built == [] and report.pages == 20_000 and report.mappings == 40_000
    assert {v.kind for v in report.violations} == {"statistics"}  # the synthetic statistics are all 0
    spaces[2].ranges[:] = [page_range(0x1000_0000, 0x4100_0000, pages=7),
                           page_range(0x1000_7000, 0x4700_0000, pages=1),  # an untracked frame
                           page_range(0x1000_8000, 0x4100_8000, pages=19_992)]
    report = check_cow(summary, table, MappingIndex.build(spaces))
    assert len(built) == 1
    assert [(v.kind, v.pa) for v in report.violations if v.kind != "statistics"] == [
        ("ref-count", 0x4100_7000), ("stale-sharer", 0x4100_7000)]


# -- the check's pre-pass against every page one by one --------------------------------------

edit = st.one_of(
    st.tuples(st.just("refs"), st.integers(0, 5), st.integers(0, 4)),
    st.tuples(st.just("not-cow"), st.integers(0, 5), st.just(0)),
    st.tuples(st.just("pid"), st.integers(0, 5), st.integers(1, 4)),  # a sharer's pid (3, 4: not live)
    st.tuples(st.just("va"), st.integers(0, 5), st.integers(0, 8)),  # a sharer's VA page
    st.tuples(st.just("drop"), st.integers(0, 5), st.just(0)),  # a sharer forgotten
    st.tuples(st.just("twice"), st.integers(0, 5), st.just(0)),  # a sharer recorded twice
    st.tuples(st.just("frame"), st.integers(0, 5), st.integers(0, 5)),  # another frame (maybe tracked)
    st.tuples(st.just("writable"), st.integers(1, 2), st.integers(0, 5)),  # pid's heap page writable
    st.tuples(st.just("unmap"), st.integers(1, 2), st.integers(0, 5)),
    st.tuples(st.just("zombie"), st.integers(1, 2), st.just(0)),
)


def apply(state: Forked, change) -> None:
    kind, a, b = change
    if kind in ("writable", "unmap", "zombie"):
        n = state.heap_pages
        b %= n
        if kind == "zombie":
            state.processes[a - 1] = process(a, "Zombie")
            return
        heap = [page_range(HEAP_VA + i * 4096, HEAP_PA + i * 4096, writable=kind == "writable" and i == b)
                for i in range(n) if not (kind == "unmap" and i == b)]
        state.ranges[a] = state.ranges[a][:1] + heap
        return
    i = a % len(state.pages)
    page = state.pages[i]
    sharers = list(page.sharers)
    if kind == "refs":
        state.set_page(i, ref_count=b)
    elif kind == "not-cow":
        state.set_page(i, is_cow=False)
    elif kind == "pid" and sharers:
        sharers[0] = Sharer(sharers[0].va, b)
    elif kind == "va" and sharers:
        sharers[-1] = Sharer(HEAP_VA + b * 4096 + 8, sharers[-1].pid)
    elif kind == "drop" and sharers:
        sharers.pop()
    elif kind == "twice" and sharers:
        sharers.append(sharers[0])
    elif kind == "frame":
        state.set_page(i, physical_addr=HEAP_PA + b * 4096)
    if kind in ("pid", "va", "drop", "twice"):
        state.set_page(i, sharers=tuple(sharers))


@settings(max_examples=300, deadline=None)
@given(pages=st.integers(1, 6), changes=st.lists(edit, max_size=4), owner=st.booleans())
def test_the_pre_pass_misses_no_violation(pages, changes, owner):
    state = Forked(heap_pages=pages)
    for change in changes:
        apply(state, change)
    conv = Conventions(refs="owner") if owner else Conventions()
    if owner:
        for i, page in enumerate(state.pages):
            state.set_page(i, ref_count=page.ref_count + 1)
    args = dict(processes=state.table(), index=MappingIndex.build(state.spaces()), frames=state.frames(),
                manager_size=MANAGER_SIZE, conventions=conv)
    fast = check_cow(state.manager(), **args)
    every_page = check_module.suspect_pages
    try:
        check_module.suspect_pages = lambda cow, *rest: range(cow.tracked)
        slow = check_cow(state.manager(), **args)
    finally:
        check_module.suspect_pages = every_page
    assert fast == slow
    if not changes:
        assert fast.ok
        # a healthy record is proven from columns, no page looked at
        summary, live = CowSummary.of_manager(state.manager()), {p.pid for p in state.table().live()}
        assert check_columns._record_is_live(summary, args["index"], live)
        assert list(check_columns.suspect_pages(summary, args["index"], live, conv)) == []
