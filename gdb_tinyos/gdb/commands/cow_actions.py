"""``cow-create``, ``cow-protect``, ``cow-unprotect``, ``cow-test``: the shell's ``~3``..``~6``
driven from gdb through inferior calls to the kernel's debugger contract (debug.rs).

Each command checks the safe point (commands/inferior.py: EL1, MMU on, stopped at the
shell prompt or at ``tinyos_debug_event``, no lock held, no process on the CPU), decodes
the page before, calls the entry point, and decodes it again: the model shows the
manager's record (refs, COW flag) and every sharer's live PTE before and after. A
negative status is a one-line error with the kernel's own reason
(``tinyos::debug::LAST_REFUSAL``).

``cow-test`` runs the kernel's suite in one inferior call: ``tinyos_cow_run_test`` runs
the EL0 programs through the scheduler, which switches back to the shell context saved
*inside* the call, so the call returns normally (the kernel never holds a lock while
programs run: no self-deadlock as upstream's ``~6``). Its console shows each test's line;
the command shows the number of failures and the figures before and after.
"""

from __future__ import annotations

import argparse
from ...core.address import page_base
from ...tinyos.actions import (
    default_vas,
    CowActionResult,
    CowTestResult,
    KernelRefused,
    default_pair,
    figures,
    last_refusal,
    page_state,
    refusal_message,
    resolve_frame,
)
from ...core.errors import TargetStateError
from ..args import seconds
from ..base import TinyOSCommand, gdb_address, gdb_number
from ..inferior import DEFAULT_TIMEOUT, MAX_TIMEOUT, SafePoint, call_kernel, require_safe_point
from ..registry import command
from ..session import Session

TEST_TIMEOUT = 600.0  # the suite runs a dozen EL0 programs; under load it is slow


def _timeout_argument(parser: argparse.ArgumentParser, default: float) -> None:
    parser.add_argument("--timeout", type=seconds(MAX_TIMEOUT), default=default, metavar="SECONDS",
                        help=f"interrupt the kernel call after this long (default {default:g})")


def _call(s: Session, action: str, function: str, args: list[int], timeout: float) -> tuple[int, str]:
    """Call ``function``; (status, "function(args)"). KernelRefused for a negative status."""
    shown = f"{function}({', '.join(hex(a) if a > 9 else str(a) for a in args)})"
    status = call_kernel(s, function, args, timeout)
    if status < 0:
        raise KernelRefused(refusal_message(action, status, s.model().contract, last_refusal(s.state())), status)
    return status, shown


def _result(action: str, shown: str, status: int, message: str, point: SafePoint, before, after) -> CowActionResult:
    return CowActionResult(action=action, call=shown, status=status, message=message,
                           safe_point=point.describe(), before=before, after=after)


class _CowAction(TinyOSCommand):
    def format_text(self, model: CowActionResult) -> str:
        return model.describe()


@command
class CowCreate(_CowAction):
    """Share a page copy-on-write between two processes, as the shell's `~3` does.

    Usage: cow-create [SRC_VA DST_VA] [--src-pid N --dst-pid M] [--json]
    The page at SRC_VA of process N becomes copy-on-write shared with process M at DST_VA
    (which must be unmapped there): both PTEs read-only, the frame tracked with 2 refs.
    Defaults as `~3`: SRC_VA 0x10000000 (the heap's first page), DST_VA 0x30000000, the
    oldest and the newest live processes (`run idle` twice at the prompt makes two).
    Runs kernel code (tinyos_cow_create): stop at the shell prompt or at tinyos_debug_event.
    Example:
      (gdb) cow-create 0x10000000 0x30000000 --src-pid 1 --dst-pid 2"""

    name = "cow-create"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("vas", nargs="*", type=gdb_address, metavar="SRC_VA DST_VA",
                            help="source and destination page VAs (both or neither)")
        parser.add_argument("--src-pid", type=gdb_number, help="process owning SRC_VA")
        parser.add_argument("--dst-pid", type=gdb_number, help="process receiving DST_VA")
        _timeout_argument(parser, DEFAULT_TIMEOUT)

    def run(self, s: Session, args: argparse.Namespace) -> CowActionResult:
        if len(args.vas) not in (0, 2):
            self.parser.error("give both SRC_VA and DST_VA, or neither")
        if (args.src_pid is None) != (args.dst_pid is None):
            self.parser.error("give both --src-pid and --dst-pid, or neither")
        src_va, dst_va = args.vas or default_vas(s.model().contract)
        point = require_safe_point(s)
        state = s.state()
        if args.src_pid is None:
            pair = default_pair(state)
            if pair is None:
                raise TargetStateError(
                    "cow-create: need two live processes (the shell's ~3 starts `idle` ones itself; "
                    "from gdb: continue, type `run idle` twice at the prompt, interrupt, then cow-create)")
            src_pid, dst_pid = pair
        else:
            src_pid, dst_pid = args.src_pid, args.dst_pid
        pa = resolve_frame(state, src_va, src_pid)
        pairs = [(src_pid, src_va), (dst_pid, dst_va)]
        before = page_state(state, pa, pairs) if pa is not None else None
        refs, shown = _call(s, self.name, "tinyos_cow_create", [src_pid, src_va, dst_pid, dst_va], args.timeout)
        after = page_state(s.state(), pa, pairs) if pa is not None else None  # the call dropped the old state
        message = (f"COW mapping created: va {src_va:#x} (pid {src_pid}) and va {dst_va:#x} (pid {dst_pid}) "
                   f"share frame {pa:#x}, refs={refs}" if pa is not None else f"COW mapping created, refs={refs}")
        return _result(self.name, shown, refs, message, point, before, after)


class _ProtectCommand(_CowAction):
    function: str
    done: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("address", type=gdb_address, help="a RAM physical address, or a user VA")
        parser.add_argument("--pid", type=gdb_number, help="look the VA up in this process only")
        _timeout_argument(parser, DEFAULT_TIMEOUT)

    def run(self, s: Session, args: argparse.Namespace) -> CowActionResult:
        point = require_safe_point(s)
        state = s.state()
        pa = resolve_frame(state, args.address, args.pid)
        before = page_state(state, pa) if pa is not None else None
        status, shown = _call(s, self.name, self.function, [args.address, args.pid or 0], args.timeout)
        state = s.state()  # the call dropped the old state
        if pa is None:
            pa = _tracked_frame_of(state, args.address, args.pid)
        after = page_state(state, pa, [(m.pid, m.va) for m in before.mappings] if before else ()) \
            if pa is not None else None
        where = f" {pa:#x}" if pa is not None else f" at {args.address:#x}"
        return _result(self.name, shown, status, self.done.format(where=where), point, before, after)


def _tracked_frame_of(state, va: int, pid: int | None) -> int | None:
    """The tracked frame one of whose sharers is ``va`` (in ``pid``), after a protect."""
    for page in state.cow().pages:
        if any(sh.va == page_base(va) and (pid is None or sh.pid == pid) for sh in page.sharers):
            return page.physical_addr
    return None


@command
class CowProtect(_ProtectCommand):
    """Force copy-on-write protection on a private page, as the shell's `~4` does.

    Usage: cow-protect VA|PA [--pid N] [--json]
    A RAM address is a physical frame; anything else a user VA, looked up in process N
    (or in every live process). The page must be mapped writable by exactly one process:
    it becomes read-only with the COW bit and is tracked with 1 ref (the next write
    reuses it in place). Runs kernel code (tinyos_cow_protect).
    Example:
      (gdb) cow-protect 0x10000000 --pid 1"""

    name = "cow-protect"
    function = "tinyos_cow_protect"
    done = "COW protection enabled for page{where}"


@command
class CowUnprotect(_ProtectCommand):
    """Remove copy-on-write protection from a page, as the shell's `~5` does.

    Usage: cow-unprotect VA|PA [--pid N] [--json]
    Only a page with a single mapping left becomes writable again (untracked); a shared
    page is refused with the kernel's reason (the sharers would see each other's writes).
    Runs kernel code (tinyos_cow_unprotect).
    Example:
      (gdb) cow-unprotect 0x10000000 --pid 1"""

    name = "cow-unprotect"
    function = "tinyos_cow_unprotect"
    done = "COW protection removed from page{where}"


@command
class CowTest(TinyOSCommand):
    """Run the kernel's copy-on-write self-test suite, as the shell's `~6` does.

    Usage: cow-test [--timeout SECONDS] [--json]
    One call of tinyos_cow_run_test: real EL0 programs fork and write, each test checked
    by the kernel (its console shows `Test <n>: PASS`/`FAIL (...)`). Shows the number of
    failed tests and the free frames, tracked pages and statistics before and after.
    Example:
      (gdb) cow-test"""

    name = "cow-test"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _timeout_argument(parser, TEST_TIMEOUT)

    def run(self, s: Session, args: argparse.Namespace) -> CowTestResult:
        point = require_safe_point(s)
        before = figures(s.state())
        failed, shown = _call(s, self.name, "tinyos_cow_run_test", [], args.timeout)
        after = figures(s.state())  # the call dropped the old state
        message = ("COW self-test: all tests passed (Failed: 0)" if failed == 0
                   else f"COW self-test: Failed: {failed} (the kernel's console names them)")
        return CowTestResult(call=shown, failed=failed, message=message, safe_point=point.describe(),
                             before=before, after=after)

    def format_text(self, model: CowTestResult) -> str:
        return model.describe()
