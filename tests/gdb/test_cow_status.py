"""cow-status / cow-stats against the kernel's own `~1` / `~2`, through a fork's life.

The program is the kernel's `forkpause <n>` (kernel/src/process/user_programs.S): it grows
its heap by n pages and writes each, forks, and both processes pause between steps (the
shell's `cont` moves them on). Expected figures are derived by hand from issue 3's rules:

- after the fork every writable user page is shared: n heap + 1 data + 2 stack pages,
  each tracked with refs 2, both PTEs read-only; saved = pages x 4096; efficiency =
  saved / (2 x pages x 4096) = 50 %;
- the child writes heap page 0: a copy for the child; the old frame stays tracked with
  refs 1 (the parent); 1 fault, 1 duplication, saved drops by 4096;
- the parent (now the last sharer) writes heap page 0: reused in place, the entry leaves
  the manager (2 faults, still 1 duplication); the child exits: every frame it shared is
  left with refs 1, saved 0;
- the parent exits: nothing tracked; the peak stays at the fork's count.

At every step each plugin figure must equal the kernel's output at the same stop."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from elftools.elf.elffile import ELFFile

from gdb_tinyos.testing import DEBUG_EVENT, DebugEvent, DebugSession
from gdb_tinyos.testing.shell import CowPage, labelled_figures, parse_cow_status, parse_ps

PAGE = 4096
SLOTS = 128 * 1024 * 1024 // PAGE  # one slot per frame of QEMU's 128 MiB (issue 3's table)
HEAP = 0x1000_0000
DATA = 0x80_0000
STACK_TOP = 0x7FFF_FFFF_0000
HEAP_PAGES = 3
SHARED = HEAP_PAGES + 1 + 2  # heap + data + stack pages
SHARED_VAS = {HEAP + i * PAGE for i in range(HEAP_PAGES)} | {DATA, STACK_TOP - PAGE, STACK_TOP - 2 * PAGE}

STATUS_LABELS = ["COW Pages", "COW Faults", "Pages Duplicated", "Memory Saved", "Peak COW Pages"]
STATS_LABELS = ["Total COW Pages", "Total COW Faults", "Pages Duplicated", "Memory Saved",
                "Metadata Memory", "Peak COW Pages", "Memory Efficiency"]


@dataclass
class SameStop:
    """The plugin's answers and the kernel's output for ``~1`` and ``~2``, each pair
    taken at one stop: gdb stopped just before the shell runs the command."""

    status_text: str
    status: dict
    shell_status: str
    stats_text: str
    stats: dict
    shell_stats: str
    check: str


def compare_at_same_stop(s: DebugSession) -> SameStop:
    s.stop_before_command("~1")
    status_text = s.gdb.cli("cow-status --limit 0")
    status = s.gdb.cli_json("cow-status --limit 0 --json")
    check = s.gdb.cli("cow-check")
    shell_status = s.finish_command("~1")
    s.stop_before_command("~2")
    stats_text = s.gdb.cli("cow-stats")
    stats = s.gdb.cli_json("cow-stats --json")
    shell_stats = s.finish_command("~2")
    return SameStop(status_text, status, shell_status, stats_text, stats, shell_stats, check)


def json_pages(status: dict) -> dict[int, CowPage]:
    """cow-status --json pages in the shape the kernel's ``~1`` parses to."""
    return {
        int(p["pa"], 16): CowPage(int(p["pa"], 16), p["refs"], p["cow"],
                                  frozenset((int(s["va"], 16), s["pid"]) for s in p["sharers"]))
        for p in status["pages"]
    }


def shell_pages(text: str) -> dict[int, CowPage]:
    return parse_cow_status(text).pages


def expect_figures(same, pages: int, faults: int, duplicated: int, saved: int, peak: int, efficiency: int) -> None:
    """The hand-derived figures, then equality with the kernel's own output."""
    shell_status, shell_stats = labelled_figures(same.shell_status), labelled_figures(same.shell_stats)
    assert [shell_status[k] for k in STATUS_LABELS] == [pages, faults, duplicated, saved, peak]
    assert [shell_stats[k] for k in STATS_LABELS if k != "Metadata Memory"] == \
        [pages, faults, duplicated, saved, peak, efficiency]
    # every figure of the plugin's text equals the kernel's, label for label
    ours_status, ours_stats = labelled_figures(same.status_text), labelled_figures(same.stats_text)
    assert {k: ours_status[k] for k in STATUS_LABELS} == {k: shell_status[k] for k in STATUS_LABELS}
    assert {k: ours_stats[k] for k in STATS_LABELS} == {k: shell_stats[k] for k in STATS_LABELS}
    # the JSON faces carry the same numbers as the text faces
    f = same.status["figures"]
    assert [f["cow_pages"], f["cow_faults"], f["pages_duplicated"], f["memory_saved_bytes"], f["peak_cow_pages"]] == \
        [ours_status[k] for k in STATUS_LABELS]
    st = same.stats
    assert [st["total_cow_pages"], st["total_cow_faults"], st["pages_duplicated"], st["memory_saved_bytes"],
            st["metadata_memory_bytes"], st["peak_cow_pages"], st["memory_efficiency_percent"]] == \
        [ours_stats[k] for k in STATS_LABELS]
    assert all(c["stored"] == c["derived"] for c in st["checks"]), st["checks"]
    # pages: the same frames, refs, flags and (va, pid) pairs as the kernel lists
    assert json_pages(same.status) == shell_pages(same.shell_status)
    assert same.status["capacity"] == SLOTS and same.status["lock_held"] is False
    assert same.check.strip().startswith("cow-check: OK")


def live_ptes(status: dict) -> dict[tuple[int, int], tuple[str, int, list]]:
    """(va, pid) -> (live PTE permissions, frame it maps, flags) for every sharer shown."""
    return {(int(x["va"], 16), x["pid"]): (x["pte"], int(x["maps"], 16) if x["maps"] else None, x["flags"])
            for p in status["pages"] for x in p["sharers"]}


def pids(s: DebugSession) -> tuple[int, int]:
    """(parent, child) from the kernel's `ps` (the child's PPID is the parent)."""
    rows = parse_ps(s.shell("ps"))
    parent = next(r.pid for r in rows if r.name == "forkpause" and r.ppid == 0)
    child = next(r.pid for r in rows if r.ppid == parent)
    return parent, child


def test_boot_state_is_empty_and_equals_the_shell(tinyos_booted):
    s = tinyos_booted
    same = compare_at_same_stop(s)
    expect_figures(same, pages=0, faults=0, duplicated=0, saved=0, peak=0, efficiency=0)
    assert same.status["pages"] == [] and shell_pages(same.shell_status) == {}
    assert "no tracked page" in same.status_text
    assert same.check.strip() == "cow-check: OK (0 pages, 0 user PTEs checked)"


def test_fork_child_write_reuse_exit(tinyos_booted):
    s = tinyos_booted
    assert re.search(r"process \d+ \(forkpause\) started", s.shell(f"run forkpause {HEAP_PAGES}"))
    parent, child = pids(s)

    # step 1: forked, nobody wrote
    same = compare_at_same_stop(s)
    expect_figures(same, pages=SHARED, faults=0, duplicated=0, saved=SHARED * PAGE, peak=SHARED, efficiency=50)
    ptes = live_ptes(same.status)
    assert set(ptes) == {(va, pid) for va in SHARED_VAS for pid in (parent, child)}
    for (va, pid), (perms, frame, flags) in ptes.items():
        assert perms == "EL1:R-- EL0:R--" and flags == [], (hex(va), pid)
    frames = {va: {ptes[(va, parent)][1], ptes[(va, child)][1]} for va in SHARED_VAS}
    assert all(len(f) == 1 for f in frames.values())  # both processes map the same frame
    shared_heap0 = frames[HEAP].pop()

    # step 2: the child writes heap page 0 -> copied for it
    s.shell("cont")
    same = compare_at_same_stop(s)
    expect_figures(same, pages=SHARED, faults=1, duplicated=1, saved=(SHARED - 1) * PAGE, peak=SHARED,
                   efficiency=(SHARED - 1) * PAGE * 100 // ((2 * SHARED - 1) * PAGE))
    page0 = json_pages(same.status)[shared_heap0]
    assert (page0.refs, page0.sharers) == (1, frozenset({(HEAP, parent)}))
    s.gdb.interrupt()
    child_copy = int(s.gdb.evaluate(f"$cow_pa({HEAP:#x}, {child})"), 0)
    assert child_copy not in (0, shared_heap0)
    assert int(s.gdb.evaluate(f"$cow_refs({child_copy:#x})")) == 0
    assert int(s.gdb.evaluate(f"$cow_refs({shared_heap0:#x})")) == 1
    assert int(s.gdb.evaluate(f"$cow_is_shared({shared_heap0:#x})")) == 0
    assert int(s.gdb.evaluate(f"$cow_refs_va({HEAP + PAGE:#x}, {child})")) == 2

    # step 3: the parent, last sharer of heap page 0, writes it (reuse); the child exits
    s.shell("cont")
    same = compare_at_same_stop(s)
    expect_figures(same, pages=SHARED - 1, faults=2, duplicated=1, saved=0, peak=SHARED, efficiency=0)
    assert shared_heap0 not in json_pages(same.status)
    assert {p.refs for p in json_pages(same.status).values()} == {1}
    assert {pid for (_va, pid) in live_ptes(same.status)} == {parent}

    # step 4: the parent exits
    s.shell("cont")
    same = compare_at_same_stop(s)
    expect_figures(same, pages=0, faults=2, duplicated=1, saved=0, peak=SHARED, efficiency=0)


def code_pages(kernel) -> int:
    """Pages of the user program image (mapped read-only, shared but never COW-tracked),
    from the ELF's symbols around it."""
    with open(kernel, "rb") as f:
        symbols = ELFFile(f).get_section_by_name(".symtab")
        start, end = (symbols.get_symbol_by_name(n)[0]["st_value"]
                      for n in ("tinyos_user_image_start", "tinyos_user_image_end"))
    return -(-(end - start) // PAGE)


def test_stop_at_the_fork_event(tinyos_booted, tinyos_kernel):
    """At the kernel's fork event itself (mid-`run`, shell busy): both halves read-only."""
    s = tinyos_booted
    s.run_to_event(DebugEvent.FORK, action=lambda: s.console.send_line("run forkpause 2"))
    parent, child = s.gdb.read_register("x1"), s.gdb.read_register("x2")
    status = s.gdb.cli_json("cow-status --json")
    pages = json_pages(status)
    assert len(pages) == 2 + 1 + 2 and {p.refs for p in pages.values()} == {2}
    assert all(sorted(pid for _va, pid in p.sharers) == sorted([parent, child]) for p in pages.values())
    assert {pte for pte, _frame, _flags in live_ptes(status).values()} == {"EL1:R-- EL0:R--"}
    mappings = 2 * (5 + code_pages(tinyos_kernel))  # each process: the shared pages and its code
    assert s.gdb.cli("cow-check").strip() == f"cow-check: OK (5 pages, {mappings} user PTEs checked)"
    assert int(s.gdb.evaluate(f"$cow_refs_va({HEAP:#x}, {child})")) == 2


def test_filters_limit_mi_and_json(tinyos_booted):
    s = tinyos_booted
    s.shell(f"run forkpause {HEAP_PAGES}")
    parent, child = pids(s)
    s.shell("cont")  # the child now has a private heap page 0
    s.gdb.interrupt()
    everything = s.gdb.cli_json("cow-status --limit 0 --json")
    only_child = s.gdb.cli_json(f"cow-status --pid {child} --json")
    assert [p["pa"] for p in only_child["pages"]] == \
        [p["pa"] for p in everything["pages"] if any(x["pid"] == child for x in p["sharers"])]
    assert len(only_child["pages"]) == SHARED - 1
    first = everything["pages"][0]
    by_pa = s.gdb.cli_json(f"cow-status --pa {int(first['pa'], 16) + 0x123:#x} --json")
    assert by_pa["pages"] == [first]
    frames = sorted(int(p["pa"], 16) for p in everything["pages"])
    lo, hi = frames[1], frames[-1]  # [second, last): every tracked frame in between, by construction
    in_range = s.gdb.cli_json(f"cow-status --pa {lo:#x}-{hi:#x} --limit 0 --json")
    assert sorted(int(p["pa"], 16) for p in in_range["pages"]) == frames[1:-1]
    assert in_range["filters"] == {"pa": f"{lo:#x}-{hi:#x}"}
    assert "empty range" in s.gdb.expect_one_line_error(f"cow-status --pa {hi:#x}-{lo:#x}")
    limited = s.gdb.cli_json("cow-status --limit 2 --json")
    assert (len(limited["pages"]), limited["omitted"], limited["matched"]) == (2, SHARED - 2, SHARED)
    assert f"... {SHARED - 2} more page(s)" in s.gdb.cli("cow-status --limit 2")

    mi = s.gdb.mi("-cow-status")["result"]
    assert mi["figures"]["cow_pages"] == str(SHARED)  # MI leaves are strings
    assert [p["pa"] for p in mi["pages"]] == [p["pa"] for p in everything["pages"]]
    assert mi["pages"][0]["sharers"][0]["pte"] == "EL1:R-- EL0:R--"
    stats = s.gdb.mi("-cow-stats")["result"]
    assert stats["pages_duplicated"] == "1" and stats["total_cow_faults"] == "1"


def test_commands_refuse_while_running(tinyos_booted):
    s = tinyos_booted
    for command in ("cow-status", "cow-stats", "cow-check", "print $cow_refs(0x40000000)"):
        assert "running" in s.gdb.expect_one_line_error(command), command
    assert "COW Pages: 0" in s.shell("~1")  # the kernel ran on, undisturbed


def test_held_lock_still_decodes_with_a_warning(tinyos_booted):
    s = tinyos_booted
    s.shell("run forkpause 1")
    s.gdb.interrupt()
    lock = "tinyos::memory::cow::COW_MANAGER.locked.v.value.0"
    assert int(s.gdb.evaluate(lock)) == 0
    s.gdb.cli(f"set var {lock} = 1")  # as if stopped inside a COW operation
    try:
        text = s.gdb.cli("cow-status").splitlines()
        assert text[0] == "warning: tinyos::memory::cow::COW_MANAGER's lock is held: the state may be mid-update"
        assert "COW Pages: 4" in text  # 1 heap + 1 data + 2 stack pages, decoded all the same
        assert s.gdb.cli_json("cow-stats --json")["lock_held"] is True
        check = s.gdb.mi("-cow-check")["result"]
        assert check["ok"] == "true" and any("lock is held" in w for w in check["warnings"])
    finally:
        s.gdb.cli(f"set var {lock} = 0")  # the shell would spin on it forever
    assert "COW Pages: 4" in s.shell("~1")


@pytest.mark.parametrize("path", ["auto", "gdbstub"])
def test_functions_in_a_breakpoint_condition_see_fresh_memory(tinyos_booted, path):
    """The condition is false at the events of `~1` (refs 2) and must turn true at the
    end of `cont`, after the child's write left the frame with the parent alone: a value
    cached from an earlier evaluation would never stop. Over the gdbstub the condition
    switches QEMU's physical mode itself, while gdb decides whether to stop."""
    s = tinyos_booted
    s.shell("run forkpause 2")
    s.gdb.interrupt()
    s.gdb.cli(f"set tinyos physical-memory {path}")
    frame = int(s.gdb.evaluate(f"$cow_pa({HEAP:#x}, 1)"), 0)
    assert int(s.gdb.evaluate(f"$cow_refs({frame:#x})")) == 2
    s.gdb.cli(f"break {DEBUG_EVENT} if ($x0 & 0xffffffff) == {s.event_number(DebugEvent.SHELL_DONE)} && $cow_refs({frame:#x}) == 1")
    s.gdb.resume()
    s.console.send_line("~1")
    s.console.wait_for_prompt()
    assert s.gdb.running  # evaluated twice for `~1` (before and after), false both times
    s.console.send_line("cont")
    stop = s.gdb.wait_for_stop(60)
    assert stop.reason == "breakpoint-hit"
    assert int(s.gdb.evaluate(f"$cow_refs({frame:#x})")) == 1
    assert int(s.gdb.evaluate(f"$cow_is_shared({frame:#x})")) == 0
    assert s.gdb.cli("maint packet qqemu.PhyMemMode").strip().splitlines()[-1] == 'received: "0"'  # back to virtual
