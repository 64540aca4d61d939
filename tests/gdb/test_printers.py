"""The COW pretty printers: `print` on the manager no longer kills gdb 13.1 and shows what
the kernel's `~1` shows; single pages, slots, statistics and SimpleVecs decode too.

Without the printers, `print tinyos::memory::cow::COW_MANAGER` (with max-value-size large
enough to fetch it) ends the session with gdb's internal error on the niche-encoded
`[Option<CowPage>; N]` (facts.md §2) — the first test proves that on a session without
the plugin, so the others prove the printers are what fixes it."""

from __future__ import annotations

import re

import pytest

from gdb_tinyos.testing import GdbError
from gdb_tinyos.testing.shell import parse_cow_status

PAGE = 4096
SLOTS = 128 * 1024 * 1024 // PAGE  # one slot per frame of QEMU's 128 MiB (issue 3's table)
MANAGER = "tinyos::memory::cow::COW_MANAGER"
RAM = 0x4000_0000


@pytest.fixture
def forked(tinyos_booted):
    s = tinyos_booted
    s.shell("run forkpause 2")
    s.status = parse_cow_status(s.shell("~1"))
    s.gdb.interrupt()
    return s


def test_without_the_printers_gdb_dies_on_the_manager(tinyos_debug_factory):
    s = tinyos_debug_factory(plugin=None)
    s.boot_to_prompt()
    s.shell("run forkpause 2")  # Some pages: the niche-encoded slots gdb 13 cannot print
    s.gdb.interrupt()
    s.gdb.cli("set max-value-size unlimited")
    with pytest.raises(GdbError, match="gdb exited"):
        s.gdb.cli(f"print {MANAGER}", timeout=60)


def test_print_manager_summarises_it(forked):
    s = forked
    out = s.gdb.cli(f"print {MANAGER}", timeout=60)
    kernel = s.status.pages
    assert f"lock free, {len(kernel)}/{SLOTS} slots used" in out
    assert f"cow_pages_count {s.status.cow_pages}," in out
    assert f"memory_saved_bytes {s.status.memory_saved_bytes}," in out
    lines = {int(m.group(2), 16): (int(m.group(1)), int(m.group(3)))
             for m in re.finditer(r"\[(\d+)\] 0x([0-9a-f]+) refs=(\d+) cow=yes", out)}
    # same frames and refs as the kernel's ~1; slot i holds frame RAM + i*4096 (issue 3)
    assert {pa: refs for pa, (_slot, refs) in lines.items()} == {pa: p.refs for pa, p in kernel.items()}
    assert all(slot == (pa - RAM) // PAGE for pa, (slot, _refs) in lines.items())
    assert s.gdb.cli("print 1 + 1").strip().endswith("= 2")  # gdb is alive


def test_print_parts_of_the_manager(forked):
    s = forked
    kernel = s.status.pages
    pa = min(kernel)
    slot = (pa - RAM) // PAGE
    page = s.gdb.cli(f"print {MANAGER}.data.value.cow_pages[{slot}]")
    sharers = sorted(kernel[pa].sharers)
    assert f"Some(CowPage {{physical_addr: {pa:#x}, ref_count: 2, is_cow: true, original_permissions: UserData" in page
    assert f"virtual_addresses: [{', '.join(hex(va) for va, _ in sharers)}]" in page
    assert f"process_ids: [{', '.join(str(pid) for _, pid in sharers)}]" in page
    assert s.gdb.cli(f"print {MANAGER}.data.value.cow_pages[0]").strip().endswith("= None")  # frame 0: kernel image
    slots = s.gdb.cli(f"print {MANAGER}.data.value.cow_pages")
    assert f"{len(kernel)} of {SLOTS} slots occupied" in slots
    stats = s.gdb.cli(f"print {MANAGER}.data.value.statistics")
    assert f"memory_saved_bytes: {len(kernel) * PAGE}," in stats
    vec = s.gdb.cli(f"print {MANAGER}.data.value.cow_pages[{slot}].0.process_ids")
    assert vec.strip().endswith(f"= [{', '.join(str(pid) for _, pid in sharers)}]")
    assert "gdb_tinyos-cow" in s.gdb.cli("info pretty-printer")


def test_printer_reports_undecodable_bytes_instead_of_failing(forked):
    s = forked
    kernel = s.status.pages
    slot = (min(kernel) - RAM) // PAGE
    vec = f"{MANAGER}.data.value.cow_pages[{slot}].0.process_ids"
    s.gdb.cli(f"set var {vec}.len = 99")  # more than the capacity of 8
    out = s.gdb.cli(f"print {MANAGER}")
    assert re.search(r"<.*process_ids\.len is 99, more than its capacity 8>", out), out
    s.gdb.cli(f"set var {vec}.len = 2")
    assert "cow=yes" in s.gdb.cli(f"print {MANAGER}")
