"""cow-check's invariants (gdb_tinyos.tinyos.check) on synthetic forked states.

Each test starts from the healthy fork of tests/unit/cow_models.py (parent 1 and child 2
share 3 heap frames read-only, ref_count 2, plus an untracked read-only code frame),
breaks one thing by hand, and expects exactly the findings that one break implies."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gdb_tinyos.tinyos.check import MappingIndex, check_cow
from gdb_tinyos.tinyos.cow import CowManagerState, Sharer

from cow_models import CODE_PA, CODE_VA, HEAP_PA, HEAP_VA, MANAGER_SIZE, RAM, Forked, page_range, process


def run(state: Forked, with_frames: bool = True):
    index = MappingIndex.build(state.spaces())
    return check_cow(state.manager(), state.table(), index,
                     frames=state.frames() if with_frames else None, manager_size=MANAGER_SIZE)


def kinds(report) -> list[str]:
    return sorted(v.kind for v in report.violations)


def test_healthy_fork_is_clean():
    report = run(Forked(heap_pages=3))
    assert report.ok and report.violations == () and report.warnings == ()
    # 2 processes x (1 code + 3 heap pages)
    assert (report.pages, report.mappings, report.processes) == (3, 8, 2)
    assert report.summary() == "cow-check: OK (3 pages, 8 user PTEs checked)"


def test_index_expands_ranges_into_pages():
    index = MappingIndex.build(Forked(heap_pages=3).spaces())
    third = index.lookup(2, HEAP_VA + 2 * 4096 + 0x123)
    assert (third.pid, third.va, third.pa, third.writable) == (2, HEAP_VA + 0x2000, HEAP_PA + 0x2000, False)
    assert sorted(r.pid for r in index.at(HEAP_PA + 0x1000 + 8)) == [1, 2]
    assert [r.va for r in index.at(CODE_PA)] == [CODE_VA, CODE_VA]
    assert index.lookup(1, HEAP_VA + 3 * 4096) is None


def test_ref_count_one_too_many():
    # upstream's off-by-one: the count says 3, two sharers and two PTEs exist
    state = Forked()
    state.set_page(0, ref_count=3)
    report = run(state)
    # recorded sharers (2), live PTEs (2) and Σ(refs-1)x4096 (4 pages' worth != 3 stored) all disagree
    assert kinds(report) == ["ref-count", "ref-count-metadata", "statistics"]
    ref = next(v for v in report.violations if v.kind == "ref-count")
    assert ref.pa == HEAP_PA and "ref_count is 3 but 2 live user PTEs" in ref.message
    assert any("pid 2 va 0x10000000" in e for e in ref.evidence)
    assert report.summary() == "cow-check: 3 violations"


def test_shared_frame_mapped_writable_in_the_child():
    state = Forked()
    state.ranges[2] = [page_range(CODE_VA, CODE_PA, user_exec=True),
                       page_range(HEAP_VA, HEAP_PA, writable=True),
                       page_range(HEAP_VA + 0x1000, HEAP_PA + 0x1000, pages=2)]
    report = run(state)
    assert kinds(report) == ["writable-shared"]
    (v,) = report.violations
    assert v.pa == HEAP_PA and "pid 2 va 0x10000000 (writable)" in v.message


def test_sole_cow_mapping_writable_is_reported_as_stale_protection():
    state = Forked(heap_pages=1)
    state.set_page(0, ref_count=1, sharers=(Sharer(HEAP_VA, 1),))
    state.ranges[1][1] = page_range(HEAP_VA, HEAP_PA, writable=True)
    state.ranges[2] = [page_range(CODE_VA, CODE_PA, user_exec=True)]
    state.refs[HEAP_PA] = 1
    state.statistics = replace(state.statistics, memory_saved_bytes=0)
    assert kinds(run(state)) == ["writable-cow"]


def test_sharer_recorded_with_a_dead_pid():
    state = Forked()
    state.set_page(1, sharers=(Sharer(HEAP_VA + 0x1000, 1), Sharer(HEAP_VA + 0x1000, 3)))
    report = run(state)
    # pid 3 does not exist, and pid 2's real mapping is then unrecorded
    assert kinds(report) == ["dead-sharer", "unrecorded-mapping"]
    dead = next(v for v in report.violations if v.kind == "dead-sharer")
    assert dead.pa == HEAP_PA + 0x1000 and "pid 3 is not a live process" in dead.message


def test_zombie_sharer_counts_as_dead():
    state = Forked()
    state.processes[1] = process(2, state="Zombie")
    report = run(state)
    # every tracked page names pid 2 and loses one PTE: 3 x (dead sharer + count mismatch)
    assert kinds(report) == ["dead-sharer"] * 3 + ["ref-count"] * 3


def test_child_copied_but_metadata_not_updated():
    # the child's VA now maps a private copy at a new frame; the manager still lists it
    state = Forked()
    copy = RAM + 0x30_000
    state.ranges[2] = [page_range(CODE_VA, CODE_PA, user_exec=True),
                       page_range(HEAP_VA, copy, writable=True),
                       page_range(HEAP_VA + 0x1000, HEAP_PA + 0x1000, pages=2)]
    state.refs[copy] = 1
    report = run(state)
    assert kinds(report) == ["ref-count", "stale-sharer"]
    stale = next(v for v in report.violations if v.kind == "stale-sharer")
    assert f"maps frame {copy:#x} instead" in stale.message


def test_unmapped_sharer():
    state = Forked()
    state.ranges[1] = [page_range(CODE_VA, CODE_PA, user_exec=True), page_range(HEAP_VA, HEAP_PA, pages=2)]
    report = run(state)
    # the third heap page is gone from pid 1: one stale sharer, one count mismatch, and the
    # allocator still counts 2 (>= 1 mapping: no frame finding)
    assert kinds(report) == ["ref-count", "stale-sharer"]
    assert all(v.pa == HEAP_PA + 0x2000 for v in report.violations)


def test_tracked_frame_free_in_the_allocator_and_undercounted_frame():
    state = Forked()
    state.refs[HEAP_PA + 0x2000] = 0
    state.refs[CODE_PA] = 1
    report = run(state)
    # the free tracked frame is also mapped twice with count 0 (< 2): frame-free + frame-refs;
    # the code frame is mapped twice with count 1: frame-refs
    assert kinds(report) == ["frame-free", "frame-refs", "frame-refs"]
    assert {v.pa for v in report.violations} == {HEAP_PA + 0x2000, CODE_PA}
    assert kinds(run(state, with_frames=False)) == []


def test_statistics_that_disagree_with_the_pages():
    state = Forked(heap_pages=2)
    state.statistics = replace(state.statistics, cow_pages_count=5, peak_cow_pages=1,
                               metadata_memory_bytes=1, memory_saved_bytes=0,
                               cow_faults_handled=1, pages_duplicated=2)
    state.active_pages = 4
    messages = [v.message for v in run(state).violations]
    assert messages == [
        "statistics.cow_pages_count is 5, expected 2 (occupied slots)",
        "active_pages is 4, expected 2 (occupied slots)",
        "statistics.memory_saved_bytes is 0, expected 8192 (Σ(ref_count − 1) × 4096 over the pages)",
        f"statistics.metadata_memory_bytes is 1, expected {MANAGER_SIZE} (the size of CowManager)",
        "statistics.peak_cow_pages is 1, below the current 5 pages",
        "statistics.pages_duplicated (2) exceeds cow_faults_handled (1): every copy comes from a fault",
    ]


def test_same_frame_in_two_slots():
    state = Forked(heap_pages=2)
    state.set_page(1, physical_addr=HEAP_PA, sharers=(Sharer(HEAP_VA, 1), Sharer(HEAP_VA, 2)))
    state.ranges = {pid: [page_range(HEAP_VA, HEAP_PA)] for pid in (1, 2)}
    state.refs = {HEAP_PA: 2}
    report = run(state)
    assert "duplicate-frame" in kinds(report)
    assert next(v for v in report.violations if v.kind == "duplicate-frame").message == "tracked by 2 slots: 16, 17"


def test_uninitialised_manager_and_held_locks_are_warnings_not_violations():
    state = Forked()
    state.lock_held = True
    report = run(state)
    assert report.ok
    assert report.warnings == ("COW_MANAGER's lock is held: the state may be mid-update, violations may be transient",)
    empty = CowManagerState(symbol="COW_MANAGER", address=0, initialised=False, lock_held=None, capacity=64)
    report = check_cow(empty, state.table(), MappingIndex.build(state.spaces()))
    assert report.ok and report.pages == 0
    assert report.warnings[-1] == "COW_MANAGER is not initialised: no pages to check"


@pytest.mark.parametrize("n", [1, 2, 7])
def test_describe_lists_every_violation_then_the_summary(n):
    state = Forked(heap_pages=n)
    for i in range(n):
        state.set_page(i, is_cow=False)
    text = run(state).describe().splitlines()
    assert text[-1] == f"cow-check: {n} violation{'s' if n > 1 else ''}"
    assert sum(line.startswith("[not-cow]") for line in text) == n
