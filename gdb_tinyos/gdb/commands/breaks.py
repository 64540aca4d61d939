"""``tinyos-break KIND``: a breakpoint on the kernel's debugger events by name, and
``$cow_event()``: the event the CPU is stopped at.

The kernel announces what it did through ``tinyos_debug_event(kind, a, b)``; the kind
numbers are the kernel's own, read from its debugger contract
(:class:`gdb_tinyos.tinyos.events.EventKinds`), so the names work on any kernel that
speaks the contract. Stopping at one kind used to mean a hand-written
condition on a register (``tbreak *tinyos::debug::tinyos_debug_event if ($x0 & 0xffffffff) == 19``)
that fails where gdb's language is C (the reset stop) and that nobody agreed how to mask.
Here the breakpoint is placed at the hook's ELF symbol address (no language involved) and
its condition is Python (:meth:`EventBreakpoint.stop`): the kind is the low 32 bits of x0
(a ``u32`` argument), the pid filter reads the event's own pid (or, for a copy or a reuse,
the process on the CPU).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import gdb

from ...core.errors import TargetStateError, TinyOSError
from ...core.render import Address
from ..base import TinyOSCommand, TinyOSFunction, gdb_number
from ..inferior import HOOK, call_in_progress, kernel_address
from ..registry import command
from ..session import Session, session
from ..target import breakpoint_stop_context, refuse_core

# The names users type (the events' short names; their numbers come from the kernel).
BREAK_KINDS = ("fork", "fault", "copy", "reuse", "exit", "kill", "command", "done")


@dataclass(frozen=True)
class EventAtStop:
    """The debugger event the CPU is stopped at (x0 = kind, x1 = a, x2 = b)."""

    kind: int
    name: str
    a: Address
    b: Address

    def describe(self) -> str:
        return f"{self.name} ({self.kind}): a={self.a} b={self.b}"


def _registers(frame: gdb.Frame) -> tuple[int, int, int]:
    mask = (1 << 64) - 1
    x0, x1, x2 = (int(frame.read_register(r)) & mask for r in ("x0", "x1", "x2"))
    return x0 & 0xFFFF_FFFF, x1, x2


def _hook_address(s: Session) -> int:
    return kernel_address(s, HOOK)


def event_at_stop(s: Session) -> EventAtStop:
    """The event at the current stop, or TargetStateError when the CPU is not at the hook."""
    frame = gdb.newest_frame()
    if frame.pc() != _hook_address(s):
        raise TargetStateError(f"not stopped at {HOOK} (pc {frame.pc():#x}); stop at an event first, "
                               "e.g. `tinyos-break fork` and continue")
    kind, a, b = _registers(frame)
    return EventAtStop(kind, s.model().event_kinds.name(kind) or "unknown", Address(a), Address(b))


class EventBreakpoint(gdb.Breakpoint):
    """A breakpoint on the hook that stops only for ``kind`` (and ``pid``, when given)."""

    def __init__(self, address: int, name: str, kind: int, pid: int | None, temporary: bool) -> None:
        super().__init__(f"*{address:#x}", gdb.BP_BREAKPOINT, temporary=temporary)
        self.name, self.kind, self.pid = name, kind, pid

    def stop(self) -> bool:
        if call_in_progress():
            return False
        with breakpoint_stop_context():
            try:
                kind, a, b = _registers(gdb.newest_frame())
                if kind != self.kind or (self.pid is not None and self.pid not in _event_pids(self.name, a, b)):
                    return False
            except (TinyOSError, gdb.error) as exc:
                # A condition that cannot be decided stops: the user sees why, not a traceback.
                gdb.write(f"tinyos-break: cannot check breakpoint {self.number}: {exc}\n", gdb.STDERR)
                return True
            event = EventAtStop(kind, self.name, Address(a), Address(b))
            gdb.write(f"tinyos-break: {event.describe()}\n")
            return True


_MADE: list = []


def created_quietly(make):
    """``make()``, a gdb.Breakpoint, without gdb's announcement on stdout ("Breakpoint 2 at
    ..."): --json output must be the JSON alone, so it is made inside a command whose output
    gdb captures."""
    _MADE.append(make)
    gdb.execute(f"python import {__name__} as made; made._MADE.append(made._MADE.pop()())", to_string=True)
    return _MADE.pop()


def _event_pids(name: str, a: int, b: int) -> tuple[int, ...]:
    """The processes an event is about: fork (parent, child), fault/exit/kill (a), copy
    and reuse (the process on the CPU: the event itself carries a VA and a frame)."""
    if name == "fork":
        return a, b
    if name in ("fault", "exit", "kill"):
        return (a,)
    s = session()
    s.invalidate()  # the target ran since the last stop gdb reported
    current = s.state().processes().current
    return (current.pid,) if current is not None else ()


@dataclass(frozen=True)
class EventBreak:
    number: int
    kind: str
    kind_number: int
    pid: int | None
    temporary: bool
    address: Address

    def describe(self) -> str:
        which = f" of pid {self.pid}" if self.pid is not None else ""
        return (f"tinyos-break: {'temporary ' if self.temporary else ''}breakpoint {self.number} on {self.kind} "
                f"events{which} ({HOOK} kind {self.kind_number} at {self.address})")


@command
class TinyOSBreak(TinyOSCommand):
    """Break on a TinyOS kernel event by name: fork, fault, copy, reuse, exit, kill, command, done.

    Usage: tinyos-break fork|fault|copy|reuse|exit|kill|command|done [--pid N] [--temporary] [--json]
    A breakpoint on the kernel's debugger hook (tinyos_debug_event) that stops only for that
    event -- no hand-written register condition. --pid N: only events about process N (a
    fork's parent or child; the faulting, exiting or killed process; for copy and reuse the
    process on the CPU); N may be an expression. Works from any stop of a live kernel, the
    reset stop included (a core dump raises no events: refused there). It prints the event
    when it stops; `$cow_event()` (`$cow_event_a()`, `$cow_event_b()`) reads it.
    Events: fork (a = parent, b = child), fault (COW fault resolved: a = pid, b = fault VA),
    copy (page duplicated: a = page VA, b = new frame), reuse (page reused in place: a = page
    VA, b = frame), exit (a = pid, b = status), kill (a = pid), command (a shell command
    starts: a = line VA, b = length), done (the shell command finished).
    Example:
      (gdb) tinyos-break fork --temporary
      (gdb) tinyos-break fault --pid 2
      (gdb) continue
      (gdb) pt --pid $cow_event_b()"""

    name = "tinyos-break"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("kind", choices=tuple(BREAK_KINDS), help="the event to stop at")
        parser.add_argument("--pid", type=gdb_number, help="only events about this process")
        parser.add_argument("--temporary", action="store_true", help="delete the breakpoint after its first stop")

    def run(self, s: Session, args: argparse.Namespace) -> EventBreak:
        refuse_core()  # a dump raises no events
        if args.kind in ("command", "done") and args.pid is not None:
            self.parser.error("--pid does not apply to command events (the shell runs no process)")
        address = _hook_address(s)
        kind = s.model().event_kinds.number(args.kind)
        make = lambda: EventBreakpoint(address, args.kind, kind, args.pid, args.temporary)  # noqa: E731
        bp = created_quietly(make) if args.json else make()
        return EventBreak(bp.number, args.kind, kind, args.pid, args.temporary, Address(address))

    def format_text(self, model: EventBreak) -> str:
        return model.describe()


@command
class CowEvent(TinyOSFunction):
    """$cow_event(): the kind number of the TinyOS debugger event the CPU is stopped at ($cow_event_a()/$cow_event_b(): its arguments).

    tinyos-break prints the event's name and arguments when it stops; in expressions and
    conditions the numbers serve (gdb cannot hand a string to Rust mode without a heap).
    Example: (gdb) tinyos-break fork
             (gdb) continue
             tinyos-break: fork (19): a=0x1 b=0x2
             (gdb) print $cow_event()
             $1 = 19
             (gdb) print $cow_event_b()
             $2 = 2
    An error when the CPU is not stopped at tinyos_debug_event."""

    name = "cow_event"

    def compute(self, s: Session) -> int:
        return event_at_stop(s).kind


@command
class CowEventA(TinyOSFunction):
    """$cow_event_a(): the first argument (x1) of the TinyOS debugger event the CPU is stopped at.

    Example: (gdb) print $cow_event_a()     -- at a fork: the parent's pid"""

    name = "cow_event_a"

    def compute(self, s: Session) -> int:
        return int(event_at_stop(s).a)


@command
class CowEventB(TinyOSFunction):
    """$cow_event_b(): the second argument (x2) of the TinyOS debugger event the CPU is stopped at.

    Example: (gdb) pt --pid $cow_event_b()  -- at a fork: the child's address space"""

    name = "cow_event_b"

    def compute(self, s: Session) -> int:
        return int(event_at_stop(s).b)
