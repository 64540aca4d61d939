"""The foreign kernel's shell, booted at EL2 with the existing harness: `~1`/`~2` print
facts.md section 3's formats exactly (CR LF line ends, upper-case hex without leading
zeros), and reflect the state the typed commands built, under this kernel's conventions:

- `process_ids` is the de-duplicated set of sharer pids (not parallel to the VAs);
- `ref_count` = 1 (owner) + one per mapping (VA);
- a fault gives the faulting mapping a copy, drops its VA and one ref, drops its pid
  unless that pid still maps the page at another VA, and untracks the page below two VAs;
- `memory_saved_bytes`, `metadata_memory_bytes` stay 0; Memory Efficiency is 0%.

Every expected figure below is derived by hand from the commands typed."""

from __future__ import annotations

import re

from gdb_tinyos.testing import PROMPT, SerialConsole
from gdb_tinyos.testing.shell import parse_cow_statistics, parse_cow_status

from foreign_support import HEX, Page, pages  # noqa: F401 - Page: the type the tests compare with
def raw(console: SerialConsole, command: str) -> str:
    """A command's output exactly as the UART sent it, checked to end every line in CR LF."""
    start = len(console.transcript)
    console.command(command)
    text = console.transcript[start:]
    echo = command + "\r\n"
    assert text.startswith(echo) and text.endswith(PROMPT), repr(text)
    body = text[len(echo) : -len(PROMPT)]
    assert "\r" not in body.replace("\r\n", "") and "\n" not in body.replace("\r\n", ""), repr(body)
    return body


def create(console: SerialConsole, src: int, dst: int, *pids: int) -> int:
    """`~3`: checks its four lines and returns the shared page's PA."""
    body = raw(console, " ".join(["~3", hex(src), hex(dst), *map(str, pids)]))
    m = re.fullmatch(
        rf"COW mapping created successfully\r\nSource VA: 0x{src:X}\r\nDest VA: 0x{dst:X}\r\nPhysical: ({HEX})\r\n", body
    )
    assert m, repr(body)
    return int(m.group(1), 16)


def fault(console: SerialConsole, va: int, pid: int) -> tuple[int, int]:
    """`~7`: checks its lines and returns (old page, new page)."""
    body = raw(console, f"~7 {va:#x} {pid}")
    m = re.fullmatch(
        rf"COW fault handled\r\nFaulting VA: 0x{va:X} \(pid {pid}\)\r\nOld page: ({HEX})\r\nNew page: ({HEX})\r\n", body
    )
    assert m, repr(body)
    return int(m.group(1), 16), int(m.group(2), 16)


def status_text(count: int, faults: int, duplicated: int, peak: int, lines: list[tuple[int, int, bool]]) -> str:
    page_lines = "".join(f"  0x{pa:X} refs={refs} cow={'yes' if cow else 'no'}\r\n" for pa, refs, cow in lines)
    return (
        f"=== COW Status ===\r\nCOW Pages: {count}\r\nCOW Faults: {faults}\r\nPages Duplicated: {duplicated}\r\n"
        f"Memory Saved: 0 bytes\r\nPeak COW Pages: {peak}\r\n\r\nCOW Pages:\r\n{page_lines}"
    )


def statistics_text(count: int, faults: int, duplicated: int, peak: int) -> str:
    return (
        f"=== COW Statistics ===\r\nTotal COW Pages: {count}\r\nTotal COW Faults: {faults}\r\n"
        f"Pages Duplicated: {duplicated}\r\nMemory Saved: 0 bytes\r\nMetadata Memory: 0 bytes\r\n"
        f"Peak COW Pages: {peak}\r\nMemory Efficiency: 0%\r\n"
    )


def test_boot_state(foreign_machine):
    console = foreign_machine.console
    assert console.banner.startswith("tiny_os_lib: ") and "EL2, MMU off" in console.banner
    assert raw(console, "~1") == status_text(0, 0, 0, 0, [])
    assert raw(console, "~2") == statistics_text(0, 0, 0, 0)
    assert pages(console) == {}
    # The harness's strict parsers read this kernel's output too.
    assert parse_cow_status(console.command("~1")).pages == {}
    assert parse_cow_statistics(console.command("~2")).memory_efficiency_percent == 0


def test_sharing_faults_and_protection(foreign_machine):
    c = foreign_machine.console
    # Two pids share a fresh page: owner + 2 mappings.
    a = create(c, 0x1000_0000, 0x1000_1000)
    assert pages(c) == {a: Page(3, True, (0x1000_0000, 0x1000_1000), (1, 2))}
    # A third sharer.
    assert create(c, 0x1000_0000, 0x2000_0000, 1, 3) == a
    # One pid at two VAs: 2 VAs, 1 pid; then a second pid joins.
    b = create(c, 0x3000_0000, 0x3000_1000, 4, 4)
    assert create(c, 0x3000_0000, 0x3000_2000, 4, 7) == b
    # Two pids at the same VA (as after a fork): the VA listed twice, 2 pids.
    d = create(c, 0x4000_0000, 0x4000_0000, 5, 6)
    assert len({a, b, d}) == 3
    assert pages(c) == {
        a: Page(4, True, (0x1000_0000, 0x1000_1000, 0x2000_0000), (1, 2, 3)),
        b: Page(4, True, (0x3000_0000, 0x3000_1000, 0x3000_2000), (4, 7)),
        d: Page(3, True, (0x4000_0000, 0x4000_0000), (5, 6)),
    }
    assert raw(c, "~1") == status_text(3, 0, 0, 3, [(a, 4, True), (b, 4, True), (d, 3, True)])
    assert raw(c, "~2") == statistics_text(3, 0, 0, 3)

    # pid 3 writes: its own copy; it leaves A's VA list and pid set.
    old, n1 = fault(c, 0x2000_0000, 3)
    assert old == a and n1 not in (a, b, d)
    # pid 4 writes at one of its two VAs: it stays in B's set (it still maps 0x3000_0000).
    assert fault(c, 0x3000_1000, 4)[0] == b
    assert pages(c)[b] == Page(3, True, (0x3000_0000, 0x3000_2000), (4, 7))
    # pid 7 writes: B is left with one mapping and is no longer tracked.
    assert fault(c, 0x3000_2000, 7)[0] == b
    assert pages(c) == {
        a: Page(3, True, (0x1000_0000, 0x1000_1000), (1, 2)),
        d: Page(3, True, (0x4000_0000, 0x4000_0000), (5, 6)),
    }
    assert raw(c, "~1") == status_text(2, 3, 3, 3, [(a, 3, True), (d, 3, True)])

    # Protection off: a write is no COW fault and changes nothing; then on again.
    assert raw(c, f"~5 {a:#x}") == f"COW protection removed from page 0x{a:X}\r\n"
    assert raw(c, "~1") == status_text(2, 3, 3, 3, [(a, 3, False), (d, 3, True)])
    assert raw(c, "~7 0x10001000 2") == "COW fault failed: page is not COW-protected\r\n"
    assert raw(c, f"~4 {a + 0x123:#x}") == f"COW protection enabled for page 0x{a:X}\r\n"
    assert raw(c, "~7 0x99999000 1") == "COW fault failed: VA not mapped\r\n"
    assert raw(c, "~4 0x1234000") == "COW protection failed: Page not found in COW tracking\r\n"

    # Same VA, pid 6 writes: D untracked (pid 5 keeps the old page alone).
    assert fault(c, 0x4000_0000, 6)[0] == d
    # pid 3's private copy can be shared again: the fault did remap it.
    assert create(c, 0x2000_0000, 0x2100_0000, 3, 8) == n1
    assert pages(c) == {
        a: Page(3, True, (0x1000_0000, 0x1000_1000), (1, 2)),
        n1: Page(3, True, (0x2000_0000, 0x2100_0000), (3, 8)),
    }
    assert raw(c, "~1") == status_text(2, 4, 4, 3, [(a, 3, True), (n1, 3, True)])
    assert raw(c, "~2") == statistics_text(2, 4, 4, 3)
    status = parse_cow_status(c.command("~1"))
    assert {pa: (p.refs, p.cow) for pa, p in status.pages.items()} == {a: (3, True), n1: (3, True)}


def test_a_page_holds_at_most_eight_mappings(foreign_machine):
    c = foreign_machine.console
    page = create(c, 0x5000_0000, 0x5000_1000, 1, 1)
    for n in range(2, 8):
        assert create(c, 0x5000_0000, 0x5000_0000 + n * 0x1000, 1, n) == page
    full = Page(9, True, tuple(0x5000_0000 + n * 0x1000 for n in (0, 1, 2, 3, 4, 5, 6, 7)), (1, 2, 3, 4, 5, 6, 7))
    assert pages(c) == {page: full}
    assert raw(c, "~3 0x50000000 0x50009000 1 8") == "COW mapping failed: page already has 8 mappings\r\n"
    assert raw(c, "~3 0x50000000 0x50001000 1 1") == "COW mapping failed: destination VA already mapped\r\n"
    assert pages(c) == {page: full}
    assert raw(c, "~1") == status_text(1, 0, 0, 1, [(page, 9, True)])
