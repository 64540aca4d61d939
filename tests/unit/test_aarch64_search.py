"""Searching address spaces physically, and the per-exception-level filters.

The memory image is written here (the needle at chosen offsets) and the expected virtual
addresses are worked out by hand from the mappings each test writes."""

from __future__ import annotations

import struct

import pytest

from gdb_tinyos.aarch64 import dump, make_filter
from gdb_tinyos.aarch64.search import needle_for, preview, search_space

TABLE = PAGE = 0b11
AF, NG, PXN, UXN = 1 << 10, 1 << 11, 1 << 53, 1 << 54
NORMAL, DEVICE = 1 << 2, 0 << 2  # MAIR index 1 = normal WB, index 0 = Device-nGnRnE
RW_EL1, RW_ALL, RO_EL1, RO_ALL = 0b00 << 6, 0b01 << 6, 0b10 << 6, 0b11 << 6
TCR_4K = 16 | 16 << 16 | 0b10 << 30 | 0b101 << 32
MAIR = 0xFF << 8
PG = 4096


def user_space(image):
    """TTBR0: VA 0x400000 code (EL0 R-X), 0x800000-0x802000 data (EL0 RW-, two pages mapping
    PA 0x4100_0000 and 0x4100_1000, one range), 0x900000 read-only data, 0xA00000 a device page."""
    l0, l1, l2, l3 = (image.table() for _ in range(4))
    image.set(l0, 0, l1 | TABLE)
    image.set(l1, 0, l2 | TABLE)
    l3_data, l3_dev = image.table(), image.table()
    image.set(l2, 2, l3 | TABLE)  # 0x400000, 0x800000, 0xA00000 are L2 slots 2, 4, 5
    image.set(l2, 4, l3_data | TABLE)
    image.set(l2, 5, l3_dev | TABLE)
    image.set(l3, 0, 0x4200_0000 | PAGE | AF | NG | NORMAL | RO_ALL | PXN)  # 0x400000: EL0 R-X
    image.set(l3_data, 0, 0x4100_0000 | PAGE | AF | NG | NORMAL | RW_ALL | PXN | UXN)  # 0x800000
    image.set(l3_data, 1, 0x4100_1000 | PAGE | AF | NG | NORMAL | RW_ALL | PXN | UXN)  # 0x801000
    image.set(l3_data, 256, 0x4300_0000 | PAGE | AF | NG | NORMAL | RO_ALL | PXN | UXN)  # 0x900000
    image.set(l3_dev, 0, 0x0900_0000 | PAGE | AF | DEVICE | RW_EL1 | PXN | UXN)  # 0xA00000
    image.registers(TCR_EL1=TCR_4K, SCTLR=1, MAIR_EL1=MAIR, TTBR0_EL1=l0, TTBR1_EL1=0)
    for pa in (0x4200_0000, 0x4100_0000, 0x4100_1000, 0x4300_0000):
        image.target.write_physical(pa, bytes(PG))
    image.target.write_physical(0x0900_0000, b"needle" + bytes(PG - 6))  # must never be read
    return l0


def test_string_hits_at_their_virtual_and_physical_addresses(image):
    user_space(image)
    image.target.write_physical(0x4200_0000 + 0x123, b"hello, needle!")
    image.target.write_physical(0x4100_1000 + 0x10, b"needle")
    space = dump(image.target, 0)
    found = search_space(image.target, space, b"needle")
    assert [(h.va, h.pa) for h in found.hits] == [(0x400000 + 0x12A, 0x4200_012A), (0x801010, 0x4100_1010)]
    assert found.hits[0].perms == "EL1:R-- EL0:R-X" and found.hits[0].preview.startswith("needle!")
    assert found.ranges_searched == 3 and found.bytes_searched == 4 * PG  # code, data (2 pages), rodata
    assert any("device memory" in s for s in found.skipped)


def test_a_match_across_a_chunk_edge_and_a_page_edge_is_found_once(image):
    user_space(image)
    image.target.write_physical(0x4100_0000 + PG - 3, b"abcdef")  # straddles 0x800FFD..0x801003
    space = dump(image.target, 0)
    for chunk in (16, 64, PG, 2 * PG, 1 << 20):
        found = search_space(image.target, space, b"abcdef", chunk=chunk)
        assert [h.va for h in found.hits] == [0x800000 + PG - 3], chunk


def test_reads_are_one_per_range_when_it_fits_a_chunk(image):
    user_space(image)
    space = dump(image.target, 0)
    image.target.stats.reads = 0
    search_space(image.target, space, b"zz")
    assert image.target.stats.reads == 3


def test_limit_and_overlapping_matches(image):
    user_space(image)
    image.target.write_physical(0x4300_0000, b"aaaa")
    found = search_space(image.target, dump(image.target, 0), b"aa")
    assert [h.va for h in found.hits] == [0x900000, 0x900001, 0x900002]  # overlapping matches all count
    limited = search_space(image.target, dump(image.target, 0), b"aa", limit=2)
    assert len(limited.hits) == 2 and limited.truncated


def test_u64_needle_is_little_endian(image):
    user_space(image)
    image.target.write_physical(0x4100_0000 + 8, struct.pack("<Q", 0x1111))
    found = search_space(image.target, dump(image.target, 0), needle_for(u64=0x1111))
    assert [h.va for h in found.hits] == [0x800008]


def test_needles():
    assert needle_for(text="hi") == b"hi"
    assert needle_for(hex_bytes="de ad BE ef") == b"\xde\xad\xbe\xef" == needle_for(hex_bytes="0xdeadbeef")
    assert needle_for(u64=0x0102) == b"\x02\x01" + bytes(6)
    assert needle_for(u32=0x0102) == b"\x02\x01\0\0"
    for bad in (dict(), dict(text="a", u64=1), dict(hex_bytes="xyz"), dict(text=""), dict(u32=1 << 32)):
        with pytest.raises(ValueError):
            needle_for(**bad)


def test_preview_never_passes_control_bytes():
    assert preview(b"ok\x1b[31m\x00\xff") == "ok.[31m.."


def test_filters_by_exception_level(image):
    user_space(image)
    space = lambda *names: [r.va_start for r in dump(image.target, 0, where=make_filter(names)).ranges]  # noqa: E731
    assert space("ux") == [0x400000]
    assert space("uw") == [0x800000]
    assert space("ur") == [0x400000, 0x800000, 0x900000]
    assert space("kw") == [0x800000, 0xA00000]  # EL1 may write what EL0 may (AP=01), and the device page
    assert space("kx") == []  # PXN everywhere
    assert space("ro") == [0x400000, 0x900000]
    assert space("ro", "ux") == [0x400000]
    assert space("kr", "device") == [0xA00000]
