"""`~3`, `~4`, `~5`, `kill` and `ps` through the shell, on `idle` processes (each maps
one heap page at 0x10000000 holding its pid, then pauses): creating a copy-on-write
mapping between two processes, protecting and unprotecting by VA and by PA, and every
refusal — a shared page is never made writable, code is never protected, bad input
changes nothing."""

from __future__ import annotations

import re

from user_layout import PAGE, USER_HEAP_START

from gdb_tinyos.testing.shell import cow_statistics, cow_status, mem, ps, run

from gdb_tinyos.testing import QemuMachine

DEFAULT_DST_VA = 0x3000_0000
USER_CODE_VA = 0x40_0000


def created(out: str) -> tuple[int, int, int, int, int]:
    """(src_va, src_pid, dst_va, dst_pid, pa) from `~3`'s report."""
    lines = out.splitlines()
    assert "COW mapping created successfully" in lines, out
    src = re.search(r"^Source VA: 0x([0-9A-F]+) \(pid (\d+)\)$", out, re.MULTILINE)
    dst = re.search(r"^Dest VA: 0x([0-9A-F]+) \(pid (\d+)\)$", out, re.MULTILINE)
    pa = re.search(r"^Physical: 0x([0-9A-F]+)$", out, re.MULTILINE)
    assert src and dst and pa, out
    return int(src[1], 16), int(src[2]), int(dst[1], 16), int(dst[2]), int(pa[1], 16)


def test_create_with_defaults_starts_two_idle_processes_and_shares_the_heap_page(
    tinyos_machine: QemuMachine,
) -> None:
    m = tinyos_machine
    empty = mem(m.console)
    out = m.console.command("~3")
    src_va, src_pid, dst_va, dst_pid, pa = created(out)
    assert (src_va, dst_va) == (USER_HEAP_START, DEFAULT_DST_VA)
    assert src_pid < dst_pid
    assert {r.pid: r.state for r in ps(m.console)} == {src_pid: "paused", dst_pid: "paused"}
    page = cow_status(m.console).pages[pa]
    assert page.refs == 2 and page.sharers == {(USER_HEAP_START, src_pid), (DEFAULT_DST_VA, dst_pid)}
    assert cow_statistics(m.console).memory_saved_bytes == PAGE

    # Both resume and read their pages (the source's still holds its pid): no fault.
    before = cow_statistics(m.console)
    out = run(m.console, "cont").output
    assert "FAIL" not in out
    assert cow_statistics(m.console).total_cow_faults == before.total_cow_faults

    # Unprotecting a shared page is refused with the reason, by PA and by VA.
    for arg in (f"{pa:#x}", f"{DEFAULT_DST_VA:#x} {dst_pid}"):
        out = m.console.command(f"~5 {arg}")
        assert out.startswith("error: ~5: refusing: ") and "shared by 2 mappings" in out, out
    assert cow_status(m.console).pages[pa].refs == 2
    # Protecting it again is refused too.
    assert "already copy-on-write" in m.console.command(f"~4 {pa:#x}")

    # After the destination dies the source is the sole owner: unprotect is allowed.
    assert m.console.command(f"kill {dst_pid}").splitlines() == [
        f"process {dst_pid} killed",
        f"process {dst_pid} (idle) exited with status 137",
    ]
    page = cow_status(m.console).pages[pa]
    assert page.refs == 1 and page.sharers == {(USER_HEAP_START, src_pid)}
    out = m.console.command(f"~5 {USER_HEAP_START:#x}")
    assert out.splitlines() == [f"COW protection removed from page 0x{pa:X}"]
    assert cow_status(m.console).pages == {}

    m.console.command(f"kill {src_pid}")
    assert ps(m.console) == []
    assert mem(m.console) == empty


def test_protect_a_private_page_then_its_owner_reuses_it(tinyos_machine: QemuMachine) -> None:
    m = tinyos_machine
    pid = run(m.console, "run idle").pid
    out = m.console.command(f"~4 {USER_HEAP_START:#x}")
    pa = int(re.fullmatch(r"COW protection enabled for page 0x([0-9A-F]+)", out.strip())[1], 16)
    page = cow_status(m.console).pages[pa]
    assert page.refs == 1 and page.sharers == {(USER_HEAP_START, pid)}
    # One mapping: nothing is saved.
    assert cow_statistics(m.console).memory_saved_bytes == 0
    out = m.console.command(f"~5 {pa:#x} ")
    assert out.splitlines() == [f"COW protection removed from page 0x{pa:X}"]
    assert cow_status(m.console).cow_pages == 0
    m.console.command(f"kill {pid}")


def test_refusals_change_nothing(tinyos_machine: QemuMachine) -> None:
    m = tinyos_machine
    first = run(m.console, "run idle").pid
    second = run(m.console, "run idle").pid
    before = (cow_status(m.console), mem(m.console))
    cases = {
        f"~4 {USER_CODE_VA:#x} {first}": "read-only by design",
        "~4 0x12345000": "not mapped by any process",
        f"~4 {USER_HEAP_START:#x}": "maps different frames in several processes",
        "~4": "usage",
        "~5 0x47000000": "not a copy-on-write page",
        f"~5 {USER_HEAP_START:#x} 99": "no live process with pid 99",
        f"~3 {USER_HEAP_START:#x} {USER_HEAP_START:#x} {first} {first}": "same mapping",
        f"~3 {USER_HEAP_START:#x} 0x800000 {first} {second}": "already mapped",
        f"~3 {USER_CODE_VA:#x} {DEFAULT_DST_VA:#x} {first} {second}": "read-only by design",
        f"~3 0x10000001 {DEFAULT_DST_VA:#x} {first} {second}": "not a page-aligned user address",
        "~3 1 2 3": "usage",
    }
    for command, reason in cases.items():
        out = m.console.command(command)
        assert out.startswith("error: ") and reason in out, f"{command}: {out}"
    assert (cow_status(m.console), mem(m.console)) == before
    m.console.command(f"kill {first}")
    m.console.command(f"kill {second}")
    assert "no live process" in m.console.command(f"kill {first}")
