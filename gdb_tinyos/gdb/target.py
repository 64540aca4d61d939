"""The live target: guest memory and registers through gdb's remote connection to QEMU.

The only :class:`~gdb_tinyos.core.target.Target` that imports ``gdb``. Virtual reads are gdb's
own (``Inferior.read_memory``, through the CPU's current translation). Physical reads take
the fastest verified path (:mod:`.hostram`): QEMU's RAM file mapped into gdb (memory speed),
else ``/proc/<qemu pid>/mem``, else the gdbstub switched into physical mode
(``Qqemu.PhyMemMode:1``) around the read -- or once around a decode's reads (:meth:`GdbTarget.batch`)
-- and ALWAYS back (``:0``), also when a read fails.
A stub without that mode (another emulator, a JTAG probe) falls back to the kernel's linear
map (VA = PA + offset) -- or to identity while the MMU is off -- and says so once. Writes
are never done here: they go through gdb. ``set tinyos physical-memory auto|shared-ram|
proc-mem|gdbstub`` restricts the choice (e.g. to compare paths).

Example (inside gdb)::

    t = GdbTarget(linear_offset=0xFFFF_0000_0000_0000)
    t.read_register("SCTLR_EL1")        # gdb calls it SCTLR; callers use canonical names
    t.read_physical(0x4008_0000, 16)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import gdb

from ..core import registers
from ..aarch64 import SCTLR, Translator
from ..aarch64.runs import physical_runs
from ..aarch64.coredump import KERNEL_OFFSET
from ..core.errors import MemoryReadError, RegisterError, TargetStateError, TinyOSError
from ..core.target import ReadStats, Target
from . import hostram

NOT_CONNECTED = "not connected to a target: use `target remote 127.0.0.1:PORT`"
RUNNING = "the target is running: interrupt it first (Ctrl-C or `interrupt`)"

PHYS_QEMU = "qemu-phymem"
PHYS_IDENTITY = "identity (MMU off)"
PHYS_LINEAR = "kernel linear map"


_IN_STOP_CALLBACK = [0]


@contextmanager
def breakpoint_stop_context() -> Iterator[None]:
    """For a ``gdb.Breakpoint.stop()`` body: the CPU is stopped there, but gdb still calls
    the thread running until it decides whether to stop, so reads must not refuse."""
    _IN_STOP_CALLBACK[0] += 1
    try:
        yield
    finally:
        _IN_STOP_CALLBACK[0] -= 1


_IN_UNWINDER = [0]


@contextmanager
def unwinder_context() -> Iterator[None]:
    """For a frame unwinder's body: gdb is building frames, so reads must not ask for a
    frame (a register) or run a command (QEMU's monitor): both re-enter the unwinder.
    Reads then use only what this stop already set up, else the gdbstub."""
    _IN_UNWINDER[0] += 1
    try:
        yield
    finally:
        _IN_UNWINDER[0] -= 1


def require_stopped() -> gdb.InferiorThread | None:
    """The selected thread of a connected, stopped target, or TargetStateError; None when
    the session reads a core dump (offline: always "stopped", no thread)."""
    if _offline_core() is not None:
        return None
    inferior = gdb.selected_inferior()
    if inferior.pid == 0 or inferior.connection is None:
        raise TargetStateError(NOT_CONNECTED)
    thread = gdb.selected_thread()
    if thread is None or not thread.is_valid():
        raise TargetStateError(NOT_CONNECTED)
    # In a frame unwinder gdb is building frames for a halted target: asking for one (as
    # _evaluating_condition does) would re-enter it.
    if thread.is_running() and not _IN_STOP_CALLBACK[0] and not _IN_UNWINDER[0] and not _evaluating_condition():
        raise TargetStateError(RUNNING)
    return thread


def require_live() -> gdb.InferiorThread:
    """For commands that run or change the kernel (kernel calls, dumps, breakpoints that
    resume it): a stopped live target, refused in one line on a core dump."""
    refuse_core()
    thread = require_stopped()
    assert thread is not None
    return thread


def refuse_core() -> None:
    """TargetStateError when the session reads a core dump: nothing runs there."""
    core = _offline_core()
    if core is not None:
        raise TargetStateError(f"the session reads the core dump {core}, not a running kernel; "
                               "this needs a live one (tinyos-gdb without --core)")


def _offline_core() -> str | None:
    core = _session()().core
    return None if core is None else str(core.path)


@cache
def _session() -> Callable[[], Any]:
    """:func:`.session.session`, imported once (the session imports this module); every
    read asks for it."""
    from .session import session  # noqa: PLC0415

    return session


def _evaluating_condition() -> bool:
    """gdb evaluates a breakpoint condition (and the convenience functions in it, e.g.
    ``break ... if $cow_refs($x1) > 1``) while the thread is still marked running but
    halted at the breakpoint: a frame exists and memory is readable. Truly running, gdb
    has no selected frame."""
    try:
        gdb.selected_frame()
    except gdb.error:
        return False
    return True


def enter_physical_mode(connection: gdb.TargetConnection) -> None:
    reply = _send_mode_packet(connection, "Qqemu.PhyMemMode:1")
    if reply != "OK":
        raise TargetStateError(f"QEMU refused physical-memory mode (reply {reply!r})")


def leave_physical_mode(connection: gdb.TargetConnection) -> None:
    # Leaving the stub in physical mode would silently corrupt every later gdb command.
    back = _send_mode_packet(connection, "Qqemu.PhyMemMode:0")
    if back != "OK":
        raise TargetStateError(f"could not switch QEMU back to virtual memory mode (reply {back!r})")


def _send_mode_packet(connection: gdb.TargetConnection, packet: str) -> str:
    """``packet`` sent to the stub, its reply as gdb quotes it. Through ``maintenance
    packet`` where possible: ``send_packet`` switches gdb's current thread away and back,
    so gdb drops its frames and rebuilds frame 0 at its next look (~0.1 ms, at the latest
    when the command ends). Inside an unwinder no command may run, and the maintenance
    command only reaches the selected inferior's connection: there, ``send_packet``."""
    current = gdb.selected_inferior().connection
    if _IN_UNWINDER[0] or current is None or current.num != connection.num:
        return connection.send_packet(packet).decode("ascii", "backslashreplace")
    out = gdb.execute(f"maintenance packet {packet}", to_string=True)
    return out.rpartition('received: "')[2].rstrip().removesuffix('"')  # 'sending: ...\nreceived: "OK"\n'


class GdbTarget(Target):
    """Guest memory and registers of gdb's selected inferior (a QEMU gdbstub connection).

    ``linear_offset`` (an int or a callable returning one, evaluated when first needed) is
    the kernel linear map's VA - PA, used only when QEMU's physical mode is missing.
    ``notify`` receives the one-time message announcing that fallback."""

    def __init__(
        self,
        linear_offset: int | Callable[[], int] = KERNEL_OFFSET,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self._linear_offset = linear_offset
        self._notify = notify or (lambda msg: gdb.write(msg + "\n"))
        self._phys_probe: tuple[int, bool] | None = None  # (connection num, available)
        self._fallback_announced = False
        self._reg_names: tuple[str, frozenset[str], dict[str, str | None]] | None = None  # (arch, names, resolved)
        self.physical_access: str | None = None  # how the last physical read was served
        self.gdbstub_stats = ReadStats()  # reads that went over the remote protocol
        self.prefer = "auto"  # one of hostram.CHOICES
        self._host: tuple[int, hostram.HostRam | None, str] | None = None  # (connection, reader, why)
        self._walker: Translator | None | bool = None  # None: not built at this stop; False: none
        self._batches = 0  # open batch() scopes
        self._physical_mode: gdb.TargetConnection | None = None  # the stub left in physical mode by a batch

    # -- memory ------------------------------------------------------------------

    def read_virtual(self, va: int, size: int) -> bytes:
        require_stopped()
        if size > 0 and self.host_ram() is not None:
            data = self._read_virtual_host(va, size)
            if data is not None:
                return data
        return self._read_memory(va, size, "virtual")

    def _read_virtual_host(self, va: int, size: int) -> bytes | None:
        """``size`` bytes at ``va`` translated by our own walk of the CPU's current EL1
        tables (what QEMU's gdbstub does for a debug access) and read from host RAM; None
        when any part is outside what that covers (gdb then reads it, and words its error)."""
        walker = self._host_walker()
        if walker is None:
            return None
        try:
            runs = physical_runs(walker, va, size)  # one dump of the window when it maps cleanly
        except TinyOSError:
            return None
        host = self.host_ram()
        if host is None or not all(host.reader.covers(pa, n) for pa, n in runs):
            return None
        self.stats.count(size)
        return b"".join(host.reader.read(pa, n) for pa, n in runs)

    def _host_walker(self) -> Translator | None:
        """This stop's translator (EL1 regime, tables read from host RAM), or None at
        another exception level or with the MMU off, where gdb's own read is simpler."""
        if self._walker is None:
            if _IN_UNWINDER[0]:
                return None  # reading cpsr would need the frame being built
            try:
                el = (self.read_register("cpsr") >> 2) & 3
                walker = Translator(self) if el == 1 else None
                self._walker = walker if walker is not None and walker.regime.mmu_enabled else False
            except TinyOSError:
                self._walker = False
        return self._walker or None

    def invalidate(self) -> None:
        """A new stop (or a write): the CPU's registers and tables may differ."""
        self._walker = None

    def read_physical(self, pa: int, size: int) -> bytes:
        require_stopped()
        host = self.host_ram()
        if host is not None and host.reader.covers(pa, size):
            self.stats.count(size)
            self.physical_access = host.path
            return host.reader.read(pa, size)
        return self._read_physical_gdbstub(pa, size)

    def _read_physical_gdbstub(self, pa: int, size: int) -> bytes:
        connection = gdb.selected_inferior().connection
        if not self.has_physical_mode():
            return self._read_physical_fallback(pa, size)
        self.physical_access = PHYS_QEMU
        with self.batch():  # alone, a batch of one: the mode on, then off again
            if self._physical_mode is not connection:
                self._leave_physical_mode()
                enter_physical_mode(connection)
                self._physical_mode = connection
            return self._read_memory(pa, size, "physical")

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Physical reads over the gdbstub inside the scope share one switch of QEMU's
        physical mode: on at the first, off when the outermost scope ends (or before
        anything else reaches gdb: a register, a virtual read), so gdb never reads in it."""
        self._batches += 1
        try:
            yield
        finally:
            self._batches -= 1
            if not self._batches:
                self._leave_physical_mode()

    def _leave_physical_mode(self) -> None:
        connection, self._physical_mode = self._physical_mode, None
        if connection is not None and connection.is_valid():
            leave_physical_mode(connection)

    def host_ram(self) -> hostram.HostRam | None:
        """The verified host reader of this connection's guest RAM (found once per
        connection), None when physical reads must go through the gdbstub."""
        connection = gdb.selected_inferior().connection
        if connection is None:
            return None
        if self._host is None or self._host[0] != connection.num:
            if _IN_UNWINDER[0] or gdb.selected_thread().is_running():
                # Inside a breakpoint's stop() or condition: no monitor commands there;
                # the first read at the stop itself will look.
                return None
            self.release_host_ram()
            if self.prefer != hostram.GDBSTUB and not self.has_physical_mode():
                found, why = None, "the gdbstub has no physical mode to verify host reads against"
            else:
                found, why = hostram.discover(connection, self._read_physical_gdbstub, self.prefer)
            self._host = (connection.num, found, why)
        return self._host[1]

    def physical_path(self) -> tuple[str, str]:
        """(how physical reads are served, why): for ``tinyos-info``."""
        host = self.host_ram()
        if host is not None:
            return host.path, host.description
        why = self._host[2] if self._host is not None else ""
        fallback = self.physical_fallback
        if fallback is None:
            return hostram.GDBSTUB, f"gdbstub physical mode (Qqemu.PhyMemMode); no host path: {why}"
        return "fallback", f"{fallback}; no host path: {why}"

    def set_preference(self, prefer: str) -> None:
        """Restrict the physical-read paths (hostram.CHOICES); takes effect at the next read."""
        if prefer not in hostram.CHOICES:
            raise ValueError(f"physical memory path must be one of {', '.join(hostram.CHOICES)}")
        self.prefer = prefer
        self.release_host_ram()

    def release_host_ram(self) -> None:
        """Unmaps the RAM file / closes /proc/<pid>/mem (the connection ended or changed)."""
        if self._host is not None and self._host[1] is not None:
            self._host[1].reader.close()
        self._host = None

    def has_physical_mode(self) -> bool:
        """Whether the stub answers QEMU's ``qqemu.PhyMemMode`` query (probed once per connection)."""
        require_stopped()
        connection = gdb.selected_inferior().connection
        if self._phys_probe is None or self._phys_probe[0] != connection.num:
            available = self._probe_physical_mode(connection)
            self._phys_probe = (connection.num, available)
        return self._phys_probe[1]

    @property
    def physical_fallback(self) -> str | None:
        """How physical reads are served when QEMU's mode is missing, None when it is present."""
        if self.has_physical_mode():
            return None
        return PHYS_IDENTITY if not self.mmu_on() else f"{PHYS_LINEAR} (VA = PA + {self.linear_offset:#x})"

    @property
    def linear_offset(self) -> int:
        if callable(self._linear_offset):
            self._linear_offset = self._linear_offset()
        return self._linear_offset

    def _probe_physical_mode(self, connection: gdb.TargetConnection) -> bool:
        if not isinstance(connection, gdb.RemoteTargetConnection):
            return False
        try:
            reply = connection.send_packet("qqemu.PhyMemMode")
        except gdb.error:
            return False
        return reply in (b"0", b"1")

    def _read_physical_fallback(self, pa: int, size: int) -> bytes:
        if not self.mmu_on():
            self.physical_access = PHYS_IDENTITY
            return self._read_memory(pa, size, "physical")
        self.physical_access = PHYS_LINEAR
        if not self._fallback_announced:
            self._fallback_announced = True
            self._notify(
                "tinyos: this gdbstub has no physical-memory mode; physical reads go through "
                f"the kernel linear map (VA = PA + {self.linear_offset:#x})"
            )
        return self._read_memory(pa + self.linear_offset, size, "physical")

    def mmu_on(self) -> bool:
        """SCTLR_EL1.M; assumed on (a running kernel) when the register is unreadable."""
        try:
            return SCTLR.decode(self.read_register("SCTLR_EL1")).mmu
        except RegisterError:
            return True  # unknown: assume the usual state of a running kernel

    def _read_memory(self, address: int, size: int, kind: str) -> bytes:
        if size == 0:
            return b""
        if kind != "physical":
            self._leave_physical_mode()
        self.stats.count(size)
        self.gdbstub_stats.count(size)
        try:
            return gdb.selected_inferior().read_memory(address, size).tobytes()
        except gdb.MemoryError:
            raise MemoryReadError(
                f"cannot read {size} bytes of {kind} memory at {address:#x}", address, size
            ) from None

    # -- registers -----------------------------------------------------------------

    def read_register(self, name: str) -> int:
        require_stopped()
        self._leave_physical_mode()  # building the frame may read memory, virtual
        if _IN_UNWINDER[0]:
            # Asking for a frame while gdb builds frames re-enters the unwinder (gdb crashes).
            raise RegisterError(f"register {name} cannot be read while gdb builds frames")
        frame = gdb.newest_frame()
        arch = frame.architecture()
        gdb_name = self._gdb_name(name, arch)
        if gdb_name is None:
            raise RegisterError(f"register {name} is not available on this target ({arch.name()})")
        try:
            value = frame.read_register(gdb_name)
        except (ValueError, gdb.error) as exc:
            raise RegisterError(f"cannot read register {gdb_name}: {exc}") from None
        if value.is_optimized_out:
            raise RegisterError(f"register {gdb_name} is unavailable in this frame")
        return _as_unsigned(value, arch)

    def _gdb_name(self, name: str, arch: gdb.Architecture) -> str | None:
        """gdb's spelling of ``name`` for ``arch`` (resolved once per name and architecture)."""
        if self._reg_names is None or self._reg_names[0] != arch.name():
            self._reg_names = (arch.name(), frozenset(r.name for r in arch.registers()), {})
        _, names, resolved = self._reg_names
        if name not in resolved:
            resolved[name] = registers.resolve(name, names)
        return resolved[name]


def _as_unsigned(value: gdb.Value, arch: gdb.Architecture) -> int:
    """A register value as an unsigned integer (flags types and signed longs included)."""
    bits = value.type.sizeof * 8
    try:
        number = int(value)
    except gdb.error:
        number = int(value.cast(arch.integer_type(bits, False)))
    return number & ((1 << bits) - 1)
