"""VA -> PA walks on hand-built tables.

Every expected address is computed here from the indices chosen for each level and the
Arm ARM geometry written out below (VA bits each level indexes), never from the walker.
"""

from __future__ import annotations

import pytest

from gdb_tinyos.aarch64 import FaultKind, TranslationRegime, Translator, translate, walk
from gdb_tinyos.aarch64.descriptors import DescriptorKind
from gdb_tinyos.core.errors import RegisterError, TranslationError

# Descriptor bits (Arm ARM, VMSAv8-64 descriptor formats).
TABLE = PAGE = 0b11
BLOCK = 0b01
AF, NG = 1 << 10, 1 << 11
PXN, UXN = 1 << 53, 1 << 54
PXNTABLE, UXNTABLE = 1 << 59, 1 << 60
SH_INNER = 0b11 << 8
NORMAL = 1 << 2  # AttrIndx=1 -> MAIR Attr1
DEVICE = 0 << 2  # AttrIndx=0 -> MAIR Attr0


def AP(v: int) -> int:
    return v << 6


def APTABLE(v: int) -> int:
    return v << 61


# MAIR as the kernel contract sets it: Attr0 = 0x00 Device-nGnRnE, Attr1 = 0xFF Normal WB.
MAIR = 0xFF << 8
# SCTLR_EL1: M is bit 0, WXN bit 19.
SCTLR_M, SCTLR_WXN = 1, 1 << 19

# Lowest VA bit indexed at each level (Arm ARM translation granule tables).
LEVEL_SHIFT = {
    "4K": {0: 39, 1: 30, 2: 21, 3: 12},
    "16K": {0: 47, 1: 36, 2: 25, 3: 14},
    "64K": {1: 42, 2: 29, 3: 16},
}
GRANULE_BYTES = {"4K": 1 << 12, "16K": 1 << 14, "64K": 1 << 16}
TG0 = {"4K": 0b00, "16K": 0b10, "64K": 0b01}
TG1 = {"4K": 0b10, "16K": 0b01, "64K": 0b11}


def tcr(t0sz=16, t1sz=16, tg0="4K", tg1="4K", ips=0b101, *, epd0=0, epd1=0, a1=0, as16=0, tbi0=0, tbi1=0, ha=0, hpd0=0, hpd1=0):
    return (
        t0sz | epd0 << 7 | TG0[tg0] << 14 | t1sz << 16 | a1 << 22 | epd1 << 23 | TG1[tg1] << 30
        | ips << 32 | as16 << 36 | tbi0 << 37 | tbi1 << 38 | ha << 39 | hpd0 << 41 | hpd1 << 42
    )


def set_regs(image, *, ttbr0=0, ttbr1=0, sctlr=SCTLR_M, mair=MAIR, **tcr_args):
    image.registers(TCR_EL1=tcr(**tcr_args), SCTLR=sctlr, MAIR_EL1=mair, TTBR0_EL1=ttbr0, TTBR1_EL1=ttbr1)


def chain(image, levels, indices, leaf, tables=None):
    """Tables for ``levels`` with one entry each at ``indices``; the last entry is ``leaf``.

    Returns the table PAs (root first)."""
    tables = tables or [image.table() for _ in levels]
    for i, (table, index) in enumerate(zip(tables, indices)):
        last = i == len(levels) - 1
        image.set(table, index, leaf if last else tables[i + 1] | TABLE | AF)
    return tables


# --- 4K, T0SZ=16 (L0 start), TTBR0 --------------------------------------------------


def test_4k_four_level_page_walk(image):
    idx = {0: 1, 1: 511, 2: 7, 3: 300}
    va = sum(i << LEVEL_SHIFT["4K"][lvl] for lvl, i in idx.items()) | 0xABC
    page_pa = 0x4123_4000
    tables = chain(image, [0, 1, 2, 3], list(idx.values()), page_pa | PAGE | AF | AP(0b01) | NORMAL | SH_INNER | NG)
    set_regs(image, ttbr0=tables[0] | 0x2A << 48)
    w = walk(image.target, va)
    assert w.ok and w.ttbr == 0
    assert [s.level for s in w.steps] == [0, 1, 2, 3]
    assert [s.index for s in w.steps] == list(idx.values())
    assert [s.table for s in w.steps] == tables
    assert [s.kind for s in w.steps] == [DescriptorKind.TABLE] * 3 + [DescriptorKind.PAGE]
    m = w.mapping
    assert (m.pa, m.pa_base, m.va_base, m.size, m.level) == (page_pa | 0xABC, page_pa, va & ~0xFFF, 0x1000, 3)
    assert m.attrs.memory.kind == "normal" and m.attrs.shareability == "inner"
    assert m.attrs.ng and m.asid == 0x2A
    assert translate(image.target, va) == page_pa | 0xABC


def test_kernel_image_va_through_ttbr1(image):
    # 0xFFFF_0000_4008_0000: bits[47:39]=0, [38:30]=1, [29:21]=0, [20:12]=0x80 (128).
    va = 0xFFFF_0000_4008_0000
    tables = chain(image, [0, 1, 2, 3], [0, 1, 0, 128], 0x4008_0000 | PAGE | AF | AP(0b10) | NORMAL | UXN)
    set_regs(image, ttbr1=tables[0])
    w = walk(image.target, va + 0x10)
    assert w.ttbr == 1 and w.ok
    assert [s.index for s in w.steps] == [0, 1, 0, 128]
    assert w.pa == 0x4008_0010
    assert w.mapping.attrs.perms.describe() == "EL1:R-X EL0:---"
    assert w.mapping.asid is None  # global entry


# --- starting levels per granule and TxSZ -------------------------------------------

# (granule, TxSZ, start level, root entries): levels = ceil((64-TxSZ-shift)/stride),
# the root table holds 2**(64-TxSZ-shift_of_start_level) entries.
START_CASES = [
    ("4K", 16, 0, 512),
    ("4K", 25, 1, 512),
    ("4K", 30, 1, 16),
    ("4K", 34, 2, 512),
    ("4K", 39, 2, 16),
    ("16K", 16, 0, 2),
    ("16K", 17, 1, 2048),
    ("16K", 25, 1, 8),
    ("16K", 28, 2, 2048),
    ("64K", 16, 1, 64),
    ("64K", 22, 2, 8192),
    ("64K", 25, 2, 1024),
    ("64K", 36, 3, 4096),
]


@pytest.mark.parametrize(("granule", "txsz", "start", "root_entries"), START_CASES)
@pytest.mark.parametrize("which", [0, 1])
def test_start_level_and_root_size(image_factory, granule, txsz, start, root_entries, which):
    image = image_factory(granule=GRANULE_BYTES[granule])
    levels = list(range(start, 4))
    # last index of the root table, and index 1 below it: exercises the root's width
    indices = [root_entries - 1] + [1] * (len(levels) - 1)
    offset = 0x24
    va_low = sum(i << LEVEL_SHIFT[granule][lvl] for lvl, i in zip(levels, indices)) | offset
    assert va_low < 1 << (64 - txsz)
    va = va_low if which == 0 else ((1 << 64) - (1 << (64 - txsz))) | va_low
    page_pa = 0x4800_0000
    root = image.table(root_entries * 8)
    chain(image, levels, indices, page_pa | PAGE | AF, tables=[root] + [image.table() for _ in levels[1:]])
    set_regs(image, ttbr0=root if which == 0 else 0, ttbr1=root if which == 1 else 0,
             t0sz=txsz, t1sz=txsz, tg0=granule, tg1=granule)
    regime = TranslationRegime.from_target(image.target)
    assert regime.va_range(which).start_level == start
    assert regime.va_range(which).root_entries == root_entries
    image.target.stats.reads = image.target.stats.bytes = 0
    w = walk(image.target, va, regime)
    assert w.ok, w.describe()
    assert [s.level for s in w.steps] == levels
    assert [s.index for s in w.steps] == indices
    assert w.pa == page_pa | offset
    assert w.mapping.size == GRANULE_BYTES[granule]
    # one read per table: the root's own size, then whole granule pages
    assert image.target.stats.reads == len(levels)
    assert image.target.stats.bytes == root_entries * 8 + (len(levels) - 1) * GRANULE_BYTES[granule]


# --- blocks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("granule", "block_level", "size"),
    [("4K", 1, 1 << 30), ("4K", 2, 1 << 21), ("16K", 2, 1 << 25), ("64K", 2, 1 << 29)],
)
def test_blocks(image_factory, granule, block_level, size):
    image = image_factory(granule=GRANULE_BYTES[granule])
    start = {"4K": 0, "16K": 0, "64K": 1}[granule]  # 48-bit VA
    levels = list(range(start, block_level + 1))
    indices = [1] * len(levels)
    root_entries = {"4K": 512, "16K": 2, "64K": 64}[granule]
    offset = size // 2 + 0x123
    va = sum(i << LEVEL_SHIFT[granule][lvl] for lvl, i in zip(levels, indices)) + offset
    block_pa = 2 * size  # aligned to the block size
    root = image.table(root_entries * 8)
    chain(image, levels, indices, block_pa | BLOCK | AF | DEVICE | UXN | PXN, tables=[root] + [image.table() for _ in levels[1:]])
    set_regs(image, ttbr0=root, tg0=granule)
    w = walk(image.target, va)
    assert w.ok, w.describe()
    m = w.mapping
    assert (m.kind, m.level, m.size) == (DescriptorKind.BLOCK, block_level, size)
    assert m.pa == block_pa + offset and m.va_base == va - offset
    assert m.attrs.memory.name == "Device-nGnRnE"


@pytest.mark.parametrize(("granule", "level"), [("4K", 0), ("16K", 1), ("64K", 1)])
def test_block_at_illegal_level_is_translation_fault(image_factory, granule, level):
    image = image_factory(granule=GRANULE_BYTES[granule])
    start = {"4K": 0, "16K": 0, "64K": 1}[granule]
    levels = list(range(start, level + 1))
    root = image.table({"4K": 4096, "16K": 16, "64K": 512}[granule])
    chain(image, levels, [0] * len(levels), 0x4000_0000 | BLOCK | AF, tables=[root] + [image.table() for _ in levels[1:]])
    set_regs(image, ttbr0=root, tg0=granule)
    w = walk(image.target, 0x10)
    assert w.mapping is None
    assert (w.fault.kind, w.fault.level) == (FaultKind.TRANSLATION, level)
    assert w.steps[-1].kind is DescriptorKind.RESERVED


def test_level3_reserved_encoding_faults(image):
    tables = chain(image, [0, 1, 2, 3], [0, 0, 0, 5], 0x4000_0000 | BLOCK | AF)  # bits[1:0]=01 at L3
    set_regs(image, ttbr0=tables[0])
    w = walk(image.target, 5 << 12)
    assert (w.fault.kind, w.fault.level) == (FaultKind.TRANSLATION, 3)
    assert "not mapped (fault at level 3)" in w.describe()
    with pytest.raises(TranslationError, match="level 3"):
        translate(image.target, 5 << 12)


def test_invalid_entry_faults_at_its_level(image):
    tables = chain(image, [0, 1], [0, 0], 0)  # L1 entry 0 is empty
    set_regs(image, ttbr0=tables[0])
    w = walk(image.target, 0x1234)
    assert (w.fault.kind, w.fault.level, len(w.steps)) == (FaultKind.TRANSLATION, 1, 2)


# --- permissions: every AP x UXN x PXN, with and without WXN ---------------------------

# Arm ARM stage-1 EL1&0 permissions: AP[2:1] 00 EL1 RW/EL0 none, 01 RW/RW, 10 R/none,
# 11 R/R. EL0 may execute memory it cannot read (UXN alone decides); EL1 never executes
# memory writable at EL0; WXN makes memory writable at an EL execute-never at that EL.
# Columns: AP, UXN, PXN, expected without WXN, expected with WXN.
PERMISSIONS = [
    (0b00, 0, 0, "EL1:RWX EL0:--X", "EL1:RW- EL0:--X"),
    (0b00, 0, 1, "EL1:RW- EL0:--X", "EL1:RW- EL0:--X"),
    (0b00, 1, 0, "EL1:RWX EL0:---", "EL1:RW- EL0:---"),
    (0b00, 1, 1, "EL1:RW- EL0:---", "EL1:RW- EL0:---"),
    (0b01, 0, 0, "EL1:RW- EL0:RWX", "EL1:RW- EL0:RW-"),
    (0b01, 0, 1, "EL1:RW- EL0:RWX", "EL1:RW- EL0:RW-"),
    (0b01, 1, 0, "EL1:RW- EL0:RW-", "EL1:RW- EL0:RW-"),
    (0b01, 1, 1, "EL1:RW- EL0:RW-", "EL1:RW- EL0:RW-"),
    (0b10, 0, 0, "EL1:R-X EL0:--X", "EL1:R-X EL0:--X"),
    (0b10, 0, 1, "EL1:R-- EL0:--X", "EL1:R-- EL0:--X"),
    (0b10, 1, 0, "EL1:R-X EL0:---", "EL1:R-X EL0:---"),
    (0b10, 1, 1, "EL1:R-- EL0:---", "EL1:R-- EL0:---"),
    (0b11, 0, 0, "EL1:R-X EL0:R-X", "EL1:R-X EL0:R-X"),
    (0b11, 0, 1, "EL1:R-- EL0:R-X", "EL1:R-- EL0:R-X"),
    (0b11, 1, 0, "EL1:R-X EL0:R--", "EL1:R-X EL0:R--"),
    (0b11, 1, 1, "EL1:R-- EL0:R--", "EL1:R-- EL0:R--"),
]


@pytest.mark.parametrize(("ap", "uxn", "pxn", "plain", "with_wxn"), PERMISSIONS)
@pytest.mark.parametrize("wxn", [False, True])
def test_every_ap_uxn_pxn_combination(image, ap, uxn, pxn, plain, with_wxn, wxn):
    leaf = 0x4000_0000 | PAGE | AF | AP(ap) | NORMAL | (UXN if uxn else 0) | (PXN if pxn else 0)
    tables = chain(image, [0, 1, 2, 3], [0, 0, 0, 0], leaf)
    set_regs(image, ttbr0=tables[0], sctlr=SCTLR_M | (SCTLR_WXN if wxn else 0))
    m = walk(image.target, 0x10).mapping
    assert m.attrs.perms.describe() == (with_wxn if wxn else plain)
    assert (m.attrs.uxn, m.attrs.pxn) == (bool(uxn), bool(pxn))


# --- APTable / XNTable inheritance ----------------------------------------------------


@pytest.mark.parametrize(
    ("aptable", "table_level", "expected"),
    [
        # leaf AP=01 (EL1 RW, EL0 RW, UXN set so EL0 exec does not matter)
        (0b00, 0, "EL1:RW- EL0:RW-"),
        (0b01, 0, "EL1:RWX EL0:---"),  # no EL0 access below: not EL0-writable, so EL1 may execute
        (0b10, 1, "EL1:R-- EL0:R--"),  # read-only below; EL0-readable but PXN set in the leaf
        (0b11, 2, "EL1:R-X EL0:---"),
    ],
)
def test_aptable_restricts_lower_levels(image, aptable, table_level, expected):
    leaf = 0x4000_0000 | PAGE | AF | AP(0b01) | UXN | (PXN if aptable == 0b10 else 0)
    tables = chain(image, [0, 1, 2, 3], [0, 0, 0, 0], leaf)
    image.set(tables[table_level], 0, tables[table_level + 1] | TABLE | APTABLE(aptable))
    set_regs(image, ttbr0=tables[0])
    assert walk(image.target, 0).mapping.attrs.perms.describe() == expected


def test_xntable_bits_accumulate_from_any_upper_level(image):
    leaf = 0x4000_0000 | PAGE | AF | AP(0b11)  # leaf allows EL1 and EL0 execution
    tables = chain(image, [0, 1, 2, 3], [0, 0, 0, 0], leaf)
    image.set(tables[0], 0, tables[1] | TABLE | UXNTABLE)
    image.set(tables[1], 0, tables[2] | TABLE | PXNTABLE)
    set_regs(image, ttbr0=tables[0])
    m = walk(image.target, 0).mapping
    assert m.attrs.uxn and m.attrs.pxn
    assert m.attrs.perms.describe() == "EL1:R-- EL0:R--"


def test_hpd_disables_hierarchical_restrictions(image):
    leaf = 0x4000_0000 | PAGE | AF | AP(0b11)
    tables = chain(image, [0, 1, 2, 3], [0, 0, 0, 0], leaf)
    image.set(tables[0], 0, tables[1] | TABLE | UXNTABLE | PXNTABLE | APTABLE(0b11))
    set_regs(image, ttbr0=tables[0], hpd0=1)
    assert walk(image.target, 0).mapping.attrs.perms.describe() == "EL1:R-X EL0:R-X"


# --- range selection: TBI, non-canonical, EPD, reserved TG ----------------------------


def _one_page(image, va_bits_index=(0, 0, 0, 1)):
    return chain(image, [0, 1, 2, 3], list(va_bits_index), 0x4000_5000 | PAGE | AF)


def test_tbi_ignores_the_top_byte(image):
    tables = _one_page(image)
    set_regs(image, ttbr0=tables[0], ttbr1=tables[0], tbi0=1)
    tagged = 0x5A00_0000_0000_1010  # tag 0x5A, bit 55 clear -> TTBR0, index 1 at L3
    w = walk(image.target, tagged)
    assert w.ok and w.ttbr == 0 and w.pa == 0x4000_5010
    assert w.mapping.va == tagged and w.mapping.va_base == 0x1000


def test_without_tbi_a_tagged_address_is_non_canonical(image):
    tables = _one_page(image)
    set_regs(image, ttbr0=tables[0])
    w = walk(image.target, 0x5A00_0000_0000_1010)
    assert (w.fault.kind, w.fault.level) == (FaultKind.TRANSLATION, 0)
    assert "non-canonical" in w.fault.message and not w.steps


def test_bit55_selects_ttbr1_even_with_a_zero_tag_when_tbi1(image):
    tables = _one_page(image, (511, 511, 511, 1))  # top of the TTBR1 range
    set_regs(image, ttbr1=tables[0], tbi1=1)
    # tag byte 0x00 but bits[55:48] all ones: TTBR1 with TBI1, index 511/511/511/1
    w = walk(image.target, 0x00FF_FFFF_FFE0_0000 | 1 << 12 | 0x8)
    assert w.ttbr == 1 and w.ok and w.pa == 0x4000_5008


@pytest.mark.parametrize(
    "va",
    [
        0x0001_0000_0000_0000,  # bit 48 set in the lower range of a 48-bit space
        0x8000_0000_0000_0000,  # bit 63 set, bit 55 clear
        0xFFFE_FFFF_FFFF_F000,  # upper range with bit 48 clear
        0x0080_0000_0000_0000,  # bit 55 set, top bits clear
    ],
)
def test_non_canonical_addresses(image, va):
    tables = _one_page(image)
    set_regs(image, ttbr0=tables[0], ttbr1=tables[0])
    w = walk(image.target, va)
    assert w.fault is not None and w.fault.kind is FaultKind.TRANSLATION and w.fault.level == 0
    assert w.pa is None


def test_epd_disables_a_range(image):
    tables = _one_page(image)
    set_regs(image, ttbr0=tables[0], ttbr1=tables[0], epd1=1)
    assert walk(image.target, 0x1000).ok
    w = walk(image.target, 0xFFFF_0000_0000_1000)
    assert w.fault.kind is FaultKind.TRANSLATION and "EPD1" in w.fault.message
    assert image.target.stats.reads == 4  # only the TTBR0 walk read tables


def test_reserved_tg0_is_a_configuration_fault(image):
    set_regs(image)
    image.target.registers["TCR_EL1"] |= 0b11 << 14
    w = walk(image.target, 0x1000)
    assert w.fault.kind is FaultKind.CONFIGURATION and "TG0" in w.fault.message


# --- ASID -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a1", "as16", "expected"),
    [(0, 0, 0x34), (0, 1, 0x1234), (1, 0, 0x78), (1, 1, 0x5678)],
)
def test_asid_from_ttbr_per_a1_and_as(image, a1, as16, expected):
    set_regs(image, ttbr0=0x1234 << 48 | 0x4000_0000, ttbr1=0x5678 << 48 | 0x4100_0000, a1=a1, as16=as16)
    assert TranslationRegime.from_target(image.target).asid == expected


# --- MMU off, access flag, address size, unreadable tables ------------------------------


def test_mmu_off_is_a_flat_state(image):
    set_regs(image, sctlr=0)
    w = walk(image.target, 0x4008_0000)
    assert not w.mmu_enabled and w.pa == 0x4008_0000 and w.ok and not w.steps
    assert "MMU off" in w.describe()
    assert image.target.stats.reads == 0
    assert walk(image.target, 0xFFFF_0000_4008_0000).fault.kind is FaultKind.ADDRESS_SIZE


def test_access_flag_clear_faults_but_keeps_the_mapping(image):
    tables = chain(image, [0, 1, 2, 3], [0, 0, 0, 0], 0x4000_0000 | PAGE)  # AF=0
    set_regs(image, ttbr0=tables[0])
    w = walk(image.target, 0x8)
    assert w.fault.kind is FaultKind.ACCESS_FLAG and w.fault.level == 3
    assert w.mapping.pa == 0x4000_0008 and w.pa is None
    set_regs(image, ttbr0=tables[0], ha=1)  # hardware AF management: no fault
    assert walk(image.target, 0x8).ok


def test_output_address_beyond_ips_is_address_size_fault(image):
    tables = chain(image, [0, 1, 2, 3], [0, 0, 0, 0], 0x1_0000_0000 | PAGE | AF)  # 4 GiB
    set_regs(image, ttbr0=tables[0], ips=0b000)  # 32-bit PA
    w = walk(image.target, 0)
    assert (w.fault.kind, w.fault.level) == (FaultKind.ADDRESS_SIZE, 3)


def test_unreadable_table_is_reported_with_its_level(image):
    tables = chain(image, [0, 1], [0, 0], 0x7000_0000 | TABLE)  # L2 table in unbacked memory
    set_regs(image, ttbr0=tables[0])
    w = walk(image.target, 0x10)
    assert (w.fault.kind, w.fault.level) == (FaultKind.EXTERNAL_ABORT, 2)
    assert "0x70000000" in w.fault.message


def test_unreadable_root_table(image):
    set_regs(image, ttbr0=0x7654_3000)
    w = walk(image.target, 0x10)
    assert (w.fault.kind, w.fault.level) == (FaultKind.EXTERNAL_ABORT, 0)


def test_self_referencing_table_terminates_and_is_noted(image):
    root = image.table()
    image.set(root, 0, root | TABLE | AF)  # L0[0] -> L0 itself, read as L1, L2, then L3 page
    set_regs(image, ttbr0=root)
    w = walk(image.target, 0x10)
    assert [s.table for s in w.steps] == [root] * 4
    # at L3 the same entry (bits 0b11) is a page whose output address is the table itself
    assert w.ok and w.pa == root + 0x10
    assert any("recursive" in n for n in w.notes)
    assert image.target.stats.reads == 1


# --- one read per table page -------------------------------------------------------------


def test_walks_share_one_read_per_table(image):
    tables = chain(image, [0, 1, 2, 3], [0, 0, 0, 0], 0x4000_0000 | PAGE | AF)
    for i in range(1, 64):
        image.set(tables[3], i, (0x4000_0000 + i * 0x1000) | PAGE | AF)
    set_regs(image, ttbr0=tables[0])
    image.target.stats.reads = image.target.stats.bytes = 0
    t = Translator(image.target)
    for i in range(64):
        assert t.walk(i * 0x1000 + 4).pa == 0x4000_0000 + i * 0x1000 + 4
    assert image.target.stats.reads == 4 and image.target.stats.bytes == 4 * 4096
    assert t.tables.tables_read == 4


def test_missing_register_is_a_register_error(image):
    image.registers(TCR_EL1=tcr(), MAIR_EL1=MAIR, TTBR0_EL1=0, TTBR1_EL1=0)  # no SCTLR
    with pytest.raises(RegisterError):
        walk(image.target, 0)


def test_sctlr_el1_name_also_accepted(image):
    image.registers(TCR_EL1=tcr(), SCTLR_EL1=0, MAIR_EL1=MAIR, TTBR0_EL1=0, TTBR1_EL1=0)
    assert walk(image.target, 0x1000).pa == 0x1000


def test_describe_matches_the_shell_contract_shape(image):
    tables = chain(image, [0, 1, 2, 3], [0, 1, 2, 3], 0x4123_4000 | PAGE | AF | AP(0b01) | NORMAL | UXN | PXN)
    set_regs(image, ttbr0=tables[0])
    text = walk(image.target, (1 << 30) | (2 << 21) | (3 << 12)).describe().splitlines()
    assert text[0] == f"L0 index=0 table={tables[0]:#x} desc={tables[1] | TABLE | AF:#018x} table"
    assert text[3].startswith(f"L3 index=3 table={tables[3]:#x}") and text[3].endswith(" page")
    assert text[4].startswith("va 0x40403000 -> pa 0x41234000 EL1:RW- EL0:RW- PXN UXN normal")


def test_walk_json_has_hex_addresses_and_integer_counts(image):
    import json

    from gdb_tinyos.core.render import to_json

    tables = chain(image, [0, 1, 2, 3], [0, 0, 0, 2], 0x4000_0000 | PAGE | AF | NORMAL)
    set_regs(image, ttbr0=tables[0])
    data = json.loads(to_json(walk(image.target, 0x2008)))
    assert data["va"] == "0x2008"
    assert [s["kind"] for s in data["steps"]] == ["TABLE", "TABLE", "TABLE", "PAGE"]
    assert [s["level"] for s in data["steps"]] == [0, 1, 2, 3]
    assert [s["table"] for s in data["steps"]] == [hex(t) for t in tables]
    assert data["steps"][3]["index"] == 2
    assert data["steps"][3]["descriptor"] == hex(0x4000_0000 | PAGE | AF | NORMAL)
    assert data["steps"][3]["decoded"]["output_address"] == "0x40000000"
    assert data["mapping"]["pa"] == "0x40000008" and data["mapping"]["size"] == 4096 and data["fault"] is None
    assert data["mapping"]["attrs"]["memory"]["name"] == "Normal WB RA WA"
