"""The EL0 test programs through `run`, checked from outside: exit status (each program
checks its own memory and reference counts and exits 1 with a FAIL line otherwise), the
statistics' deltas derived from what each program writes, and the free-frame count,
which must come back exactly. Then `~6`, the kernel's own suite, must report no failure.
"""

from __future__ import annotations

import re

from user_layout import KILLED_STATUS

from gdb_tinyos.testing.shell import CowStatistics, cow_statistics, mem, ps, run

from gdb_tinyos.testing import QemuMachine


def run_to_exit(m: QemuMachine, command: str, timeout: float = 120) -> tuple[str, int]:
    """Runs a program that must finish; returns its output and exit status."""
    result = run(m.console, command, timeout=timeout)
    pid = result.pid
    assert "FAIL" not in result.output, result.output
    assert pid in result.statuses, result.output
    assert ps(m.console) == [], "a process outlived the program"
    return result.output, result.statuses[pid]


def deltas(before: CowStatistics, after: CowStatistics) -> tuple[int, int]:
    return after.total_cow_faults - before.total_cow_faults, after.pages_duplicated - before.pages_duplicated


def test_fork_then_child_write_keeps_contents_apart(tinyos_machine: QemuMachine) -> None:
    m = tinyos_machine
    free, before = mem(m.console), cow_statistics(m.console)
    out, status = run_to_exit(m, "run forkwrite")
    assert status == 0
    assert "forkwrite: child wrote 0x2222 into its own copy" in out
    assert "forkwrite: parent still sees 0x1111, child exited 0" in out
    after = cow_statistics(m.console)
    # The child's store copies the data page; wait() storing the status into the
    # parent's page, by then mapped by the parent alone, reuses it.
    assert deltas(before, after) == (2, 1)
    # data page + 2 stack pages were shared.
    assert after.peak_cow_pages == 3
    assert (after.total_cow_pages, after.memory_saved_bytes) == (0, 0)
    assert mem(m.console) == free


def test_last_sharer_write_copies_nothing(tinyos_machine: QemuMachine) -> None:
    m = tinyos_machine
    free, before = mem(m.console), cow_statistics(m.console)
    out, status = run_to_exit(m, "run reuse")
    assert status == 0 and "reuse: last sharer's write reused the page" in out
    # The child exits without writing; the parent's single write is a reuse.
    assert deltas(before, cow_statistics(m.console)) == (1, 0)
    assert mem(m.console) == free


def test_fork_holding_two_thirds_of_memory_twice(tinyos_machine: QemuMachine) -> None:
    m = tinyos_machine
    free = mem(m.console)
    before = cow_statistics(m.console)
    out, status = run_to_exit(m, "run bigfork")
    assert status == 0
    held = int(re.search(r"bigfork: forked twice holding (\d+) pages", out)[1])
    # Two thirds of what was free when the program asked (its own pages already taken),
    # far more than could ever be copied into the third left.
    assert held >= (free.free - 64) * 2 // 3
    after = cow_statistics(m.console)
    assert after.peak_cow_pages >= held
    # The children never write: nothing may be copied.
    assert after.pages_duplicated == before.pages_duplicated
    assert mem(m.console) == free


def test_three_processes_each_read_back_their_own_values(tinyos_machine: QemuMachine) -> None:
    m = tinyos_machine
    free = mem(m.console)
    out, status = run_to_exit(m, "run threeshare")
    assert status == 0
    assert "threeshare: three processes each read back only their own values" in out
    assert mem(m.console) == free


def test_syscall_store_into_shared_buffer_does_not_leak(tinyos_machine: QemuMachine) -> None:
    m = tinyos_machine
    free, before = mem(m.console), cow_statistics(m.console)
    out, status = run_to_exit(m, "run waitbuf")
    assert status == 0 and "waitbuf: the syscall's write stayed in the child" in out
    # The child's wait() stored into the page shared with the parent: the kernel's
    # write was a copy-on-write fault that copied.
    assert deltas(before, cow_statistics(m.console))[1] >= 1
    assert mem(m.console) == free


def test_out_of_frames_during_copy_kills_only_the_child(tinyos_machine: QemuMachine) -> None:
    m = tinyos_machine
    free = mem(m.console)
    out, status = run_to_exit(m, "run oom")
    assert status == 0
    assert re.search(r"process \d+ \(oom\) killed: out of frames while copying a copy-on-write page", out), out
    assert "oom: child killed out of frames, parent intact" in out
    stats = cow_statistics(m.console)
    assert (stats.total_cow_pages, stats.memory_saved_bytes) == (0, 0)
    assert mem(m.console) == free
    # The kernel carries on: a fresh fork still works.
    assert run_to_exit(m, "run forkwrite")[1] == 0


def test_write_to_read_only_code_page_kills(tinyos_machine: QemuMachine) -> None:
    m = tinyos_machine
    free, before = mem(m.console), cow_statistics(m.console)
    out, status = run_to_exit(m, "run rowrite")
    assert status == KILLED_STATUS
    assert re.search(r"write to 0x4[0-9a-f]{5} \(code\).*not copy-on-write", out), out
    assert "rowrite: wrote to a read-only page and survived" not in out
    assert deltas(before, cow_statistics(m.console)) == (0, 0)
    assert mem(m.console) == free


def test_two_hundred_fork_write_exit_cycles_give_every_frame_back(tinyos_machine: QemuMachine) -> None:
    m = tinyos_machine
    free, before = mem(m.console), cow_statistics(m.console)
    out, status = run_to_exit(m, "run forkcycle 200", timeout=300)
    assert status == 0 and "forkcycle: done" in out
    # Each child writes the data page and one heap page the parent still maps.
    assert deltas(before, cow_statistics(m.console)) == (400, 400)
    assert mem(m.console) == free


def test_heap_grows_zero_filled_and_shrinks_freeing_frames(tinyos_machine: QemuMachine) -> None:
    m = tinyos_machine
    free = mem(m.console)
    out, status = run_to_exit(m, "run sbrktest")
    assert status == 0 and "sbrktest: grows zero-filled, shrinks freeing frames" in out
    assert mem(m.console) == free


def test_fork_failing_for_lack_of_frames_rolls_back(tinyos_machine: QemuMachine) -> None:
    m = tinyos_machine
    free, before = mem(m.console), cow_statistics(m.console)
    out, status = run_to_exit(m, "run forkfail")
    assert status == 0 and "forkfail: failed fork rolled back, every page private again" in out
    after = cow_statistics(m.console)
    # Pages shared before the failure went back to the parent alone: its writes reuse
    # them, nothing is ever copied.
    assert after.pages_duplicated == before.pages_duplicated
    assert (after.total_cow_pages, after.memory_saved_bytes) == (0, 0)
    assert mem(m.console) == free


def test_run_lists_programs_and_refuses_an_unknown_one(tinyos_machine: QemuMachine) -> None:
    listed = [line.split()[0] for line in tinyos_machine.console.command("run").splitlines()]
    for program in ("forkwrite", "bigfork", "threeshare", "waitbuf", "oom", "reuse", "rowrite", "forkcycle"):
        assert program in listed
    out = tinyos_machine.console.command("run nosuch")
    assert out.splitlines() == ["error: run: no program 'nosuch' (run with no name lists them)"]


def test_self_test_suite_reports_no_failure(tinyos_machine: QemuMachine) -> None:
    m = tinyos_machine
    free = mem(m.console)
    out = m.console.command("~6", timeout=300)
    numbered = re.findall(r"^Test (\d+): (PASS|FAIL.*)$", out, re.MULTILINE)
    assert numbered and all(verdict == "PASS" for _, verdict in numbered), out
    summary = out[out.index("Test Summary:") :].splitlines()
    assert summary[1:] == [f"Passed: {len(numbered)}", "Failed: 0"], out
    assert mem(m.console) == free
    # The suite never leaves the manager's lock held: the next command works.
    assert cow_statistics(m.console).total_cow_pages == 0
