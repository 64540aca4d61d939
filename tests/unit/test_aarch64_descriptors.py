"""Descriptor classification and fields, from raw values built with Arm ARM bit positions."""

from __future__ import annotations

import pytest

from gdb_tinyos.aarch64.descriptors import DescriptorKind, LeafDescriptor, TableDescriptor, decode_descriptor
from gdb_tinyos.aarch64.granule import GRANULE_4K, GRANULE_16K, GRANULE_64K, GRANULES

# bits[1:0]: 0b11 table (L0-2) / page (L3), 0b01 block; bit 0 clear = invalid.
TABLE, BLOCK, PAGE = 0b11, 0b01, 0b11
AF, NG = 1 << 10, 1 << 11
CONT, PXN, UXN = 1 << 52, 1 << 53, 1 << 54
PXNTABLE, UXNTABLE, NSTABLE = 1 << 59, 1 << 60, 1 << 63


def ap(v: int) -> int:  # AP[2:1] at bits [7:6]
    return v << 6


def sh(v: int) -> int:  # SH[1:0] at bits [9:8]
    return v << 8


def attr(i: int) -> int:  # AttrIndx[2:0] at bits [4:2]
    return i << 2


# Legal block levels without 52-bit addressing: 4K L1 (1 GiB) and L2 (2 MiB);
# 16K L2 (32 MiB); 64K L2 (512 MiB).
BLOCKS = {("4K", 1): 1 << 30, ("4K", 2): 1 << 21, ("16K", 2): 1 << 25, ("64K", 2): 1 << 29}
PAGES = {"4K": 1 << 12, "16K": 1 << 14, "64K": 1 << 16}


@pytest.mark.parametrize("granule", GRANULES, ids=lambda g: g.name)
@pytest.mark.parametrize("level", [0, 1, 2])
def test_block_only_at_legal_levels(granule, level):
    d = decode_descriptor(0x4000_0000 | AF | BLOCK, level, granule)
    size = BLOCKS.get((granule.name, level))
    if size is None:
        assert d.kind is DescriptorKind.RESERVED
    else:
        assert isinstance(d, LeafDescriptor) and d.kind is DescriptorKind.BLOCK and d.size == size


@pytest.mark.parametrize("granule", GRANULES, ids=lambda g: g.name)
def test_level3_01_is_reserved_and_11_is_page(granule):
    assert decode_descriptor(0x4000_0000 | BLOCK, 3, granule).kind is DescriptorKind.RESERVED
    page = decode_descriptor(0x4000_0000 | PAGE, 3, granule)
    assert page.kind is DescriptorKind.PAGE and page.size == PAGES[granule.name]


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_bit0_clear_is_invalid_whatever_else(level):
    assert decode_descriptor(0xFFFF_FFFF_FFFF_FFFE, level, GRANULE_4K).kind is DescriptorKind.INVALID


def test_output_address_masks_per_granule():
    junk_low = 0xFFFF_F000  # bits [31:12] set: the block/page field keeps only its own bits
    full = 0x0000_ABCD_0000_0000 | junk_low | 1 << 48 | 1 << 49  # bits 48/49 are outside [47:x]
    # 4K page: OA[47:12]; 4K L2 block: OA[47:21]; 4K L1 block: OA[47:30]
    assert decode_descriptor(full | PAGE, 3, GRANULE_4K).output_address == 0xABCD_FFFF_F000
    assert decode_descriptor(full | BLOCK, 2, GRANULE_4K).output_address == 0xABCD_FFE0_0000
    assert decode_descriptor(full | BLOCK, 1, GRANULE_4K).output_address == 0xABCD_C000_0000
    # 16K page: OA[47:14]; 16K L2 block: OA[47:25]
    assert decode_descriptor(full | PAGE, 3, GRANULE_16K).output_address == 0xABCD_FFFF_C000
    assert decode_descriptor(full | BLOCK, 2, GRANULE_16K).output_address == 0xABCD_FE00_0000
    # 64K page: OA[47:16]; 64K L2 block: OA[47:29]
    assert decode_descriptor(full | PAGE, 3, GRANULE_64K).output_address == 0xABCD_FFFF_0000
    assert decode_descriptor(full | BLOCK, 2, GRANULE_64K).output_address == 0xABCD_E000_0000


@pytest.mark.parametrize(("granule", "expected"), [(GRANULE_4K, 0x1234_5678_9000), (GRANULE_16K, 0x1234_5678_8000), (GRANULE_64K, 0x1234_5678_0000)])
def test_next_table_address_is_granule_aligned(granule, expected):
    d = decode_descriptor(0x1234_5678_9FFC | TABLE, 1, granule)
    assert isinstance(d, TableDescriptor) and d.next_table == expected


def test_table_attributes():
    d = decode_descriptor(0x4000_1000 | TABLE | NSTABLE | 0b10 << 61 | UXNTABLE, 0, GRANULE_4K)
    assert isinstance(d, TableDescriptor)
    assert d.ns_table and d.ap_table == 0b10 and d.uxn_table and not d.pxn_table
    d = decode_descriptor(0x4000_1000 | TABLE | 0b01 << 61 | PXNTABLE, 1, GRANULE_4K)
    assert d.ap_table == 0b01 and d.pxn_table and not d.uxn_table and not d.ns_table


def test_leaf_attributes():
    raw = 0x4020_0000 | PAGE | attr(5) | 1 << 5 | ap(0b11) | sh(0b11) | AF | NG | 1 << 51 | CONT | PXN | 0b1010 << 55
    d = decode_descriptor(raw, 3, GRANULE_4K)
    assert isinstance(d, LeafDescriptor)
    assert (d.attr_index, d.ns, d.ap, d.shareability) == (5, True, 0b11, "inner")
    assert d.af and d.ng and d.dbm and d.contiguous and d.pxn and not d.uxn and d.software == 0b1010
    bare = decode_descriptor(0x4020_0000 | PAGE | sh(0b10) | UXN, 3, GRANULE_4K)
    assert (bare.attr_index, bare.ap, bare.shareability) == (0, 0, "outer")
    assert not (bare.af or bare.ng or bare.dbm or bare.contiguous or bare.pxn) and bare.uxn


def test_describe_mentions_kind_and_address():
    text = decode_descriptor(0x4020_0000 | PAGE | AF | UXN, 3, GRANULE_4K).describe()
    assert text.startswith("page -> 0x40200000") and "UXN=1" in text and "AF=1" in text
    assert "reserved" in decode_descriptor(BLOCK, 3, GRANULE_4K).describe()
