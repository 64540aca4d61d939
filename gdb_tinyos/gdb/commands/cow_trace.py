"""``cow-trace on|off``: log the kernel's debugger events without stopping the target.

A breakpoint on ``*tinyos_debug_event`` whose ``stop()`` reads x0/x1/x2 (kind, a, b),
decodes the event into one line (gdb_tinyos/tinyos/events.py, numbers from the kernel's contract), prints it, keeps it in a
ring buffer and returns False — the kernel runs on — unless ``--stop`` was given (then
the breakpoint is not silent: gdb prints the stop and its frame line, and MI's ``*stopped``
carries the frame, as for any breakpoint). A
second breakpoint at the entry of the fault handler
(``tinyos::process::cow_fault::handle_write_fault``) records which frame the faulting page
mapped before the fault (FAR_EL1 walked through the current process's tables), so a
copy's line shows the old frame and the new one. Both are internal breakpoints (not in
``info breakpoints``); they stay enabled during the COW commands' inferior calls, which
then log too but never stop.

``cow-trace`` alone shows the state and the last events (``--last N``), also as
``--json`` / ``-cow-trace``. On and off are idempotent; after ``file`` loads another ELF
the breakpoints are placed again from the new symbols (tracing stops, with one line, if
the new ELF has no ``tinyos_debug_event``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import gdb

from ...core import render
from ...core.address import Address, page_base
from ...tinyos.events import EventKinds, EventLog, TraceEvent
from ...core.errors import BuildIdMismatch, SymbolError, TargetStateError, TinyOSError
from .. import events
from ..base import TinyOSCommand, gdb_number
from ..inferior import HOOK, call_in_progress, kernel_address, register_breakpoint
from ..registry import command
from ..session import Session, check_running_build_id, session
from ..target import RUNNING, breakpoint_stop_context, require_live

FAULT_ENTRY = "tinyos::process::cow_fault::handle_write_fault"
DEFAULT_CAPACITY = 256
_MAX_LINE = 256


class _TracerBreakpoint(gdb.Breakpoint):
    """An internal, silent breakpoint at ``address`` reporting to ``tracer``."""

    def __init__(self, tracer: Tracer, address: int) -> None:
        super().__init__(f"*{address:#x}", gdb.BP_BREAKPOINT, internal=True)
        self.silent = True
        self.tracer = tracer


class _Hook(_TracerBreakpoint):
    """The event breakpoint: decode, log, stop only when asked."""

    def stop(self) -> bool:
        with breakpoint_stop_context():
            return self.tracer.on_event()


class _FaultEntry(_TracerBreakpoint):
    """Entry of the fault handler: remember the faulting page's frame; never stops."""

    def stop(self) -> bool:
        with breakpoint_stop_context():
            self.tracer.on_fault_entry()
        return False


@dataclass
class Tracer:
    log: EventLog = field(default_factory=lambda: EventLog(EventKinds({}), DEFAULT_CAPACITY))
    stop_on_event: bool = False
    hook: _Hook | None = None
    entry: _FaultEntry | None = None
    errors: int = 0
    last_error: str = ""

    @property
    def active(self) -> bool:
        return self.hook is not None and self.hook.is_valid()

    def enable(self, s: Session, stop: bool) -> None:
        self.stop_on_event = stop
        if not self.active:
            self._place(s)
        self.hook.silent = not stop

    def disable(self) -> None:
        for bp in (self.hook, self.entry):
            if bp is not None and bp.is_valid():
                register_breakpoint(bp, False)
                bp.delete()
        self.hook = self.entry = None

    def replace(self, s: Session) -> str | None:
        """Place the breakpoints again from the (new) ELF; a message if tracing had to stop."""
        if self.hook is None:
            return None
        self.disable()
        try:
            self._place(s)
        except (TinyOSError, gdb.error) as exc:
            return f"cow-trace: tracing stopped: {exc}"
        return None

    def _place(self, s: Session) -> None:
        kinds = s.model().event_kinds  # the kernel's own numbers (MissingCapability without a contract)
        if kinds != self.log.kinds:
            self.log = EventLog(kinds, DEFAULT_CAPACITY)
        info = s.debuginfo()
        try:
            hook = kernel_address(s, HOOK)
        except SymbolError as exc:
            raise SymbolError(f"cow-trace: {exc}") from None
        _require_running_kernel_is(s)
        self.hook = _Hook(self, hook)
        self.hook.silent = not self.stop_on_event  # also when placed again after `file`
        register_breakpoint(self.hook)
        try:
            entry = info.symbol(FAULT_ENTRY)
        except SymbolError:
            self.entry = None  # old frames are then shown as "?"
        else:
            self.entry = _FaultEntry(self, entry.address)
            register_breakpoint(self.entry)

    # -- breakpoint callbacks (gdb calls them with the target stopped) --------------------

    def on_event(self) -> bool:
        s = session()
        s.invalidate()  # the target ran since the last stop gdb reported
        try:
            kind = s.target.read_register("x0") & 0xFFFF_FFFF
            a, b = s.target.read_register("x1"), s.target.read_register("x2")
            pid, text = self._context(s, kind, a, b)
            event = self.log.record(kind, a, b, pid=pid, text=text)
        except (TinyOSError, gdb.error) as exc:
            self._failed(exc)
            return self.stop_on_event and not call_in_progress()
        gdb.write(render.terminal_safe(f"cow-trace: {event.describe()}") + "\n")
        return self.stop_on_event and not call_in_progress()

    def on_fault_entry(self) -> None:
        s = session()
        s.invalidate()
        try:
            state = s.state()
            current = state.processes().current
            far = s.target.read_register("FAR_EL1")
            old = state.walk(far, current).pa if current is not None else None
            self.log.before_fault(current.pid if current else None, far,
                                  page_base(old) if old is not None else None)
        except (TinyOSError, gdb.error) as exc:
            self._failed(exc)

    def _context(self, s: Session, kind: int, a: int, b: int) -> tuple[int | None, str | None]:
        if self.log.kinds.name(kind) in ("command", "done"):
            raw = s.state().target.read_virtual(a, min(b, _MAX_LINE)) if b else b""
            return None, raw.decode("utf-8", "replace")
        current = s.state().processes().current
        return (current.pid if current else None), None

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        gdb.write(f"cow-trace: could not decode an event: {render.printable(self.last_error)}\n", gdb.STDERR)


def _require_running_kernel_is(s: Session) -> None:
    """BuildIdMismatch when the running kernel is another build: the hook's address from
    this ELF would be the middle of some other function there."""
    try:
        check_running_build_id(s)
    except BuildIdMismatch as exc:
        raise BuildIdMismatch(f"cow-trace: refusing to place breakpoints: {exc}") from None
    except TinyOSError:
        pass  # not readable here (not connected, running): the decoders report their own error


_TRACER = Tracer()
_RELOAD_HANDLER: list = []


def tracer() -> Tracer:
    return _TRACER


def _connect_reload() -> None:
    """After `file` loads an ELF, place the breakpoints again from its symbols (once)."""
    if _RELOAD_HANDLER:
        return

    def reload(_event=None) -> None:
        message = _TRACER.replace(session())
        if message:
            gdb.write(message + "\n", gdb.STDERR)

    events.on("new_objfile", reload)
    _RELOAD_HANDLER.append(reload)


@dataclass(frozen=True)
class TraceState:
    active: bool
    stop: bool
    hook: Address | None
    fault_entry: Address | None
    events_seen: int
    capacity: int
    decode_errors: int
    last_error: str
    message: str
    events: tuple[TraceEvent, ...]

    def describe(self) -> str:
        state = (f"cow-trace is {'on' if self.active else 'off'}"
                 + (f" ({'stopping' if self.stop else 'not stopping'} at each event)" if self.active else "")
                 + f"; {self.events_seen} events seen")
        lines = [self.message] if self.message else []
        lines.append(state)
        if self.decode_errors:
            lines.append(f"{self.decode_errors} events could not be decoded (last: {self.last_error})")
        lines += [e.describe() for e in self.events]
        return "\n".join(lines)


@command
class CowTrace(TinyOSCommand):
    """Log copy-on-write events (faults, copies, reuses, fork, exit) without stopping.

    Usage: cow-trace [on [--stop] | off | clear] [--last N] [--json]
    `on` puts a breakpoint on tinyos_debug_event that prints one line per event (fault VA,
    pid, old and new frame, copy or reuse, fork, exit, shell commands) and lets the kernel
    run on; --stop makes it stop there instead, printing the frame as gdb's own breakpoints
do (`Breakpoint -N, tinyos::debug::tinyos_debug_event (...)`: the breakpoint is internal). `cow-trace` alone shows the state and the
    last N events (kept in a ring buffer of 256).
    Example:
      (gdb) cow-trace on
      (gdb) continue
      cow-trace: #3     copy   pid 2 va 0x800000: frame 0x40006000 -> 0x4001f000 (copied)"""

    name = "cow-trace"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("action", nargs="?", choices=("on", "off", "clear", "show"), default="show")
        parser.add_argument("--stop", action="store_true", help="with on: stop the target at each event")
        parser.add_argument("--last", type=gdb_number, default=20, metavar="N", help="events shown (default 20)")

    def run(self, s: Session, args: argparse.Namespace) -> TraceState:
        t = tracer()
        message = ""
        if args.action == "on":
            if s.core is not None:
                require_live()  # refuses: a core dump has no kernel to trace
            _refuse_if_running()
            was = t.active
            _connect_reload()
            t.enable(s, args.stop)
            where = f"{HOOK} at {t.hook.location}" if t.hook else HOOK
            message = f"cow-trace {'already on' if was else 'on'}: breakpoint on {where}"
        elif args.action == "off":
            message = "cow-trace off" if t.active else "cow-trace was already off"
            t.disable()
        elif args.action == "clear":
            t.log.clear()
            message = "cow-trace: log cleared"
        return TraceState(
            active=t.active, stop=t.stop_on_event, hook=_address(t.hook), fault_entry=_address(t.entry),
            events_seen=t.log.seen, capacity=t.log.capacity, decode_errors=t.errors, last_error=t.last_error, message=message,
            events=tuple(t.log.last(args.last if args.action == "show" else 0)),
        )

    def format_text(self, model: TraceState) -> str:
        return model.describe()


def _refuse_if_running() -> None:
    """Breakpoints cannot be inserted while a connected target runs (gdb's all-stop mode)."""
    if gdb.selected_inferior().pid != 0:
        thread = gdb.selected_thread()
        if thread is not None and thread.is_valid() and thread.is_running():
            raise TargetStateError(RUNNING)


def _address(bp: gdb.Breakpoint | None) -> int | None:
    if bp is None or not bp.is_valid():
        return None
    return Address(int(bp.location.lstrip("*"), 0))
