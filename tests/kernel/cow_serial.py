"""Parsers for the kernel shell's process and copy-on-write output (`~1`, `~2`, `mem`,
`ps`, `run`), shared by the test_cow_* modules, plus the user address-space layout the
kernel contract fixes (code 0x400000, data 0x800000, heap 0x10000000, stack below
0x7FFF_FFFF_0000)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gdb_tinyos.testing import QemuMachine

PAGE = 4096
USER_DATA_VA = 0x80_0000
USER_HEAP_START = 0x1000_0000
USER_STACK_TOP = 0x7FFF_FFFF_0000
STACK_PAGES = 2
DATA_PAGES = 1
KILLED_STATUS = 137
# Writable pages every process starts with: its data page and its stack pages.
BASE_WRITABLE_VAS = [USER_DATA_VA] + [USER_STACK_TOP - i * PAGE for i in range(1, STACK_PAGES + 1)]


@dataclass(frozen=True)
class CowPage:
    pa: int
    refs: int
    cow: bool
    mappings: frozenset[tuple[int, int]]  # (va, pid)


@dataclass
class CowStatus:
    pages: int
    faults: int
    duplicated: int
    saved: int
    peak: int
    tracked: dict[int, CowPage] = field(default_factory=dict)

    def by_va(self, va: int, pid: int) -> CowPage | None:
        return next((p for p in self.tracked.values() if (va, pid) in p.mappings), None)


@dataclass(frozen=True)
class CowStatistics:
    pages: int
    faults: int
    duplicated: int
    saved: int
    metadata: int
    peak: int
    efficiency: int


@dataclass(frozen=True)
class Frames:
    total: int
    free: int
    used: int


@dataclass(frozen=True)
class ProcessRow:
    pid: int
    ppid: int
    state: str
    asid: int
    ttbr0: int
    brk: int
    name: str


def _field(text: str, label: str) -> int:
    m = re.search(rf"^{re.escape(label)}: (\d+)", text, re.MULTILINE)
    assert m, f"no '{label}' in:\n{text}"
    return int(m[1])


def cow_status(machine: QemuMachine) -> CowStatus:
    out = machine.console.command("~1")
    assert out.startswith("=== COW Status ==="), out
    status = CowStatus(
        pages=_field(out, "COW Pages"),
        faults=_field(out, "COW Faults"),
        duplicated=_field(out, "Pages Duplicated"),
        saved=int(re.search(r"^Memory Saved: (\d+) bytes", out, re.MULTILINE)[1]),
        peak=_field(out, "Peak COW Pages"),
    )
    for line in out.split("COW Pages:\n", 1)[1].splitlines():
        m = re.fullmatch(r"  0x([0-9A-F]+) refs=(\d+) cow=(yes|no)((?: va=0x[0-9A-F]+/pid=\d+)*)", line)
        assert m, f"unexpected ~1 page line {line!r}"
        mappings = frozenset((int(va, 16), int(pid)) for va, pid in re.findall(r"va=0x([0-9A-F]+)/pid=(\d+)", m[4]))
        page = CowPage(int(m[1], 16), int(m[2]), m[3] == "yes", mappings)
        status.tracked[page.pa] = page
    return status


def cow_statistics(machine: QemuMachine) -> CowStatistics:
    out = machine.console.command("~2")
    assert out.startswith("=== COW Statistics ==="), out
    return CowStatistics(
        pages=_field(out, "Total COW Pages"),
        faults=_field(out, "Total COW Faults"),
        duplicated=_field(out, "Pages Duplicated"),
        saved=int(re.search(r"^Memory Saved: (\d+) bytes", out, re.MULTILINE)[1]),
        metadata=int(re.search(r"^Metadata Memory: (\d+) bytes", out, re.MULTILINE)[1]),
        peak=_field(out, "Peak COW Pages"),
        efficiency=int(re.search(r"^Memory Efficiency: (\d+)%", out, re.MULTILINE)[1]),
    )


def frames(machine: QemuMachine) -> Frames:
    out = machine.console.command("mem")
    m = re.match(r"frames: total=(\d+) free=(\d+) used=(\d+)", out)
    assert m, out
    return Frames(*map(int, m.groups()))


def ps(machine: QemuMachine) -> list[ProcessRow]:
    lines = machine.console.command("ps").splitlines()
    assert lines[0].split() == ["PID", "PPID", "STATE", "ASID", "TTBR0", "BRK", "NAME"], lines
    rows = []
    for line in lines[1:]:
        pid, ppid, state, asid, ttbr0, brk, name = line.split()
        rows.append(ProcessRow(int(pid), int(ppid), state, int(asid), int(ttbr0, 16), int(brk, 16), name))
    return rows


@dataclass(frozen=True)
class RunResult:
    output: str
    statuses: dict[int, int]  # pid -> exit status of the shell's children that exited


def run(machine: QemuMachine, command: str, timeout: float = 60) -> RunResult:
    """`run ...` or `cont`: the output and the exit statuses the shell reported."""
    out = machine.console.command(command, timeout=timeout)
    statuses = {int(pid): int(status) for pid, status in re.findall(r"^process (\d+) \(\w+\) exited with status (-?\d+)$", out, re.MULTILINE)}
    return RunResult(out, statuses)


def started_pid(result: RunResult) -> int:
    m = re.search(r"^process (\d+) \((\w+)\) started$", result.output, re.MULTILINE)
    assert m, result.output
    return int(m[1])
