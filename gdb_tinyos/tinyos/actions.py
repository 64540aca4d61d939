"""What the COW action commands (``cow-create``, ``cow-protect``, ``cow-unprotect``,
``cow-test``) show: the kernel's status codes as sentences, and a page's state — the
manager's record and every sharer's live PTE — before and after an action.

Pure logic over a :class:`~.state.KernelState` (no gdb): the gdb adapter makes the inferior
call (gdb/inferior.py) and builds these models around it, from the states before and after.

Status codes (the debugger contract, ``TINYOS_DEBUG_CONTRACT.status_*``): ``>= 0``
success (create and protect return the frame's ref_count, unprotect 0, run_test the number
of failed tests); negative: busy (a lock held), bad argument, refused, a process is on the
CPU. The kernel keeps the reason of a refusal in its refusal record (``LAST_REFUSAL``).

Example::

    before = page_state(state, pa, [(2, 0x1000_0000)])
    ... the call ...
    after = page_state(new_state, pa, [(2, 0x1000_0000)])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..core.address import Address, page_base
from ..core.errors import TinyOSError
from ..core.render import printable
from .cow import CowStatistics
from .mappings import Pte
from .state import KernelState

# What each refusal means, by its field in the kernel's debugger contract (the numbers
# are the kernel's: TINYOS_DEBUG_CONTRACT.status_*).
STATUS_TEXT = {
    "status_busy": "COW_MANAGER, PROCESSES or the frame allocator is busy (the kernel was stopped inside "
                   "an update); nothing was done",
    "status_bad_argument": "bad argument",
    "status_refused": "refused as unsafe or impossible",
    "status_in_process": "a process is on the CPU: the kernel changes mappings from the shell's context only",
}
_LABELS = {"status_bad_argument": "bad argument", "status_refused": "refused"}


def default_vas(contract: Mapping[str, int]) -> tuple[int, int]:
    """``~3``'s defaults: the heap's first page, shared at the heap's limit in the other
    process (the contract's user layout)."""
    return contract["user_heap_start"], contract["user_heap_limit"]


class KernelRefused(TinyOSError):
    """A kernel entry point answered with a negative status: the command did nothing."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def refusal_message(operation: str, status: int, contract: Mapping[str, int], reason: str = "") -> str:
    """One sentence for a negative status, with the kernel's own reason when it gave one."""
    name = next((n for n in STATUS_TEXT if contract.get(n) == status), None)
    label = _LABELS.get(name)
    reason = printable(reason)  # the kernel's record, read from its memory
    if reason and label:
        return f"{operation}: {label}: {reason}"
    what = STATUS_TEXT.get(name, "unknown status")
    return f"{operation}: the kernel refused (status {status}: {what})" + (f": {reason}" if reason else "")


# -- page state --------------------------------------------------------------------------

@dataclass(frozen=True)
class PageState:
    """A frame as the manager records it and as every known mapping of it is now."""

    pa: Address
    tracked: bool
    refs: int | None  # the manager's ref_count (None: not tracked)
    is_cow: bool | None
    original_permissions: str | None
    frame_refs: int | None  # the frame allocator's count
    mappings: tuple[Pte, ...]

    def describe(self) -> str:
        head = (f"page {self.pa:#x}: refs={self.refs} cow={'yes' if self.is_cow else 'no'} "
                f"({self.original_permissions})" if self.tracked else f"page {self.pa:#x}: not tracked")
        head += f", frame allocator count {self.frame_refs}"
        return "\n".join([head, *(f"  {m.detail()}" for m in self.mappings)])


def page_state(state: KernelState, pa: int, extra: Iterable[tuple[int, int]] = ()) -> PageState:
    """Frame ``pa`` now: the manager's page (if tracked) and the live PTE of each sharer it
    records, of each (pid, va) in ``extra`` and of every other mapping found in the tables."""
    frame = page_base(pa)
    frame_refs = state.frames().refs(frame)  # first: RAM's bounds then come from this read
    page = state.cow().page(frame)
    pairs: list[tuple[int, int]] = []
    recorded = [(s.pid, s.va) for s in (page.sharers if page else ()) if s.pid is not None]
    found = [(m.pid, m.va) for m in state.mappings().at(frame)]
    for pid, va in [*recorded, *extra, *found]:
        pair = (int(pid), page_base(int(va)))
        if pair not in pairs:
            pairs.append(pair)
    return PageState(
        pa=Address(frame), tracked=page is not None,
        refs=page.ref_count if page else None, is_cow=page.is_cow if page else None,
        original_permissions=page.original_permissions if page else None,
        frame_refs=frame_refs, mappings=tuple(_walked(state, pid, va) for pid, va in pairs),
    )


def _walked(state: KernelState, pid: int, va: int) -> Pte:
    """A pair's PTE by a walk of its own tables: a walk also reads the COW software bit."""
    process = state.processes().by_pid(pid)
    if process is None or not process.live:
        return Pte.absent(pid, va, "no live process with this pid")
    try:
        return Pte.from_walk(pid, va, state.walk(va, process), state.model.contract.get("cow_pte_sw_bit"))
    except TinyOSError as exc:
        return Pte.absent(pid, va, f"not walkable: {exc}")


def resolve_frame(state: KernelState, addr: int, pid: int | None) -> int | None:
    """The frame ``addr`` names as ``~4``/``~5`` read it: a RAM address is a PA; anything
    else a user VA looked up in ``pid`` (or the one frame every live process maps there).
    None when that cannot be told (the kernel then gives its own reason)."""
    start, end = state.frames().ram
    if start <= addr < end:
        return page_base(addr)
    table = state.processes()
    processes = [table.by_pid(pid)] if pid is not None else list(table.live())
    found = {state.pte(p.pid, page_base(addr)).pa for p in processes if p is not None and p.live}
    found.discard(None)
    return found.pop() if len(found) == 1 else None


def default_pair(state: KernelState) -> tuple[int, int] | None:
    """``~3``'s default processes: the oldest and the newest live pids (None if < 2)."""
    pids = sorted(p.pid for p in state.processes().live())
    return (pids[0], pids[-1]) if len(pids) >= 2 else None


# -- results -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CowActionResult:
    """One action: what was called, what the kernel answered, the page before and after."""

    action: str
    call: str  # the kernel function and its arguments
    status: int
    message: str
    safe_point: str
    before: PageState | None
    after: PageState | None

    def describe(self) -> str:
        parts = [self.message]
        if self.before is not None:
            parts += ["before:", _indent(self.before.describe())]
        if self.after is not None:
            parts += ["after:", _indent(self.after.describe())]
        return "\n".join(parts)


@dataclass(frozen=True)
class Figures:
    """What the self-test compares before and after (read from memory)."""

    free_frames: int
    active_pages: int
    statistics: CowStatistics | None
    locks_free: bool


@dataclass(frozen=True)
class CowTestResult:
    call: str
    failed: int
    message: str
    safe_point: str
    before: Figures
    after: Figures

    def describe(self) -> str:
        b, a = self.before, self.after
        lines = [self.message,
                 f"free frames: {b.free_frames} -> {a.free_frames}"
                 + ("" if a.free_frames == b.free_frames else "  (differ: leak or double free)"),
                 f"tracked pages: {b.active_pages} -> {a.active_pages}",
                 f"locks after the run: {'free' if a.locks_free else 'HELD'}"]
        if b.statistics and a.statistics:
            for name in ("cow_faults_handled", "pages_duplicated", "peak_cow_pages"):
                before, after = getattr(b.statistics, name), getattr(a.statistics, name)
                lines.append(f"{name}: {before} -> {after} (+{after - before})")
        return "\n".join(lines)


def figures(state: KernelState) -> Figures:
    frames, cow, table = state.frames(), state.cow(), state.processes()
    return Figures(free_frames=frames.free_frames, active_pages=cow.active_pages, statistics=cow.statistics,
                   locks_free=not (frames.lock_held or cow.lock_held or table.lock_held))


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def last_refusal(state: KernelState) -> str:
    """The kernel's reason for the last refused entry-point call (``tinyos::debug::LAST_REFUSAL``),
    "" when it gave none or the kernel has no such record."""
    try:
        static = state.info.static(state.capabilities.symbol("refusal-record"))
        len_at, len_type = static.member("len")
        text_at, text_type = static.member("text")
        length = int.from_bytes(state.target.read_virtual(len_at, len_type.size), "little")
        if length == 0:
            return ""
        return state.target.read_virtual(text_at, min(length, text_type.size)).decode("utf-8", "replace")
    except TinyOSError:
        return ""
