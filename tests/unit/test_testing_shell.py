"""gdb_tinyos.testing.shell on texts written by hand from the kernel's formats
(kernel/src/shell/commands/system.rs and memory.rs, facts.md section 3): each figure,
page, row and status lands in its field, and a line off the format is a ValueError that
names it."""

from __future__ import annotations

import pytest

from gdb_tinyos.testing.shell import (
    CowPage,
    CowStatistics,
    CowStatus,
    MemReport,
    ProcessRow,
    cow_status,
    labelled_figures,
    parse_cow_page,
    parse_cow_statistics,
    parse_cow_status,
    parse_mem,
    parse_ps,
    parse_run,
    processes,
    run,
)

STATUS = """=== COW Status ===
COW Pages: 2
COW Faults: 1
Pages Duplicated: 1
Memory Saved: 4096 bytes
Peak COW Pages: 3

COW Pages:
  0x4001E000 refs=2 cow=yes va=0x10000000/pid=1 va=0x30000000/pid=2
  0x4002A000 refs=1 cow=yes va=0x800000/pid=1
"""

STATISTICS = """=== COW Statistics ===
Total COW Pages: 7
Total COW Faults: 0
Pages Duplicated: 0
Memory Saved: 28672 bytes
Metadata Memory: 1344 bytes
Peak COW Pages: 7
Memory Efficiency: 50%
"""

PS = """  PID  PPID STATE     ASID TTBR0        BRK          NAME
    1     0 paused       1 0x4001C000   0x10004000   forkpause
   12     1 zombie      13 0x4003A000   0x10000000   forkpause
"""


def test_cow_status_figures_and_pages():
    status = parse_cow_status(STATUS)
    assert (status.cow_pages, status.cow_faults, status.pages_duplicated, status.memory_saved_bytes,
            status.peak_cow_pages, status.omitted) == (2, 1, 1, 4096, 3, 0)
    assert status.pages == {
        0x4001_E000: CowPage(0x4001_E000, 2, True, frozenset({(0x1000_0000, 1), (0x3000_0000, 2)})),
        0x4002_A000: CowPage(0x4002_A000, 1, True, frozenset({(0x80_0000, 1)})),
    }
    assert status.sharer(0x3000_0000, 2).pa == 0x4001_E000
    assert status.sharer(0x3000_0000, 1) is None
    assert set(status.sharers) == {(0x1000_0000, 1), (0x3000_0000, 2), (0x80_0000, 1)}


def test_cow_status_with_nothing_tracked_and_with_pages_summarised():
    empty = STATUS.split("  0x4001E000")[0]
    assert parse_cow_status(empty) == CowStatus(2, 1, 1, 4096, 3, {}, 0)
    assert parse_cow_status(STATUS + "  ... 5 more\n").omitted == 5


def test_upstream_page_line_without_sharers_and_cow_no():
    assert parse_cow_page("  0x30000000 refs=2 cow=yes") == CowPage(0x3000_0000, 2, True, frozenset())
    assert parse_cow_page("  0xA000 refs=0 cow=no").cow is False


@pytest.mark.parametrize("bad, named", [
    (STATUS.replace("refs=2", "refs=two"), "refs=two"),
    (STATUS.replace("0x4002A000", "0x4002a000"), "0x4002a000"),  # the kernel prints upper-case hex
    (STATUS.replace("Memory Saved: 4096 bytes", "Memory Saved: 4096"), "Memory Saved: 4096"),
    (STATUS.replace("=== COW Status ===", "=== COW Statistics ==="), "=== COW Statistics ==="),
    (STATUS + "  ... 5 more\n  0x4003A000 refs=1 cow=yes\n", "0x4003A000"),
    (STATUS + "  0x4002A000 refs=1 cow=yes\n", "listed twice"),
    (STATUS + "tinyos> \n", "tinyos> "),
])
def test_cow_status_refuses_a_line_off_the_format(bad, named):
    with pytest.raises(ValueError, match="unexpected line") as err:
        parse_cow_status(bad)
    assert named in str(err.value)


def test_cow_statistics():
    assert parse_cow_statistics(STATISTICS) == CowStatistics(7, 0, 0, 28672, 1344, 7, 50)
    with pytest.raises(ValueError, match="Memory Efficiency: 50 %"):
        parse_cow_statistics(STATISTICS.replace("50%", "50 %"))
    with pytest.raises(ValueError, match="extra"):
        parse_cow_statistics(STATISTICS + "extra\n")
    with pytest.raises(ValueError, match="8 lines expected"):
        parse_cow_statistics("=== COW Statistics ===\nTotal COW Pages: 7\n")


def test_labelled_figures_reads_kernel_and_plugin_text_alike():
    plugin = "cow-status: 2 tracked\n  COW Pages: 2\nMemory Saved: 4096 bytes\nMemory Efficiency: 50%\n  0x1 refs=2\n"
    assert labelled_figures(plugin) == {"COW Pages": 2, "Memory Saved": 4096, "Memory Efficiency": 50}
    assert labelled_figures(STATISTICS)["Metadata Memory"] == 1344


def test_mem():
    text = "frames: total=32636 free=32600 used=36 (4096 bytes each)\n" \
           "ram: 0x40000000-0x48000000 kernel image: 0x40080000-0x40104000\n"
    assert parse_mem(text) == MemReport(32636, 32600, 36, 4096, (0x4000_0000, 0x4800_0000), (0x4008_0000, 0x4010_4000))
    with pytest.raises(ValueError, match="free=many"):
        parse_mem(text.replace("free=32600", "free=many"))
    with pytest.raises(ValueError, match="2 lines expected"):
        parse_mem(text.splitlines()[0])


def test_ps():
    assert parse_ps(PS) == [
        ProcessRow(1, 0, "paused", 1, 0x4001_C000, 0x1000_4000, "forkpause"),
        ProcessRow(12, 1, "zombie", 13, 0x4003_A000, 0x1000_0000, "forkpause"),
    ]
    assert parse_ps(PS.splitlines()[0]) == []
    with pytest.raises(ValueError, match="'    1     0 paused'"):
        parse_ps(PS.splitlines()[0] + "\n    1     0 paused\n")
    with pytest.raises(ValueError, match="header"):
        parse_ps(PS.splitlines()[1])


def test_run_and_cont():
    out = "process 3 (forkwrite) started\nforkwrite: child wrote 0x2222\nprocess 4 (forkwrite) exited with status 0\n" \
          "process 3 (forkwrite) exited with status 137\n"
    result = parse_run(out)
    assert (result.pid, result.statuses, result.output) == (3, {4: 0, 3: 137}, out)
    cont = parse_run("resumed 2 process(es)\n2 process(es) paused or waiting ('cont' resumes)\n")
    assert (cont.started, cont.statuses) == (None, {})
    with pytest.raises(ValueError, match="no 'process N \\(name\\) started' line"):
        cont.pid
    with pytest.raises(ValueError, match="no program 'nosuch'"):
        parse_run("error: run: no program 'nosuch' (run with no name lists them)\n")


class FakeConsole:
    """Answers typed commands from a table, as SerialConsole.command would."""

    def __init__(self, answers: dict[str, str]):
        self.answers = answers
        self.typed: list[tuple[str, float]] = []

    def command(self, cmd: str, timeout: float = 10.0) -> str:
        self.typed.append((cmd, timeout))
        return self.answers[cmd]


def test_console_conveniences_type_the_command_and_parse():
    console = FakeConsole({"~1": STATUS, "ps": PS, "run hello": "process 5 (hello) started\n"})
    assert cow_status(console).cow_pages == 2
    assert sorted(processes(console)) == [1, 12]
    assert run(console, "run hello", timeout=5).pid == 5
    assert console.typed == [("~1", 10.0), ("ps", 10.0), ("run hello", 5)]
