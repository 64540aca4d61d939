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

from cow_serial import (
    BASE_WRITABLE_VAS,
    PAGE,
    USER_HEAP_START,
    cow_statistics,
    cow_status,
    frames,
    ps,
    run,
    started_pid,
)
from elf_facts import KernelImage

from gdb_tinyos.testing import QemuMachine

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
    empty = frames(m)
    assert empty.used == 0

    # Step 1: fork, both paused.
    parent = started_pid(run(m, f"run forkpause {HEAP_PAGES}"))
    rows = {r.pid: r for r in ps(m)}
    children = [r for r in rows.values() if r.ppid == parent]
    assert len(children) == 1
    child = children[0].pid
    assert rows[parent].state == rows[child].state == "paused"
    assert rows[parent].asid != rows[child].asid
    assert rows[parent].ttbr0 != rows[child].ttbr0
    assert rows[parent].brk == rows[child].brk == USER_HEAP_START + HEAP_PAGES * PAGE

    writable = BASE_WRITABLE_VAS + HEAP_VAS
    status = cow_status(m)
    assert status.pages == len(writable) == 7
    assert (status.faults, status.duplicated) == (0, 0)
    assert status.saved == 7 * PAGE
    assert all(p.refs == 2 and p.cow for p in status.tracked.values())
    for va in writable:
        page = status.by_va(va, parent)
        assert page is not None, f"{va:#x} not tracked"
        assert page.mappings == {(va, parent), (va, child)}
        assert page.pa % PAGE == 0 and 0x4000_0000 <= page.pa < 0x4800_0000
    # Distinct frames: one per page, none tracked twice.
    assert len({p.pa for p in status.tracked.values()}) == 7
    stats = cow_statistics(m)
    assert (stats.pages, stats.saved, stats.peak) == (7, 7 * PAGE, 7)
    # 7 sharers saved out of 14 mappings.
    assert stats.efficiency == 50
    assert stats.metadata > 0

    all_vas = code_vas(kernel_image) + writable
    parent_frames = len(all_vas) + table_frames(all_vas)
    child_frames = table_frames(all_vas)
    assert frames(m).used == parent_frames + child_frames

    # Step 2: the child writes heap page 0.
    run(m, "cont")
    page0_before = status.by_va(USER_HEAP_START, parent)
    status = cow_status(m)
    assert (status.faults, status.duplicated) == (1, 1)
    assert status.pages == 7
    assert status.saved == 6 * PAGE
    page0 = status.tracked[page0_before.pa]
    assert page0.refs == 1 and page0.mappings == {(USER_HEAP_START, parent)}
    assert status.by_va(USER_HEAP_START, child) is None
    for va in writable[:-HEAP_PAGES] + HEAP_VAS[1:]:
        assert status.by_va(va, child).refs == 2
    assert frames(m).used == parent_frames + child_frames + 1

    # Step 3: the parent writes heap page 0 (last sharer: reused), the child exits.
    result = run(m, "cont")
    assert result.statuses == {}
    assert [r.state for r in ps(m) if r.pid == child] == ["zombie"]
    status = cow_status(m)
    assert (status.faults, status.duplicated) == (2, 1)
    assert page0_before.pa not in status.tracked
    assert status.pages == 6 and status.saved == 0
    assert all(p.refs == 1 and {pid for _, pid in p.mappings} == {parent} for p in status.tracked.values())
    assert frames(m).used == parent_frames

    # Step 4: the parent reaps the child and exits.
    result = run(m, "cont")
    assert result.statuses == {parent: 0}
    assert ps(m) == []
    status = cow_status(m)
    assert status.pages == 0 and status.tracked == {} and status.saved == 0
    assert status.peak == 7
    assert frames(m) == empty
