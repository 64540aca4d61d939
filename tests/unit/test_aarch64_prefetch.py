"""A dump reads a level 2 table's level 3 tables back to back before decoding them
(ranges.py ``_prefetch``): that must change nothing but the order of the reads.

Random level 2 tables point at level 3 tables that are fine, shared, outside known memory,
past the output-address size, unreadable, or back at an ancestor (a loop), mixed with
blocks and invalid entries; limits on tables and leaves are random too. The dump must be
the one made without prefetching, and still read each table it lists once and nothing else.
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gdb_tinyos.aarch64 import Translator, dump_range
from gdb_tinyos.aarch64.ranges import _Dumper
from gdb_tinyos.core.target import FakeTarget

L0, L1, L2 = 0x4000_0000, 0x4000_1000, 0x4000_2000
L3 = [0x4001_0000 + i * 0x1000 for i in range(6)]  # written: readable level 3 tables
UNWRITTEN = 0x4002_0000  # inside RAM, never written: unreadable
OUTSIDE = 0x4900_0000  # beyond RAM
RAM = [(0x4000_0000, 0x4800_0000)]
PAGE_ATTRS = 1 << 10 | 0b11 << 6 | 1 << 2  # AF, AP=RO EL0, AttrIndx 1

readable = st.sampled_from(L3 + [UNWRITTEN])  # UNWRITTEN: inside RAM, unreadable
wild = st.sampled_from([OUTSIDE, 1 << 50, L2, L1])  # outside RAM, past 48 bits, loops
block = st.integers(0x4000_0000 >> 21, 0x47FF_FFFF >> 21).map(lambda b: b << 21 | 1 << 10 | 0b01)  # 2 MiB
# a level 2 table: at least two level 3 tables the visit reads, among wild pointers,
# blocks and invalid entries, in any order
l2_table = st.tuples(st.lists(readable, min_size=2, max_size=8), st.lists(wild, max_size=3),
                     st.lists(st.one_of(block, st.just(0)), max_size=6)).flatmap(
    lambda parts: st.permutations([t | 0b11 for t in parts[0] + parts[1]] + parts[2]))
l3_table = st.tuples(st.integers(0, 512), st.integers(0x4100_0000 >> 12, 0x4700_0000 >> 12))  # pages, first frame


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(l2=l2_table, l3=st.lists(l3_table, min_size=6, max_size=6),
       max_tables=st.one_of(st.integers(1, 14), st.just(1 << 14)),
       max_leaves=st.one_of(st.just(1 << 20), st.integers(0, 6000)), ram=st.sampled_from([None, RAM]),
       window=st.one_of(st.none(), st.tuples(st.integers(0, 24 << 21), st.integers(0, 24 << 21))))
# the visit stops before its fifth table: at its table limit; after its 2 050th leaf (3
# blocks, then 4 full tables), where 5 full tables would have fit but not the blocks too
@example(l2=[t | 0b11 for t in L3[:5]], l3=[(512, 0x41000)] * 6, max_tables=6, max_leaves=1 << 20, ram=None,
         window=None)
@example(l2=[0x4020_0000 | 1 << 10 | 0b01] * 3 + [t | 0b11 for t in L3[:5]], l3=[(512, 0x41000)] * 6,
         max_tables=99, max_leaves=3 + 4 * 512 - 1, ram=None, window=None)
def test_prefetching_changes_nothing_but_the_order_of_reads(l2, l3, max_tables, max_leaves, ram, window):
    def dumped(prefetch: bool):
        target = FakeTarget(registers=dict(TCR_EL1=16 | 0b10 << 30 | 16 << 16 | 0b101 << 32, SCTLR=1,
                                           MAIR_EL1=0xFF << 8, TTBR0_EL1=L0, TTBR1_EL1=L0))
        for table, entries in ((L0, [L1 | 3]), (L1, [L2 | 3]), (L2, l2)):
            target.write_physical(table, b"".join(e.to_bytes(8, "little") for e in (entries + [0] * 512)[:512]))
        for table, (pages, frame) in zip(L3, l3):
            entries = [(frame + i) << 12 | PAGE_ATTRS | 0b11 for i in range(pages)] + [0] * (512 - pages)
            target.write_physical(table, b"".join(e.to_bytes(8, "little") for e in entries))
        translator = Translator(target)
        lo, hi = sorted(window) if window else (None, None)
        original = _Dumper._prefetch
        if not prefetch:
            _Dumper._prefetch = lambda self, window, ancestors: None
        try:
            space = dump_range(translator, translator.regime.va_range(0), va_start=lo, va_end=hi,
                               physical_ranges=ram, max_tables=max_tables, max_leaves=max_leaves)
        finally:
            _Dumper._prefetch = original
        return space, target.stats.reads

    space, reads = dumped(prefetch=True)
    plain, plain_reads = dumped(prefetch=False)
    assert space == plain
    assert reads == plain_reads  # one read per table the visit reads (an unreadable one included)
