"""What the COW action commands (``cow-create``, ``cow-protect``, ``cow-unprotect``,
``cow-test``) show: the kernel's status codes as sentences, and a page's state — the
manager's record and every sharer's live PTE — before and after an action.

Pure logic over a :class:`~gdb_tinyos.tinyos.kernel.KernelView` (no gdb): the gdb adapter makes
the inferior call (commands/inferior.py) and builds these models around it.

Status codes (kernel/src/debug.rs, the debugger contract): ``>= 0`` success (create and
protect return the frame's ref_count, unprotect 0, run_test the number of failed tests);
``-1`` busy (a lock held), ``-2`` bad argument, ``-3`` refused, ``-4`` a process is on the
CPU. The kernel keeps the reason of a refusal in ``tinyos::debug::LAST_REFUSAL``.

Example::

    before = page_state(view, pa, [(2, 0x1000_0000)])
    ... the call ...
    after = page_state(view, pa, [(2, 0x1000_0000)])
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..core.address import page_base
from ..core.render import printable
from .cow import CowStatistics
from ..core.errors import MemoryReadError, TinyOSError, TranslationError
from .kernel import KernelView
from .processes import Process

STATUS_BUSY = -1
STATUS_BAD_ARGUMENT = -2
STATUS_REFUSED = -3
STATUS_IN_PROCESS = -4

STATUS_TEXT = {
    STATUS_BUSY: "COW_MANAGER, PROCESSES or the frame allocator is busy (the kernel was stopped inside "
                 "an update); nothing was done",
    STATUS_BAD_ARGUMENT: "bad argument",
    STATUS_REFUSED: "refused as unsafe or impossible",
    STATUS_IN_PROCESS: "a process is on the CPU: the kernel changes mappings from the shell's context only",
}

# Software bit of a leaf descriptor (bits [58:55], bit 0 of the field = bit 55) that marks
# a copy-on-write entry (kernel/src/process/cow_fault.rs, SW_COW).
SW_COW = 0b0001

# `~3`'s defaults (kernel/src/shell/commands/system.rs): the heap's first page, shared at
# the heap's limit in the other process.
DEFAULT_SRC_VA = 0x1000_0000
DEFAULT_DST_VA = 0x3000_0000


class KernelRefused(TinyOSError):
    """A kernel entry point answered with a negative status: the command did nothing."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def refusal_message(operation: str, status: int, reason: str = "") -> str:
    """One sentence for a negative status, with the kernel's own reason when it gave one."""
    label = {STATUS_BAD_ARGUMENT: "bad argument", STATUS_REFUSED: "refused"}.get(status)
    reason = printable(reason)  # the kernel's record, read from its memory
    if reason and label:
        return f"{operation}: {label}: {reason}"
    what = STATUS_TEXT.get(status, "unknown status")
    return f"{operation}: the kernel refused (status {status}: {what})" + (f": {reason}" if reason else "")


# -- page state --------------------------------------------------------------------------

@dataclass(frozen=True)
class PteState:
    """What ``va`` maps in process ``pid`` now."""

    pid: int
    va: int
    pa: int | None  # the frame it maps (None: not mapped)
    perms: str  # e.g. "EL1:R-- EL0:R--", or why there is no mapping
    writable: bool  # EL0 may write
    cow_bit: bool  # the kernel's copy-on-write software bit (bit 55)

    def describe(self) -> str:
        if self.pa is None:
            return f"pid {self.pid} va {self.va:#x}: {self.perms}"
        mark = " COW" if self.cow_bit else ""
        return f"pid {self.pid} va {self.va:#x} -> {self.pa:#x} {self.perms}{mark}"


@dataclass(frozen=True)
class PageState:
    """A frame as the manager records it and as every known mapping of it is now."""

    pa: int
    tracked: bool
    refs: int | None  # the manager's ref_count (None: not tracked)
    is_cow: bool | None
    original_permissions: str | None
    frame_refs: int | None  # the frame allocator's count
    mappings: tuple[PteState, ...]

    def describe(self) -> str:
        head = (f"page {self.pa:#x}: refs={self.refs} cow={'yes' if self.is_cow else 'no'} "
                f"({self.original_permissions})" if self.tracked else f"page {self.pa:#x}: not tracked")
        head += f", frame allocator count {self.frame_refs}"
        return "\n".join([head, *(f"  {m.describe()}" for m in self.mappings)])


def pte_state(view: KernelView, process: Process, va: int) -> PteState:
    """Walk ``va`` through ``process``'s own tables (not the CPU's TTBR0)."""
    try:
        walk = view.walk(va, process)
    except (TranslationError, MemoryReadError) as exc:
        return PteState(process.pid, va, None, f"not walkable: {exc}", False, False)
    if walk.pa is None or walk.mapping is None:
        reason = walk.fault.describe() if walk.fault else "not mapped"
        return PteState(process.pid, va, None, reason, False, False)
    leaf = walk.steps[-1].decoded
    software = getattr(leaf, "software", 0)
    perms = walk.mapping.attrs.perms
    return PteState(process.pid, va, page_base(walk.pa), perms.describe(), perms.el0_write,
                    bool(software & SW_COW))


def mappings_of(view: KernelView, pa: int) -> list[tuple[int, int]]:
    """(pid, va) of every user mapping of frame ``pa`` in every live process's tables."""
    frame = page_base(pa)
    found = []
    for process in view.processes().live():
        space = view.address_space(process)
        for r in space.ranges:
            if r.pa_start <= frame < r.pa_end:
                found.append((process.pid, r.va_start + (frame - r.pa_start)))
    return found


def page_state(view: KernelView, pa: int, extra: Iterable[tuple[int, int]] = ()) -> PageState:
    """Frame ``pa`` now: the manager's page (if tracked) and the live PTE of each sharer it
    records, of each (pid, va) in ``extra`` and of every other mapping found in the tables."""
    frame = page_base(pa)
    page = view.cow().page(frame)
    table = view.processes()
    pairs: list[tuple[int, int]] = []
    for pid, va in [*((s.pid, s.va) for s in (page.sharers if page else ())), *extra, *mappings_of(view, frame)]:
        pair = (int(pid), int(va))
        if pair not in pairs:
            pairs.append(pair)
    ptes = []
    for pid, va in pairs:
        process = table.by_pid(pid)
        if process is None or not process.live:
            ptes.append(PteState(pid, va, None, "no live process with this pid", False, False))
        else:
            ptes.append(pte_state(view, process, va))
    return PageState(
        pa=frame, tracked=page is not None,
        refs=page.ref_count if page else None, is_cow=page.is_cow if page else None,
        original_permissions=page.original_permissions if page else None,
        frame_refs=view.frames().refs(frame), mappings=tuple(ptes),
    )


def resolve_frame(view: KernelView, addr: int, pid: int | None) -> int | None:
    """The frame ``addr`` names as ``~4``/``~5`` read it: a RAM address is a PA; anything
    else a user VA looked up in ``pid`` (or the one frame every live process maps there).
    None when that cannot be told (the kernel then gives its own reason)."""
    start, end = view.frames().ram
    if start <= addr < end:
        return page_base(addr)
    table = view.processes()
    processes = [table.by_pid(pid)] if pid is not None else list(table.live())
    frames = {p.pid: pte_state(view, p, page_base(addr)).pa for p in processes if p is not None and p.live}
    found = {f for f in frames.values() if f is not None}
    return found.pop() if len(found) == 1 else None


def default_pair(view: KernelView) -> tuple[int, int] | None:
    """``~3``'s default processes: the oldest and the newest live pids (None if < 2)."""
    pids = sorted(p.pid for p in view.processes().live())
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


def figures(view: KernelView) -> Figures:
    frames, cow, table = view.frames(), view.cow(), view.processes()
    return Figures(free_frames=frames.free_frames, active_pages=cow.active_pages, statistics=cow.statistics,
                   locks_free=not (frames.lock_held or cow.lock_held or table.lock_held))


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def last_refusal(view: KernelView) -> str:
    """The kernel's reason for the last refused entry-point call (``tinyos::debug::LAST_REFUSAL``),
    "" when it gave none or the kernel predates that record."""
    try:
        static = view.info.static("debug::LAST_REFUSAL")
        len_at, len_type = static.member("len")
        text_at, text_type = static.member("text")
        length = int.from_bytes(view.target.read_virtual(len_at, len_type.size), "little")
        if length == 0:
            return ""
        return view.target.read_virtual(text_at, min(length, text_type.size)).decode("utf-8", "replace")
    except TinyOSError:
        return ""
