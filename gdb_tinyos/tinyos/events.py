"""The kernel's debugger events (``tinyos_debug_event(kind, a, b)``, kernel/src/debug.rs)
decoded into one log line each, and the ring buffer ``cow-trace`` keeps them in.

Pure logic: the gdb adapter (commands/cow_trace.py) reads x0/x1/x2 at the hook, plus what
the event leaves implicit — the pid on the CPU for a copy or a reuse (``CURRENT``), and
the frame a faulting VA mapped before the fault (read at the entry of the fault handler,
:meth:`EventLog.before_fault`) — and hands them to :meth:`EventLog.record`.

Event kinds: 1 shell command (a = line VA, b = length), 2 shell command done, 3 fault
probe recovered (ESR, ELR), 4 halt (ESR, ELR), 16 COW fault resolved (pid, fault address),
17 page duplicated (page VA, new frame), 18 page reused (page VA, frame), 19 fork
(parent, child), 20 exit (pid, status), 21 killed (pid). Events 17/18 precede the 16 of
the same fault.

Example::

    log = EventLog(capacity=256)
    log.before_fault(pid=2, va=0x1000_0008, old_frame=0x4000_d000)
    e = log.record(17, 0x1000_0000, 0x4001_e000, pid=2)
    e.describe()   # 'copy    pid 2 va 0x10000000: frame 0x4000d000 -> 0x4001e000'
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..core.address import Address, page_base
from ..core.render import printable

SHELL_COMMAND, SHELL_DONE, FAULT_RECOVERED, HALT = 1, 2, 3, 4
COW_FAULT, PAGE_DUPLICATED, PAGE_REUSED, FORK, PROCESS_EXIT, PROCESS_KILLED = 16, 17, 18, 19, 20, 21

KIND_NAMES = {
    SHELL_COMMAND: "shell", SHELL_DONE: "done", FAULT_RECOVERED: "probe", HALT: "halt",
    COW_FAULT: "fault", PAGE_DUPLICATED: "copy", PAGE_REUSED: "reuse", FORK: "fork",
    PROCESS_EXIT: "exit", PROCESS_KILLED: "kill",
}
KILLED_STATUS = 137


@dataclass(frozen=True)
class TraceEvent:
    """One decoded event. Fields that do not apply to the kind are None."""

    seq: int
    kind: int
    name: str
    a: Address  # the raw arguments: register values, hex in JSON like every address
    b: Address
    pid: int | None = None
    va: Address | None = None
    old_frame: Address | None = None
    new_frame: Address | None = None
    resolution: str | None = None  # for a fault: "copy", "reuse" or "none" (already writable)
    child: int | None = None
    status: int | None = None
    text: str | None = None  # a shell command line

    def describe(self) -> str:
        head = f"#{self.seq:<5} {self.name:<6}"
        return f"{head} {self._body()}"

    def _body(self) -> str:
        k = self.kind
        if k == PAGE_DUPLICATED:
            old = f"{self.old_frame:#x}" if self.old_frame is not None else "?"
            return f"pid {_pid(self.pid)} va {self.va:#x}: frame {old} -> {self.new_frame:#x} (copied)"
        if k == PAGE_REUSED:
            return f"pid {_pid(self.pid)} va {self.va:#x}: frame {self.new_frame:#x} reused in place (last sharer)"
        if k == COW_FAULT:
            return f"pid {self.pid} write to {self.va:#x} resolved ({self.resolution})"
        if k == FORK:
            return f"pid {self.pid} forked child {self.child}"
        if k == PROCESS_EXIT:
            how = " (killed)" if self.status == KILLED_STATUS else ""
            return f"pid {self.pid} exited with status {self.status}{how}"
        if k == PROCESS_KILLED:
            return f"pid {self.pid} is being killed"
        if k in (SHELL_COMMAND, SHELL_DONE):
            return f"{'command' if k == SHELL_COMMAND else 'finished'} '{printable(self.text or '')}'"
        if k in (FAULT_RECOVERED, HALT):
            return f"ESR={self.a:#x} ELR={self.b:#x}"
        return f"unknown event kind {k}: a={self.a:#x} b={self.b:#x}"


def _pid(pid: int | None) -> str:
    return "?" if pid is None else str(pid)


@dataclass
class EventLog:
    """The last ``capacity`` events, numbered from 1 since the log was created or cleared."""

    capacity: int = 256
    events: deque[TraceEvent] = field(default_factory=deque)
    seen: int = 0
    # (pid, page VA, frame mapped before the fault) from the fault handler's entry.
    _pending: tuple[int | None, int, int | None] | None = None
    _resolution: str | None = None

    def __post_init__(self) -> None:
        self.events = deque(self.events, maxlen=self.capacity)

    def clear(self) -> None:
        self.events.clear()
        self.seen = 0
        self._pending = None
        self._resolution = None

    def before_fault(self, pid: int | None, va: int, old_frame: int | None) -> None:
        """A write fault is about to be handled: remember what the page mapped."""
        self._pending = (pid, page_base(va), old_frame)
        self._resolution = None

    def record(self, kind: int, a: int, b: int, pid: int | None = None, text: str | None = None) -> TraceEvent:
        """Decode and keep one event; ``pid`` = the process on the CPU (for copy/reuse),
        ``text`` = the shell command line (for kinds 1 and 2)."""
        self.seen += 1
        event = self._decode(self.seen, kind, Address(a & (2**64 - 1)), Address(b & (2**64 - 1)), pid, text)
        self.events.append(event)
        return event

    def last(self, count: int) -> list[TraceEvent]:
        return list(self.events)[-count:] if count > 0 else []

    def _decode(self, seq: int, kind: int, a: int, b: int, pid: int | None, text: str | None) -> TraceEvent:
        base = dict(seq=seq, kind=kind, name=KIND_NAMES.get(kind, "event"), a=a, b=b)
        if kind in (PAGE_DUPLICATED, PAGE_REUSED):
            old = self._old_frame(pid, a)
            self._resolution = "copy" if kind == PAGE_DUPLICATED else "reuse"
            if kind == PAGE_REUSED:
                return TraceEvent(**base, pid=pid, va=a, old_frame=b, new_frame=b)
            return TraceEvent(**base, pid=pid, va=a, old_frame=None if old is None else Address(old), new_frame=b)
        if kind == COW_FAULT:
            resolution, self._resolution, self._pending = self._resolution or "none", None, None
            return TraceEvent(**base, pid=int(a), va=b, resolution=resolution)
        if kind == FORK:
            return TraceEvent(**base, pid=int(a), child=int(b))
        if kind == PROCESS_EXIT:
            return TraceEvent(**base, pid=int(a), status=_signed(b))
        if kind == PROCESS_KILLED:
            return TraceEvent(**base, pid=int(a))
        if kind in (SHELL_COMMAND, SHELL_DONE):
            return TraceEvent(**base, text=text)
        return TraceEvent(**base)

    def _old_frame(self, pid: int | None, va: int) -> int | None:
        """The frame recorded at the fault handler's entry, if it was for this page."""
        if self._pending is None:
            return None
        pending_pid, pending_va, frame = self._pending
        same = pending_va == page_base(va) and (pid is None or pending_pid in (None, pid))
        return frame if same else None


def _signed(value: int) -> int:
    return int(value) - 2**64 if value >= 2**63 else int(value)
