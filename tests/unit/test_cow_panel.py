"""The cow TUI window's lines, from hand-written cow-stats/cow-status models."""

from __future__ import annotations

from gdb_tinyos.core.address import Address
from gdb_tinyos.tinyos.panel import AROUND, PanelContext, panel_lines
from gdb_tinyos.tinyos.reports import CowStats, CowStatus, PageView, SharerView, stats_text

A = Address
RO = "EL1:R-- EL0:R--"


def stats() -> CowStats:
    return CowStats("COW_MANAGER", True, False, total_cow_pages=12, total_cow_faults=3, pages_duplicated=2,
                    memory_saved_bytes=4096 * 12, metadata_memory_bytes=99, peak_cow_pages=14,
                    memory_efficiency_percent=50, tracked_pages=12, total_mappings=24, capacity=64)


def status() -> CowStatus:
    pages = tuple(PageView(i, A(0x4000_0000 + i * 0x1000), 2, True, "UserData",
                           (SharerView(A(0x1000_0000 + i * 0x1000), 1, RO, None),
                            SharerView(A(0x1000_0000 + i * 0x1000), 2, RO, None)))
                  for i in range(12))
    return CowStatus("COW_MANAGER", A(0x1000), True, False, 64, 12, None, pages)


def texts(lines):
    return [line.text for line in lines]


def test_summary_has_the_cow_stats_figures():
    lines = texts(panel_lines(stats(), status(), PanelContext()))
    kernel_lines = stats_text(stats()).split("\n")[1:8]  # the ~2 lines cow-stats prints
    assert [line.strip() for line in lines[1:8]] == kernel_lines


def test_frames_around_the_fault_are_marked():
    ctx = PanelContext(2, "forkpause", 0x1000_7000, 0x4000_7123)
    lines = panel_lines(stats(), status(), ctx)
    around = [l for l in lines if l.text[:1] in (">", " ") and "yes" in l.text]
    frames = [int(l.text[2:14], 16) for l in around]
    assert frames == [0x4000_0000 + i * 0x1000 for i in range(7 - AROUND, 7 + AROUND + 1)]
    marked = [l for l in around if l.text.startswith(">")]
    assert len(marked) == 1 and marked[0].style == "mark" and "0x40007000" in marked[0].text
    assert any("fault at 0x10007000 -> 0x40007123" in t for t in texts(lines))


def test_current_process_pages_and_escaped_name():
    lines = texts(panel_lines(stats(), status(), PanelContext(1, "evil\x1b[2J")))
    head = next(t for t in lines if t.startswith("Pages pid 1"))
    assert "\x1b" not in head and "evil\\x1b[2J" in head
    mine = [t for t in lines if t.startswith("  0x1000")]
    assert len(mine) == 12 and all(RO in t for t in mine)
    assert "Current process: none" in texts(panel_lines(stats(), status(), PanelContext()))[-1]


def test_uninitialised_manager():
    lines = panel_lines(CowStats("COW_MANAGER", False, None), status(), PanelContext())
    assert "not initialised" in lines[-1].text
