"""The kernel shell's answers as typed values: pure parsers of the text a command printed
(``console.command(...)`` output, LF line ends) plus thin conveniences that type the
command on a console and parse its answer.

Formats (kernel/src/shell/commands/system.rs and memory.rs; upstream TinyOS's `~1`/`~2`
with our extensions)::

    ~1    === COW Status ===            ~2    === COW Statistics ===
          COW Pages: 2                        Total COW Pages: 2
          COW Faults: 1                       Total COW Faults: 1
          Pages Duplicated: 1                 Pages Duplicated: 1
          Memory Saved: 4096 bytes            Memory Saved: 4096 bytes
          Peak COW Pages: 2                   Metadata Memory: 1024 bytes
                                              Peak COW Pages: 2
          COW Pages:                          Memory Efficiency: 50%
            0x4001E000 refs=2 cow=yes va=0x10000000/pid=1 va=0x10000000/pid=2
            ... 3 more                  (after 64 page lines)

    mem   frames: total=32636 free=32636 used=0 (4096 bytes each)
          ram: 0x40000000-0x48000000 kernel image: 0x40080000-0x40104000

    ps      PID  PPID STATE     ASID TTBR0        BRK          NAME
              1     0 paused       1 0x4001C000   0x10001000   forkpause

    run   process 1 (forkwrite) started
          <the program's own lines>
          process 2 (forkwrite) exited with status 0
          1 process(es) paused or waiting ('cont' resumes, ...)

The parsers are strict where the kernel's format is fixed: a line that does not match
raises ValueError naming the line (pytest reports it as the test's error), so a changed
format is never read as "nothing there". A program's own lines in ``run``'s output are
free text and kept as they are.

    status = cow_status(machine.console)          # = parse_cow_status(console.command("~1"))
    page = status.sharer(0x1000_0000, pid=2)      # the tracked page that (va, pid) maps
    assert page.refs == 2 and page.cow
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol


class Console(Protocol):
    """What the conveniences need: ``SerialConsole.command`` (or a stand-in)."""

    def command(self, cmd: str, timeout: float = 10.0) -> str: ...


# -- the copy-on-write commands ---------------------------------------------------------


@dataclass(frozen=True)
class CowPage:
    """One page line of `~1`: a tracked frame and the (va, pid) mappings sharing it."""

    pa: int
    refs: int
    cow: bool
    sharers: frozenset[tuple[int, int]] = frozenset()  # (va, pid)


@dataclass(frozen=True)
class CowStatus:
    """`~1`: its figures (named like the plugin's JSON) and its page lines by PA.

    ``omitted`` counts the pages the kernel summarised as ``... N more``."""

    cow_pages: int
    cow_faults: int
    pages_duplicated: int
    memory_saved_bytes: int
    peak_cow_pages: int
    pages: dict[int, CowPage] = field(default_factory=dict)
    omitted: int = 0

    @property
    def sharers(self) -> dict[tuple[int, int], CowPage]:
        """(va, pid) -> the tracked page that mapping shares."""
        return {sharer: page for page in self.pages.values() for sharer in page.sharers}

    def sharer(self, va: int, pid: int) -> CowPage | None:
        """The tracked page mapped at ``va`` in ``pid``, or None."""
        return self.sharers.get((va, pid))


@dataclass(frozen=True)
class CowStatistics:
    """`~2`, figure by figure (named like the plugin's ``cow-stats --json``)."""

    total_cow_pages: int
    total_cow_faults: int
    pages_duplicated: int
    memory_saved_bytes: int
    metadata_memory_bytes: int
    peak_cow_pages: int
    memory_efficiency_percent: int


_FIGURE = re.compile(r"([A-Za-z][A-Za-z ]*): (\d+)(?: bytes|%)?")
_PAGE = re.compile(r"  0x([0-9A-F]+) refs=(\d+) cow=(yes|no)((?: va=0x[0-9A-F]+/pid=\d+)*)")
_SHARER = re.compile(r" va=0x([0-9A-F]+)/pid=(\d+)")
_MORE = re.compile(r"  \.\.\. (\d+) more")

_STATUS_HEADER = "=== COW Status ==="
_STATUS_FIGURES = (
    ("COW Pages", ""), ("COW Faults", ""), ("Pages Duplicated", ""), ("Memory Saved", " bytes"), ("Peak COW Pages", ""),
)
_STATISTICS_HEADER = "=== COW Statistics ==="
_STATISTICS_FIGURES = (
    ("Total COW Pages", ""), ("Total COW Faults", ""), ("Pages Duplicated", ""), ("Memory Saved", " bytes"),
    ("Metadata Memory", " bytes"), ("Peak COW Pages", ""), ("Memory Efficiency", "%"),
)


def labelled_figures(text: str) -> dict[str, int]:
    """Every ``Label: N``, ``Label: N bytes`` or ``Label: N%`` line of ``text`` (leading
    and trailing blanks ignored) as {label: N}; other lines are skipped. Reads the kernel's
    `~1`/`~2` and the plugin's ``cow-status``/``cow-stats`` text alike."""
    found = {}
    for line in text.splitlines():
        m = _FIGURE.fullmatch(line.strip())
        if m:
            found[m.group(1)] = int(m.group(2))
    return found


def _unexpected(what: str, line: str, text: str) -> ValueError:
    return ValueError(f"{what}: unexpected line {line!r} in:\n{text}")


def _figures(what: str, lines: list[str], header: str, expected: tuple[tuple[str, str], ...], text: str) -> list[int]:
    """The header then one line per expected (label, unit), in that order."""
    if len(lines) < 1 + len(expected):
        raise ValueError(f"{what}: {1 + len(expected)} lines expected (header and figures), got:\n{text}")
    if lines[0] != header:
        raise _unexpected(f"{what} (expected {header!r})", lines[0], text)
    values = []
    for line, (label, unit) in zip(lines[1:], expected):
        m = re.fullmatch(rf"{re.escape(label)}: (\d+){re.escape(unit)}", line)
        if m is None:
            raise _unexpected(f"{what} (expected '{label}: N{unit}')", line, text)
        values.append(int(m.group(1)))
    return values


def parse_cow_page(line: str) -> CowPage:
    """One `~1` page line (``  0x<PA> refs=<n> cow=yes|no[ va=0x<VA>/pid=<p>]...``)."""
    m = _PAGE.fullmatch(line)
    if m is None:
        raise ValueError(f"~1: {line!r} is not a page line ('  0x<PA> refs=<n> cow=yes|no va=0x<VA>/pid=<p>...')")
    sharers = frozenset((int(va, 16), int(pid)) for va, pid in _SHARER.findall(m.group(4)))
    return CowPage(int(m.group(1), 16), int(m.group(2)), m.group(3) == "yes", sharers)


def parse_cow_status(text: str) -> CowStatus:
    """The kernel's `~1` answer."""
    lines = text.splitlines()
    figures = _figures("~1", lines, _STATUS_HEADER, _STATUS_FIGURES, text)
    rest = lines[1 + len(_STATUS_FIGURES) :]
    if rest[:2] != ["", "COW Pages:"]:
        raise _unexpected("~1 (expected a blank line, then 'COW Pages:')", "\n".join(rest[:2]), text)
    pages: dict[int, CowPage] = {}
    omitted = 0
    for line in rest[2:]:
        more = _MORE.fullmatch(line)
        if more and not omitted:
            omitted = int(more.group(1))
            continue
        if omitted:
            raise _unexpected("~1 (nothing may follow '... N more')", line, text)
        try:
            page = parse_cow_page(line)
        except ValueError:
            raise _unexpected("~1 (expected a page line)", line, text) from None
        if page.pa in pages:
            raise _unexpected(f"~1 (page {page.pa:#x} listed twice)", line, text)
        pages[page.pa] = page
    return CowStatus(*figures, pages=pages, omitted=omitted)


def parse_cow_statistics(text: str) -> CowStatistics:
    """The kernel's `~2` answer."""
    lines = text.splitlines()
    figures = _figures("~2", lines, _STATISTICS_HEADER, _STATISTICS_FIGURES, text)
    extra = lines[1 + len(_STATISTICS_FIGURES) :]
    if extra:
        raise _unexpected("~2 (nothing follows 'Memory Efficiency')", extra[0], text)
    return CowStatistics(*figures)


# -- mem and ps -------------------------------------------------------------------------


@dataclass(frozen=True)
class MemReport:
    """`mem`: the frame allocator's counts, RAM and the kernel image's physical bounds."""

    total: int
    free: int
    used: int
    frame_bytes: int
    ram: tuple[int, int]  # [start, end)
    image: tuple[int, int]  # [start, end)


_MEM_FRAMES = re.compile(r"frames: total=(\d+) free=(\d+) used=(\d+) \((\d+) bytes each\)")
_MEM_RAM = re.compile(r"ram: 0x([0-9a-f]+)-0x([0-9a-f]+) kernel image: 0x([0-9a-f]+)-0x([0-9a-f]+)")


def parse_mem(text: str) -> MemReport:
    """The kernel's `mem` answer (two lines)."""
    lines = text.splitlines()
    if len(lines) != 2:
        raise ValueError(f"mem: 2 lines expected ('frames: ...', 'ram: ...'), got:\n{text}")
    frames, ram = _MEM_FRAMES.fullmatch(lines[0]), _MEM_RAM.fullmatch(lines[1])
    if frames is None:
        raise _unexpected("mem (expected 'frames: total=N free=N used=N (N bytes each)')", lines[0], text)
    if ram is None:
        raise _unexpected("mem (expected 'ram: 0x..-0x.. kernel image: 0x..-0x..')", lines[1], text)
    total, free, used, size = map(int, frames.groups())
    bounds = [int(x, 16) for x in ram.groups()]
    return MemReport(total, free, used, size, (bounds[0], bounds[1]), (bounds[2], bounds[3]))


@dataclass(frozen=True)
class ProcessRow:
    """One row of `ps`."""

    pid: int
    ppid: int
    state: str
    asid: int
    ttbr0: int  # PA of the process's L0 table
    brk: int
    name: str


PS_HEADER = ["PID", "PPID", "STATE", "ASID", "TTBR0", "BRK", "NAME"]
_PS_ROW = re.compile(r"\s*(\d+)\s+(\d+)\s+(\w+)\s+(\d+)\s+0x([0-9A-F]+)\s+0x([0-9A-F]+)\s+(\S+)\s*")


def parse_ps(text: str) -> list[ProcessRow]:
    """The kernel's `ps` answer: its header, then one row per process (none: [])."""
    lines = text.splitlines()
    if not lines or lines[0].split() != PS_HEADER:
        raise _unexpected(f"ps (expected the header {' '.join(PS_HEADER)})", lines[0] if lines else "", text)
    rows = []
    for line in lines[1:]:
        m = _PS_ROW.fullmatch(line)
        if m is None:
            raise _unexpected("ps (expected 'PID PPID STATE ASID 0xTTBR0 0xBRK NAME')", line, text)
        pid, ppid, state, asid, ttbr0, brk, name = m.groups()
        rows.append(ProcessRow(int(pid), int(ppid), state, int(asid), int(ttbr0, 16), int(brk, 16), name))
    return rows


# -- run and cont -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    """What `run <program>` or `cont` reported around the programs' own output."""

    output: str
    started: int | None  # pid `run` started; None for `cont`
    statuses: dict[int, int]  # pid -> exit status of the shell's children that exited

    @property
    def pid(self) -> int:
        """The pid `run` started; ValueError when the output has no ``started`` line."""
        if self.started is None:
            raise ValueError(f"run: no 'process N (name) started' line in:\n{self.output}")
        return self.started


_STARTED = re.compile(r"^process (\d+) \(\S+\) started$", re.MULTILINE)
_EXITED = re.compile(r"^process (\d+) \(\S+\) exited with status (-?\d+)$", re.MULTILINE)


def parse_run(text: str) -> RunResult:
    """`run` or `cont` output: the pid started (at most one) and the exit statuses. An
    ``error: run: ...`` answer (unknown program, bad argument) raises ValueError."""
    if text.startswith("error: "):
        raise ValueError(f"run: the shell refused: {text.splitlines()[0]!r}")
    started = [int(pid) for pid in _STARTED.findall(text)]
    if len(started) > 1:
        raise ValueError(f"run: {len(started)} 'started' lines, one expected, in:\n{text}")
    statuses = {int(pid): int(status) for pid, status in _EXITED.findall(text)}
    return RunResult(text, started[0] if started else None, statuses)


# -- on a console -------------------------------------------------------------------------


def cow_status(console: Console, timeout: float = 10.0) -> CowStatus:
    """Types `~1` and parses the answer."""
    return parse_cow_status(console.command("~1", timeout=timeout))


def cow_statistics(console: Console, timeout: float = 10.0) -> CowStatistics:
    """Types `~2` and parses the answer."""
    return parse_cow_statistics(console.command("~2", timeout=timeout))


def mem(console: Console, timeout: float = 10.0) -> MemReport:
    """Types `mem` and parses the answer."""
    return parse_mem(console.command("mem", timeout=timeout))


def ps(console: Console, timeout: float = 10.0) -> list[ProcessRow]:
    """Types `ps` and parses the answer."""
    return parse_ps(console.command("ps", timeout=timeout))


def processes(console: Console, timeout: float = 10.0) -> dict[int, ProcessRow]:
    """`ps` by pid."""
    return {row.pid: row for row in ps(console, timeout)}


def run(console: Console, command: str, timeout: float = 60.0) -> RunResult:
    """Types ``run ...`` or ``cont`` and parses the answer."""
    return parse_run(console.command(command, timeout=timeout))
