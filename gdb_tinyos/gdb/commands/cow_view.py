"""``cow-status`` and ``cow-stats``: the shell's ``~1``/``~2`` decoded from memory.

Both only read memory (never run target code), so they work at any stop, including in
the middle of a COW fault; the figures equal the shell's at the same stop. The models and
their text faces live in :mod:`gdb_tinyos.tinyos.reports`.
"""

from __future__ import annotations

import argparse

from collections.abc import Iterable

from ...tinyos.reports import (
    DEFAULT_LIMIT,
    CowStats,
    CowStatus,
    build_stats,
    build_status,
    stats_text,
    status_chunks,
    status_text,
)
from ..base import TinyOSCommand, gdb_address, gdb_number
from ..registry import command
from ..session import Session
from ..target import require_stopped

def address_or_range(text: str) -> int | tuple[int, int]:
    """``PA`` or ``START-END`` (each a number or gdb expression; END exclusive)."""
    start, dash, end = text.partition("-")
    if dash and start.strip() and end.strip():
        try:
            lo, hi = gdb_address(start), gdb_address(end)
        except argparse.ArgumentTypeError:
            return gdb_address(text)  # a single expression with a minus in it ($x0-8)
        if hi <= lo:
            raise argparse.ArgumentTypeError(f"empty range {text!r}: END must be above START")
        return lo, hi
    return gdb_address(text)


@command
class CowStatusCommand(TinyOSCommand):
    """Show the COW manager: the shell's `~1` figures and every tracked page with its live PTEs.

    Usage: cow-status [--pid N] [--pa PA | --pa START-END] [--limit N] [--json]
    For each tracked frame: slot, physical address, refs, COW flag, original permissions,
    and for each recorded sharer its VA, pid and the permissions its PTE has NOW in that
    process's own page tables. `flags` marks contradictions: a COW page mapped writable,
    a VA that maps another frame or nothing, a pid that is not live, refs that differ
    from the recorded sharers. Only the first --limit pages (default 64, as `~1`; 0 = all)
    are walked; the rest are summarised; a long listing is written in chunks as it is
    made (gdb's pager can stop it). Reads memory only: safe at any stop (EL0, boot
    code, MMU off). Needs the COW manager; without a process table the live PTE column is
    left out and one line says so.
    Example:
      (gdb) cow-status --pid 2
      (gdb) cow-status --pa 0x4000c000 --json
      (gdb) cow-status --pa 0x41000000-0x41100000 --limit 0"""

    name = "cow-status"
    decodes_only = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--pid", type=gdb_number, help="only pages shared by this process")
        parser.add_argument("--pa", type=address_or_range,
                            help="only the page holding this physical address, or the frames in START-END")
        parser.add_argument("--limit", type=gdb_number, default=DEFAULT_LIMIT,
                            help=f"pages to show and walk (default {DEFAULT_LIMIT}; 0 = all)")

    def run(self, s: Session, args: argparse.Namespace) -> CowStatus:
        require_stopped()
        state = s.state()
        return build_status(state.cow_summary(), state.pte_lookup(), pid=args.pid, pa=args.pa, limit=args.limit,
                            conventions=state.conventions(), notes=state.notes("process-table"))

    def format_text(self, model: CowStatus) -> str:
        return status_text(model)

    def format_chunks(self, model: CowStatus) -> Iterable[str]:
        return status_chunks(model)


@command
class CowStatsCommand(TinyOSCommand):
    """Show the COW statistics: every figure of the shell's `~2`, then cross-checks.

    Usage: cow-stats [--json]
    Memory Efficiency is computed as the kernel does: memory_saved_bytes x 100 /
    (sum of ref_count x 4096), whole percent, 0 when nothing is tracked (upstream kernels
    divide by cow_pages_count: `set tinyos cow-efficiency pages`). The cross-checks
    recompute figures from the pages (occupied slots, sum of (mappings - 1) x 4096) and
    metadata_memory_bytes from the CowManager's DWARF size, for the statistics this kernel
    maintains (see `tinyos-info`). Needs the COW manager only. Reads memory only.
    Example:
      (gdb) cow-stats
      (gdb) cow-stats --json"""

    name = "cow-stats"
    decodes_only = True

    def run(self, s: Session, args: argparse.Namespace) -> CowStats:
        require_stopped()
        state = s.state()
        return build_stats(state.cow_summary(), state.model.manager_size, state.conventions(), notes=state.notes())

    def format_text(self, model: CowStats) -> str:
        return stats_text(model)
