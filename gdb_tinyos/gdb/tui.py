"""``layout cow``: a TUI window with the COW summary, the tracked frames around the fault
being handled and the running process's shared pages (:mod:`gdb_tinyos.tinyos.panel`),
repainted at every stop, scrollable (arrow keys / mouse wheel with the window focused:
`focus cow`), styled with ANSI colours.

Example::

    (gdb) layout cow          # the window above the command line
    (gdb) focus cow           # then Up/Down/PgUp/PgDn scroll it
    (gdb) tui disable         # back to the plain command line
"""

from __future__ import annotations

import gdb

from ..aarch64 import USER_HALF
from ..core.errors import TinyOSError
from ..tinyos.panel import Line, PanelContext, panel_lines
from ..tinyos.reports import build_stats, build_status
from . import events
from .session import session
from .unwinder import read_trap_frame, trap_knowledge

WINDOW = "cow"
LAYOUT = "tui new-layout cow cow 2 status 0 cmd 1"
_STYLES = {"title": "\x1b[1;36m", "header": "\x1b[1m", "mark": "\x1b[1;33m", "bad": "\x1b[31m", "dim": "\x1b[2m"}
_RESET = "\x1b[0m"
_DATA_ABORTS = (0x24, 0x25)  # ESR_EL1.EC: data abort from EL0, at EL1
_windows: list[CowWindow] = []


def current_lines() -> list[Line]:
    """The panel for the state now (one line saying why when it cannot be decoded)."""
    try:
        if gdb.selected_inferior().pid == 0 or gdb.selected_thread() is None or gdb.selected_thread().is_running():
            return [Line("not stopped: the window fills at the next stop", "dim")]
        state = session().state()
        table = state.processes()
        cow, conventions = state.cow(), state.conventions()
        stats = build_stats(cow, state.model.manager_size, conventions)
        status = build_status(cow, state.pte_lookup(), limit=0, conventions=conventions)
        return panel_lines(stats, status, _context(state, table))
    except (TinyOSError, gdb.error) as exc:
        return [Line(f"cow: {exc}", "bad")]


def _context(state, table) -> PanelContext:
    current = table.current
    if current is None or not current.live:
        return PanelContext()
    fault_va = handled_fault()
    fault_pa = None
    if fault_va is not None and (fault_va >> 55) & 1 == USER_HALF:
        try:
            fault_pa = state.walk(fault_va, current).pa
        except TinyOSError:
            pass
    return PanelContext(current.pid, current.name, fault_va, fault_pa)


def handled_fault() -> int | None:
    """The fault address of the data abort the kernel is handling now: the newest trap frame
    on the stack (see gdb/unwinder.py) with EC 0x24/0x25; None when no abort is on the stack
    (FAR_EL1 alone may be a stale value from an earlier fault)."""
    known = trap_knowledge()
    if known is None:
        return None
    layout, site = known
    frame = gdb.newest_frame()
    while frame is not None:
        if frame.pc() == site.return_address:
            trap = read_trap_frame(layout, int(frame.read_register("sp")))
            return trap.far if (trap.esr >> 26) in _DATA_ABORTS else None
        frame = frame.older()
    return None


class CowWindow:
    """The window gdb creates for ``cow`` in a layout: paints lines, keeps a scroll offset."""

    def __init__(self, tui: gdb.TuiWindow) -> None:
        self.tui = tui
        self.tui.title = "TinyOS copy-on-write"
        self.top = 0
        self.lines: list[Line] = []
        _windows.append(self)
        self.refresh()

    def refresh(self) -> None:
        self.lines = current_lines()
        self.render()

    def render(self) -> None:
        if not self.tui.is_valid():
            return
        height, width = self.tui.height, self.tui.width
        self.top = max(0, min(self.top, len(self.lines) - height))
        shown = self.lines[self.top:self.top + height]
        text = "\n".join(_STYLES.get(line.style, "") + line.text[:width] + _RESET for line in shown)
        self.tui.write(text, True)

    def vscroll(self, num: int) -> None:
        self.top += num
        self.render()

    def hscroll(self, num: int) -> None:
        pass

    def click(self, x: int, y: int, button: int) -> None:
        pass

    def close(self) -> None:
        if self in _windows:
            _windows.remove(self)


def _on_stop(_event=None) -> None:
    for window in list(_windows):
        window.refresh()


_installed = False


def install() -> list[str]:
    """Register the window and the `cow` layout once; one line when the TUI is unavailable."""
    global _installed
    if _installed:
        return []
    if not hasattr(gdb, "register_window_type"):
        return ["tinyos: `layout cow` is unavailable: this gdb has no TUI window support"]
    try:
        gdb.register_window_type(WINDOW, CowWindow)
        gdb.execute(LAYOUT, to_string=True)
    except gdb.error as exc:
        return [f"tinyos: `layout cow` is unavailable: {exc}"]
    events.on("stop", _on_stop)  # after the hub dropped the old stop's state
    _installed = True
    return []
