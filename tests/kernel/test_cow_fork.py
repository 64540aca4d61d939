"""fork with copy-on-write, step by step through the shell (`run forkpause 4`, then
`cont` three times), every figure derived by hand:

- after fork, every writable page of the parent (4 heap + 1 data + 2 stack = 7) is
  tracked once with refs=2 and both (va, pid) mappings, memory saved = 7 * 4096, and
  the child cost only its translation tables (its code is shared read-only, untracked);
- the child's write to heap page 0 copies that page only (1 fault, 1 duplicate,
  saved 6 * 4096, one more frame used);
- the parent's later write to heap page 0 is the last sharer's: reused in place (no
  new copy), the page leaves the manager; the child's exit drops its references;
- when both have exited every frame is free and nothing is tracked.
"""

from __future__ import annotations

from elf_facts import KernelImage
from user_layout import BASE_WRITABLE_VAS, PAGE, USER_HEAP_START

from gdb_tinyos.testing import QemuMachine
from gdb_tinyos.testing.shell import cow_statistics, cow_status, mem, ps, run

HEAP_PAGES = 4
HEAP_VAS = [USER_HEAP_START + i * PAGE for i in range(HEAP_PAGES)]
USER_CODE_VA = 0x40_0000


def table_frames(vas: list[int]) -> int:
    """Translation tables (4 KiB granule, four levels) needed to map `vas`: one L0, one
    L1 per distinct VA[47:39], one L2 per VA[47:30], one L3 per VA[47:21]."""
    return 1 + len({va >> 39 for va in vas}) + len({va >> 30 for va in vas}) + len({va >> 21 for va in vas})


def code_vas(kernel_image: KernelImage) -> list[int]:
    size = kernel_image.symbol("tinyos_user_image_end") - kernel_image.symbol("tinyos_user_image_start")
    return [USER_CODE_VA + i * PAGE for i in range(-(-size // PAGE))]


def test_fork_shares_pages_then_copies_on_write_then_reuses(
    tinyos_machine: QemuMachine, kernel_image: KernelImage
) -> None:
    m = tinyos_machine
    empty = mem(m.console)
    assert empty.used == 0

    # Step 1: fork, both paused.
    parent = run(m.console, f"run forkpause {HEAP_PAGES}").pid
    rows = {r.pid: r for r in ps(m.console)}
    children = [r for r in rows.values() if r.ppid == parent]
    assert len(children) == 1
    child = children[0].pid
    assert rows[parent].state == rows[child].state == "paused"
    assert rows[parent].asid != rows[child].asid
    assert rows[parent].ttbr0 != rows[child].ttbr0
    assert rows[parent].brk == rows[child].brk == USER_HEAP_START + HEAP_PAGES * PAGE

    writable = BASE_WRITABLE_VAS + HEAP_VAS
    status = cow_status(m.console)
    assert status.cow_pages == len(writable) == 7
    assert (status.cow_faults, status.pages_duplicated) == (0, 0)
    assert status.memory_saved_bytes == 7 * PAGE
    assert all(p.refs == 2 and p.cow for p in status.pages.values())
    for va in writable:
        page = status.sharer(va, parent)
        assert page is not None, f"{va:#x} not tracked"
        assert page.sharers == {(va, parent), (va, child)}
        assert page.pa % PAGE == 0 and 0x4000_0000 <= page.pa < 0x4800_0000
    # Distinct frames: one per page, none tracked twice.
    assert len({p.pa for p in status.pages.values()}) == 7
    stats = cow_statistics(m.console)
    assert (stats.total_cow_pages, stats.memory_saved_bytes, stats.peak_cow_pages) == (7, 7 * PAGE, 7)
    # 7 sharers saved out of 14 mappings.
    assert stats.memory_efficiency_percent == 50
    assert stats.metadata_memory_bytes > 0

    all_vas = code_vas(kernel_image) + writable
    parent_frames = len(all_vas) + table_frames(all_vas)
    child_frames = table_frames(all_vas)
    assert mem(m.console).used == parent_frames + child_frames

    # Step 2: the child writes heap page 0.
    run(m.console, "cont")
    page0_before = status.sharer(USER_HEAP_START, parent)
    status = cow_status(m.console)
    assert (status.cow_faults, status.pages_duplicated) == (1, 1)
    assert status.cow_pages == 7
    assert status.memory_saved_bytes == 6 * PAGE
    page0 = status.pages[page0_before.pa]
    assert page0.refs == 1 and page0.sharers == {(USER_HEAP_START, parent)}
    assert status.sharer(USER_HEAP_START, child) is None
    for va in writable[:-HEAP_PAGES] + HEAP_VAS[1:]:
        assert status.sharer(va, child).refs == 2
    assert mem(m.console).used == parent_frames + child_frames + 1

    # Step 3: the parent writes heap page 0 (last sharer: reused), the child exits.
    result = run(m.console, "cont")
    assert result.statuses == {}
    assert [r.state for r in ps(m.console) if r.pid == child] == ["zombie"]
    status = cow_status(m.console)
    assert (status.cow_faults, status.pages_duplicated) == (2, 1)
    assert page0_before.pa not in status.pages
    assert status.cow_pages == 6 and status.memory_saved_bytes == 0
    assert all(p.refs == 1 and {pid for _, pid in p.sharers} == {parent} for p in status.pages.values())
    assert mem(m.console).used == parent_frames

    # Step 4: the parent reaps the child and exits.
    result = run(m.console, "cont")
    assert result.statuses == {parent: 0}
    assert ps(m.console) == []
    status = cow_status(m.console)
    assert status.cow_pages == 0 and status.pages == {} and status.memory_saved_bytes == 0
    assert status.peak_cow_pages == 7
    assert mem(m.console) == empty
