"""``cow-history`` and ``cow-blame``: who changed a COW frame's bookkeeping, and when, by
running a replay backwards with write watchpoints.

The model (entries, ordering, text) is :mod:`gdb_tinyos.tinyos.history`; this module drives
gdb: it sets internal hardware watchpoints (QEMU's gdbstub: any length, on virtual
addresses), runs ``reverse-continue`` until nothing older is watched or the walk is over,
reads the watched memory at each stop (the session's cache is dropped by gdb's stop event
at every reverse stop, so each read is of that point in time), and finally runs forward
to the instruction count it started from (QEMU's ``replay_break``): a replay is
deterministic, so that is exactly where the user was.

Page table entries are watched through the kernel's linear map (VA = PA + the linear
offset): that is where the kernel writes them, and gdb watchpoints take virtual addresses.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import gdb

from ...aarch64 import USER_HALF, Translator
from ...core.address import Address, page_base
from ...core.errors import TargetStateError, TinyOSError
from ...tinyos.cow import ManagerLocation, SlotFields, decode_slot, slot_address, slot_fields
from ...tinyos.history import (
    History,
    HistoryWalk,
    StopPoint,
    history_text,
    pte_value,
    slot_values,
    word_value,
)
from ..args import UsageError
from ..base import TinyOSCommand, gdb_address, gdb_number
from ..inferior import breakpoints_suspended, c_language
from ..registry import command
from ..session import Session
from ..target import require_live

HOW_TO_RECORD = ("needs a replay, this session is live: record with `tinyos-gdb --record FILE`, "
                 "then replay with `tinyos-gdb --replay FILE`")
TOP_FRAMES = 4


class NotTracked(TinyOSError):
    """The frame asked about is not in the COW manager at this point of the replay."""


# -- the replay ------------------------------------------------------------------------------

def replay_icount(command_name: str) -> int:
    """QEMU's instruction count in the replay; TargetStateError (how to record) otherwise."""
    try:
        reply = gdb.execute("monitor info replay", to_string=True)
    except gdb.error:
        reply = ""
    m = re.search(r"Replaying execution .*instruction count = (\d+)", reply)  # not "Recording"
    if m is None:
        raise TargetStateError(f"{command_name}: {HOW_TO_RECORD}")
    return int(m.group(1))


def stop_point(icount: int) -> StopPoint:
    """The selected frame at a stop: pc, the store just before it, function, top frames."""
    frame = gdb.newest_frame()
    pc = Address(frame.pc())
    names, f = [], frame
    while f is not None and len(names) < TOP_FRAMES:
        names.append(f.name() or f"{f.pc():#x}")
        try:
            f = f.older()
        except gdb.error:
            break
    return StopPoint(icount, pc, _store_before(frame, pc), frame.name(), tuple(names))


def _store_before(frame: gdb.Frame, pc: int) -> Address | None:
    """QEMU stops a reverse run right after the watched write: the writer is the
    instruction before the pc, when that is a store (else unknown: an exception entry)."""
    try:
        asm = frame.architecture().disassemble(pc - 4)[0]["asm"]
    except (gdb.error, gdb.MemoryError, IndexError):
        return None
    return Address(pc - 4) if asm.split()[0].startswith(("st", "cas", "swp", "ldadd", "ldclr", "ldset")) else None


@contextmanager
def _quiet() -> Iterator[None]:
    """No 'Program received signal SIGTRAP' and source line per reverse stop."""
    previous = gdb.parameter("suppress-cli-notifications")
    gdb.execute("set suppress-cli-notifications on", to_string=True)
    try:
        yield
    finally:
        gdb.execute(f"set suppress-cli-notifications {'on' if previous else 'off'}", to_string=True)


def _watch(va: int, size: int) -> gdb.Breakpoint:
    """An internal write watchpoint on ``size`` bytes at ``va`` (parsed as C: the kernel is Rust)."""
    with c_language():
        return gdb.Breakpoint(f"*(unsigned char (*)[{size}]) {va:#x}", gdb.BP_WATCHPOINT, gdb.WP_WRITE, internal=True)


# -- what is watched --------------------------------------------------------------------------

@dataclass
class SlotProbe:
    """The frame's ``cow_pages`` slot: ref_count, is_cow, the sharer lists, occupied or free."""

    where: ManagerLocation
    slot: int
    fields: SlotFields | None = None

    @property
    def address(self) -> int:
        return slot_address(self.where, self.slot)

    def ranges(self) -> list[tuple[int, int]]:
        return [(self.address + offset, size) for _, offset, size in slot_fields(self.where)]

    def names(self) -> tuple[str, ...]:
        return tuple(slot_values(SlotFields(False, 0, 0, 0, (), ())))

    def describe(self) -> str:
        return f"{self.where.symbol}.cow_pages[{self.slot}] ({', '.join(n for n, _, _ in slot_fields(self.where))})"

    def values(self, s: Session) -> dict[str, str]:
        data = s.target.read_virtual(self.address, self.where.page_fields.stride)
        self.fields = decode_slot(data, self.where)
        return slot_values(self.fields)

    def mappings(self) -> list[tuple[int, int]]:
        """(pid, va) pairs the slot may record now: every pid with every VA, because in the
        middle of a removal one list is already shorter than the other (the pairs are
        only where PTEs are looked for: an entry with no PTE is not watched)."""
        f = self.fields
        if f is None or not f.occupied:
            return []
        return [(pid, va) for pid in dict.fromkeys(f.process_ids) for va in dict.fromkeys(f.virtual_addresses)]


@dataclass
class WordProbe:
    """One location (a PTE, or what cow-blame was given), its value in words."""

    name: str
    address: int
    size: int
    render: object = word_value  # bytes -> str

    def ranges(self) -> list[tuple[int, int]]:
        return [(self.address, self.size)]

    def names(self) -> tuple[str, ...]:
        return (self.name,)

    def describe(self) -> str:
        return f"{self.name} at {self.address:#x}"

    def values(self, s: Session) -> dict[str, str]:
        return {self.name: self.render(s.target.read_virtual(self.address, self.size))}


def pte_probe(s: Session, pid: int, va: int) -> WordProbe | None:
    """The level-3 entry translating ``va`` in process ``pid`` now (None: no such process or
    no last-level table yet), watched at its linear-map address."""
    state = s.state()
    process = state.processes().by_pid(pid)
    if process is None or not process.ttbr0:
        return None
    try:
        # Its own table even while it exits (then it is no longer "live", but its
        # entries are being cleared: exactly what is watched for).
        regime = state.regime(1).with_ttbr0((process.asid << 48) | process.ttbr0)
        walk = Translator(s.target, regime).walk(va)
        granule = regime.va_range(USER_HALF).granule
    except TinyOSError:
        return None
    if not walk.steps:
        return None
    step = walk.steps[-1]
    if walk.mapping is None and step.level != 3:
        return None  # the table that would hold it does not exist yet
    pte_pa = step.table + 8 * step.index
    level = step.level
    return WordProbe(f"PTE pid {pid} va {page_base(va):#x}", pte_pa + s.gdb_target.linear_offset, 8,
                     lambda data: pte_value(int.from_bytes(data, "little"), level, granule))


@dataclass
class Watcher:
    """The probes and their gdb watchpoints (deleted at the end, whatever happens)."""

    s: Session
    probes: list = field(default_factory=list)
    watchpoints: list[gdb.Breakpoint] = field(default_factory=list)
    ptes: set[tuple[int, int]] = field(default_factory=set)

    def add(self, probe) -> None:
        self.probes.append(probe)
        self.watchpoints += [_watch(va, size) for va, size in probe.ranges()]

    def add_pte(self, pid: int, va: int) -> None:
        key = (pid, page_base(va))
        if key in self.ptes:
            return
        probe = pte_probe(self.s, pid, va)
        if probe is not None:
            self.ptes.add(key)
            self.add(probe)

    def values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for p in self.probes:
            try:
                out.update(p.values(self.s))
            except TinyOSError as exc:  # e.g. at the recording's start, with the MMU still off
                out.update({k: f"unreadable ({exc})" for k in p.names()})
        return out

    def close(self) -> None:
        for w in self.watchpoints:
            if w.is_valid():
                w.delete()
        self.watchpoints.clear()


def walk_back(s: Session, name: str, prepare: Callable[[Watcher], tuple[str, HistoryWalk]],
              slot: SlotProbe | None = None) -> History:
    """Reverse-continue from stop to stop until the walk ends, then forward to the start.
    ``prepare`` adds the probes to the watcher and returns (subject, walk); it runs with
    every other breakpoint suspended (the user's would stop the runs), which also keeps
    the plugin's own watchpoints, made after, enabled."""
    start_icount = _start(name)
    start = stop_point(start_icount)
    with breakpoints_suspended(), _quiet():
        watcher = Watcher(s)
        try:
            subject, walk = prepare(watcher)
            icount = start_icount
            while True:
                gdb.execute("reverse-continue", to_string=True)
                now = replay_icount(name)
                if now >= icount or now == 0:  # no older write: the recording's first state
                    walk.at_recording_start(watcher.values())
                    break
                icount = now
                if not walk.observe(stop_point(now), watcher.values()):
                    break
                if slot is not None:
                    for pid, va in slot.mappings():  # going back, sharers reappear: watch their PTEs
                        watcher.add_pte(pid, va)
            watched = tuple(p.describe() for p in watcher.probes)
        finally:
            watcher.close()
            returned = _return_to(name, start_icount)
    return walk.finish(subject, start, watched, returned)


def _return_to(name: str, icount: int) -> int:
    """Run forward to ``icount`` (QEMU stops the replay there: ``replay_break``)."""
    if replay_icount(name) != icount:
        gdb.execute(f"monitor replay_break {icount}", to_string=True)
        gdb.execute("continue", to_string=True)
    return replay_icount(name)


# -- the commands ------------------------------------------------------------------------------

def _start(name: str) -> int:
    require_live()
    return replay_icount(name)


@command
class CowHistoryCommand(TinyOSCommand):
    """Show who changed a COW frame's bookkeeping and when, newest first, by running the replay backwards.

    Usage: cow-history PA | VA --pid N [--limit N] [--json]
    Watches (hardware write watchpoints) the frame's COW_MANAGER slot -- ref_count,
    is_cow, the sharer lists -- and every PTE that maps the frame (through the kernel's
    linear map), runs `reverse-continue` from write to write and lists each: QEMU's
    instruction count (`monitor info replay`), the writing instruction and its function,
    the callers, each field old -> new. Stops where the frame was first shared (its slot
    free before), at --limit N entries, or at the start of the recording; then runs
    forward to where it started. Needs a replay (`tinyos-gdb --replay FILE`) and a frame
    tracked at this point.
    Example:
      (gdb) cow-history 0x40006000
      (gdb) cow-history 0x800000 --pid 1 --limit 3 --json"""

    name = "cow-history"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("address", type=gdb_address, metavar="PA|VA",
                            help="a physical address of the frame, or a VA with --pid")
        parser.add_argument("--pid", type=gdb_number, help="ADDRESS is a virtual address of this process")
        parser.add_argument("--limit", type=gdb_number, help="list at most N changes")

    def run(self, s: Session, args: argparse.Namespace) -> History:
        _start(self.name)
        state = s.state()
        pa = self._frame(state, args)
        state.capabilities.require("frame-allocator")
        ram = state.ram()  # its bounds only: the history steps through many stops
        if not ram[0] <= pa < ram[1]:
            raise UsageError(f"{self.name}: no such frame: {pa:#x} is outside RAM {ram[0]:#x}-{ram[1]:#x}")
        page = state.cow().page(pa)
        if page is None:
            raise NotTracked(f"{self.name}: frame {page_base(pa):#x} is not tracked by the COW manager at this "
                             "point; go back to a stop where it is (or `cow-blame` one location)")
        slot = SlotProbe(state.model.cow_location, page.slot)

        def prepare(watcher: Watcher) -> tuple[str, HistoryWalk]:
            watcher.add(slot)
            mappers = state.mappings().at(pa)
            for pid, va in [(m.pid, m.va) for m in mappers] + [(x.pid, x.va) for x in page.sharers if x.pid is not None]:
                watcher.add_pte(pid, va)
            subject = f"frame {page.physical_addr:#x} ({state.model.cow_location.symbol}.cow_pages[{page.slot}])"
            return subject, HistoryWalk(watcher.values(), limit=args.limit, until_untracked=True)

        return walk_back(s, self.name, prepare, slot)

    def _frame(self, state, args) -> int:
        if args.pid is None:
            return args.address
        walk = state.walk(args.address, state.process(pid=args.pid))
        if walk.pa is None:
            raise UsageError(f"{self.name}: no such frame: {args.address:#x} is not mapped in pid {args.pid}")
        return walk.pa

    def format_text(self, model: History) -> str:
        return history_text(model)


@command
class CowBlameCommand(TinyOSCommand):
    """Show who wrote one location and when, newest first, by running the replay backwards.

    Usage: cow-blame EXPRESSION | ADDRESS --size N [--limit N] [--json]
    EXPRESSION is a gdb lvalue (its address and type's size are watched); with --size,
    ADDRESS is a virtual address and N bytes from it are watched. Each write that changed
    them: QEMU's instruction count, the writing instruction, its function and callers,
    old -> new. Stops at --limit N entries (default 10) or the start of the recording,
    then runs forward to where it started. Needs a replay (`tinyos-gdb --replay FILE`).
    Example:
      (gdb) cow-blame tinyos::memory::cow::COW_MANAGER.data.value.active_pages
      (gdb) cow-blame 0xffff00004009c910 --size 8 --limit 3"""

    name = "cow-blame"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("location", nargs="+", metavar="EXPRESSION", help="a gdb lvalue, or an address with --size")
        parser.add_argument("--size", type=gdb_number, help="bytes to watch at ADDRESS")
        parser.add_argument("--limit", type=gdb_number, default=10, help="list at most N changes (default 10)")

    def run(self, s: Session, args: argparse.Namespace) -> History:
        _start(self.name)
        text = " ".join(args.location)
        address, size = self._location(text, args.size)
        if args.limit == 0:
            raise UsageError(f"{self.name}: --limit must be at least 1")

        def prepare(watcher: Watcher) -> tuple[str, HistoryWalk]:
            watcher.add(WordProbe(text, address, size))
            return f"{text} ({size} bytes at {address:#x})", HistoryWalk(watcher.values(), limit=args.limit)

        return walk_back(s, self.name, prepare)

    def _location(self, text: str, size: int | None) -> tuple[int, int]:
        if size is not None:
            if size == 0:
                raise UsageError(f"{self.name}: --size must be at least 1")
            try:
                return gdb_address(text), size
            except argparse.ArgumentTypeError as exc:
                raise UsageError(f"{self.name}: {exc}") from None
        try:
            value = gdb.parse_and_eval(text)
        except gdb.error as exc:
            raise UsageError(f"{self.name}: {exc}") from None
        if value.address is None:
            raise UsageError(f"{self.name}: {text} is not an lvalue; give an address with --size N")
        return int(value.address) & ((1 << 64) - 1), value.type.sizeof

    def format_text(self, model: History) -> str:
        return history_text(model)
