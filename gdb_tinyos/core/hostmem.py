"""Guest physical memory read from the host, bypassing the gdbstub: QEMU on the same machine.

Two readers, both read-only and both gdb-free (the gdb adapter discovers where the RAM is
and verifies it against gdbstub reads before using them):

- :class:`SharedRamReader`: QEMU's RAM backed by a shared file (``-object
  memory-backend-file,...,share=on``), mapped into this process with ``mmap`` (PROT_READ).
  The launcher unlinks the file as soon as QEMU has it open, so it is opened through
  QEMU's own descriptor (``/proc/<pid>/fd/N``): nothing is left on disk if anything crashes.
- :class:`ProcMemReader`: QEMU's private RAM read with ``pread`` on ``/proc/<pid>/mem`` at
  the host virtual address QEMU's ``gpa2hva`` gave (needs ptrace rights on QEMU).

and :func:`host_mapping`/:func:`open_backing_file`, which find the file behind a host
virtual address of a process from ``/proc/<pid>/maps`` and ``/proc/<pid>/fd``.

Example::

    m = host_mapping(qemu_pid, hva)                    # the mapping holding guest RAM
    r = SharedRamReader.open_fd(open_backing_file(qemu_pid, m), base=0x4000_0000,
                                size=128 << 20, offset=m.offset + hva - m.start)
    r.read(0x4008_0000, 16); r.close()
"""

from __future__ import annotations

import mmap
import os
import re
from dataclasses import dataclass

from .errors import MemoryReadError, TargetStateError


class HostMemoryError(TargetStateError):
    """A host-side reader cannot be set up (no such mapping, no permission, wrong size)."""


class _RangeReader:
    """Guest physical ``[base, base + size)``; reads outside it raise MemoryReadError."""

    kind = "host"

    def __init__(self, base: int, size: int) -> None:
        self.base = base
        self.size = size

    def covers(self, pa: int, size: int) -> bool:
        return self.base <= pa and pa + size <= self.base + self.size

    def _check(self, pa: int, size: int) -> int:
        if size < 0 or not self.covers(pa, size):
            raise MemoryReadError(
                f"cannot read {size} bytes at physical {pa:#x}: outside guest RAM "
                f"{self.base:#x}-{self.base + self.size:#x} ({self.kind})",
                pa,
                size,
            )
        return pa - self.base

    def read(self, pa: int, size: int) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        """Releases the mapping or descriptor; reading afterwards raises MemoryReadError."""


class SharedRamReader(_RangeReader):
    """Guest RAM mapped read-only from its backing file: a read is a slice of memory."""

    kind = "shared RAM file"

    def __init__(self, buffer: mmap.mmap, base: int, size: int, skip: int) -> None:
        super().__init__(base, size)
        self._map: mmap.mmap | None = buffer
        self._skip = skip  # guest RAM starts this far into the (page-aligned) mapping

    @classmethod
    def open_fd(cls, fd: int, base: int, size: int, offset: int = 0) -> SharedRamReader:
        """Maps ``size`` bytes of the file open on ``fd`` at file ``offset`` (guest PA
        ``base``) read-only. The caller keeps ownership of ``fd`` (it may close it at once:
        the mapping holds its own reference to the file)."""
        try:
            file_size = os.fstat(fd).st_size
        except OSError as exc:
            raise HostMemoryError(f"cannot stat the RAM file: {exc}") from None
        if offset < 0 or size <= 0 or offset + size > file_size:
            raise HostMemoryError(
                f"the RAM file holds {file_size} bytes, not {size} at offset {offset:#x}"
            )
        aligned = offset - offset % mmap.ALLOCATIONGRANULARITY
        skip = offset - aligned
        try:
            buffer = mmap.mmap(fd, skip + size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ, offset=aligned)
        except (OSError, ValueError) as exc:
            raise HostMemoryError(f"cannot map the RAM file: {exc}") from None
        return cls(buffer, base, size, skip)

    @classmethod
    def open_path(cls, path: str | os.PathLike[str], base: int, size: int, offset: int = 0) -> SharedRamReader:
        """As :meth:`open_fd`, for a file by name."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise HostMemoryError(f"cannot open the RAM file {path}: {exc}") from None
        try:
            return cls.open_fd(fd, base, size, offset)
        finally:
            os.close(fd)

    def read(self, pa: int, size: int) -> bytes:
        off = self._check(pa, size)
        if self._map is None:
            raise MemoryReadError(f"cannot read physical {pa:#x}: the RAM mapping was released", pa, size)
        start = self._skip + off
        return self._map[start : start + size]

    def view(self) -> memoryview:
        """All of guest RAM as a read-only buffer (index 0 = ``base``), for strided scans."""
        if self._map is None:
            raise TargetStateError("the RAM mapping was released")
        return memoryview(self._map)[self._skip : self._skip + self.size].toreadonly()

    @property
    def released(self) -> bool:
        return self._map is None

    def close(self) -> None:
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                # A view handed out is still alive: the mapping goes when it does.
                pass
            self._map = None


class ProcMemReader(_RangeReader):
    """Guest RAM read from another process's memory (``/proc/<pid>/mem``) at ``hva``."""

    kind = "/proc/<pid>/mem"

    def __init__(self, pid: int, hva: int, base: int, size: int, path: str | None = None) -> None:
        super().__init__(base, size)
        self.pid = pid
        self.hva = hva
        try:
            self._fd: int | None = os.open(path or f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise HostMemoryError(f"cannot open /proc/{pid}/mem: {exc}") from None

    def read(self, pa: int, size: int) -> bytes:
        off = self._check(pa, size)
        if self._fd is None:
            raise MemoryReadError(f"cannot read physical {pa:#x}: /proc/{self.pid}/mem was closed", pa, size)
        try:
            data = os.pread(self._fd, size, self.hva + off)
        except OSError as exc:
            raise MemoryReadError(f"cannot read {size} bytes at physical {pa:#x} from /proc/{self.pid}/mem: {exc}", pa, size) from None
        if len(data) != size:
            raise MemoryReadError(f"short read at physical {pa:#x} from /proc/{self.pid}/mem", pa, size)
        return data

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass(frozen=True)
class HostMapping:
    """One line of ``/proc/<pid>/maps``."""

    start: int
    end: int
    perms: str
    offset: int
    device: tuple[int, int]
    inode: int
    path: str

    @property
    def shared(self) -> bool:
        return self.perms[3:4] == "s"


def parse_maps_line(line: str) -> HostMapping:
    """``7f7d8bfff000-7f7d93fff000 rw-s 00000000 00:1b 7   /dev/shm/x/ram (deleted)``."""
    fields = line.split(maxsplit=5)
    start, end = (int(x, 16) for x in fields[0].split("-"))
    major, minor = (int(x, 16) for x in fields[3].split(":"))
    path = fields[5].rstrip("\n") if len(fields) > 5 else ""
    return HostMapping(start, end, fields[1], int(fields[2], 16), (major, minor), int(fields[4]), path)


def host_mapping(pid: int, hva: int, maps_path: str | None = None) -> HostMapping:
    """The mapping of process ``pid`` that contains host virtual address ``hva``."""
    path = maps_path or f"/proc/{pid}/maps"
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                m = parse_maps_line(line)
                if m.start <= hva < m.end:
                    return m
    except OSError as exc:
        raise HostMemoryError(f"cannot read {path}: {exc}") from None
    raise HostMemoryError(f"no mapping at {hva:#x} in process {pid}")


def descriptor_of(pid: int, device: tuple[int, int], inode: int, fd_dir: str | None = None) -> str | None:
    """``/proc/<pid>/fd/N`` of a descriptor process ``pid`` holds on the file with this
    device (major, minor) and inode, None if it holds none (or we may not look)."""
    directory = fd_dir or f"/proc/{pid}/fd"
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    for name in names:
        link = os.path.join(directory, name)
        try:
            st = os.stat(link)
        except OSError:
            continue
        if st.st_ino == inode and (os.major(st.st_dev), os.minor(st.st_dev)) == device:
            return link
    return None


def open_backing_file(pid: int, mapping: HostMapping, fd_dir: str | None = None) -> int:
    """A new read-only descriptor on the file behind ``mapping``, opened through one of
    process ``pid``'s own descriptors (works after the file was unlinked). Matched by
    device and inode, never by name."""
    if not mapping.shared or mapping.inode == 0:
        raise HostMemoryError(f"guest RAM is not in a shared file mapping ({mapping.perms} {mapping.path or 'anonymous'})")
    link = descriptor_of(pid, mapping.device, mapping.inode, fd_dir)
    if link is not None:
        try:
            return os.open(link, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise HostMemoryError(f"cannot open QEMU's RAM file through {link}: {exc}") from None
    raise HostMemoryError(f"process {pid} holds no descriptor on its RAM file {mapping.path!r}")


_MTREE_RAM = re.compile(r"^\s*([0-9a-f]+)-([0-9a-f]+) \(prio -?\d+, ram\): (\S+)", re.MULTILINE)
_GPA2HVA = re.compile(r"Host virtual address for 0x[0-9a-f]+ \((\S+)\) is (0x[0-9a-f]+)")


@dataclass(frozen=True)
class RamRegion:
    """A RAM range of the guest's physical address space, as QEMU's ``info mtree -f`` shows it."""

    base: int
    size: int
    name: str


def parse_ram_regions(mtree: str) -> list[RamRegion]:
    """The ``ram`` ranges of ``info mtree -f`` output, largest first, each listed once."""
    found = {
        (int(lo, 16), int(hi, 16) - int(lo, 16) + 1, name)
        for lo, hi, name in _MTREE_RAM.findall(mtree)
    }
    return [RamRegion(b, s, n) for b, s, n in sorted(found, key=lambda r: (-r[1], r[0]))]


def parse_gpa2hva(reply: str) -> int:
    """The host virtual address in QEMU's ``gpa2hva`` answer, else HostMemoryError with it."""
    m = _GPA2HVA.search(reply)
    if m is None:
        raise HostMemoryError(f"QEMU's gpa2hva gave no address: {reply.strip()[:200]!r}")
    return int(m.group(2), 16)
