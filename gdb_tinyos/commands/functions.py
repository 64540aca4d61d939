"""Convenience functions over the COW manager, for expressions and breakpoint conditions.

All decode memory only (no target code runs), so they are safe in conditions of
breakpoints on the debugger contract, e.g. stop at a duplication only when the old frame
was shared three ways, or at the first event after which an invariant breaks::

    break *tinyos_debug_event if $x0 == 16 && $cow_refs_va($x2, $x1) > 1
    break *tinyos_debug_event if $cow_violations() != 0
    print $cow_refs(0x4000c000)
"""

from __future__ import annotations

from ..errors import TranslationError
from .base import TinyOSFunction
from .cow_check import run_check
from .registry import command
from .session import Session
from .target import require_stopped


def _refs(s: Session, pa: int) -> int:
    require_stopped()
    page = s.kernel_view().cow().page(pa)
    return 0 if page is None else page.ref_count


def _pa_in(s: Session, va: int, pid: int) -> int:
    require_stopped()
    view = s.kernel_view()
    process = view.processes().by_pid(pid)
    if process is None or not process.live:
        raise TranslationError(f"pid {pid} is not a live process")
    return view.walk(va, process).pa or 0


@command
class CowRefs(TinyOSFunction):
    """$cow_refs(PA): the ref_count of the tracked COW frame holding PA, 0 if untracked.

    Example: (gdb) print $cow_refs(0x4000c000)
             (gdb) break *tinyos_debug_event if $x0 == 17 && $cow_refs($x2) == 0"""

    name = "cow_refs"

    def compute(self, s: Session, pa: int) -> int:
        return _refs(s, pa)


@command
class CowIsShared(TinyOSFunction):
    """$cow_is_shared(PA): 1 when PA's frame is tracked with more than one reference, else 0.

    Example: (gdb) print $cow_is_shared($cow_pa(0x10000000, 2))"""

    name = "cow_is_shared"

    def compute(self, s: Session, pa: int) -> int:
        return int(_refs(s, pa) > 1)


@command
class CowPa(TinyOSFunction):
    """$cow_pa(VA, PID): the physical address VA maps to in process PID's own page tables
    (whichever process runs now), 0 when it is not mapped.

    Example: (gdb) print/x $cow_pa(0x10000000, 2)
             (gdb) break *tinyos_debug_event if $x0 == 16 && $cow_refs($cow_pa($x2, $x1)) > 1"""

    name = "cow_pa"

    def compute(self, s: Session, va: int, pid: int) -> int:
        return _pa_in(s, va, pid)


@command
class CowRefsVa(TinyOSFunction):
    """$cow_refs_va(VA, PID): $cow_refs of the frame VA maps in process PID (0 if unmapped
    or untracked).

    Example: (gdb) break *tinyos_debug_event if $x0 == 16 && $cow_refs_va($x2, $x1) > 1"""

    name = "cow_refs_va"

    def compute(self, s: Session, va: int, pid: int) -> int:
        pa = _pa_in(s, va, pid)
        return _refs(s, pa) if pa else 0


@command
class CowViolations(TinyOSFunction):
    """$cow_violations(): the number of COW invariant violations `cow-check` would report.

    Example: (gdb) break *tinyos_debug_event if $cow_violations() != 0"""

    name = "cow_violations"

    def compute(self, s: Session) -> int:
        return len(run_check(s).violations)
