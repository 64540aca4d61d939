"""Calling the kernel's debugger entry points (kernel/src/debug.rs) from gdb, safely.

An inferior call runs kernel code on the stopped CPU: gdb saves every register, points
the PC at the function, the LR at the ELF entry point (a temporary breakpoint), runs the
target until the function returns there, and restores the registers. That is only sound
at a **safe point**, checked before every call (:func:`require_safe_point`):

1. gdb is connected and the target is stopped;
2. the CPU is at EL1 (EL0 would run kernel code with a user's registers, stack and EL0
   permissions; EL2/EL3 are boot code) and the MMU is on (SCTLR_EL1.M = 1);
3. the stop is at one of the kernel's quiet places:
   - the debugger hook ``tinyos_debug_event`` (the contract emits every event with the
     kernel's structures consistent and no lock held), or
   - the shell waiting for a line (the newest frames are the UART read inside
     ``tinyos::shell::read_line``: between two commands, nothing half done);
   anywhere else (a breakpoint inside the fault path, after ``finish``, ``stepi``) the
   kernel may be half way through an update that no lock word shows;
4. ``COW_MANAGER``, ``PROCESSES`` and ``FRAME_ALLOCATOR`` are unlocked (read from memory:
   a call would dead-lock on, or see half of, the update that holds one);
5. no process is on the CPU (``CURRENT`` = none): the entry points that change mappings
   run the shell's code (and ``tinyos_cow_run_test`` the scheduler), which the kernel
   allows only from the shell's context (it answers ``STATUS_IN_PROCESS`` otherwise).

The kernel checks 4 and 5 again itself (``STATUS_BUSY``, ``STATUS_IN_PROCESS``); checking
them here first gives the reason in one sentence without running anything. The running
kernel must also be the loaded ELF (build-id): calling an address taken from another
build would jump into the middle of some other function.

The call itself (:func:`call_kernel`) is made in C language mode (GDB 13 must never
print Rust values, facts.md section 2) through a function-pointer cast of the symbol's
address, with ``unwindonsignal on`` (a signal during the call restores the registers),
every breakpoint suspended -- the user's and the plugin's own (``cow-trace``,
``tinyos-break``): a stop inside the call would leave gdb in the called function's frame,
and a tracing breakpoint would turn each of the call's events into a round trip -- and a
watchdog: after ``timeout`` seconds (more than 0, at most ``MAX_TIMEOUT``) it interrupts
the target and gdb unwinds the call. The kernel may then be half way through the
operation (a process created, frames allocated): when the ELF has
``tinyos_debug_recover`` it is called at once to roll that back, and the command's error
says what happened. Every setting and breakpoint is restored afterwards.

Example (inside gdb)::

    point = require_safe_point(session())
    status = call_kernel(session(), "tinyos_cow_protect", [0x1000_0000, 2])
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import gdb

from ..aarch64 import SCTLR
from ..tinyos.capabilities import PIECES
from ..core.errors import BuildIdMismatch, InferiorCallError, SymbolError, TargetStateError
from ..core.render import printable
from .args import one_line
from .session import Session, check_running_build_id
from .target import require_live

HOOK = "tinyos_debug_event"
# The shell's line reader, and what may be inlined into or called by it while it waits.
SHELL_WAIT = "tinyos::shell::read_line"
SHELL_WAIT_INNER = ("tinyos::drivers::pl011::", "core::")
# A guard against a corrupt stack that loops, not a depth the build is expected to have:
# the frames between the UART poll and read_line differ between optimised and debug builds.
_MAX_INNER_FRAMES = 64
LOCKS = ("COW_MANAGER", "PROCESSES", "FRAME_ALLOCATOR")
HOW_TO_GET_SAFE = (
    "stop at the shell prompt (interrupt while it waits for input) or at the debugger hook "
    "(`tinyos-break command` and continue)"
)
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 3600.0
# The kernel's roll-back entry point for a call gdb unwound (issue 10), and its own watchdog.
RECOVER = "tinyos_debug_recover"
# Contract function -> the capability that finds it (so `set tinyos PIECE SYMBOL` applies).
_PIECE_OF = {piece.symbol: piece.name for piece in PIECES if not piece.data}
RECOVER_TIMEOUT = 30.0


@dataclass(frozen=True)
class SafePoint:
    """Where the CPU is stopped, shown by the commands: ``place`` is ``hook`` or ``shell``."""

    place: str
    pc: int
    function: str

    def describe(self) -> str:
        return ("the debugger hook tinyos_debug_event" if self.place == "hook"
                else "the shell prompt (waiting for input)") + f" (pc {self.pc:#x})"


def require_safe_point(s: Session) -> SafePoint:
    """The safe point the CPU is stopped at, or TargetStateError saying why it is not one."""
    require_live()
    _require_el1_mmu_on(s)
    _require_build_id(s)  # before unwinding: another kernel's frames mean nothing to our names
    pc = s.target.read_register("pc")
    place, function = _stop_place(s, pc)
    if place is None:
        raise TargetStateError(
            f"not at a safe point for a kernel call: the CPU is stopped in {function or f'{pc:#x}'}, "
            f"possibly in the middle of an update; {HOW_TO_GET_SAFE}")
    _require_unlocked(s)
    _require_shell_context(s)
    return SafePoint(place, pc, function)


def _require_el1_mmu_on(s: Session) -> None:
    el = (s.target.read_register("cpsr") >> 2) & 3
    if el == 0:
        raise TargetStateError(
            "the CPU is stopped at EL0 (a process's user code): a kernel call would run with the "
            f"user's stack and EL0 permissions; {HOW_TO_GET_SAFE}")
    if el != 1:
        raise TargetStateError(
            f"the CPU is at EL{el} (boot code, before the kernel dropped to EL1): continue to the shell prompt first")
    if not SCTLR.decode(s.target.read_register("SCTLR_EL1")).mmu:
        raise TargetStateError(
            "the MMU is off (SCTLR_EL1.M = 0): the kernel is still booting; continue to the shell prompt first")


def _stop_place(s: Session, pc: int) -> tuple[str | None, str]:
    """("hook" | "shell" | None, the function the CPU is in)."""
    start = kernel_address(s, HOOK)
    size = s.debuginfo().symbol(s.model().capabilities.get(_PIECE_OF[HOOK]).symbol).size
    if start <= pc < start + max(size, 4):
        return "hook", HOOK
    newest = ""
    try:
        frame = gdb.newest_frame()
        newest = frame.name() or ""
        for _ in range(_MAX_INNER_FRAMES):
            name = frame.name() or ""
            if name == SHELL_WAIT:
                return "shell", newest
            if not name.startswith(SHELL_WAIT_INNER):
                return None, newest
            frame = frame.older()
            if frame is None:
                break
    except gdb.error:
        pass
    return None, newest


def _require_build_id(s: Session) -> None:
    try:
        check_running_build_id(s)
    except BuildIdMismatch as exc:
        raise BuildIdMismatch(f"refusing to call kernel code: {exc}") from None


def _require_unlocked(s: Session) -> None:
    state = s.state()
    held = [name for name, lock in zip(LOCKS, (state.cow().lock_held, state.processes().lock_held,
                                               state.frames().lock_held)) if lock]
    if held:
        raise TargetStateError(
            f"{' and '.join(held)} {'is' if len(held) == 1 else 'are'} locked: the kernel was stopped inside "
            f"an update, a call would dead-lock or see half of it; continue to the next `tinyos_debug_event` "
            "or the shell prompt")


def _require_shell_context(s: Session) -> None:
    current = s.state().processes().current
    if current is not None:
        raise TargetStateError(
            f"process {current.pid} ({printable(current.name)}) is on the CPU: the kernel changes mappings from the "
            "shell's context only; stop at the shell prompt, or at a `tinyos_debug_event` the shell emits "
            "(a command starting or done)")


# -- the call -------------------------------------------------------------------------------

def call_kernel(s: Session, function: str, args: Sequence[int], timeout: float = DEFAULT_TIMEOUT) -> int:
    """Call ``extern "C" fn function(u64...) -> i64`` with ``args``; its return value.

    The caller has checked :func:`require_safe_point`. InferiorCallError when the call
    does not return (timeout, signal, a stop inside it): gdb is usable afterwards and the
    registers are those from before the call. A call gdb had to unwind is then rolled back
    by the kernel's ``tinyos_debug_recover`` when the ELF has it (:func:`_recover`)."""
    check_timeout(timeout)
    address = _entry_point(s, function)
    if gdb.parameter("may-call-functions") is False:
        raise InferiorCallError(f"cannot call {function}: `set may-call-functions on` first")
    try:
        return _invoke(s, address, args, timeout)
    except _CallFailed as failed:
        unwound = failed.timed_out or _SIGNALED in failed.message
        recovery = _recover(s) if unwound else ""
        raise InferiorCallError(_failure(function, failed.message, failed.timed_out, timeout, recovery)) from None


class _CallFailed(Exception):
    def __init__(self, message: str, timed_out: bool) -> None:
        super().__init__(message)
        self.message, self.timed_out = message, timed_out


_SIGNALED = "signaled while in a function called from GDB"


def check_timeout(timeout: float) -> None:
    """A watchdog of 0 s (or less, or NaN, or hours) is never what a caller meant."""
    if not 0 < timeout <= MAX_TIMEOUT:
        raise InferiorCallError(f"a kernel call's timeout must be more than 0 and at most {MAX_TIMEOUT:g} s, not {timeout}")


def kernel_address(s: Session, function: str, why: str = "not a TinyOS kernel with the debugger contract, "
                   "or a stripped ELF") -> int:
    """The address of a contract function (entry point, event hook) as the kernel's
    capabilities found it: by its symbol's suffix, or the symbol `set tinyos PIECE` names.
    SymbolError naming the ELF when it has none."""
    piece = _PIECE_OF[function]
    cap = s.model().capabilities.get(piece)
    if not cap.found:
        raise SymbolError(f"the kernel ELF {s.kernel.path} has no {function} ({why})")
    return cap.address


def _entry_point(s: Session, function: str) -> int:
    return kernel_address(s, function, "an older kernel without the debugger entry points, or a stripped ELF: "
                                       "rebuild it with scripts/build-kernel")


def _invoke(s: Session, address: int, args: Sequence[int], timeout: float) -> int:
    """The inferior call itself, in C, every breakpoint suspended, under a watchdog."""
    params = ", ".join(["unsigned long"] * len(args)) or "void"
    expression = f"((long (*)({params})) {address:#x})({', '.join(f'{a & (2**64 - 1):#x}' for a in args)})"
    with _c_language(), _unwind_on_signal(), breakpoints_suspended(), _watchdog(timeout) as fired:
        try:
            return int(gdb.parse_and_eval(expression))
        except gdb.error as exc:
            raise _CallFailed(str(exc), fired()) from None
        finally:
            s.invalidate()


def _recover(s: Session) -> str:
    """Ask the kernel to roll back what the unwound call left half done (kernel/src/debug.rs:
    ``tinyos_debug_recover() -> i64``, >= 0 done, < 0 refused); what happened, in words."""
    try:
        address = kernel_address(s, RECOVER)
    except SymbolError:
        return (f"this kernel has no {RECOVER}, so memory the call changed stays changed "
                "(check `ps` and `mem` at the prompt, or restart the kernel)")
    try:
        status = _invoke(s, address, [], RECOVER_TIMEOUT)
    except _CallFailed as failed:
        return f"{RECOVER} failed too ({one_line(failed.message) or 'no message'}): restart the kernel"
    if status < 0:
        return f"{RECOVER} refused (status {status}): the kernel's state may be inconsistent, restart it"
    return f"the kernel rolled the interrupted operation back ({RECOVER} returned {status})"


def _failure(function: str, message: str, timed_out: bool, timeout: float, recovery: str) -> str:
    after = f"; {recovery}" if recovery else ""
    if timed_out:
        return (f"{function} did not return within {timeout:g} s; gdb interrupted it and restored the "
                f"registers from before the call{after}")
    if _SIGNALED in message:
        return f"{function} was interrupted by a signal; gdb restored the registers from before the call{after}"
    if "stopped while in a function called from GDB" in message:
        return (f"{function} stopped at a breakpoint inside the call; gdb is now in that frame: "
                "`return` pops it, or continue to let the call finish")
    return f"calling {function} failed: {one_line(message) or 'no message'}"


@contextmanager
def _c_language() -> Iterator[None]:
    """C language mode for the call expression; the user's language setting restored after."""
    previous = gdb.parameter("language") or "auto"
    gdb.execute("set language c", to_string=True)
    try:
        yield
    finally:
        gdb.execute(f"set language {previous}", to_string=True)


# Public: cow-history parses its watchpoint expressions in C too.
c_language = _c_language


@contextmanager
def _unwind_on_signal() -> Iterator[None]:
    previous = gdb.parameter("unwindonsignal")
    gdb.execute("set unwindonsignal on", to_string=True)
    try:
        yield
    finally:
        gdb.execute(f"set unwindonsignal {'on' if previous else 'off'}", to_string=True)


# The plugin's own breakpoints (cow-trace's, tinyos-break's) register here: they are not
# always in gdb.breakpoints() (internal ones), and a call must suspend them too -- a trace
# breakpoint that stays armed turns every event of the call into a stop, a decode and a
# log line (issue 10: cow-test took minutes instead of seconds).
_PLUGIN_BREAKPOINTS: dict[int, gdb.Breakpoint] = {}
_CALL_DEPTH = [0]


def call_in_progress() -> bool:
    """True while call_kernel runs (breakpoint stop() methods must then return False)."""
    return _CALL_DEPTH[0] > 0


def register_breakpoint(bp: gdb.Breakpoint, registered: bool = True) -> None:
    """Have ``bp`` suspended during kernel calls like the user's own (or no longer)."""
    if registered:
        _PLUGIN_BREAKPOINTS[id(bp)] = bp
    else:
        _PLUGIN_BREAKPOINTS.pop(id(bp), None)


@contextmanager
def breakpoints_suspended() -> Iterator[None]:
    """Every enabled breakpoint (the user's and the plugin's) disabled for the body and
    re-enabled after, even when the body fails: the call never stops inside itself."""
    candidates = {id(b): b for b in gdb.breakpoints()}
    candidates.update(_PLUGIN_BREAKPOINTS)
    paused = [b for b in candidates.values() if b.is_valid() and b.enabled]
    for b in paused:
        b.enabled = False
    _CALL_DEPTH[0] += 1
    try:
        yield
    finally:
        _CALL_DEPTH[0] -= 1
        for b in paused:
            if b.is_valid():
                b.enabled = True


@contextmanager
def _watchdog(timeout: float) -> Iterator[Callable[[], bool]]:
    """Interrupt the target if the call is still running after ``timeout`` seconds; yields
    a function telling whether it fired. gdb then unwinds the call (unwindonsignal)."""
    state = {"armed": True, "fired": False}

    def interrupt() -> None:
        if state["armed"]:
            state["fired"] = True
            gdb.execute("interrupt", to_string=True)

    timer = threading.Timer(timeout, lambda: gdb.post_event(interrupt))
    timer.daemon = True
    timer.start()
    try:
        yield lambda: state["fired"]
    finally:
        state["armed"] = False
        timer.cancel()
