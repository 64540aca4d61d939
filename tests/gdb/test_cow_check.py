"""cow-check on the live kernel: clean on a healthy fork, and reporting the exact
violations a test causes by writing target memory (a ref_count, a PTE, the frame
allocator's count), then clean again once the bytes are restored.

State: `run forkpause 3` (see test_cow_status.py): 3 heap + 1 data + 2 stack pages shared
by parent and child, refs 2, read-only. Expected findings are derived by hand from what
each write breaks (gdb_tinyos/check.py's rules)."""

from __future__ import annotations

import json

import pytest

from gdb_tinyos.testing.kernel import frame_allocator_expression
from gdb_tinyos.testing.shell import parse_cow_status, parse_ps

PAGE = 4096
HEAP = 0x1000_0000
RAM = 0x4000_0000
LINEAR = 0xFFFF_0000_0000_0000  # kernel VA = PA + KERNEL_OFFSET (the contract's linear map)
SHARED = 3 + 1 + 2
MANAGER = "tinyos::memory::cow::COW_MANAGER.data.value"
AP2_READ_ONLY = 1 << 7  # descriptor AP[2]: 1 = read-only at every EL


@pytest.fixture
def forked(tinyos_booted):
    """Stopped after `run forkpause 3`; also the kernel's own `~1` and `ps` of that state."""
    s = tinyos_booted
    s.shell("run forkpause 3")
    s.status = parse_cow_status(s.shell("~1"))
    s.ps = parse_ps(s.shell("ps"))
    s.gdb.interrupt()
    return s


@pytest.fixture(scope="module")
def frames(tinyos_kernel) -> str:
    """gdb's path to the frame allocator's state, found in DWARF as the plugin finds it."""
    return frame_allocator_expression(tinyos_kernel)


def violations(s) -> list[dict]:
    report = s.gdb.mi("-cow-check")["result"]
    return report["violations"]


def assert_fails_with(s, count: int) -> None:
    assert s.gdb.expect_one_line_error("cow-check") == f"cow-check: {count} violation{'s' if count != 1 else ''}"
    assert int(s.gdb.evaluate("$cow_violations()")) == count


def poke(s, address: int, value: int) -> None:
    """Write 8 bytes of target memory (C syntax: the kernel's frames are Rust)."""
    s.gdb.cli("set language c")
    try:
        s.gdb.cli(f"set {{unsigned long}}{address:#x} = {value:#x}")
    finally:
        s.gdb.cli("set language auto")


def child_ttbr0(s) -> tuple[int, int]:
    """(child pid, its L0 table PA) from the kernel's `ps`."""
    parent = next(r for r in s.ps if r.ppid == 0)
    child = next(r for r in s.ps if r.ppid == parent.pid)
    return child.pid, child.ttbr0


def test_healthy_fork_is_clean(forked):
    s = forked
    out = s.gdb.cli("cow-check").strip()
    assert out.startswith(f"cow-check: OK ({SHARED} pages, ")
    report = s.gdb.mi("-cow-check")["result"]
    assert (report["ok"], report["pages"], report["violations"]) == ("true", str(SHARED), [])
    assert json.loads(s.gdb.cli("cow-check --json"))["ok"] is True
    assert int(s.gdb.evaluate("$cow_violations()")) == 0


def test_corrupted_ref_count(forked):
    s = forked
    pa = min(s.status.pages)  # any tracked frame; the kernel indexes slots by frame
    slot = (pa - RAM) // PAGE
    field = f"{MANAGER}.cow_pages[{slot}].0.ref_count"
    assert int(s.gdb.evaluate(field)) == 2
    s.gdb.cli(f"set var {field} = 3")
    found = violations(s)
    # 3 refs vs 2 recorded sharers, vs 2 live PTEs, and memory_saved (6 pages' worth)
    # no longer equals Σ(refs-1)x4096 (7 pages' worth)
    assert sorted(v["kind"] for v in found) == ["ref-count", "ref-count-metadata", "statistics"]
    by_kind = {v["kind"]: v for v in found}
    assert by_kind["ref-count"]["pa"] == hex(pa)
    assert by_kind["ref-count"]["message"] == "ref_count is 3 but 2 live user PTEs map the frame"
    assert by_kind["statistics"]["message"].startswith(
        f"statistics.memory_saved_bytes is {SHARED * PAGE}, expected {(SHARED + 1) * PAGE}")
    assert_fails_with(s, 3)
    s.gdb.cli(f"set var {field} = 2")
    assert s.gdb.cli("cow-check").startswith("cow-check: OK")


def test_corrupted_pte_made_writable(forked):
    s = forked
    child, ttbr0 = child_ttbr0(s)
    va = HEAP + PAGE
    walk = json.loads(s.gdb.cli(f"va2pa {va:#x} --root {ttbr0:#x} --json"))
    leaf = walk["steps"][-1]
    entry = int(leaf["table"], 16) + 8 * leaf["index"]
    descriptor = int(leaf["descriptor"], 16)
    assert descriptor & AP2_READ_ONLY  # COW-shared: read-only
    poke(s, LINEAR + entry, descriptor & ~AP2_READ_ONLY)
    found = violations(s)
    assert [v["kind"] for v in found] == ["writable-shared"]
    assert found[0]["message"].startswith(f"pid {child} va {va:#x} (writable) maps a COW frame writable")
    status = json.loads(s.gdb.cli(f"cow-status --pid {child} --json"))
    flagged = [(x["va"], x["pid"], x["flags"]) for p in status["pages"] for x in p["sharers"] if x["flags"]]
    assert flagged == [(hex(va), child, ["COW page mapped writable"])]
    assert_fails_with(s, 1)
    poke(s, LINEAR + entry, descriptor)
    assert s.gdb.cli("cow-check").startswith("cow-check: OK")


def test_corrupted_frame_allocator_count(forked, frames):
    s = forked
    pa = max(s.status.pages)
    counter = f"{frames}.ref_counts[{(pa - RAM) // PAGE}]"
    assert int(s.gdb.evaluate(counter)) == 2  # fork counted the second mapping
    s.gdb.cli(f"set var {counter} = 0")
    found = violations(s)
    # a tracked frame marked free, and a frame mapped twice with a count of 0
    assert sorted((v["kind"], v["pa"]) for v in found) == [("frame-free", hex(pa)), ("frame-refs", hex(pa))]
    assert_fails_with(s, 2)
    s.gdb.cli(f"set var {counter} = 2")
    assert s.gdb.cli("cow-check").startswith("cow-check: OK")


def test_a_1gib_el0_writable_block_is_grouped_and_capped(forked, frames):
    """The issue's pathological state: one EL0-writable 1 GiB block at level 1 in the
    child, mapping PA 0x4000_0000-0x8000_0000 (all of RAM and 896 MiB beyond it). Per
    frame that was 262 138 violations; grouped, the frames beyond RAM are one."""
    s = forked
    _, ttbr0 = child_ttbr0(s)
    walk = json.loads(s.gdb.cli(f"va2pa {HEAP:#x} --root {ttbr0:#x} --json"))
    l1 = next(step for step in walk["steps"] if step["level"] == 1)
    entry = int(l1["table"], 16) + 8 * 1  # L1 index 1: VA 0x4000_0000-0x8000_0000, unused by forkpause
    assert int(s.gdb.evaluate(f"*({LINEAR + entry:#x} as *const u64)")) == 0
    leaf = int(walk["steps"][-1]["descriptor"], 16)
    attr_index_ns = leaf & (0b1111 << 2)  # the heap page's memory type
    block = 0x4000_0000 | attr_index_ns | 0b01 << 6 | 1 << 10 | 0b01  # a block, AP=01 (EL0 RW), AF
    poke(s, LINEAR + entry, block)
    try:
        ram_frames = int(s.gdb.evaluate(f"{frames}.frame_count"))
        ram_end = RAM + ram_frames * PAGE
        found = s.gdb.mi("-cow-check --max 0")["result"]["violations"]
        outside = [v for v in found if v["kind"] == "frame-outside-ram"]
        assert [(v["pa"], v["last"], v["count"]) for v in outside] == \
            [(hex(ram_end), hex(0x8000_0000 - PAGE), str((0x8000_0000 - ram_end) // PAGE))]
        assert len(found) < 100
        listed = s.gdb.mi("-cow-check --max 2")["result"]
        assert len(listed["violations"]) == 2 and listed["omitted"] == str(len(found) - 2)
        assert s.gdb.expect_one_line_error("cow-check --max 2") == \
            f"cow-check: {len(found)} violations ({len(found) - 2} not shown: --max 0 lists all)"
        assert int(s.gdb.evaluate("$cow_violations()")) == len(found)
    finally:
        poke(s, LINEAR + entry, 0)
    assert s.gdb.cli("cow-check").startswith("cow-check: OK")
