"""Abandoned debugger calls (issue 10, kernel side): the plugin's watchdog interrupts
`tinyos_cow_run_test()` half way (its processes forked, some frames taken) and gdb
unwinds the call (`unwindonsignal`); `tinyos_debug_recover()` must then clean up: no
phantom process in `ps`, the free-frame count of before in `mem`, and the next program
runs -- also when the call is abandoned right after the frame allocator handed a frame
out (a breakpoint there), before anything owns it. Called with nothing pending it answers 0 and changes nothing. The contract static
`TINYOS_DEBUG_CONTRACT` is read from the ELF by its field names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gdb_tinyos.testing.errors import GdbCommandError
from gdb_tinyos.testing.shell import parse_cow_status, parse_mem, parse_ps, parse_run


def recover(s) -> int:
    s.gdb.cli("set language c")
    try:
        return int(s.gdb.evaluate("((long (*)(void)) tinyos_debug_recover)()"))
    finally:
        s.gdb.cli("set language auto")


def test_recover_after_an_abandoned_self_test(tinyos_booted) -> None:
    s = tinyos_booted
    free = parse_mem(s.shell("mem")).free
    s.interrupt_at_prompt()
    assert recover(s) == 0  # nothing pending
    # The suite runs for seconds; the watchdog interrupts it at a different point each time
    # (0.85 s once left a dead process's copy-on-write page tracked, and its frame kept).
    rolled_back = []
    for timeout in ("0.1", "0.25", "0.5", "0.85", "0.9"):
        message = s.gdb.expect_one_line_error(f"cow-test --timeout {timeout}")
        assert f"did not return within {timeout} s" in message, message
        # The plugin called tinyos_debug_recover itself once gdb had unwound the call (it
        # finds nothing to roll back when the interrupt lands between two sub-tests).
        cleaned = re.search(r"the kernel rolled the interrupted operation back "
                            r"\(tinyos_debug_recover returned (\d+)\)", message)
        assert cleaned is not None, message
        rolled_back.append(int(cleaned.group(1)))
        assert recover(s) == 0  # done once
        s.gdb.resume()
        assert parse_ps(s.shell("ps")) == []
        # Every frame comes back, exactly: the processes' own, and any the call had
        # allocated and not mapped yet (the allocator's call log).
        assert parse_mem(s.shell("mem")).free == free, f"--timeout {timeout}"
        assert_nothing_tracked(s)
        s.interrupt_at_prompt()
    assert max(rolled_back) > 0, rolled_back  # some interrupt left work half done
    s.gdb.resume()
    result = parse_run(s.shell("run forkwrite"))
    assert result.statuses == {result.pid: 0}, result.output
    assert parse_mem(s.shell("mem")).free == free


def assert_nothing_tracked(s) -> None:
    """The kernel's own `~1`: no copy-on-write page left tracked for the dead processes."""
    status = parse_cow_status(s.shell("~1"))
    assert status.pages == {} and status.omitted == 0, status


def source_line(path: str, text: str) -> int:
    """The line of kernel/src/`path` holding `text` (read from the source, not assumed)."""
    lines = (Path(__file__).parents[2] / "kernel" / "src" / path).read_text().splitlines()
    (line,) = [n for n, content in enumerate(lines, 1) if text in content]
    return line


REGISTERS = [f"x{n}" for n in range(31)] + ["sp", "pc", "cpsr"]


def abandon_at_breakpoint(s, location: str, ignore: int) -> str:
    """Calls tinyos_cow_run_test with a breakpoint at `location` that fires on its
    `ignore + 1`-th hit, then abandons the call there as the watchdog's unwind does: the
    registers of before the call are written back (gdb's `unwindonsignal` restores the
    same set). Returns the function that called the one stopped in (the allocation site)."""
    before = {name: s.gdb.read_register(name) for name in REGISTERS}
    s.gdb.cli(f"break {location}")
    s.gdb.cli(f"ignore $bpnum {ignore}")
    s.gdb.cli("set language c")
    try:
        with pytest.raises(GdbCommandError, match="stopped while in a function called from GDB"):
            s.gdb.cli("print ((long (*)(void)) tinyos_cow_run_test)()", timeout=120)
        s.gdb.cli("delete")
        stack = s.gdb.cli("backtrace 2").splitlines()
        assert "tinyos::memory::frame::alloc" in stack[0], stack[0]
        caller = re.search(r" in (\S+) \(", stack[1]) or re.match(r"#1\s+(\S+) \(", stack[1])
        for name, value in before.items():
            s.gdb.cli(f"set ${name} = {value:#x}")
        assert "tinyos::shell" in s.gdb.cli("backtrace")
    finally:
        s.gdb.cli("set language auto")
    return caller.group(1) if caller else stack[1]


def recovered_frames(s) -> int:
    """What the last recovery freed from the allocator's call log (the kernel's record)."""
    s.gdb.cli("set language c")
    try:
        return int(s.gdb.evaluate("*(unsigned long *) &TINYOS_RECOVERED_FRAMES"), 0)
    finally:
        s.gdb.cli("set language auto")


def test_recover_frees_a_frame_allocated_and_not_yet_mapped(tinyos_booted) -> None:
    """The window the process records cannot cover: the call stopped (and abandoned) right
    after the allocator handed a frame out -- before its caller mapped it or recorded it
    -- at several allocation sites; and inside the allocator's critical section, after
    the count was raised and before the free count followed. Each time the free-frame
    count of before comes back exactly, and the next program runs."""
    s = tinyos_booted
    free = parse_mem(s.shell("mem")).free
    s.interrupt_at_prompt()
    after_alloc = f"frame.rs:{source_line('memory/frame.rs', 'write_bytes(pa.as_ptr')}"
    mid_alloc = f"frame.rs:{source_line('memory/frame.rs', 's.free_frames -= 1;')}"
    callers = set()
    for location, ignore in ((after_alloc, 0), (after_alloc, 2), (after_alloc, 30), (after_alloc, 120), (after_alloc, 700),
                             (mid_alloc, 45)):
        callers.add(abandon_at_breakpoint(s, location, ignore))
        assert recover(s) > 0
        # At least the frame just handed out had no owner to be found by.
        assert recovered_frames(s) >= 1
        s.gdb.resume()
        assert parse_ps(s.shell("ps")) == []
        assert parse_mem(s.shell("mem")).free == free, (location, ignore)
        assert_nothing_tracked(s)
        s.interrupt_at_prompt()
    assert len(callers) >= 3, callers  # tables, zero-filled pages, program images...
    s.gdb.resume()
    result = parse_run(s.shell("run forkwrite"))
    assert result.statuses == {result.pid: 0}, result.output
    assert parse_mem(s.shell("mem")).free == free


def test_contract_static_holds_the_kernels_values(tinyos_booted) -> None:
    s = tinyos_booted
    s.gdb.interrupt()
    s.gdb.cli("set language c")
    try:
        value = {field: int(s.gdb.evaluate(f"tinyos::debug::TINYOS_DEBUG_CONTRACT.{field}"))
                 for field in ("version", "event_shell_command", "event_cow_fault", "event_process_killed",
                               "status_in_process", "cow_pte_sw_bit", "killed_status", "user_heap_start",
                               "user_stack_top", "cow_stats_maintained")}
    except Exception:
        s.gdb.cli("set language auto")
        value = {field: int(s.gdb.evaluate(f"tinyos::debug::TINYOS_DEBUG_CONTRACT.{field}"))
                 for field in ("version", "event_shell_command", "event_cow_fault", "event_process_killed",
                               "status_in_process", "cow_pte_sw_bit", "killed_status", "user_heap_start",
                               "user_stack_top", "cow_stats_maintained")}
    finally:
        s.gdb.cli("set language auto")
    # Independent sources: the events the harness knows, the shell's killed status,
    # the user layout the kernel tests use, the architecture's software PTE bits 55..58.
    assert value == {"version": 1, "event_shell_command": 1, "event_cow_fault": 16, "event_process_killed": 21,
                     "status_in_process": -4, "cow_pte_sw_bit": 55, "killed_status": 137,
                     "user_heap_start": 0x1000_0000, "user_stack_top": 0x7FFF_FFFF_0000,
                     "cow_stats_maintained": 0b11_1111}
