"""A dump takes a level 3 table of a few plain runs of pages in one step (ranges.py
``_whole_table``): that must change nothing, not even the reads.

Random level 2 tables point at level 3 tables that are one run of pages (the common case
of a process's heap), two runs, many (the visit scans those), one run with an entry poked,
cut short, holding the Contiguous hint, carrying out of the output address, mapping
outside RAM or past the output-address size; level 2 entries may pass table restrictions
(APTable, XNTable, NSTable) on, be blocks, invalid, loops or unreadable; windows and limits
on tables and leaves are random too. The dump must be the one made entry by entry, with
the same reads in the same order.
"""

from __future__ import annotations

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from gdb_tinyos.aarch64 import Translator, dump, dump_range, make_filter
from gdb_tinyos.aarch64.ranges import _Dumper
from gdb_tinyos.core.target import FakeTarget

L0, L1, L2 = 0x4000_0000, 0x4000_1000, 0x4000_2000
L3 = [0x4001_0000 + i * 0x1000 for i in range(6)]  # written: readable level 3 tables
UNWRITTEN = 0x4002_0000  # inside RAM, never written: unreadable
RAM = [(0x4000_0000, 0x4800_0000)]
PAGE = 1 << 12
OA = ((1 << 48) - 1) & ~0xFFF
ATTRS = 1 << 10 | 0b11 << 6 | 1 << 2  # AF, AP=RO EL0, AttrIndx 1
CONTIGUOUS = 1 << 52
IPS_BITS = 40  # TCR_EL1.IPS = 0b010
SCATTERED, HALVES = "scattered", "halves"  # every third page elsewhere (many runs); two runs

table_bits = st.sampled_from([0] * 6 + [1 << 59, 1 << 60, 0b01 << 61, 0b10 << 61, 1 << 63])
good_table = st.sampled_from(L3).map(lambda t: t | 0b11)
l2_entry = st.one_of(
    good_table, good_table, good_table,
    st.tuples(st.sampled_from(L3 + [UNWRITTEN, L2, 1 << 50, 0x4900_0000]), table_bits).map(lambda t: t[0] | t[1] | 0b11),
    st.integers(0x4000_0000 >> 21, 0x47FF_FFFF >> 21).map(lambda b: b << 21 | 1 << 10 | 0b01),  # a 2 MiB block
    st.just(0),
)
in_ram = st.integers(0x4100_0000 >> 12, 0x4700_0000 >> 12).map(lambda f: f << 12)
one_run = st.tuples(in_ram, st.just(ATTRS | 0b11), st.just(512), st.none())
twisted = st.one_of(  # one run of pages with one thing wrong, or not quite the usual
    st.tuples(in_ram, st.just(ATTRS | 0b11), st.just(512),
              st.tuples(st.integers(0, 511), st.sampled_from([0, 1 << 12, 1 << 40, 1 << 63, 0b11]))),  # poked (xor)
    st.tuples(st.one_of(in_ram, in_ram.map(lambda f: f & -(16 * PAGE))), st.just(ATTRS | 0b11 | CONTIGUOUS),
              st.just(512), st.none()),  # the Contiguous hint, its groups aligned or not
    st.tuples(in_ram, st.sampled_from([ATTRS | 0b01, 0b10, ATTRS | 0b11 | 1 << 54]), st.just(512), st.none()),
    st.tuples(in_ram, st.just(ATTRS | 0b11), st.sampled_from([511, 1, 0]), st.none()),  # cut short
    st.tuples(in_ram, st.just(ATTRS | 0b11), st.just(512), st.sampled_from([SCATTERED, HALVES])),  # many runs, two
    st.tuples(st.sampled_from([0x4800_0000 - (512 << 12), 0x47FF_F000, 0x4800_0000, (1 << IPS_BITS) - 5 * PAGE,
                               OA - 5 * PAGE]), st.just(ATTRS | 0b11), st.just(512), st.none()),  # RAM's end, OA's top
)
l3_table = st.one_of(one_run, twisted)
# window edges near level 2 entries' edges (which level 3 tables they cut)
edge = st.tuples(st.integers(0, 12), st.sampled_from([0, 0, PAGE, -PAGE, 100 * PAGE])).map(lambda t: max(0, (t[0] << 21) + t[1]))


def l3_words(first: int, low: int, pages: int, poke: tuple[int, int] | str | None) -> list[int]:
    words = [(first + i * PAGE) & ((1 << 64) - 1) | low for i in range(pages)] + [0] * (512 - pages)
    if poke == SCATTERED:
        words = [w ^ (i % 3 == 0) << 20 for i, w in enumerate(words)]
    elif poke == HALVES:
        words = words[:256] + [w + (1 << 22) for w in words[256:]]
    elif poke is not None:
        words[poke[0]] ^= poke[1]
    return words


def dumped(l2, l3, fast: bool, **options):
    target = FakeTarget(registers=dict(TCR_EL1=16 | 0b10 << 30 | 16 << 16 | 0b010 << 32, SCTLR=1,
                                       MAIR_EL1=0xFF << 8, TTBR0_EL1=L0, TTBR1_EL1=L0))
    for table, entries in [(L0, [L1 | 3]), (L1, [L2 | 3]), (L2, l2)] + list(zip(L3, map(lambda t: l3_words(*t), l3))):
        target.write_physical(table, b"".join(e.to_bytes(8, "little") for e in (entries + [0] * 512)[:512]))
    order: list[int] = []
    read = target.read_physical
    target.read_physical = lambda pa, size: order.append(pa) or read(pa, size)
    translator = Translator(target)
    taken = []
    original = _Dumper._whole_table
    def whole(self, here, index) -> bool:
        done = original(self, here, index)
        if done:
            taken.append(index)
        return done

    _Dumper._whole_table = whole if fast else (lambda self, here, index: False)
    try:
        space = dump_range(translator, translator.regime.va_range(0), **options)
    finally:
        _Dumper._whole_table = original
    return space, order, taken


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(l2=st.lists(l2_entry, min_size=1, max_size=10), l3=st.lists(l3_table, min_size=6, max_size=6),
       max_tables=st.sampled_from([1 << 14] * 4 + list(range(1, 12))),
       max_leaves=st.one_of(st.just(1 << 20), st.just(1 << 20), st.integers(0, 4000)), ram=st.sampled_from([RAM, RAM, None]),
       window=st.one_of(st.none(), st.tuples(edge, edge)),
       where=st.sampled_from([None, "writable", "readonly"]))
# every table one run, continuing the one before: one range; then the same at the leaf limit
@example(l2=[t | 0b11 for t in L3], l3=[(0x4100_0000 + i * (512 << 12), ATTRS | 0b11, 512, None) for i in range(6)],
         max_tables=1 << 14, max_leaves=1 << 20, ram=RAM, window=None, where=None)
@example(l2=[t | 0b11 for t in L3], l3=[(0x4100_0000 + i * (512 << 12), ATTRS | 0b11, 512, None) for i in range(6)],
         max_tables=5, max_leaves=3 * 512 + 7, ram=RAM, window=None, where=None)
# a level 2 table that reads as one run of pages, its first entry pointing back at itself: a loop
@example(l2=[(L2 + i * PAGE) | ATTRS | 0b11 for i in range(512)], l3=[(0x4100_0000, ATTRS | 0b11, 512, None)] * 6,
         max_tables=1 << 14, max_leaves=1 << 20, ram=RAM, window=None, where=None)
def test_a_whole_table_in_one_step_is_the_table_entry_by_entry(l2, l3, max_tables, max_leaves, ram, window, where):
    lo, hi = sorted(window) if window else (None, None)
    options = dict(va_start=lo, va_end=hi, physical_ranges=ram, max_tables=max_tables, max_leaves=max_leaves,
                   where=make_filter([where]) if where else None)
    space, reads, taken = dumped(l2, l3, fast=True, **options)
    event(f"tables in one step: {min(len(taken), 3)}")
    plain, plain_reads, _ = dumped(l2, l3, fast=False, **options)
    assert space == plain
    assert reads == plain_reads


def test_a_heap_of_whole_tables_is_one_range_taken_table_by_table():
    l3 = [(0x4100_0000 + i * (512 << 12), ATTRS | 0b11, 512, None) for i in range(6)]
    space, reads, taken = dumped([t | 0b11 for t in L3], l3, fast=True, physical_ranges=RAM)
    assert taken == list(range(6))  # each level 3 table in one step
    assert [(r.va_start, r.va_end, r.pa_start, r.leaves, r.levels) for r in space.ranges] == \
        [(0, 6 << 21, 0x4100_0000, 6 * 512, (3,))]
    assert sorted(reads) == sorted({L0, L1, L2, *L3}) and len(reads) == 9


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(granule=st.sampled_from([16, 64]), tables=st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 64), st.sampled_from(["full", "full", "short", "broken"])),
    min_size=1, max_size=4))
def test_the_16k_and_64k_granules_take_whole_tables_as_the_visit_does(image_factory, granule, tables):
    """Other granules: level 3 tables of 2048 (16K) or 8192 (64K) pages, full, cut short or
    broken in one place, under a level 2 table reached from a 48-bit VA's start level."""
    def image():
        img = image_factory(granule=granule * 1024)
        size, entries = granule * 1024, granule * 1024 // 8
        root = img.table(64 * 8) if granule == 64 else img.table()  # 64K: L1 start; 16K: L0 -> L1
        l2 = img.table()
        if granule == 64:
            img.set(root, 0, l2 | 0b11)
        else:
            l1 = img.table()
            img.set(root, 0, l1 | 0b11)
            img.set(l1, 0, l2 | 0b11)
        for k, (gap, frame, kind) in enumerate(tables):
            l3 = img.table()
            img.set(l2, 3 * k + gap, l3 | 0b11)
            pages = {"full": entries, "short": entries - 1, "broken": entries}[kind]
            for i in range(pages):
                out = 0x4000_0000 + (frame + i + (5 if kind == "broken" and i > entries // 2 else 0)) * size
                img.set(l3, i, out | ATTRS | 0b11)
        tcr = 16 | (0b01 if granule == 64 else 0b10) << 14 | 0b101 << 32
        img.registers(TCR_EL1=tcr, SCTLR=1, MAIR_EL1=0xFF << 8, TTBR0_EL1=root, TTBR1_EL1=0)
        return img

    taken = []
    original = _Dumper._whole_table

    def counted(self, here, index) -> bool:
        done = original(self, here, index)
        taken.append(done)
        return done

    _Dumper._whole_table = counted
    try:
        space = dump(image().target, 0)
    finally:
        _Dumper._whole_table = original
    _Dumper._whole_table = lambda self, here, index: False
    try:
        plain = dump(image().target, 0)
    finally:
        _Dumper._whole_table = original
    assert space == plain
    assert any(taken)  # every drawn table is plain pages: the step takes it
