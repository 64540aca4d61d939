"""The live target: guest memory and registers through gdb's remote connection to QEMU.

The only :class:`~gdb_tinyos.core.target.Target` that imports ``gdb``. Virtual reads are gdb's
own (``Inferior.read_memory``, through the CPU's current translation); physical reads switch
QEMU's gdbstub into physical mode (``Qqemu.PhyMemMode:1``) around the read and ALWAYS back
(``:0``), also when the read fails. A stub without that mode (another emulator, a JTAG
probe) falls back to the kernel's linear map (VA = PA + offset) -- or to identity while the
MMU is off -- and says so once.

Example (inside gdb)::

    t = GdbTarget(linear_offset=0xFFFF_0000_0000_0000)
    t.read_register("SCTLR_EL1")        # gdb calls it SCTLR; callers use canonical names
    t.read_physical(0x4008_0000, 16)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import gdb

from ..core import registers
from ..aarch64 import SCTLR
from ..aarch64.coredump import KERNEL_OFFSET
from ..core.errors import MemoryReadError, RegisterError, TargetStateError
from ..core.target import Target

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


def require_stopped() -> gdb.InferiorThread:
    """The selected thread of a connected, stopped target, or TargetStateError."""
    inferior = gdb.selected_inferior()
    if inferior.pid == 0 or inferior.connection is None:
        raise TargetStateError(NOT_CONNECTED)
    thread = gdb.selected_thread()
    if thread is None or not thread.is_valid():
        raise TargetStateError(NOT_CONNECTED)
    if thread.is_running() and not _IN_STOP_CALLBACK[0] and not _evaluating_condition():
        raise TargetStateError(RUNNING)
    return thread


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


@contextmanager
def qemu_physical_mode(connection: gdb.TargetConnection) -> Iterator[None]:
    """Make the stub's memory accesses physical for the ``with`` body, then virtual again."""
    reply = connection.send_packet("Qqemu.PhyMemMode:1")
    if reply != b"OK":
        raise TargetStateError(f"QEMU refused physical-memory mode (reply {reply!r})")
    try:
        yield
    finally:
        # Leaving the stub in physical mode would silently corrupt every later gdb command.
        back = connection.send_packet("Qqemu.PhyMemMode:0")
        if back != b"OK":
            raise TargetStateError(f"could not switch QEMU back to virtual memory mode (reply {back!r})")


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
        self._reg_names: tuple[str, frozenset[str]] | None = None  # (arch name, names)
        self.physical_access: str | None = None  # how the last physical read was served

    # -- memory ------------------------------------------------------------------

    def read_virtual(self, va: int, size: int) -> bytes:
        require_stopped()
        return self._read_memory(va, size, "virtual")

    def read_physical(self, pa: int, size: int) -> bytes:
        require_stopped()
        connection = gdb.selected_inferior().connection
        if self.has_physical_mode():
            self.physical_access = PHYS_QEMU
            with qemu_physical_mode(connection):
                return self._read_memory(pa, size, "physical")
        return self._read_physical_fallback(pa, size)

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
        self.stats.count(size)
        try:
            return gdb.selected_inferior().read_memory(address, size).tobytes()
        except gdb.MemoryError:
            raise MemoryReadError(
                f"cannot read {size} bytes of {kind} memory at {address:#x}", address, size
            ) from None

    # -- registers -----------------------------------------------------------------

    def read_register(self, name: str) -> int:
        require_stopped()
        frame = gdb.newest_frame()
        arch = frame.architecture()
        gdb_name = registers.resolve(name, self._register_names(arch))
        if gdb_name is None:
            raise RegisterError(f"register {name} is not available on this target ({arch.name()})")
        try:
            value = frame.read_register(gdb_name)
        except (ValueError, gdb.error) as exc:
            raise RegisterError(f"cannot read register {gdb_name}: {exc}") from None
        if value.is_optimized_out:
            raise RegisterError(f"register {gdb_name} is unavailable in this frame")
        return _as_unsigned(value, arch)

    def _register_names(self, arch: gdb.Architecture) -> frozenset[str]:
        if self._reg_names is None or self._reg_names[0] != arch.name():
            self._reg_names = (arch.name(), frozenset(r.name for r in arch.registers()))
        return self._reg_names[1]


def _as_unsigned(value: gdb.Value, arch: gdb.Architecture) -> int:
    """A register value as an unsigned integer (flags types and signed longs included)."""
    bits = value.type.sizeof * 8
    try:
        number = int(value)
    except gdb.error:
        number = int(value.cast(arch.integer_type(bits, False)))
    return number & ((1 << bits) - 1)
