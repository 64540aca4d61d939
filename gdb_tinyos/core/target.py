"""The memory/register seam every decoder reads through.

A :class:`Target` answers three questions: bytes at a physical address, bytes at a virtual
address (as the CPU would see them now), and a register value by GDB's name. Live gdb
(``gdb_tinyos.gdb.target.GdbTarget``), QEMU core dumps (:mod:`gdb_tinyos.aarch64.coredump`)
and synthetic test images (:class:`FakeTarget`) implement it.

Example::

    t = FakeTarget()
    t.write_physical(0x4000_0000, b"\\x01\\x02")
    assert t.read_physical(0x4000_0000, 2) == b"\\x01\\x02"
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from . import registers
from .errors import MemoryReadError, RegisterError


@dataclass
class ReadStats:
    """How many reads reached the underlying target, for benchmarks and cache tests."""

    reads: int = 0
    bytes: int = 0

    def count(self, size: int) -> None:
        self.reads += 1
        self.bytes += size


class Target(ABC):
    """Abstract source of memory and registers."""

    def __init__(self) -> None:
        self.stats = ReadStats()

    @abstractmethod
    def read_physical(self, pa: int, size: int) -> bytes:
        """Return ``size`` bytes at physical address ``pa`` or raise MemoryReadError."""

    @abstractmethod
    def read_virtual(self, va: int, size: int) -> bytes:
        """Return ``size`` bytes at virtual address ``va`` or raise MemoryReadError."""

    @abstractmethod
    def read_register(self, name: str) -> int:
        """Return the register's value by its canonical name (``TTBR1_EL1``, ``SCTLR_EL1``);
        a backend that spells it differently resolves it with :mod:`gdb_tinyos.core.registers`."""

    def invalidate(self) -> None:
        """Forget cached state; targets without a cache have nothing to do."""

    def batch(self) -> AbstractContextManager[None]:
        """A scope of many reads, e.g. one decode: a backend whose reads each pay a cost of
        their own (QEMU's physical mode switched on and off around every gdbstub read) may
        pay it once for the scope. Scopes nest."""
        return nullcontext()


class FakeTarget(Target):
    """Sparse synthetic physical memory plus a register file, for tests.

    Virtual reads go through ``translate`` (a ``va -> pa`` callable) when given, else
    through a fixed linear offset (``pa = va - linear_offset``), like a kernel linear map.
    Only written bytes exist: reading anything else raises MemoryReadError, as an unmapped
    guest address would. Registers may be given in any spelling a backend uses (``SCTLR``
    for ``SCTLR_EL1``), as :func:`gdb_tinyos.core.registers.resolve` matches them.
    """

    PAGE = 4096

    def __init__(
        self,
        registers: dict[str, int] | None = None,
        linear_offset: int = 0,
        translate: Callable[[int], int] | None = None,
    ) -> None:
        super().__init__()
        self._pages: dict[int, bytearray] = {}
        self.registers: dict[str, int] = dict(registers or {})
        self.linear_offset = linear_offset
        self.translate = translate

    def write_physical(self, pa: int, data: bytes) -> None:
        done = 0
        while done < len(data):  # page by page: benches write megabytes
            addr = pa + done
            page = self._pages.setdefault(addr // self.PAGE, bytearray(self.PAGE))
            off = addr % self.PAGE
            n = min(self.PAGE - off, len(data) - done)
            page[off : off + n] = data[done : done + n]
            done += n

    def write_u64(self, pa: int, value: int) -> None:
        self.write_physical(pa, struct.pack("<Q", value))

    def read_physical(self, pa: int, size: int) -> bytes:
        if pa < 0 or size < 0:
            raise MemoryReadError(f"cannot read {size} bytes at physical {pa:#x}", pa, size)
        self.stats.count(size)
        out = bytearray()
        addr = pa
        while addr < pa + size:
            page = self._pages.get(addr // self.PAGE)
            if page is None:
                raise MemoryReadError(f"physical address {addr:#x} is not backed by memory", pa, size)
            off = addr % self.PAGE
            n = min(self.PAGE - off, pa + size - addr)
            out += page[off : off + n]
            addr += n
        return bytes(out)

    def read_virtual(self, va: int, size: int) -> bytes:
        pa = self.translate(va) if self.translate else va - self.linear_offset
        return self.read_physical(pa, size)

    def read_register(self, name: str) -> int:
        found = registers.resolve(name, self.registers.keys())
        if found is None:
            raise RegisterError(f"register {name} is not available on this target")
        return self.registers[found]


class CachedTarget(Target):
    """Wraps a target and remembers every read until :meth:`invalidate`.

    The gdb adapter invalidates on stop, memory-changed and register-changed events, so
    decoding the same state twice costs no round trips.
    """

    def __init__(self, inner: Target) -> None:
        super().__init__()
        self.inner = inner
        self._mem: dict[tuple[str, int, int], bytes] = {}
        self._regs: dict[str, int] = {}

    def read_physical(self, pa: int, size: int) -> bytes:
        return self._cached("p", pa, size, self.inner.read_physical)

    def read_virtual(self, va: int, size: int) -> bytes:
        return self._cached("v", va, size, self.inner.read_virtual)

    def _cached(self, space: str, address: int, size: int, read: Callable[[int, int], bytes]) -> bytes:
        key = (space, address, size)
        found = self._mem.get(key)
        if found is None:
            self.stats.count(size)
            found = self._mem[key] = read(address, size)
        return found

    def cached_reads(self) -> list[tuple[str, int, int]]:
        """``(space, address, size)`` of every read made since the last invalidate, in
        order ("p" physical, "v" virtual): what a bench replays to time the transfer alone."""
        return list(self._mem)

    def cached_registers(self) -> list[str]:
        """The registers read since the last invalidate, in order (their bytes come over
        the same transport as memory's)."""
        return list(self._regs)

    def read_register(self, name: str) -> int:
        if name not in self._regs:
            self._regs[name] = self.inner.read_register(name)
        return self._regs[name]

    def invalidate(self) -> None:
        self._mem.clear()
        self._regs.clear()
        self.inner.invalidate()

    def batch(self) -> AbstractContextManager[None]:
        return self.inner.batch()
