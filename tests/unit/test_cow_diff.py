"""cow-diff's logic on snapshots built by hand: a fork sharing a page, the child's copy,
the parent's reuse, exit; the JSON round trip; the text face."""

from __future__ import annotations

import json

from gdb_tinyos.core.address import Address
from gdb_tinyos.core.render import to_json
from gdb_tinyos.tinyos.diff import (
    CowSnapshot, PageRecord, PteRecord, diff, diff_text, snapshot_from_plain, snapshot_to_plain,
)

A = Address
RO, RW = "EL1:R-- EL0:R--", "EL1:RW- EL0:RW-"
DATA, STACK = 0x80_0000, 0x7FFF_FFFE_F000
OLD, NEW, STACK_FRAME = 0x4000_6000, 0x4001_5000, 0x4000_8000


def stats(faults=0, dup=0, count=2, saved=8192, peak=2, active=2):
    return {"cow_pages_count": count, "cow_faults_handled": faults, "pages_duplicated": dup,
            "memory_saved_bytes": saved, "metadata_memory_bytes": 100, "peak_cow_pages": peak, "active_pages": active}


def after_fork() -> CowSnapshot:
    pages = {OLD: PageRecord(A(OLD), 2, True, "UserData", ((A(DATA), 1), (A(DATA), 2))),
             STACK_FRAME: PageRecord(A(STACK_FRAME), 2, True, "UserData", ((A(STACK), 1), (A(STACK), 2)))}
    ptes = {(1, DATA): PteRecord(A(OLD), RO), (2, DATA): PteRecord(A(OLD), RO),
            (1, STACK): PteRecord(A(STACK_FRAME), RO), (2, STACK): PteRecord(A(STACK_FRAME), RO),
            (1, 0x40_0000): PteRecord(A(0x4000_1000), "EL1:R-- EL0:R-X")}
    return CowSnapshot("fork", pages, ptes, stats(), {1: "forkwrite", 2: "forkwrite"})


def after_copy() -> CowSnapshot:
    snap = after_fork()
    snap.label = "copy"
    snap.pages[OLD] = PageRecord(A(OLD), 1, True, "UserData", ((A(DATA), 1),))
    snap.ptes[(2, DATA)] = PteRecord(A(NEW), RW)
    snap.statistics = stats(faults=1, dup=1, saved=4096)
    return snap


def test_the_childs_copy():
    d = diff(after_fork(), after_copy())
    assert [(c.pa, c.change, c.refs, c.sharers_removed, c.sharers_added) for c in d.pages] == [
        (OLD, "changed", (2, 1), ((DATA, 2),), ())]
    assert [(c.pid, c.va, c.before, c.after) for c in d.ptes] == [
        (2, DATA, PteRecord(A(OLD), RO), PteRecord(A(NEW), RW))]
    assert {(s.name, s.before, s.after, s.delta) for s in d.statistics} == {
        ("cow_faults_handled", 0, 1, 1), ("pages_duplicated", 0, 1, 1), ("memory_saved_bytes", 8192, 4096, -4096)}
    assert not d.processes_started and not d.processes_gone


def test_untracked_frames_and_gone_processes():
    later = after_copy()
    later.label = "exit"
    del later.pages[OLD], later.pages[STACK_FRAME]
    for key in [k for k in later.ptes if k[0] == 2]:
        del later.ptes[key]
    del later.processes[2]
    later.ptes[(1, DATA)] = PteRecord(A(OLD), RW)  # the parent's reuse in place
    d = diff(after_copy(), later)
    assert [(c.pa, c.change, c.refs, c.sharers_removed) for c in d.pages] == [
        (OLD, "untracked", (1, None), ((DATA, 1),)),
        (STACK_FRAME, "untracked", (2, None), ((STACK, 1), (STACK, 2)))]
    changed = {(c.pid, c.va): (c.before, c.after) for c in d.ptes}
    assert changed[(1, DATA)] == (PteRecord(A(OLD), RO), PteRecord(A(OLD), RW))
    assert changed[(2, STACK)] == (PteRecord(A(STACK_FRAME), RO), None)  # a sharer before: affected
    assert (2, DATA) not in changed  # the child's private copy: no COW state spoke of it
    assert (1, 0x40_0000) not in changed  # never a COW page: not reported
    assert d.processes_gone == {2: "forkwrite"}


def test_a_newly_tracked_frame_and_unrelated_ptes():
    before = after_fork()
    after = after_fork()
    after.pages[0x4000_C000] = PageRecord(A(0x4000_C000), 1, True, "UserData", ((A(0x1000_0000), 1),))
    after.ptes[(1, 0x1000_0000)] = PteRecord(A(0x4000_C000), RO)
    after.ptes[(1, 0x2000_0000)] = PteRecord(A(0x4000_D000), RW)  # a private page appears: not COW
    d = diff(before, after)
    assert [(c.pa, c.change, c.refs, c.sharers_added) for c in d.pages] == [
        (0x4000_C000, "tracked", (None, 1), ((0x1000_0000, 1),))]
    assert [(c.pid, c.va) for c in d.ptes] == [(1, 0x1000_0000)]


def test_no_change():
    d = diff(after_fork(), after_fork())
    assert d.empty and diff_text(d).endswith("no change in the COW state")


def test_json_round_trip_is_plain_data():
    snap = after_copy()
    text = json.dumps(snapshot_to_plain(snap))
    assert snapshot_from_plain(json.loads(text)) == snap
    plain = json.loads(to_json(diff(after_fork(), after_copy())))
    assert plain["pages"][0]["pa"] == hex(OLD) and plain["pages"][0]["refs"] == [2, 1]
    assert plain["ptes"][0]["after"] == {"pa": hex(NEW), "perms": RW}


def test_text_face_names_everything_and_escapes_names():
    later = after_copy()
    later.processes[3] = "evil\x1b[2J"
    text = diff_text(diff(after_fork(), later))
    assert "cow-diff: fork -> copy" in text
    assert "2 -> 1" in text and f"- {A(DATA)}/pid 2" in text
    assert f"{A(OLD)} {RO}" in text and f"{A(NEW)} {RW}" in text
    assert "cow_faults_handled" in text and "+1" in text and "-4096" in text
    assert "processes started: 3 (evil\\x1b[2J)" in text and "\x1b" not in text
