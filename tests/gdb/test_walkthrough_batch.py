"""`tinyos-gdb --batch` (what `./scripts/debug --batch` runs): the README walkthrough from
reset to a copy-on-write fault, non-interactively, exit status 0 -- and non-zero when a step
does not hold.

The program is the kernel's `forkwrite` (kernel/src/process/user_programs.S): it stores
0x1111 into its data page (0x80_0000, the user layout), forks, and the child stores 0x2222
there. Expected figures, by hand from issue 3's rules: at the fork the data page's frame is
shared by pids 1 and 2 with refs 2, read-only in both; the child's store is an EL0 write
permission fault (ESR_EL1 EC 0x24, WnR, DFSC 0b001111) at FAR 0x80_0000; afterwards the
child maps a new frame writable at EL0, the parent keeps the old one read-only and the old
frame has refs 1 (pid 1 only); once both exited nothing is tracked, 2 faults (the child's
copy, then the parent's reuse when `wait` stores its status) and 1 duplication."""

from __future__ import annotations

import os
import re

from cli_runner import tinyos_gdb

DATA = 0x80_0000
VA2PA = re.compile(r"^va 0x([0-9a-f]+) -> pa 0x([0-9a-f]+) (EL1:\S+) (EL0:\S+)", re.M)


def sections(out: str) -> dict[int, str]:
    """The walkthrough's numbered sections: number -> text up to the next header."""
    parts = re.split(r"^=== (\d+)\. .*===$", out, flags=re.M)
    return {int(number): text for number, text in zip(parts[1::2], parts[2::2])}


def cow_rows(status: str) -> dict[int, tuple[int, set[int]]]:
    """cow-status's table: frame PA -> (refs, pids sharing it at 0x80_0000)."""
    rows: dict[int, tuple[int, set[int]]] = {}
    current = None
    for line in status.splitlines():
        if m := re.match(r"^\d+\s+0x([0-9a-f]+)\s+(\d+)\s+yes\s+\w+\s+0x([0-9a-f]+)\s+(\d+)", line):
            current = int(m.group(1), 16)
            rows[current] = (int(m.group(2)), set())
            va, pid = int(m.group(3), 16), int(m.group(4))
        elif current is not None and (m := re.match(r"^\s+0x([0-9a-f]+)\s+(\d+)\s", line)):
            va, pid = int(m.group(1), 16), int(m.group(2))
        else:
            continue
        if va == DATA:
            rows[current][1].add(pid)
    return rows


def test_batch_walkthrough_steps_through_a_cow_fault_and_exits_0(tinyos_kernel):
    run = tinyos_gdb("--batch", "--kernel", str(tinyos_kernel))
    assert run.returncode == 0, run.stdout + run.stderr
    step = sections(run.stdout)
    assert sorted(step) == [1, 2, 3, 4, 5, 6, 7, 8]
    # the launcher's last word: the QEMU it started (pid in its first) is gone
    qemu = re.search(r"^tinyos-gdb: session (\S+): QEMU pid (\d+),", run.stderr, re.M)
    assert qemu, run.stderr
    assert run.stderr.rstrip().splitlines()[-1] == \
        f"tinyos-gdb: session {qemu[1]} ended: QEMU (pid {qemu[2]}) stopped, its files removed"
    assert not os.path.exists(f"/proc/{qemu[2]}")

    # 5: the fork, pid 1 -> pid 2; the data page's frame shared read-only by both
    assert "tinyos_debug_event (kind=19, a=1, b=2)" in step[5]
    before = {pa: row for pa, row in cow_rows(step[5]).items() if row[1]}
    assert len(before) == 1
    shared, (refs, pids) = before.popitem()
    assert (refs, pids) == (2, {1, 2})

    # 6: the child's write faults: EL0 data abort on write, permission fault level 3
    assert "resolve_locked (" in step[6] and "pid=2" in step[6]
    esr = int(re.search(r"^ESR_EL1\s+0x([0-9a-f]+)", step[6], re.M).group(1), 16)
    assert (esr >> 26, bool(esr & 1 << 6), esr & 0x3F) == (0x24, True, 0b001111)
    assert int(re.search(r"^FAR_EL1\s+0x([0-9a-f]+)", step[6], re.M).group(1), 16) == DATA
    assert VA2PA.findall(step[6]) == [(f"{DATA:x}", f"{shared:x}", "EL1:R--", "EL0:R--")]

    # 7: resolved: the child has a new writable frame, the parent keeps the old one
    assert "tinyos_debug_event (kind=16, a=2, b=8388608)" in step[7]
    (_, child_pa, *child_perms), (_, parent_pa, *parent_perms) = VA2PA.findall(step[7])
    assert int(child_pa, 16) != shared and child_perms == ["EL1:RW-", "EL0:RW-"]
    assert (int(parent_pa, 16), parent_perms) == (shared, ["EL1:R--", "EL0:R--"])
    assert cow_rows(step[7])[shared] == (1, {1})
    assert re.search(r"^cow-check: OK \(\d+ pages, \d+ user PTEs checked\)$", step[7], re.M)

    # 8: both exited: nothing tracked, 2 faults, 1 copy
    figures = dict(re.findall(r"^(Total COW Pages|Total COW Faults|Pages Duplicated): (\d+)$", step[8], re.M))
    assert figures == {"Total COW Pages": "0", "Total COW Faults": "2", "Pages Duplicated": "1"}
    assert "cow-check: OK (0 pages, 0 user PTEs checked)" in step[8]
    assert "forkwrite: parent still sees 0x1111, child exited 0" in run.stderr  # the console, after the batch


def test_a_step_that_does_not_hold_fails_the_batch(tinyos_kernel, tmp_path):
    extra = tmp_path / "more.gdb"
    extra.write_text('python console_expect("a line the kernel never prints", timeout=1)\n')
    run = tinyos_gdb("--batch", "--kernel", str(tinyos_kernel), "-x", str(extra))
    assert run.returncode != 0
    assert "the serial console did not show 'a line the kernel never prints' within 1 s" in run.stdout + run.stderr
