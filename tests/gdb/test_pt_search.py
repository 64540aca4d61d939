"""`pt --search` and the per-level filters on a live `run forkwrite`.

Expected addresses come from QEMU, not the plugin: the user program's code pages
(0x40_0000 and 0x40_1000, the design's user layout) are translated with `gva2gpa` and read
word by word with `xp`; the string's offset in those bytes gives its virtual address. The
data page 0x80_0000 holds 0x1111 (stored before the fork) and, after the child's COW fault,
0x2222 in the child's copy (user_programs.S)."""

from __future__ import annotations

import json
import re
import struct

from gdb_tinyos.testing import DebugEvent

CODE_PAGES = (0x40_0000, 0x40_1000)
DATA = 0x80_0000
TEXT = "child wrote 0x2222 into its own copy"


def page_bytes(s, va: int) -> bytes:
    return struct.pack("<512Q", *s.xp(s.gva2gpa(va), 512))


def hits(s, command: str) -> list[tuple[int, int]]:
    data = json.loads(s.gdb.cli(command + " --json"))
    return [(int(h["va"], 16), int(h["pa"], 16)) for h in data["search"]["hits"]]


def test_search_and_filters_against_qemus_view(tinyos_debug_factory):
    s = tinyos_debug_factory(timeout=60)
    s.boot_to_prompt(timeout=60)
    s.gdb.run_to(s.location("cow_fault::resolve_locked"),
                 action=lambda: s.console.send_line("run forkwrite"), timeout=60)
    child = s.gdb.read_register("x1")  # the faulting process, running now: gva2gpa sees its tables

    code = b"".join(page_bytes(s, va) for va in CODE_PAGES)
    expected = [CODE_PAGES[0] + at for at in range(len(code)) if code.startswith(TEXT.encode(), at)]
    assert expected, "the program's string is not in its code pages"
    found = hits(s, f'pt --pid {child} --search "{TEXT}"')
    assert [va for va, _ in found] == expected
    assert all(pa == s.gva2gpa(va) for va, pa in found)
    text = s.gdb.cli(f'pt --pid {child} --search "{TEXT}"')
    assert f"{expected[0]:#018x}" in text and "EL0:R-X" in text and TEXT[:16] in text

    # --u64: the value stored before the fork, in the still-shared data page
    assert s.xp(s.gva2gpa(DATA))[0] == 0x1111
    found = hits(s, f"pt --pid {child} --u64 0x1111")
    assert (DATA, s.gva2gpa(DATA)) in found
    for _, pa in found:  # every match holds the value, as QEMU reads it
        words = s.xp(pa & ~7, 2)
        assert struct.pack("<2Q", *words)[pa & 7:(pa & 7) + 8] == struct.pack("<Q", 0x1111)
    assert hits(s, f"pt --pid {child} --filter uw --u64 0x1111") == []  # the shared page is read-only

    # --filter ux: exactly the code pages (EL0 R-X); --filter ro keeps them
    ux = json.loads(s.gdb.cli(f"pt --pid {child} --filter ux --json"))["spaces"][0]["ranges"]
    assert [(int(r["va_start"], 16), int(r["va_end"], 16)) for r in ux] in (
        [(CODE_PAGES[0], CODE_PAGES[1] + 0x1000)], [(va, va + 0x1000) for va in CODE_PAGES])

    # fault resolved (the store is retried on return): the child's private copy of the
    # page, writable now, holds the copied 0x1111 in a new frame; the parent's is still shared
    shared = s.gva2gpa(DATA)
    stop = s.run_to_event(DebugEvent.COW_FAULT)
    assert stop.reason == "breakpoint-hit"
    copy = s.gva2gpa(DATA)
    assert copy != shared and s.xp(copy)[0] == 0x1111
    assert (DATA, copy) in hits(s, f"pt --pid {child} --filter uw --u64 0x1111")
    parent = int(re.search(r"process (\d+) \(forkwrite\) started", s.console.transcript)[1])
    assert parent != child
    assert DATA not in [va for va, _ in hits(s, f"pt --pid {parent} --filter uw --u64 0x1111")]
    assert (DATA, shared) in hits(s, f"pt --pid {parent} --filter ro --u64 0x1111")


def test_search_errors_are_one_line(tinyos_debug_factory):
    s = tinyos_debug_factory(timeout=60)
    s.boot_to_prompt(timeout=60)
    s.gdb.run_to(s.location("cow_fault::resolve_locked"),
                 action=lambda: s.console.send_line("run forkwrite"), timeout=60)
    assert "not hex bytes" in s.gdb.expect_one_line_error("pt --bytes zz")
    assert "empty" in s.gdb.expect_one_line_error('pt --search ""')
    assert s.gdb.expect_one_line_error("pt --search a --u64 1") == "pt: --u64 cannot be combined with --search; see `help pt`"
    assert "--limit" in s.gdb.expect_one_line_error("pt --search a --limit -1")
    assert "fit in 32 bits" in s.gdb.expect_one_line_error("pt --u32 0x100000000")
