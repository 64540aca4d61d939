"""``cow-check``: the COW invariants of :mod:`gdb_tinyos.tinyos.check` on the live kernel.

The status, for scripts: with violations the CLI command prints them (text or
``--json``), then fails with the gdb error ``cow-check: N violations``, so a gdb script
stops there and ``gdb.execute("cow-check")`` raises ``gdb.error``; clean, it prints ``cow-check: OK (N pages, M user PTEs checked)``.
MI ``-cow-check`` answers ``^done`` with the structured report (``ok``, ``summary``,
``violations``...) so an IDE gets the evidence; ``$cow_violations()`` gives the count in
expressions.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

import gdb

from ...core import render
from ...tinyos.check import CheckReport, check_cow
from ...tinyos.grouping import group_violations
from ..base import TinyOSCommand, gdb_number
from ..registry import command
from ..session import Session
from ..target import require_stopped


# Violations cow-check lists by default (after grouping); --max 0 lists all.
DEFAULT_MAX = 200


def run_check(s: Session, most: int = 0) -> CheckReport:
    """Check this stop's state: the manager, and every live process's user half indexed
    by frame and the frame allocator when the kernel has them (each decoded once per
    stop). Identical findings on consecutive frames are grouped; ``most`` > 0 lists only
    the first ``most`` (the rest are counted)."""
    require_stopped()
    state = s.state()
    caps = state.capabilities
    has_table, has_frames = caps.has("process-table"), caps.has("frame-allocator")
    missing = {p: caps.get(p).reason for p in ("process-table", "frame-allocator")}
    frames = state.frames() if has_frames else None  # first: RAM's bounds then come from this read
    report = check_cow(state.cow_summary(), state.processes() if has_table else None,
                       state.mappings() if has_table else None,
                       frames=frames, manager_size=state.model.manager_size,
                       conventions=state.conventions(), missing=missing)
    grouped = group_violations(report.violations)
    shown = grouped if most <= 0 else grouped[:most]
    return replace(report, violations=shown, omitted=len(grouped) - len(shown))


@command
class CowCheckCommand(TinyOSCommand):
    """Check the COW invariants across the manager, every live page table and the frame allocator.

    Usage: cow-check [--max N] [--json]
    Each kernel is checked against its own conventions (what ref_count counts, whether
    sharer pids pair with the VAs, which statistics it maintains: `tinyos-info` shows them);
    rules that need a piece the kernel lacks (process table, frame allocator) are listed as
    skipped with the reason.
    Checks: each tracked frame's ref_count = live user PTEs mapping it = recorded sharers;
    every recorded (va, pid) is a live process whose VA maps the frame, and every PTE
    mapping it is recorded; no COW frame is mapped writable; statistics agree with the
    pages (cow_pages_count/active_pages = occupied slots, memory_saved_bytes =
    sum (ref_count - 1) x 4096, peak >= current, metadata = size of CowManager); no tracked
    frame is free and every user-mapped frame's allocator count >= its mappings.
    Identical findings on consecutive frames are one violation with a frame count
    (`frames A-B (N frames)`); --max N lists the first N violations (default
    200, 0 = all) and counts the rest.
    Clean: prints `cow-check: OK (N pages, M user PTEs checked)`.
    Violations: prints each with its evidence, then FAILS with `cow-check: N violations`
    (a gdb error: a script stops there; `--json` prints the report before failing the
    same way). MI `-cow-check` returns the report with ok="true"/"false" instead;
    `$cow_violations()` is the count, for expressions and breakpoint conditions.
    Example:
      (gdb) cow-check
      (gdb) cow-check --max 5
      (gdb) python ok = gdb.execute("cow-check", to_string=True)   # raises gdb.error on violations"""

    name = "cow-check"
    decodes_only = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--max", type=gdb_number, default=DEFAULT_MAX,
                            help=f"violations to list (default {DEFAULT_MAX}; 0 = all)")

    def run(self, s: Session, args: argparse.Namespace) -> CheckReport:
        self._last = run_check(s, args.max)
        return self._last

    def plain(self, model: CheckReport) -> Any:
        return {"ok": model.ok, "summary": model.summary(), **render.to_plain(model)}

    def format_text(self, model: CheckReport) -> str:
        return model.describe()

    def invoke(self, argument: str, from_tty: bool) -> None:
        # The report is printed first (base invoke), then the status becomes gdb's.
        self._last: CheckReport | None = None
        super().invoke(argument, from_tty)
        if self._last is not None and not self._last.ok:
            raise gdb.GdbError(self._last.summary())
