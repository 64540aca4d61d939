"""cow-status / cow-stats models (gdb_tinyos.tinyos.reports) on synthetic states.

Live PTEs come from a stub lookup built from the same hand-written address spaces as the
check tests; the expected figures are the kernel's formulas applied by hand."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from gdb_tinyos.tinyos.cow import CowManagerState, Sharer
from gdb_tinyos.tinyos.mappings import MappingIndex, Pte, PteLookup
from gdb_tinyos.tinyos.reports import (
    build_stats, build_status, memory_efficiency_percent, stats_text, status_chunks, status_text,
)
from gdb_tinyos.core.address import Address
from gdb_tinyos.core.render import to_plain, written

from cow_models import HEAP_PA, HEAP_VA, MANAGER_SIZE, RAM, Forked, attrs, page_range


def lookup_from(state: Forked):
    """lookup(pid, va) answering from the state's spaces, as the walker would."""
    index = MappingIndex.build(state.spaces())
    live = {p.pid for p in state.table().live()}

    def lookup(pid: int, va: int) -> Pte:
        if pid not in live:
            return Pte.absent(pid, va, f"pid {pid} is not live (no such process)")
        ref = index.lookup(pid, va)
        if ref is None:
            return Pte.absent(pid, va, "not mapped (level 3 translation fault)")
        return Pte(pid, Address(va), Address(ref.pa), "EL0:RW-" if ref.writable else "EL0:R--", ref.writable)

    return lookup


def status(state: Forked, **options):
    return build_status(state.manager(), lookup_from(state), **options)


def test_figures_are_the_statistics_and_rows_carry_live_ptes():
    state = Forked(heap_pages=3)
    s = status(state)
    f = s.figures
    assert (f.cow_pages, f.cow_faults, f.pages_duplicated, f.memory_saved_bytes, f.peak_cow_pages) == (3, 0, 0, 12288, 3)
    assert [p.pa for p in s.pages] == [HEAP_PA, HEAP_PA + 0x1000, HEAP_PA + 0x2000]
    first = s.pages[0]
    assert [(x.va, x.pid, x.pte, x.maps, x.flags) for x in first.sharers] == [
        (HEAP_VA, 1, "EL0:R--", HEAP_PA, ()), (HEAP_VA, 2, "EL0:R--", HEAP_PA, ())]
    assert s.flagged == 0 and s.omitted == 0 and s.matched == 3


def test_contradictions_are_flagged_on_the_sharer():
    state = Forked(heap_pages=3)
    state.ranges[2] = [page_range(HEAP_VA, HEAP_PA, writable=True),          # COW page writable
                       page_range(HEAP_VA + 0x1000, RAM + 0x30_000)]          # another frame
    state.set_page(2, ref_count=3, sharers=(Sharer(HEAP_VA + 0x2000, 1), Sharer(HEAP_VA + 0x2000, 9)))
    s = status(state)
    flags = {(p.pa, x.pid): x.flags for p in s.pages for x in p.sharers}
    assert flags[(HEAP_PA, 2)] == ("COW page mapped writable",)
    assert flags[(HEAP_PA + 0x1000, 2)] == (f"maps another frame ({RAM + 0x30_000:#x})",)
    assert flags[(HEAP_PA + 0x2000, 9)] == ("pid 9 is not live (no such process)",)
    assert s.pages[2].flags == ("refs 3 != 2 recorded sharers",)
    assert s.flagged == 3
    assert "3 page(s) flagged" in status_text(s)


def test_limit_walks_only_the_first_pages_and_summarises_the_rest():
    state = Forked(heap_pages=5)
    state.set_page(4, ref_count=3)
    walked = []

    def counting(pid, va):
        walked.append((pid, va))
        return lookup_from(state)(pid, va)

    s = build_status(state.manager(), counting, limit=2)
    assert len(s.pages) == 2 and s.matched == 5
    assert (s.omitted, s.omitted_refs) == (3, 2 + 2 + 3)
    assert len(walked) == 4  # 2 pages x 2 sharers
    assert "... 3 more page(s) (7 refs) not shown" in status_text(s)
    assert len(build_status(state.manager(), lookup_from(state), limit=0).pages) == 5


def test_pid_and_pa_filters():
    state = Forked(heap_pages=3)
    state.set_page(1, ref_count=1, sharers=(Sharer(HEAP_VA + 0x1000, 1),))
    assert [p.pa for p in status(state, pid=2).pages] == [HEAP_PA, HEAP_PA + 0x2000]
    assert [p.pa for p in status(state, pid=1).pages] == [HEAP_PA, HEAP_PA + 0x1000, HEAP_PA + 0x2000]
    assert [p.pa for p in status(state, pa=HEAP_PA + 0x2ABC).pages] == [HEAP_PA + 0x2000]
    none = status(state, pa=RAM)
    assert none.pages == () and f"no tracked page for pa {RAM:#x}" in status_text(none)
    # the figures never depend on the filters
    assert none.figures == status(state).figures


def test_status_text_has_the_shell_lines():
    text = status_text(status(Forked(heap_pages=2))).splitlines()
    assert text[1:6] == ["COW Pages: 2", "COW Faults: 0", "Pages Duplicated: 0",
                         "Memory Saved: 8192 bytes", "Peak COW Pages: 2"]


def test_lock_held_and_uninitialised():
    state = Forked()
    state.lock_held = True
    s = status(state)
    assert s.warnings == ("COW_MANAGER's lock is held: the state may be mid-update",)
    assert status_text(s).splitlines()[0].startswith("warning: COW_MANAGER's lock is held")
    empty = CowManagerState(symbol="COW_MANAGER", address=0, initialised=False, lock_held=None, capacity=64)
    s = build_status(empty, lookup_from(state))
    assert s.figures is None and s.pages == ()
    assert status_text(s) == "COW manager not initialised: COW_MANAGER holds None (nothing is shared copy-on-write)"
    assert not build_stats(empty).initialised


@pytest.mark.parametrize("saved_pages, mappings, percent", [
    (0, 0, 0),      # nothing tracked
    (3, 6, 50),     # 3 frames shared by 2: half the mapped bytes saved
    (1, 3, 33),     # 4096 * 100 / 12288 = 33.3 -> 33 (integer division)
    (2, 3, 66),     # 66.6 -> 66
    (7, 8, 87),     # one frame shared by 8: 87.5 -> 87
])
def test_memory_efficiency_as_the_kernel_computes_it(saved_pages, mappings, percent):
    assert memory_efficiency_percent(saved_pages * 4096, mappings) == percent


def test_stats_figures_and_cross_checks():
    state = Forked(heap_pages=2)
    state.set_page(1, ref_count=1, sharers=(Sharer(HEAP_VA + 0x1000, 1),))
    state.statistics = replace(state.statistics, memory_saved_bytes=4096, cow_faults_handled=1, pages_duplicated=1)
    st = build_stats(state.manager(), MANAGER_SIZE)
    assert (st.total_cow_pages, st.total_cow_faults, st.pages_duplicated, st.memory_saved_bytes,
            st.metadata_memory_bytes, st.peak_cow_pages) == (2, 1, 1, 4096, MANAGER_SIZE, 2)
    assert (st.tracked_pages, st.total_mappings, st.memory_efficiency_percent) == (2, 3, 33)
    assert all(c.ok for c in st.checks)
    lines = stats_text(st).splitlines()
    assert lines[:8] == ["=== COW Statistics ===", "Total COW Pages: 2", "Total COW Faults: 1",
                         "Pages Duplicated: 1", "Memory Saved: 4096 bytes", f"Metadata Memory: {MANAGER_SIZE} bytes",
                         "Peak COW Pages: 2", "Memory Efficiency: 33%"]


def test_stats_mismatch_is_named():
    state = Forked(heap_pages=2)
    state.statistics = replace(state.statistics, memory_saved_bytes=0)
    st = build_stats(state.manager(), MANAGER_SIZE + 8)
    bad = {c.name: (c.stored, c.derived) for c in st.checks if not c.ok}
    assert bad == {"memory_saved_bytes": (0, 8192), "metadata_memory_bytes": (MANAGER_SIZE, MANAGER_SIZE + 8)}
    assert st.memory_efficiency_percent == 0  # the kernel divides the STORED saving
    assert "2 figure(s) disagree with the pages: memory_saved_bytes, metadata_memory_bytes" in stats_text(st)


def test_json_face_keeps_addresses_as_hex_strings():
    plain = to_plain(status(Forked(heap_pages=1)))
    assert plain["pages"][0]["pa"] == f"{HEAP_PA:#x}"
    assert plain["pages"][0]["sharers"][1] == {"va": f"{HEAP_VA:#x}", "pid": 2, "pte": "EL0:R--",
                                               "maps": f"{HEAP_PA:#x}", "flags": []}
    assert plain["figures"]["memory_saved_bytes"] == 4096


class StubView:
    """Walks and dumps answered from a Forked state, as KernelState gives them; counts what it was asked."""

    def __init__(self, state: Forked):
        self.state = state
        self.index = MappingIndex.build(state.spaces())
        self.walks = 0
        self.dumps = []

    def walk(self, pid, va):
        self.walks += 1
        ref = self.index.lookup(pid, va)
        if ref is None:
            return SimpleNamespace(mapping=None, pa=None, steps=(),
                                   fault=SimpleNamespace(level=3, kind=SimpleNamespace(value="translation")))
        pa = ref.pa + (va & 0xFFF)
        return SimpleNamespace(mapping=SimpleNamespace(pa=pa, attrs=attrs(ref.writable)), pa=pa, steps=(), fault=None)

    def address_space(self, pid):
        self.dumps.append(pid)
        return self.state.spaces()[pid]

    def not_live(self, pid):
        live = {p.pid for p in self.state.table().live()}
        return None if pid in live else f"pid {pid} is not live (no such process)"


def test_pte_lookup_walks_first_then_indexes_each_process_once():
    state = Forked(heap_pages=4)
    state.ranges[2][1] = page_range(HEAP_VA, HEAP_PA, writable=True, pages=4)
    view = StubView(state)
    lookup = PteLookup(view.walk, view.address_space, view.not_live, walk_budget=2)
    answers = [lookup(pid, HEAP_VA + i * 4096) for pid in (1, 2) for i in range(4)]
    assert (view.walks, view.dumps) == (4, [1, 2])  # 2 walks per process, then one dump each
    expected = [Pte(pid, Address(HEAP_VA + i * 4096), Address(HEAP_PA + i * 4096), attrs(pid == 2).perms.describe(),
                    pid == 2) for pid in (1, 2) for i in range(4)]
    assert answers == expected  # the walked and the indexed answers agree
    assert lookup(1, 0x5000_0000).problem.startswith("not mapped")
    assert lookup(7, HEAP_VA).problem == "pid 7 is not live (no such process)"


@pytest.mark.parametrize("options", [{}, {"limit": 1}, {"pa": RAM}, {"pid": 9}])
def test_the_text_written_in_pieces_is_the_text(options):
    """What cow-status writes (each piece ended by a newline) is the text, its empty line
    after the figures included, however the pieces fall."""
    s = status(Forked(heap_pages=5), **options)
    assert "".join(written(status_chunks(s))) == status_text(s) + "\n"
    assert "" in status_text(s).splitlines()  # the shell's blank line before the table
