"""cow-snapshot / cow-diff across `run forkwrite`: the fork, the child's copy, the end; live
and from a `tinyos-dump` core.

Expected changes come from the scenario and QEMU: at the fork (event 19, the parent on the
CPU) `gva2gpa` gives the shared frame of the data page 0x80_0000; at the child's resolved
fault (event 16, the child on the CPU) it gives the child's new frame. The child's copy
drops exactly one sharer (0x80_0000, child) of the shared frame (refs 2 -> 1), its PTE moves
to the new frame and becomes writable at EL0, and the statistics count one fault and one
duplication, and one page (4096 bytes) less saved. At the end both processes are gone and
nothing is tracked."""

from __future__ import annotations

import json

from gdb_tinyos.testing import DebugEvent

DATA = 0x80_0000
RO_EL0, RW_EL0 = "EL1:R-- EL0:R--", "EL1:RW- EL0:RW-"
FORK, SHELL_DONE = DebugEvent.FORK, DebugEvent.SHELL_DONE


def without_labels(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in ("before", "after")}


def test_diffs_across_forkwrite(tinyos_debug_factory, tmp_path):
    s = tinyos_debug_factory(timeout=60)
    s.boot_to_prompt(timeout=60)
    s.run_to_event(FORK, action=lambda: s.console.send_line("run forkwrite"))
    parent, child = s.gdb.read_register("x1"), s.gdb.read_register("x2")
    shared = s.gva2gpa(DATA)
    taken = s.gdb.cli_json("cow-snapshot fork --json")
    assert taken["name"] == "fork" and taken["processes"] == 2
    pages = {p["pa"]: p for p in taken["snapshot"]["pages"]}
    assert sorted(pages[hex(shared)]["sharers"]) == [[hex(DATA), parent], [hex(DATA), child]]

    s.run_to_event(DebugEvent.COW_FAULT)
    copy = s.gva2gpa(DATA)
    assert copy != shared
    d = s.gdb.cli_json("cow-diff --json")  # the previous stop (the fork) -> now
    assert d["before"].startswith("stop ")
    assert d["pages"] == [{"pa": hex(shared), "change": "changed", "refs": [2, 1], "is_cow": [True, True],
                           "sharers_added": [], "sharers_removed": [[hex(DATA), child]]}]
    assert d["ptes"] == [{"pid": child, "va": hex(DATA), "before": {"pa": hex(shared), "perms": RO_EL0},
                          "after": {"pa": hex(copy), "perms": RW_EL0}}]
    deltas = {x["name"]: x["after"] - x["before"] for x in d["statistics"]}
    assert deltas == {"cow_faults_handled": 1, "pages_duplicated": 1, "memory_saved_bytes": -4096}
    assert d["processes_started"] == {} and d["processes_gone"] == {}
    assert without_labels(s.gdb.cli_json("cow-diff fork --json")) == without_labels(d)
    text = s.gdb.cli("cow-diff fork")
    assert f"{hex(copy)} {RW_EL0}" in text and "2 -> 1" in text and "+1" in text

    # the same state read back from a core dump: no difference with now, the same one with the fork
    core = tmp_path / "forkwrite.core"
    s.gdb.cli(f"tinyos-dump {core}", timeout=60)
    s.gdb.cli(f"cow-snapshot dumped --core {core}")
    assert s.gdb.cli_json("cow-diff dumped --json")["pages"] == []
    assert "no change in the COW state" in s.gdb.cli("cow-diff dumped")
    assert without_labels(s.gdb.cli_json("cow-diff fork dumped --json")) == without_labels(d)

    s.run_to_event(SHELL_DONE)
    end = s.gdb.cli_json("cow-diff --json")  # the fault -> the end of the command
    assert {p["change"] for p in end["pages"]} == {"untracked"}
    assert {int(k) for k in end["processes_gone"]} == {parent, child}
    stats = {x["name"]: x["after"] for x in end["statistics"]}
    assert stats["cow_pages_count"] == 0 and stats["cow_faults_handled"] == 2  # the parent's reuse in wait


def test_errors_are_one_line(tinyos_debug_factory):
    s = tinyos_debug_factory(timeout=60)
    s.boot_to_prompt(timeout=60)
    s.run_to_event(FORK, action=lambda: s.console.send_line("run forkwrite"))
    assert "no state of a previous stop" in s.gdb.expect_one_line_error("cow-diff")
    assert "continue to the next stop" in s.gdb.expect_one_line_error("cow-diff")
    assert "no snapshot named 'nope'" in s.gdb.expect_one_line_error("cow-diff nope")
    assert "at most two" in s.gdb.expect_one_line_error("cow-diff a b c")
    assert "no core file" in s.gdb.expect_one_line_error("cow-snapshot x --core /nonexistent.core")
    assert json.loads(s.gdb.cli("cow-snapshot --list --json")) == []
