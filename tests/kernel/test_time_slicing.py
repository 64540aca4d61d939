"""Preemption through the shell: a program that never makes a syscall (`spin`) no longer
takes the shell — in the background the shell answers `ps`, `~1`, `kill` while it loops,
in the foreground Ctrl-C kills it — and `forkrace`, whose processes write shared pages
while the timer preempts them, keeps every process's values apart with copy-on-write
counts that follow from the rules (below), giving every frame back."""

from __future__ import annotations

import re
import time

from user_layout import KILLED_STATUS

from gdb_tinyos.testing import QemuMachine
from gdb_tinyos.testing.shell import cow_statistics, mem, processes, ps, run

# forkrace's fixed shape (user_programs.S): FR_CYCLES forks of n children, FR_PAGES heap
# pages each process rewrites.
FR_CYCLES = 3
FR_PAGES = 4


def sched(m: QemuMachine) -> dict[str, int]:
    out = m.console.command("sched")
    figures = dict(re.findall(r"^(ticks|preemptions): (\d+)$", out, re.MULTILINE))
    assert set(figures) == {"ticks", "preemptions"}, out
    return {name: int(value) for name, value in figures.items()}


def test_background_spin_leaves_the_shell_responsive(shared_machine: QemuMachine) -> None:
    m = shared_machine
    free = mem(m.console).free
    out = m.console.command("run spin &")
    started = re.fullmatch(r"process (\d+) \(spin\) started in the background", out.strip())
    assert started, out
    pid = int(started.group(1))
    before = sched(m)
    time.sleep(0.5)
    # The shell answers while spin, which never enters the kernel, keeps the CPU.
    t0 = time.monotonic()
    rows = processes(m.console)
    assert time.monotonic() - t0 < 5
    assert rows[pid].name == "spin" and rows[pid].state in ("ready", "running")
    assert cow_statistics(m.console).total_cow_pages == 0
    after = sched(m)
    # Half a second of waiting for input is spent running spin, one tick at a time.
    assert after["ticks"] > before["ticks"]
    assert m.console.command("~1").startswith("=== COW Status ===")
    out = m.console.command(f"kill {pid}")
    assert out.splitlines() == [f"process {pid} killed", f"process {pid} (spin) exited with status {KILLED_STATUS}"]
    assert ps(m.console) == []
    assert mem(m.console).free == free


def test_ctrl_c_kills_the_foreground_program(shared_machine: QemuMachine) -> None:
    m = shared_machine
    free = mem(m.console).free
    m.console.send_line("run spin")
    pid = int(m.console.expect(re.compile(r"process (\d+) \(spin\) started\r?\n")).group(1))
    time.sleep(0.3)
    m.console.send_raw(b"\x03")
    out = m.console.read_until_prompt(timeout=10)
    lines = [line for line in out.replace("\r", "").splitlines() if line]
    assert lines == ["^C", f"process {pid} (spin) killed: interrupted",
                     f"process {pid} (spin) exited with status {KILLED_STATUS}"], out
    assert ps(m.console) == []
    assert mem(m.console).free == free


def test_forkrace_children_keep_their_own_values_under_preemption(shared_machine: QemuMachine) -> None:
    m = shared_machine
    children = 4
    free = mem(m.console).free
    stats0, sched0 = cow_statistics(m.console), sched(m)
    result = run(m.console, f"run forkrace {children}", timeout=120)
    assert "FAIL" not in result.output, result.output
    assert "forkrace: every process read back only its own values" in result.output
    assert result.statuses == {result.pid: 0}, result.output
    stats1, sched1 = cow_statistics(m.console), sched(m)
    # The processes were really preempted (the timer took the CPU between them).
    assert sched1["preemptions"] > sched0["preemptions"], (sched0, sched1)
    # Per cycle each heap page is shared by n + 1 processes that all write it once: every
    # write faults, n of them find other sharers (a copy) and the last finds itself alone
    # (reused). The parent's stack page (wait's status store) faults once per cycle,
    # copied or reused depending on whether children still share it.
    faults = stats1.total_cow_faults - stats0.total_cow_faults
    copies = stats1.pages_duplicated - stats0.pages_duplicated
    assert faults == FR_CYCLES * (FR_PAGES * (children + 1) + 1), (stats0, stats1)
    assert FR_CYCLES * FR_PAGES * children <= copies <= FR_CYCLES * (FR_PAGES * children + 1), (stats0, stats1)
    assert stats1.total_cow_pages == 0
    assert ps(m.console) == []
    assert mem(m.console).free == free


def test_foreground_program_finishes_beside_a_background_spin(shared_machine: QemuMachine) -> None:
    m = shared_machine
    free = mem(m.console).free
    pid = int(re.search(r"process (\d+) \(spin\)", m.console.command("run spin &")).group(1))
    result = run(m.console, "run forkwrite")
    assert result.statuses == {result.pid: 0}, result.output
    assert [row.pid for row in ps(m.console)] == [pid]
    m.console.command(f"kill {pid}")
    assert ps(m.console) == []
    assert mem(m.console).free == free
