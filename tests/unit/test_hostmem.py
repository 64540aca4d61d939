"""Host-side guest RAM readers on a temp file standing in for QEMU's RAM file, and the
parsers of QEMU's monitor answers (texts copied from QEMU 7.2's output)."""

from __future__ import annotations

import ctypes
import mmap
import os

import pytest

from gdb_tinyos.core.errors import MemoryReadError
from gdb_tinyos.core.hostmem import (
    HostMemoryError,
    ProcMemReader,
    SharedRamReader,
    host_mapping,
    open_backing_file,
    parse_gpa2hva,
    parse_maps_line,
    parse_ram_regions,
)

BASE = 0x4000_0000
SIZE = 4 * mmap.ALLOCATIONGRANULARITY


@pytest.fixture
def ram_file(tmp_path):
    path = tmp_path / "ram"
    data = bytes((i * 7) & 0xFF for i in range(SIZE + mmap.ALLOCATIONGRANULARITY))
    path.write_bytes(data)
    return path, data


def test_shared_ram_reads_are_slices_of_the_file_at_its_offset(ram_file):
    path, data = ram_file
    offset = mmap.ALLOCATIONGRANULARITY + 16  # unaligned: the reader aligns the mapping itself
    reader = SharedRamReader.open_path(path, BASE, SIZE - 16, offset)
    assert reader.read(BASE, 32) == data[offset : offset + 32]
    assert reader.read(BASE + 0x1234, 5) == data[offset + 0x1234 : offset + 0x1239]
    assert bytes(reader.view()[8::4096][:3]) == bytes(data[offset + 8 + k * 4096] for k in range(3))
    with pytest.raises(MemoryReadError, match="outside guest RAM"):
        reader.read(BASE + SIZE - 16, 1)
    with pytest.raises(MemoryReadError):
        reader.read(BASE - 1, 2)
    reader.close()
    with pytest.raises(MemoryReadError, match="released"):
        reader.read(BASE, 1)


def test_shared_ram_is_mapped_read_only(ram_file):
    path, _ = ram_file
    reader = SharedRamReader.open_path(path, BASE, SIZE)
    with pytest.raises(TypeError):
        reader.view()[0] = 1
    reader.close()


def test_shared_ram_sees_writes_made_by_the_file_owner(ram_file):
    path, _ = ram_file
    reader = SharedRamReader.open_path(path, BASE, SIZE)
    with open(path, "r+b") as f:
        f.seek(0x100)
        f.write(b"QEMU")
        f.flush()
    assert reader.read(BASE + 0x100, 4) == b"QEMU"
    reader.close()


def test_a_file_smaller_than_the_ram_is_refused(ram_file):
    path, data = ram_file
    with pytest.raises(HostMemoryError, match="holds"):
        SharedRamReader.open_path(path, BASE, len(data) + 1)


def test_proc_mem_reads_this_process_memory_at_an_address(ram_file):
    buffer = mmap.mmap(-1, SIZE)
    buffer[0x40:0x48] = b"abcdefgh"
    hva = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    reader = ProcMemReader(os.getpid(), hva, BASE, SIZE)
    assert reader.read(BASE + 0x40, 8) == b"abcdefgh"
    reader.close()


def test_backing_file_found_through_the_mapping_after_unlink(ram_file):
    path, data = ram_file
    fd = os.open(path, os.O_RDWR)
    buffer = mmap.mmap(fd, SIZE, flags=mmap.MAP_SHARED)
    hva = ctypes.addressof(ctypes.c_char.from_buffer(buffer)) + 0x2000
    path.unlink()
    mapping = host_mapping(os.getpid(), hva)
    assert mapping.shared and mapping.path.endswith("ram (deleted)")
    new_fd = open_backing_file(os.getpid(), mapping)
    reader = SharedRamReader.open_fd(new_fd, BASE, 0x1000, mapping.offset + hva - mapping.start)
    os.close(new_fd)
    assert reader.read(BASE, 16) == data[0x2000:0x2010]
    reader.close()
    del buffer
    os.close(fd)


def test_private_memory_has_no_backing_file():
    buffer = mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE)  # as QEMU's default RAM
    hva = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    with pytest.raises(HostMemoryError, match="not in a shared file mapping"):
        open_backing_file(os.getpid(), host_mapping(os.getpid(), hva))


def test_maps_line():
    m = parse_maps_line("7f7d8bfff000-7f7d93fff000 rw-s 00001000 00:1b 7                          /dev/shm/x/ram (deleted)\n")
    assert (m.start, m.end, m.offset, m.device, m.inode) == (0x7F7D8BFFF000, 0x7F7D93FFF000, 0x1000, (0, 0x1B), 7)
    assert m.shared and m.path == "/dev/shm/x/ram (deleted)"
    assert not parse_maps_line("7f00-8f00 rw-p 00000000 00:00 0 \n").shared


MTREE = """FlatView #2
 AS "memory", root: system
 Root memory region: system
  0000000000000000-0000000003ffffff (prio 0, romd): virt.flash0
  0000000009000000-0000000009000fff (prio 0, i/o): pl011
  000000000e000000-000000000effffff (prio 0, ram): virt.secure-ram
  0000000040000000-0000000047ffffff (prio 0, ram): ram
  0000004010000000-000000401fffffff (prio 0, i/o): pcie-mmcfg-mmio
FlatView #3
  0000000040000000-0000000047ffffff (prio 0, ram): ram
"""


def test_ram_regions_from_mtree_largest_first_once_each():
    regions = parse_ram_regions(MTREE)
    assert [(r.base, r.size, r.name) for r in regions] == [
        (0x4000_0000, 128 << 20, "ram"),
        (0x0E00_0000, 16 << 20, "virt.secure-ram"),
    ]


def test_gpa2hva_reply():
    assert parse_gpa2hva("Host virtual address for 0x40000000 (ram) is 0x7f80d3fff000\r\n") == 0x7F80D3FFF000
    with pytest.raises(HostMemoryError, match="no address"):
        parse_gpa2hva("No memory is mapped at address 0x0\r\n")
