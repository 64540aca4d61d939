"""Finding the connected QEMU's guest RAM on this host, for reads at memory speed.

The plugin finds it by itself, for any QEMU on this machine, from the gdb connection:

1. the QEMU process: the one serving the gdbstub's loopback port (``/proc/net/tcp``);
2. the RAM's guest physical range: ``monitor info mtree -f`` (its largest ``ram`` region);
3. where QEMU has it: ``monitor gpa2hva BASE`` and QEMU's ``/proc/<pid>/maps``;
4. a shared file mapping (QEMU started with ``memory-backend-file,share=on``, as
   tinyos-gdb and the test harness do) is mapped read-only here through QEMU's own
   descriptor (:class:`~gdb_tinyos.core.hostmem.SharedRamReader`); private RAM is read
   through ``/proc/<pid>/mem`` when we may (:class:`~gdb_tinyos.core.hostmem.ProcMemReader`);
5. the reader is used only after a few of its reads equal the gdbstub's physical reads.

Every step that fails gives the reason :func:`discover` returns with ``None``, which
``tinyos-info`` shows; the gdbstub path is then used, as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import gdb

from ..core.errors import TinyOSError
from ..core.hostmem import (
    HostMemoryError,
    ProcMemReader,
    SharedRamReader,
    host_mapping,
    open_backing_file,
    parse_gpa2hva,
    parse_ram_regions,
)
from ..launcher.ports import server_pids

SHARED_RAM = "shared-ram"
PROC_MEM = "proc-mem"
GDBSTUB = "gdbstub"
CHOICES = ("auto", SHARED_RAM, PROC_MEM, GDBSTUB)
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_SAMPLES = 8
_SAMPLE_BYTES = 64


@dataclass
class HostRam:
    """A verified host reader and how it was found."""

    reader: SharedRamReader | ProcMemReader
    path: str  # SHARED_RAM or PROC_MEM
    pid: int
    description: str


def qemu_pid(connection: gdb.TargetConnection) -> int:
    """The pid of the QEMU serving this loopback gdbstub connection, else HostMemoryError."""
    details = connection.details or ""
    host, _, port = details.rpartition(":")
    host = host.removeprefix("tcp:")
    if not isinstance(connection, gdb.RemoteTargetConnection) or host not in _LOOPBACK or not port.isdigit():
        raise HostMemoryError(f"the target is not a QEMU on this host ({connection.type} {details})")
    pids = server_pids(int(port))
    if len(pids) != 1:
        raise HostMemoryError(
            f"cannot tell which process serves port {port} ({'none visible' if not pids else f'pids {pids}'})"
        )
    return pids[0]


def monitor(command: str) -> str:
    try:
        return gdb.execute(f"monitor {command}", to_string=True) or ""
    except gdb.error as exc:
        raise HostMemoryError(f"QEMU's monitor refused `{command}`: {exc}") from None


def discover(
    connection: gdb.TargetConnection,
    gdbstub_read: Callable[[int, int], bytes],
    prefer: str = "auto",
) -> tuple[HostRam | None, str]:
    """The fastest verified host reader allowed by ``prefer`` (auto, shared-ram, proc-mem)
    and a sentence saying why; ``(None, why not)`` when there is none."""
    if prefer == GDBSTUB:
        return None, "gdbstub chosen with `set tinyos physical-memory gdbstub`"
    try:
        pid = qemu_pid(connection)
        regions = parse_ram_regions(monitor("info mtree -f"))
        if not regions:
            raise HostMemoryError("QEMU's `info mtree -f` shows no RAM region")
        ram = regions[0]
        hva = parse_gpa2hva(monitor(f"gpa2hva {ram.base:#x}"))
        last = parse_gpa2hva(monitor(f"gpa2hva {ram.base + ram.size - 1:#x}"))
        if last != hva + ram.size - 1:
            raise HostMemoryError(f"QEMU's RAM {ram.name} is not contiguous in its address space")
        mapping = host_mapping(pid, hva)
    except HostMemoryError as exc:
        return None, str(exc)
    where = f"{ram.name} {ram.base:#x}-{ram.base + ram.size:#x}, QEMU pid {pid}"
    reasons = []
    if prefer in ("auto", SHARED_RAM):
        try:
            fd = open_backing_file(pid, mapping)
            try:
                reader = SharedRamReader.open_fd(fd, ram.base, ram.size, mapping.offset + hva - mapping.start)
            finally:
                os.close(fd)  # the mapping keeps the file
            return _verified(reader, SHARED_RAM, pid, f"QEMU's RAM file mapped read-only ({where})", gdbstub_read), ""
        except TinyOSError as exc:
            reasons.append(f"no shared RAM file: {exc}")
    if prefer in ("auto", PROC_MEM):
        try:
            reader = ProcMemReader(pid, hva, ram.base, ram.size)
            return _verified(reader, PROC_MEM, pid, f"/proc/{pid}/mem at gpa2hva's address ({where})", gdbstub_read), ""
        except TinyOSError as exc:
            reasons.append(f"no /proc/{pid}/mem: {exc}")
    return None, "; ".join(reasons)


def _verified(reader, path: str, pid: int, description: str, gdbstub_read) -> HostRam:
    """``reader`` once it reads what the gdbstub reads at spots spread over RAM (both are
    the stopped guest's memory: they must agree byte for byte); else HostMemoryError."""
    step = reader.size // _SAMPLES
    # Spread over RAM, plus where a kernel image is usually loaded (non-zero at any stop).
    spots = [reader.base + i * step + (i * 4096 + 8) % step for i in range(_SAMPLES)] + [reader.base + 0x80000]
    try:
        for pa in spots:
            if reader.read(pa, _SAMPLE_BYTES) != gdbstub_read(pa, _SAMPLE_BYTES):
                raise HostMemoryError(f"{path} reads differ from the gdbstub's at {pa:#x}: not this QEMU's RAM")
    except TinyOSError:
        reader.close()
        raise
    return HostRam(reader, path, pid, description)
