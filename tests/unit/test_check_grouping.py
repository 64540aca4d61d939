"""A pathological state stays small: identical findings on consecutive frames are one
violation with a count (tinyos/check.py's allocator findings per span, tinyos/grouping.py
for the per-page ones). Expected counts come from the construction: RAM is 32768 frames
from 0x4000_0000, and the block maps 0x4000_0000-0x8000_0000 (262 144 frames)."""

from __future__ import annotations

from dataclasses import replace

from gdb_tinyos.aarch64 import Range
from gdb_tinyos.tinyos.check import CheckReport, MappingIndex, Violation, check_cow
from gdb_tinyos.tinyos.grouping import group_violations

import cow_models
from cow_models import HEAP_PA, HEAP_VA, MANAGER_SIZE, Forked, attrs, page_range

GIB = 1 << 30


def check(state: Forked, frames: int = cow_models.FRAMES):
    old, cow_models.FRAMES = cow_models.FRAMES, frames
    try:
        allocator = state.frames()
    finally:
        cow_models.FRAMES = old
    return check_cow(state.manager(), state.table(), MappingIndex.build(state.spaces()), frames=allocator,
                     manager_size=MANAGER_SIZE)


def test_a_1gib_el0_writable_block_is_a_handful_of_grouped_violations():
    state = Forked(heap_pages=3)
    state.ranges[1].append(Range(GIB, 2 * GIB, GIB, attrs(writable=True), 1, (1,)))
    report = check(state, frames=32768)
    outside = [v for v in report.violations if v.kind == "frame-outside-ram"]
    assert [(v.pa, v.last, v.count) for v in outside] == [(0x4800_0000, 0x7FFF_F000, 229376)]
    assert outside[0].describe().startswith("[frame-outside-ram] frames 0x48000000-0x7ffff000 (229376 frames): "
                                            "mapped by 1 user PTEs but outside RAM")
    refs = [v for v in report.violations if v.kind == "frame-refs"]
    # every RAM frame the block maps has one PTE more than the allocator counts
    assert sum(v.count for v in refs) == 32768
    assert all(v.pa >= GIB and (v.last or v.pa) < GIB + 32768 * 4096 for v in refs)
    # the heap frames: 3 PTEs (the block's + both processes'), counted 2
    assert any(v.pa == HEAP_PA and v.count == 3 and "counts 2 reference(s) but 3 user PTEs" in v.message for v in refs)
    assert len(report.violations) < 20


def test_the_same_break_on_consecutive_frames_groups_into_one():
    state = Forked(heap_pages=20)
    state.ranges[2][1] = page_range(HEAP_VA, HEAP_PA, writable=True, pages=20)
    report = check(state)
    assert [v.kind for v in report.violations] == ["writable-shared"] * 20  # the check itself lists each
    (grouped,) = group_violations(report.violations)
    assert (grouped.kind, grouped.pa, grouped.last, grouped.count) == ("writable-shared", HEAP_PA, HEAP_PA + 19 * 4096, 20)
    assert grouped.message == report.violations[0].message and grouped.evidence == report.violations[0].evidence


def test_findings_on_frames_apart_stay_apart_and_others_pass_through():
    state = Forked(heap_pages=3)
    state.ranges[2][1:] = [page_range(HEAP_VA, HEAP_PA, writable=True), page_range(HEAP_VA + 0x1000, HEAP_PA + 0x1000),
                           page_range(HEAP_VA + 0x2000, HEAP_PA + 0x2000, writable=True)]
    state.statistics = replace(state.statistics, peak_cow_pages=1)
    grouped = group_violations(check(state).violations)
    assert [(v.kind, v.pa, v.count) for v in grouped] == [
        ("writable-shared", HEAP_PA, 1), ("writable-shared", HEAP_PA + 0x2000, 1), ("statistics", None, 1)]


def test_index_segments_follow_overlapping_runs():
    state = Forked(heap_pages=4)
    state.ranges[1].append(page_range(0x5000_0000, HEAP_PA + 0x2000, pages=4))  # overlaps heap pages 2, 3
    index = MappingIndex.build(state.spaces())
    spans = [(start, end, sorted(r.pid for r in runs)) for start, end, runs in index.segments()]
    assert spans[-3:] == [(HEAP_PA, HEAP_PA + 0x2000, [1, 2]), (HEAP_PA + 0x2000, HEAP_PA + 0x4000, [1, 1, 2]),
                          (HEAP_PA + 0x4000, HEAP_PA + 0x6000, [1])]
    assert [(r.pid, r.va) for r in index.at(HEAP_PA + 0x3000)] == [(1, HEAP_VA + 0x3000), (1, 0x5000_1000), (2, HEAP_VA + 0x3000)]
    assert index.lookup(1, 0x5000_3FFF).pa == HEAP_PA + 0x5000 and index.lookup(1, 0x5000_4000) is None
    assert index.mappings == 2 * (1 + 4) + 4


def test_summary_counts_what_max_left_out():
    report = CheckReport(3, 8, 2, (Violation("statistics", None, "x"),), omitted=4)
    assert not report.ok
    assert report.summary() == "cow-check: 5 violations (4 not shown: --max 0 lists all)"
