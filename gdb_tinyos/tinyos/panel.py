"""What the ``cow`` TUI window shows, as styled lines (pure: the gdb window only paints them).

Three parts, from the same models as ``cow-stats`` and ``cow-status``: the summary figures
(the shell's ``~2`` names and values), the tracked frames around the frame the current
fault address maps (``FAR_EL1`` translated in the running process; ``>`` marks it), and the
running process's own shared pages with their live PTE permissions.

Example::

    lines = panel_lines(stats, status, PanelContext(pid=2, fault_va=0x800000, fault_pa=0x40006000))
    for line in lines: print(line.text)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.address import page_base
from ..core.render import printable
from .reports import CowStats, CowStatus

AROUND = 4  # frames shown on each side of the faulting one


@dataclass(frozen=True)
class PanelContext:
    """Where the CPU is: the running process (None: the shell) and the fault being handled."""

    pid: int | None = None
    name: str = ""
    fault_va: int | None = None
    fault_pa: int | None = None


@dataclass(frozen=True)
class Line:
    text: str
    style: str = "normal"  # title, header, normal, mark, bad, dim


def summary_figures(stats: CowStats) -> list[tuple[str, str]]:
    """The ``~2`` labels and values, as cow-stats prints them."""
    return [
        ("Total COW Pages", str(stats.total_cow_pages)),
        ("Total COW Faults", str(stats.total_cow_faults)),
        ("Pages Duplicated", str(stats.pages_duplicated)),
        ("Memory Saved", f"{stats.memory_saved_bytes} bytes"),
        ("Metadata Memory", f"{stats.metadata_memory_bytes} bytes"),
        ("Peak COW Pages", str(stats.peak_cow_pages)),
        ("Memory Efficiency", f"{stats.memory_efficiency_percent}%"),
    ]


def panel_lines(stats: CowStats, status: CowStatus, ctx: PanelContext) -> list[Line]:
    lines = [Line("COW summary", "title")]
    if not stats.initialised:
        return lines + [Line(f"COW manager not initialised ({stats.symbol} holds None)", "dim")]
    lines += [Line(f"  {label}: {value}") for label, value in summary_figures(stats)]
    lines += [Line(f"  warning: {w}", "bad") for w in stats.warnings]
    bad = [c.name for c in stats.checks if not c.ok]
    if bad:
        lines.append(Line(f"  disagree with the pages: {', '.join(bad)}", "bad"))
    lines += [Line("")] + _around_fault(status, ctx) + [Line("")] + _current_sharers(status, ctx)
    return lines


def _around_fault(status: CowStatus, ctx: PanelContext) -> list[Line]:
    pages = sorted(status.pages, key=lambda p: p.pa)
    if ctx.fault_va is not None:
        where = f"fault at {ctx.fault_va:#x}" + (f" -> {ctx.fault_pa:#x}" if ctx.fault_pa is not None else " (unmapped)")
    else:
        where = "no fault being handled"
    lines = [Line(f"Tracked frames around the fault ({where})", "title")]
    if not pages:
        return lines + [Line("  no tracked frame", "dim")]
    frame = page_base(ctx.fault_pa) if ctx.fault_pa is not None else None
    at = next((i for i, p in enumerate(pages) if p.pa >= frame), len(pages) - 1) if frame is not None else 0
    lines.append(Line(f"  {'frame':<12} {'refs':>4}  cow  sharers (va/pid)", "header"))
    for page in pages[max(0, at - AROUND): at + AROUND + 1]:
        mark = ">" if frame is not None and page.pa == frame else " "
        style = "bad" if page.flagged else ("mark" if mark == ">" else "normal")
        sharers = ", ".join(f"{s.va}/{s.pid}" for s in page.sharers) or "-"
        lines.append(Line(f"{mark} {str(page.pa):<12} {page.refs:>4}  {'yes' if page.cow else 'no ':<3}  {sharers}", style))
    return lines


def _current_sharers(status: CowStatus, ctx: PanelContext) -> list[Line]:
    if ctx.pid is None:
        return [Line("Current process: none (the kernel's shell runs)", "title")]
    title = f"Pages pid {ctx.pid}" + (f" ({printable(ctx.name)})" if ctx.name else "") + " shares"
    mine = [(p, s) for p in status.pages for s in p.sharers if s.pid == ctx.pid]
    lines = [Line(title, "title")]
    if not mine:
        return lines + [Line("  none", "dim")]
    lines.append(Line(f"  {'va':<16} {'frame':<12} {'refs':>4}  live PTE", "header"))
    for page, s in sorted(mine, key=lambda ps: ps[1].va):
        flags = "  " + "; ".join(s.flags) if s.flags else ""
        lines.append(Line(f"  {str(s.va):<16} {str(page.pa):<12} {page.refs:>4}  {s.pte}{flags}",
                          "bad" if s.flags else "normal"))
    return lines
