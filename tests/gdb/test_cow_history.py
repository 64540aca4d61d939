"""cow-history / cow-blame on replays of short recorded sessions.

Independent references: the kernel's own `~1` typed at forkpause's pauses during the
recording (refs and sharers before and after each step), the debugger events' arguments
(the child's pid at the fault, the new frame of PAGE_DUPLICATED), QEMU's `gva2gpa` (the
frame a VA maps) and `xp` (a PTE, found by walking the tables with `xp` from TTBR0_EL1),
QEMU's instruction count at events reached by breakpoints (`monitor info replay`), and the
function names of the kernel source (kernel/src/memory/cow.rs, process/cow_fault.rs)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gdb_tinyos.testing.session import DEBUG_EVENT, DebugEvent, debug_session
from gdb_tinyos.testing.shell import parse_cow_status

KERNEL_SRC = Path(__file__).resolve().parents[2] / "kernel" / "src"
RESOLVE = "*tinyos::process::cow_fault::resolve_locked"
COW = "tinyos::memory::cow::CowManager::"
FAULT = "tinyos::process::cow_fault::"


def defined(function: str, file: str) -> str:
    """``function``, checked to be defined in the kernel source ``file``."""
    assert f"fn {function}(" in (KERNEL_SRC / file).read_text(), function
    return function


REMOVE = COW + defined("remove_mapping", "memory/cow.rs")
SHARE = COW + defined("share", "memory/cow.rs")
RESOLVED_BY = FAULT + defined("resolve_locked", "process/cow_fault.rs")
FORKED_BY = FAULT + defined("share_for_fork", "process/cow_fault.rs")
RELEASED_BY = FAULT + defined("release_page", "process/cow_fault.rs")


@pytest.fixture(scope="module")
def forkwrite(tinyos_kernel, tmp_path_factory):
    """boot + `run forkwrite`, recorded; the live session also checks the no-replay errors."""
    path = tmp_path_factory.mktemp("rr") / "forkwrite.rr"
    with debug_session(tinyos_kernel, record=path) as s:
        s.boot_to_prompt()
        s.shell("run forkwrite")
        if s.gdb.running:
            s.gdb.interrupt()
        errors = [s.gdb.expect_one_line_error(c) for c in ("cow-history 0x40006000", "cow-blame $sp --size 8")]
    return path, errors


@pytest.fixture(scope="module")
def forkpause(tinyos_kernel, tmp_path_factory):
    """boot + `run forkpause 2` with the kernel's `~1` at the end of steps 1, 2 and 3."""
    path = tmp_path_factory.mktemp("rr") / "forkpause.rr"
    with debug_session(tinyos_kernel, record=path) as s:
        s.boot_to_prompt()
        s.shell("run forkpause 2")
        status = [parse_cow_status(s.shell("~1"))]
        for _ in range(2):
            s.shell("cont")
            status.append(parse_cow_status(s.shell("~1")))
        s.shell("cont")
    return path, status


def history(s, command: str) -> dict:
    text = s.gdb.cli_resuming(command + " --json", timeout=600)
    # Over MI gdb reports each reverse stop on the console stream too, before the document.
    return json.loads(text[text.index("{\n") if text.startswith("{") else text.index("\n{\n") + 1:])


def changed(entry: dict) -> dict[str, tuple[str, str]]:
    return {c["field"]: (c["old"], c["new"]) for c in entry["changes"]}


def where(entry: dict) -> tuple[str, tuple[str, ...]]:
    return entry["at"]["function"], tuple(entry["at"]["frames"])


def test_live_session_says_how_to_record(forkwrite):
    _, errors = forkwrite
    for error in errors:
        assert "tinyos-gdb --record FILE" in error and "--replay FILE" in error, error


def test_forkwrite_history(forkwrite, tinyos_debug_factory):
    s = tinyos_debug_factory(replay=forkwrite[0])
    s.gdb.run_to("tinyos::shell::run", timeout=60)
    s.gdb.run_to(RESOLVE, condition="$x1 == 2", timeout=60)  # the child's write fault
    at_fault = s.replay_position()
    old_frame = s.gva2gpa(s.gdb.read_register("x3"))  # resolve_locked's page VA (x3)
    dup = s.gdb.run_to(DEBUG_EVENT, condition=s.event_condition(DebugEvent.PAGE_DUPLICATED), timeout=60)
    assert dup.func == "tinyos::debug::tinyos_debug_event"
    new_frame = s.gdb.read_register("x2")
    s.gdb.run_to(DEBUG_EVENT, condition=s.event_condition(DebugEvent.COW_FAULT), timeout=60)
    start, pc = s.replay_position(), s.gdb.read_register("pc")

    h = history(s, f"cow-history {old_frame:#x}")
    assert h["end"] == "first shared" and h["returned_to"] == start
    assert (s.replay_position(), s.gdb.read_register("pc")) == (start, pc)  # back where it started
    entries = h["entries"]
    icounts = [e["at"]["icount"] for e in entries]
    assert icounts == sorted(icounts, reverse=True) and icounts[0] < start

    # Newest: the child's fault drops the frame's count 2 -> 1 (remove_mapping from resolve_locked).
    assert changed(entries[0]) == {"ref_count": ("2", "1")}
    function, frames = where(entries[0])
    assert function == REMOVE and RESOLVED_BY in frames
    assert at_fault < icounts[0]
    # The child's PTE: the shared frame read-only, invalid (break-before-make), the copy writable.
    child_pte = [changed(e)["PTE pid 2 va 0x800000"] for e in entries if "PTE pid 2 va 0x800000" in changed(e)]
    assert f"-> {new_frame:#x} " in child_pte[0][1] and "AP=EL1:RW EL0:RW" in child_pte[0][1]
    assert child_pte[0][0].startswith("0x0 ") and child_pte[1][1].startswith("0x0 ")
    assert f"-> {old_frame:#x} " in child_pte[1][0] and "EL0:R-" in child_pte[1][0]
    # Oldest: the fork starts tracking it with two references (share from share_for_fork).
    first = entries[-1]
    assert changed(first)["tracked"] == ("no", "yes") and changed(first)["ref_count"] == ("-", "2")
    function, frames = where(first)
    assert function == SHARE and FORKED_BY in frames

    # The fork event lies between the share and the child's fault.
    s.gdb.break_insert(DEBUG_EVENT, condition=s.event_condition(DebugEvent.FORK))
    s.gdb.reverse_continue(timeout=120)
    fork = s.replay_position()
    assert first["at"]["icount"] < fork < at_fault


def test_reuse_and_exit_histories(forkpause, tinyos_debug_factory):
    path, status = forkpause
    heap = min(va for (va, pid) in status[0].sharers if pid == 1 and va < 0x7000_0000_0000 and va != 0x800000)
    step1, step2, step3 = status
    s = tinyos_debug_factory(replay=path)
    s.gdb.run_to("tinyos::shell::run", timeout=60)
    # Step 3: the parent (pid 1) writes heap page 0, which only it shares now: reused.
    s.gdb.run_to(RESOLVE, condition="$x1 == 1", timeout=120)
    frame = s.gva2gpa(heap)
    assert step1.sharer(heap, 1).refs == 2 and step2.sharer(heap, 1).refs == 1  # the kernel's ~1
    h = history(s, f"cow-history {heap:#x} --pid 1")
    entries = h["entries"]
    assert h["subject"].startswith(f"frame {frame:#x} ") and h["end"] == "first shared"
    refs = [changed(e)["ref_count"] for e in entries if "ref_count" in changed(e)]
    assert refs == [(str(step1.sharer(heap, 1).refs), str(step2.sharer(heap, 1).refs)), ("-", "2")]
    assert where(entries[0])[0] == REMOVE and RESOLVED_BY in where(entries[0])[1]
    assert where(entries[-1])[0] == SHARE and FORKED_BY in where(entries[-1])[1]

    # --limit 1: the newest change only, and back again.
    start = s.replay_position()
    h1 = history(s, f"cow-history {frame:#x} --limit 1")
    assert h1["end"] == "limit" and h1["entries"] == entries[:1] and s.replay_position() == start

    # After the reuse the frame left the manager: one line; the parent's PTE tells the story.
    s.gdb.run_to(DEBUG_EVENT, condition=s.event_condition(DebugEvent.PAGE_REUSED), timeout=60)
    error = s.gdb.expect_one_line_error(f"cow-history {frame:#x}")
    assert error.startswith(f"cow-history: frame {frame:#x} is not tracked"), error
    pte_pa = xp_walk(s, heap)
    linear = linear_offset(s)
    blame = history(s, f"cow-blame {pte_pa + linear:#x} --size 8 --limit 4")
    values = [changed(e)[f"{pte_pa + linear:#x}"] for e in blame["entries"]]
    now = s.xp(pte_pa)[0]
    assert values[0] == ("0x0", f"{now:#x}") and now & 0xFFFF_FFFF_F000 == frame  # made writable in place
    shared = int(values[1][0], 16)
    assert shared & (1 << 55) and shared & 0xFFFF_FFFF_F000 == frame and shared & (1 << 7)  # COW, read-only
    assert values[1][1] == "0x0" and values[2] == ("0x0", f"{shared:#x}")
    assert RESOLVED_BY in where(blame["entries"][0])[1] and FORKED_BY in where(blame["entries"][2])[1]

    # Step 3 also ends the child: its exit drops heap page 1's count (release_page).
    page1 = heap + 0x1000
    assert step2.sharer(page1, 1).refs == 2 and step3.sharer(page1, 1).refs == 1
    s.gdb.run_to(DEBUG_EVENT, condition=s.event_condition(DebugEvent.SHELL_COMMAND), timeout=60)  # step 3's ~1
    h = history(s, f"cow-history {page1:#x} --pid 1")
    refs = [(e, changed(e)["ref_count"]) for e in h["entries"] if "ref_count" in changed(e)]
    assert [r for _, r in refs] == [("2", "1"), ("-", "2")]
    assert where(refs[0][0])[0] == REMOVE and RELEASED_BY in where(refs[0][0])[1]
    unmapped = [changed(e)[f"PTE pid 2 va {page1:#x}"] for e in h["entries"] if f"PTE pid 2 va {page1:#x}" in changed(e)]
    assert unmapped and unmapped[0][1].startswith("0x0 ")  # the child's entry cleared at exit


def xp_walk(s, va: int) -> int:
    """The physical address of the level-3 entry mapping ``va`` (4 KiB granule), walked
    with QEMU's xp from TTBR0_EL1 and TCR_EL1.T0SZ."""
    t0sz = s.gdb.read_register("TCR_EL1") & 0x3F
    level = 4 - -(-(64 - t0sz - 12) // 9)
    table = s.gdb.read_register("TTBR0_EL1") & 0xFFFF_FFFF_F000
    while True:
        shift = 12 + 9 * (3 - level)
        entry = table + 8 * ((va >> shift) & 0x1FF)
        if level == 3:
            return entry
        table = s.xp(entry)[0] & 0xFFFF_FFFF_F000
        level += 1


def linear_offset(s) -> int:
    """VA - PA of the kernel's linear map, from QEMU's translation of a kernel static."""
    va = int(re.search(r"0x[0-9a-f]+", s.gdb.evaluate("&tinyos::memory::cow::COW_MANAGER"))[0], 16)
    return va - s.gva2gpa(va)
