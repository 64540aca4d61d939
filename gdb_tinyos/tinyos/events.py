"""The kernel's debugger events (``tinyos_debug_event(kind, a, b)``) decoded into one log
line each, and the ring buffer ``cow-trace`` keeps them in.

The kind numbers are the kernel's, read from its debugger contract
(``TINYOS_DEBUG_CONTRACT``: ``event_fork`` ...) into :class:`EventKinds`; nothing here
knows a number. Events are named by the contract field without its ``event_`` prefix, and
shown by a short name (``fork``, ``copy`` ...), the one ``tinyos-break`` takes.

Pure logic: the gdb adapter (commands/cow_trace.py) reads x0/x1/x2 at the hook, plus what
the event leaves implicit — the pid on the CPU for a copy or a reuse (``CURRENT``), and
the frame a faulting VA mapped before the fault (read at the entry of the fault handler,
:meth:`EventLog.before_fault`) — and hands them to :meth:`EventLog.record`.

Events (a, b): shell command (a = line VA, b = length), shell command done, fault probe
recovered (ESR, ELR), halt (ESR, ELR), COW fault resolved (pid, fault address), page
duplicated (page VA, new frame), page reused (page VA, frame), fork (parent, child), exit
(pid, status), killed (pid). A duplication or a reuse precedes the fault event it resolves.

Example::

    kinds = EventKinds.from_contract(contract)      # contract: read_contract(info, caps)
    log = EventLog(kinds, capacity=256)
    log.before_fault(pid=2, va=0x1000_0008, old_frame=0x4000_d000)
    e = log.record(kinds.number("copy"), 0x1000_0000, 0x4001_e000, pid=2)
    e.describe()   # '#1     copy   pid 2 va 0x10000000: frame 0x4000d000 -> 0x4001e000 (copied)'
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..core.address import Address, page_base
from ..core.errors import MissingCapability
from ..core.render import printable

# Contract field -> the event's short name (what cow-trace prints, what tinyos-break takes).
SHORT_NAMES = {
    "event_shell_command": "command", "event_shell_done": "done", "event_fault_recovered": "probe",
    "event_halt": "halt", "event_cow_fault": "fault", "event_page_duplicated": "copy",
    "event_page_reused": "reuse", "event_fork": "fork", "event_process_exit": "exit",
    "event_process_killed": "kill",
}


@dataclass(frozen=True)
class EventKinds:
    """The kernel's event numbers by short name, and its killed-process exit status."""

    numbers: Mapping[str, int]
    killed_status: int | None = None

    @classmethod
    def from_contract(cls, contract: Mapping[str, int]) -> EventKinds:
        numbers = {short: contract[name] for name, short in SHORT_NAMES.items() if name in contract}
        if not numbers:
            raise MissingCapability("debug events: no debugger contract in this kernel "
                                    "(no TINYOS_DEBUG_CONTRACT with event_* fields)", "contract")
        return cls(numbers, contract.get("killed_status"))

    def number(self, name: str) -> int:
        if name not in self.numbers:
            raise MissingCapability(f"debug events: this kernel's contract has no {name!r} event", "contract")
        return self.numbers[name]

    def name(self, kind: int) -> str | None:
        return next((n for n, k in self.numbers.items() if k == kind), None)


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
    killed: bool = False  # an exit with the kernel's killed status

    def describe(self) -> str:
        head = f"#{self.seq:<5} {self.name:<6}"
        return f"{head} {self._body()}"

    def _body(self) -> str:
        n = self.name
        if n == "copy":
            old = f"{self.old_frame:#x}" if self.old_frame is not None else "?"
            return f"pid {_pid(self.pid)} va {self.va:#x}: frame {old} -> {self.new_frame:#x} (copied)"
        if n == "reuse":
            return f"pid {_pid(self.pid)} va {self.va:#x}: frame {self.new_frame:#x} reused in place (last sharer)"
        if n == "fault":
            return f"pid {self.pid} write to {self.va:#x} resolved ({self.resolution})"
        if n == "fork":
            return f"pid {self.pid} forked child {self.child}"
        if n == "exit":
            return f"pid {self.pid} exited with status {self.status}{' (killed)' if self.killed else ''}"
        if n == "kill":
            return f"pid {self.pid} is being killed"
        if n in ("command", "done"):
            return f"{'' if n == 'command' else 'finished '}'{printable(self.text or '')}'"
        if n in ("probe", "halt"):
            return f"ESR={self.a:#x} ELR={self.b:#x}"
        return f"unknown event kind {self.kind}: a={self.a:#x} b={self.b:#x}"


def _pid(pid: int | None) -> str:
    return "?" if pid is None else str(pid)


@dataclass
class EventLog:
    """The last ``capacity`` events, numbered from 1 since the log was created or cleared."""

    kinds: EventKinds
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
        ``text`` = the shell command line (for the command and done events)."""
        self.seen += 1
        event = self._decode(self.seen, kind, Address(a & (2**64 - 1)), Address(b & (2**64 - 1)), pid, text)
        self.events.append(event)
        return event

    def last(self, count: int) -> list[TraceEvent]:
        return list(self.events)[-count:] if count > 0 else []

    def _decode(self, seq: int, kind: int, a: int, b: int, pid: int | None, text: str | None) -> TraceEvent:
        name = self.kinds.name(kind)
        base = dict(seq=seq, kind=kind, name=name or "event", a=a, b=b)
        if name in ("copy", "reuse"):
            old = self._old_frame(pid, a)
            self._resolution = name
            if name == "reuse":
                return TraceEvent(**base, pid=pid, va=a, old_frame=b, new_frame=b)
            return TraceEvent(**base, pid=pid, va=a, old_frame=None if old is None else Address(old), new_frame=b)
        if name == "fault":
            resolution, self._resolution, self._pending = self._resolution or "none", None, None
            return TraceEvent(**base, pid=int(a), va=b, resolution=resolution)
        if name == "fork":
            return TraceEvent(**base, pid=int(a), child=int(b))
        if name == "exit":
            status = _signed(b)
            return TraceEvent(**base, pid=int(a), status=status, killed=status == self.kinds.killed_status)
        if name == "kill":
            return TraceEvent(**base, pid=int(a))
        if name in ("command", "done"):
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
