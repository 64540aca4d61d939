"""Whole-address-space dumps: merging, filters, windows, problems, one read per table.

Expected ranges are worked out by hand from the entries each test writes."""

from __future__ import annotations

import json

import pytest

from gdb_tinyos.aarch64 import ProblemKind, TranslationRegime, dump, make_filter
from gdb_tinyos.core.render import to_json

TABLE = PAGE = 0b11
BLOCK = 0b01
AF, NG = 1 << 10, 1 << 11
PXN, UXN = 1 << 53, 1 << 54
NORMAL = 1 << 2
SH_INNER = 0b11 << 8
RO_EL1 = 0b10 << 6  # AP[2:1]=10: EL1 read-only, no EL0
RW_EL1 = 0b00 << 6  # AP[2:1]=00: EL1 read/write, no EL0
RW_ALL = 0b01 << 6
RO_ALL = 0b11 << 6

ATTRS_A = PAGE | AF | NORMAL | SH_INNER | RO_EL1 | UXN  # kernel text: EL1 R-X
ATTRS_B = AF | NORMAL | SH_INNER | RW_EL1 | UXN | PXN  # kernel data: EL1 RW-, no exec
KBASE = 0xFFFF_0000_4000_0000  # TTBR1, L0 index 0, L1 index 1 (4K granule, 48-bit)
TCR_4K = 16 | 16 << 16 | 0b10 << 30 | 0b101 << 32  # T0SZ=T1SZ=16, TG0=4K, TG1=4K, 48-bit PA
KiB, MiB = 1 << 10, 1 << 20


def kernel_space(image):
    """The kernel map described in test_merging_by_hand; returns the table PAs."""
    l0, l1, l2, t3, t3b = (image.table() for _ in range(5))
    image.set(l0, 0, l1 | TABLE)
    image.set(l1, 1, l2 | TABLE)
    image.set(l2, 0, t3 | TABLE)
    for i in range(16):
        image.set(t3, i, (0x4000_0000 + i * 4 * KiB) | ATTRS_A)
    image.set(t3, 16, 0x4001_0000 | PAGE | ATTRS_B)
    image.set(t3, 17, 0x4001_1000 | PAGE | ATTRS_B)
    image.set(t3, 20, 0x4001_4000 | PAGE | ATTRS_B)
    image.set(t3, 21, 0x4009_0000 | PAGE | ATTRS_B)
    image.set(l2, 1, 0x4020_0000 | BLOCK | ATTRS_B)
    image.set(l2, 2, 0x4040_0000 | BLOCK | ATTRS_B)
    image.set(l2, 3, t3b | TABLE)
    image.set(t3b, 0, 0x4060_0000 | PAGE | ATTRS_B)
    image.registers(TCR_EL1=TCR_4K, SCTLR=1, MAIR_EL1=0xFF << 8, TTBR0_EL1=0, TTBR1_EL1=l0)
    return [l0, l1, l2, t3, t3b]


def spans(space):
    return [(r.va_start, r.va_end, r.pa_start, r.leaves) for r in space.ranges]


def test_merging_by_hand(image):
    tables = kernel_space(image)
    image.target.stats.reads = 0
    space = dump(image.target, which=1)
    assert spans(space) == [
        (KBASE, KBASE + 64 * KiB, 0x4000_0000, 16),  # 16 text pages, contiguous
        (KBASE + 64 * KiB, KBASE + 72 * KiB, 0x4001_0000, 2),  # attributes change at page 16
        (KBASE + 80 * KiB, KBASE + 84 * KiB, 0x4001_4000, 1),  # VA gap (pages 18, 19)
        (KBASE + 84 * KiB, KBASE + 88 * KiB, 0x4009_0000, 1),  # PA jump
        # two 2 MiB blocks and the first page of the next L3 table: one run
        (KBASE + 2 * MiB, KBASE + 6 * MiB + 4 * KiB, 0x4020_0000, 3),
    ]
    assert space.ranges[-1].levels == (2, 3)
    assert space.ranges[0].attrs.perms.describe() == "EL1:R-X EL0:---"
    assert space.ranges[1].attrs.perms.describe() == "EL1:RW- EL0:---"
    assert space.leaves == 16 + 4 + 3
    assert not space.problems
    assert sorted(space.tables) == sorted(tables)
    assert image.target.stats.reads == 5  # one read per table page
    assert (space.name, space.root_table, space.start_level) == ("TTBR1", tables[0], 0)


def test_filters(image):
    kernel_space(image)
    assert [r.pa_start for r in dump(image.target, 1, where=make_filter(["executable"])).ranges] == [0x4000_0000]
    writable = dump(image.target, 1, where=make_filter(["writable", "kernel"]))
    assert [r.pa_start for r in writable.ranges] == [0x4001_0000, 0x4001_4000, 0x4009_0000, 0x4020_0000]
    assert dump(image.target, 1, where=make_filter(["user"])).ranges == []
    assert dump(image.target, 1, where=make_filter(["wx"])).ranges == []
    with pytest.raises(ValueError, match="unknown filter"):
        make_filter(["bogus"])


def test_va_window_clips_ranges(image):
    kernel_space(image)
    space = dump(image.target, 1, va_start=KBASE + 32 * KiB, va_end=KBASE + 3 * MiB)
    assert spans(space) == [
        (KBASE + 32 * KiB, KBASE + 64 * KiB, 0x4000_8000, 8),
        (KBASE + 64 * KiB, KBASE + 72 * KiB, 0x4001_0000, 2),
        (KBASE + 80 * KiB, KBASE + 84 * KiB, 0x4001_4000, 1),
        (KBASE + 84 * KiB, KBASE + 88 * KiB, 0x4009_0000, 1),
        (KBASE + 2 * MiB, KBASE + 3 * MiB, 0x4020_0000, 1),  # half of the first block
    ]


def test_user_space_of_another_process(image):
    kernel_space(image)
    # A process: code page at 0x40_0000 (L0 0, L1 0, L2 2, L3 0), EL0 R-X; data page after it.
    l0, l1, l2, l3 = (image.table() for _ in range(4))
    image.set(l0, 0, l1 | TABLE)
    image.set(l1, 0, l2 | TABLE)
    image.set(l2, 2, l3 | TABLE)
    image.set(l3, 0, 0x4300_0000 | PAGE | AF | NG | NORMAL | RO_ALL | PXN)
    image.set(l3, 1, 0x4300_1000 | PAGE | AF | NG | NORMAL | RW_ALL | PXN | UXN)
    space = dump(image.target, which=0, root=l0, asid=7)
    assert (space.name, space.root_table, space.asid) == ("TTBR0", l0, 7)
    assert spans(space) == [(0x40_0000, 0x40_1000, 0x4300_0000, 1), (0x40_1000, 0x40_2000, 0x4300_1000, 1)]
    assert [r.attrs.perms.describe() for r in space.ranges] == ["EL1:R-- EL0:R-X", "EL1:RW- EL0:RW-"]
    assert [r.pa_start for r in dump(image.target, 0, root=l0, where=make_filter(["user", "writable"])).ranges] == [0x4300_1000]


def test_loops_wild_pointers_and_reserved_entries(image):
    l0, l1, l2, l3 = kernel_space(image)[:4]
    image.set(l2, 5, l0 | TABLE)  # back to the L0 ancestor
    image.set(l1, 2, l1 | TABLE)  # to itself
    image.set(l1, 3, 0x7_0000_0000 | TABLE)  # nothing there
    image.set(l3, 40, 0x4100_0000 | BLOCK)  # bits[1:0]=01 is reserved at level 3
    image.target.stats.reads = 0
    space = dump(image.target, which=1)
    kinds = sorted((p.kind.value, p.level, p.index) for p in space.problems)
    assert kinds == sorted([("loop", 2, 5), ("loop", 1, 2), ("unreadable table", 1, 3), ("reserved descriptor", 3, 40)])
    loop = next(p for p in space.problems if p.index == 5)
    assert loop.va == KBASE + 5 * 2 * MiB and loop.table == l2
    assert len(space.ranges) == 5  # the good part of the map is still there
    assert image.target.stats.reads == 6  # the 5 tables + one failed attempt at 0x7_0000_0000


def test_known_memory_stops_wild_tables_before_reading(image):
    l0, l1 = kernel_space(image)[:2]
    image.set(l1, 3, 0x7_0000_0000 | TABLE)
    image.set(l1, 4, 0xC000_0000 | BLOCK | AF | UXN | PXN)  # a 1 GiB block beyond the 128 MiB of RAM
    image.target.stats.reads = 0
    ram = [(0x4000_0000, 0x4800_0000)]
    space = dump(image.target, 1, physical_ranges=ram)
    outside = [p for p in space.problems if p.kind is ProblemKind.OUTSIDE_MEMORY]
    assert sorted(p.index for p in outside) == [3, 4]
    assert image.target.stats.reads == 5  # the wild table was never read
    assert space.ranges[-1].pa_start == 0xC000_0000  # the odd leaf is still listed


def test_shared_tables_are_read_once(image):
    root, l1, l2, l3 = (image.table() for _ in range(4))
    image.set(root, 0, l1 | TABLE)
    image.set(l1, 0, l2 | TABLE)
    for i in range(8):  # eight L2 entries share one L3 table
        image.set(l2, i, l3 | TABLE)
    image.set(l3, 0, 0x4000_0000 | PAGE | AF)
    image.registers(TCR_EL1=TCR_4K, SCTLR=1, MAIR_EL1=0, TTBR0_EL1=root, TTBR1_EL1=0)
    image.target.stats.reads = 0
    space = dump(image.target, 0)
    assert [r.va_start for r in space.ranges] == [i * 2 * MiB for i in range(8)]
    assert image.target.stats.reads == 4 and not space.problems


def test_table_explosion_is_bounded(image):
    root, l1, l2, l3 = (image.table() for _ in range(4))
    for i in range(512):
        image.set(root, i, l1 | TABLE)
        image.set(l1, i, l2 | TABLE)
        image.set(l2, i, l3 | TABLE)
        image.set(l3, i, 0x4000_0000 | PAGE | AF)
    image.registers(TCR_EL1=TCR_4K, SCTLR=1, MAIR_EL1=0, TTBR0_EL1=root, TTBR1_EL1=0)
    space = dump(image.target, 0, max_tables=40)
    assert space.problems[-1].kind is ProblemKind.LIMIT
    assert image.target.stats.reads == 4
    space = dump(image.target, 0, max_leaves=1000)
    assert space.problems[-1].kind is ProblemKind.LIMIT and space.leaves == 1000


def test_64k_granule_dump(image_factory):
    image = image_factory(granule=64 * KiB)
    root = image.table(64 * 8)  # 48-bit VA with 64K: L1 start, 64 entries
    l2, l3 = image.table(), image.table()
    image.set(root, 0, l2 | TABLE)
    image.set(l2, 1, 0x6000_0000 | BLOCK | AF | NORMAL)  # 512 MiB block at VA 512 MiB
    image.set(l2, 2, l3 | TABLE)
    for i in range(4):  # 64 KiB pages continuing the block in VA and PA
        image.set(l3, i, (0x8000_0000 + i * 64 * KiB) | PAGE | AF | NORMAL)
    image.registers(TCR_EL1=16 | 0b01 << 14 | 0b101 << 32, SCTLR=1, MAIR_EL1=0xFF << 8, TTBR0_EL1=root, TTBR1_EL1=0)
    space = dump(image.target, 0)
    assert spans(space) == [(512 * MiB, 1024 * MiB + 256 * KiB, 0x6000_0000, 5)]
    assert space.granule == "64K" and space.start_level == 1


def test_dump_json_has_hex_addresses_and_integer_counts(image):
    tables = kernel_space(image)
    space = dump(image.target, 1)
    data = json.loads(to_json(space))
    assert data["name"] == "TTBR1" and len(data["ranges"]) == 5
    assert data["root_table"] == hex(tables[0]) and data["va_end"] == "0x10000000000000000"
    assert data["tables"] == [hex(t) for t in tables] and data["leaves"] == 16 + 4 + 2 + 1 and data["asid"] == 0
    first = data["ranges"][0]
    assert first["va_start"] == hex(KBASE) and first["leaves"] == 16 and first["levels"] == [3]
    assert first["attrs"]["memory"]["kind"] == "normal"
    assert first["attrs"]["perms"] == {
        "el1_read": True, "el1_write": False, "el1_exec": True,
        "el0_read": False, "el0_write": False, "el0_exec": False, "el": 1, "el0": True,
    }


def test_describe_lists_ranges_and_problems(image):
    l0 = kernel_space(image)[0]
    image.set(l0, 1, l0 | TABLE)
    text = dump(image.target, 1).describe()
    assert "TTBR1 root" in text and "5 ranges" in text
    assert "0xffff000040000000-0xffff000040010000 -> 0x0040000000-0x0040010000    64K EL1:R-X EL0:---" in text
    assert "problem: loop" in text


def test_regime_other_root_and_describe(image):
    kernel_space(image)
    regime = TranslationRegime.from_target(image.target)
    assert "start level 0" in regime.describe() and "MMU on" in regime.describe()
    assert regime.va_range(1).with_root(0x4400_0000, asid=3).root_table == 0x4400_0000


CONT = 1 << 52
# 4K granule: a Contiguous group is 16 aligned entries at every level (64 KiB of pages).


def contiguous_pages(image, base_pa: int, tweak=None):
    root, l1, l2, l3 = (image.table() for _ in range(4))
    image.set(root, 0, l1 | TABLE)
    image.set(l1, 0, l2 | TABLE)
    image.set(l2, 0, l3 | TABLE)
    for i in range(16, 32):  # the second group of the table
        value = (base_pa + (i - 16) * 4 * KiB) | PAGE | AF | NORMAL | CONT
        image.set(l3, i, tweak(i, value) if tweak else value)
    image.registers(TCR_EL1=TCR_4K, SCTLR=1, MAIR_EL1=0xFF << 8, TTBR0_EL1=root, TTBR1_EL1=0)
    return dump(image.target, 0)


def test_well_formed_contiguous_group(image):
    space = contiguous_pages(image, 0x4001_0000)  # 64 KiB aligned
    assert not space.problems
    assert spans(space) == [(64 * KiB, 128 * KiB, 0x4001_0000, 16)]
    assert space.ranges[0].attrs.contiguous


@pytest.mark.parametrize(
    ("base", "tweak", "reason"),
    [
        (0x4001_1000, None, "not aligned"),
        (0x4001_0000, lambda i, v: v | UXN if i == 20 else v, "differ in attributes"),
        (0x4001_0000, lambda i, v: v & ~CONT if i == 31 else v, "differ in attributes"),
        (0x4001_0000, lambda i, v: 0 if i == 17 else v, "not all pages"),
        (0x4001_0000, lambda i, v: v + 0x10_0000 if i == 25 else v, "not one contiguous range"),
    ],
)
def test_misprogrammed_contiguous_groups_are_reported_once(image, base, tweak, reason):
    space = contiguous_pages(image, base, tweak)
    problems = [p for p in space.problems if p.kind is ProblemKind.CONTIGUOUS]
    assert len(problems) == 1
    assert problems[0].index == 16 and problems[0].va == 64 * KiB
    assert reason in problems[0].message
