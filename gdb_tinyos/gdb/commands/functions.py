"""Convenience functions over the COW manager, for expressions and breakpoint conditions.

All decode memory only (no target code runs), so they are safe in conditions of
breakpoints on the debugger contract (kernel/src/debug.rs: x0 = event kind, x1/x2 = its
arguments), e.g. stop at a fork whose child shares the first heap page, or at the first
event after which a COW invariant is broken::

    break *tinyos::debug::tinyos_debug_event if $x0 == 19 && $cow_refs_va(0x10000000, $x2) > 1
    break *tinyos::debug::tinyos_debug_event if $cow_violations() != 0
    print $cow_refs(0x4000c000)

Inside a condition they read memory afresh at each evaluation (gdb sends no event between
a false condition and the next halt, so the stop-invalidated cache cannot be trusted).
"""

from __future__ import annotations

from ...tinyos.state import KernelState
from ..base import TinyOSFunction
from .cow_check import run_check
from ..registry import command
from ..session import Session


def _refs(state: KernelState, pa: int) -> int:
    return state.cow_summary().refs_of(pa)


def _pa_in(state: KernelState, va: int, pid: int) -> int:
    return state.walk(va, state.process(pid=pid)).pa or 0


@command
class CowRefs(TinyOSFunction):
    """$cow_refs(PA): the ref_count of the tracked COW frame holding PA, 0 if untracked.

    Example: (gdb) print $cow_refs(0x4000c000)
             stop if a frame reused in place (event 18, x2 = its PA) is still tracked:
             (gdb) break *tinyos::debug::tinyos_debug_event if $x0 == 18 && $cow_refs($x2) != 0"""

    name = "cow_refs"

    def compute(self, s: Session, pa: int) -> int:
        return _refs(s.state(), pa)


@command
class CowIsShared(TinyOSFunction):
    """$cow_is_shared(PA): 1 when PA's frame is tracked with more than one reference, else 0.

    Example: (gdb) print $cow_is_shared($cow_pa(0x10000000, 2))"""

    name = "cow_is_shared"

    def compute(self, s: Session, pa: int) -> int:
        return int(_refs(s.state(), pa) > 1)


@command
class CowPa(TinyOSFunction):
    """$cow_pa(VA, PID): the physical address VA maps to in process PID's own page tables
    (whichever process runs now), 0 when it is not mapped.

    Example: (gdb) print/x $cow_pa(0x10000000, 2)
             stop if, after a resolved COW fault (event 16: x1 = pid, x2 = fault VA), the VA
             still maps a shared frame (the fault path failed to break the sharing):
             (gdb) break *tinyos::debug::tinyos_debug_event if $x0 == 16 && $cow_refs($cow_pa($x2, $x1)) > 1"""

    name = "cow_pa"

    def compute(self, s: Session, va: int, pid: int) -> int:
        return _pa_in(s.state(), va, pid)


@command
class CowRefsVa(TinyOSFunction):
    """$cow_refs_va(VA, PID): $cow_refs of the frame VA maps in process PID (0 if unmapped
    or untracked).

    Example: (gdb) break *tinyos::debug::tinyos_debug_event if $x0 == 19 && $cow_refs_va(0x10000000, $x2) > 1"""

    name = "cow_refs_va"

    def compute(self, s: Session, va: int, pid: int) -> int:
        view = s.state()
        pa = _pa_in(view, va, pid)
        return _refs(view, pa) if pa else 0


@command
class CowViolations(TinyOSFunction):
    """$cow_violations(): the number of COW invariant violations `cow-check` would report.

    Example: (gdb) break *tinyos::debug::tinyos_debug_event if $cow_violations() != 0"""

    name = "cow_violations"

    def compute(self, s: Session) -> int:
        s.state()
        return len(run_check(s).violations)
