"""The table-at-a-time dump against a reference decode written from the Arm ARM.

``dump_range`` decodes whole runs of leaves at once (one attribute decode per run, a C
scan for run ends). Here a straightforward decoder -- one descriptor at a time, fields
taken straight from the architecture's bit positions (Arm ARM D8 "VMSAv8-64 translation
table format descriptors", "Hierarchical control of data access permissions", "The
Contiguous bit"), its own merge -- reads the same random tables, and both must agree on
every range, leaf count and problem.

Layout (4K granule, 48-bit VA, TTBR0): L0[0] -> L1[0] -> L2; L2[0] -> the L3 table (its
table descriptor carries random APTable/UXNTable/PXNTable/NSTable bits), L2[1..] random
block-level entries; the L3 table random page-level entries. Random entries come in
segments that step their output address, so runs, breaks, carries, reserved encodings and
contiguous-hint groups all occur; or the L3 table is one run of 512 with a few entries poked.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdb_tinyos.aarch64 import ProblemKind, Translator, dump_range, make_filter
from gdb_tinyos.aarch64.ranges import _FEW_RUNS, _progression, _runs
from gdb_tinyos.core.target import FakeTarget

L0, L1, L2, L3 = 0x4000_0000, 0x4000_1000, 0x4000_2000, 0x4000_3000
PAGE, BLOCK = 1 << 12, 1 << 21
OA_MASK = ((1 << 48) - 1) & ~0xFFF
IPS = {0b000: 32, 0b001: 36, 0b010: 40, 0b011: 42, 0b100: 44, 0b101: 48}

u64 = st.integers(0, (1 << 64) - 1)
# attribute bits a leaf may carry: AttrIndx..nG (bits 2-11) and DBM..software (51-58), sometimes GP/bit 59+
attr_bits = st.one_of(
    st.integers(0, (1 << 10) - 1).map(lambda v: v << 2),
    st.tuples(st.integers(0, (1 << 10) - 1), st.integers(0, (1 << 14) - 1)).map(lambda t: t[0] << 2 | t[1] << 50),
)
segment = st.tuples(
    st.integers(1, 40),  # entries
    st.sampled_from([0b11, 0b11, 0b11, 0b01, 0b00, 0b10]),  # low bits
    st.one_of(st.integers(0x4000_0000 >> 12, 0x4800_0000 >> 12), st.integers(0, (1 << 36) - 1)).map(lambda v: v << 12),
    attr_bits,
    st.sampled_from([1, 1, 1, 0, 2, -1]),  # step in blocks (0: the same descriptor repeated)
    st.booleans(),  # contiguous bit
)


def fill(segments, count: int, size: int) -> list[int]:
    entries: list[int] = []
    for n, low, oa, attrs, step, cont in segments:
        for k in range(n):
            out = (oa + k * step * size) & ((1 << 64) - 1)
            entries.append((out & OA_MASK & -size) | attrs | low | (1 << 52 if cont else 0))
    return (entries + [0] * count)[:count]


def poked(entries: list[int], pokes: list[tuple[int, int]]) -> list[int]:
    """``entries`` with a few overwritten: a long run broken inside, its last entry still
    on the run's progression."""
    entries = list(entries)
    for index, value in pokes:
        entries[index] = value
    return entries


# A page table of one segment of 512 (a full table of pages), maybe a few entries poked.
one_run = st.builds(poked, segment.map(lambda seg: fill([(512, *seg[1:])], 512, PAGE)),
                    st.lists(st.tuples(st.integers(0, 510), st.one_of(st.just(0), u64)), max_size=3))

image = st.fixed_dictionaries({
    "l3": st.one_of(st.lists(segment, max_size=20).map(lambda s: fill(s, 512, PAGE)), one_run),
    # no table descriptors at L2 beyond entry 0: bit 1 cleared makes 0b11 a block
    "l2": st.lists(segment, max_size=6).map(lambda s: [e & ~2 for e in fill(s, 511, BLOCK)]),
    "table_bits": st.integers(0, 31).map(lambda v: v << 59),  # PXNTable UXNTable APTable NSTable
    "hpd": st.booleans(),
    "wxn": st.booleans(),
    "ips": st.sampled_from(list(IPS)),
    "mair": u64,
    "window": st.one_of(st.none(), st.tuples(st.integers(0, 1 << 30), st.integers(0, 1 << 30))),
    "ram": st.one_of(st.none(), st.just([(0x4000_0000, 0x4800_0000)]),
                     st.just([(0x4000_0000, 0x4400_0000), (0x4400_0000, 0x4800_0000)])),
    "max_leaves": st.one_of(st.just(1 << 20), st.integers(0, 600)),
    "filter": st.sampled_from([None, "writable", "user", "executable"]),
})


def build(img) -> FakeTarget:
    tcr = 16 | 0b10 << 30 | 16 << 16 | img["ips"] << 32 | (1 << 41 if img["hpd"] else 0)
    target = FakeTarget(registers=dict(TCR_EL1=tcr, SCTLR=1 | (1 << 19 if img["wxn"] else 0), MAIR_EL1=img["mair"],
                                       TTBR0_EL1=L0, TTBR1_EL1=L0))
    for table, entries in ((L0, [L1 | 3]), (L1, [L2 | 3]), (L2, [L3 | 3 | img["table_bits"]] + img["l2"]), (L3, img["l3"])):
        target.write_physical(table, b"".join(e.to_bytes(8, "little") for e in (entries + [0] * 512)[:512]))
    return target


# -- the reference: one descriptor at a time, straight from the bit positions --------------

def bit(value: int, n: int) -> int:
    return (value >> n) & 1


def ref_attrs(raw: int, table: int, hpd: bool, wxn: bool, mair: int) -> tuple:
    ap_table = 0 if hpd else (table >> 61) & 3
    uxn = bit(raw, 54) or (not hpd and bit(table, 60))
    pxn = bit(raw, 53) or (not hpd and bit(table, 59))
    read_only = bit(raw, 7) or ap_table & 2
    el0 = bit(raw, 6) and not ap_table & 1
    el1_w, el0_w = not read_only, el0 and not read_only
    perms = (True, el1_w, not (pxn or el0_w or (wxn and el1_w)), bool(el0), bool(el0_w), not (uxn or (wxn and el0_w)))
    memory = (mair >> (8 * ((raw >> 2) & 7))) & 0xFF
    return (perms, bool(pxn), bool(uxn), memory, (raw >> 8) & 3, bit(raw, 10), bit(raw, 11), bit(raw, 52),
            bit(raw, 51), bool(bit(raw, 5) or bit(table, 63)))


def group_misprogrammed(entries: list[int], start: int, size: int, leaf_low: int) -> bool:
    group = entries[start:start + 16]
    if len(group) < 16 or any(e & 3 != leaf_low for e in group):
        return True
    if len({e & ~OA_MASK for e in group}) != 1:
        return True
    base = group[0] & OA_MASK & -size
    return base % (16 * size) != 0 or any(e & OA_MASK & -size != base + k * size for k, e in enumerate(group))


class Limit(Exception):
    """Stops the reference decode (a leaf limit, or nothing to do)."""


def reference(img) -> tuple[list, int, list]:
    oa_bits, lo, hi = IPS[img["ips"]], *(sorted(img["window"]) if img["window"] else (0, 1 << 48))
    keep = {None: lambda a: True, "writable": lambda a: a[0][1] or a[0][4], "user": lambda a: a[0][3] or a[0][4] or a[0][5],
            "executable": lambda a: a[0][2] or a[0][5]}[img["filter"]]
    leaves, problems, pieces = 0, [], []

    def table(entries: list[int], level: int, size: int, table_desc: int, skip_first: bool) -> None:
        nonlocal leaves
        leaf_low, checked = (3 if level == 3 else 1), set()
        for i, raw in enumerate(entries):
            va = i * size
            if (skip_first and i == 0) or not raw & 1 or va + size <= lo or va >= hi:
                continue
            if raw & 3 != leaf_low:
                problems.append((ProblemKind.RESERVED, level, i))
                continue
            if bit(raw, 52) and i - i % 16 not in checked:
                checked.add(i - i % 16)
                if group_misprogrammed(entries, i - i % 16, size, leaf_low):
                    problems.append((ProblemKind.CONTIGUOUS, level, i - i % 16))
            out = raw & OA_MASK & -size
            if out >> oa_bits:
                problems.append((ProblemKind.ADDRESS_SIZE, level, i))
                continue
            if img["ram"] is not None and not any(a <= out and out + size <= b for a, b in img["ram"]):
                problems.append((ProblemKind.OUTSIDE_MEMORY, level, i))
            if leaves >= img["max_leaves"]:
                problems.append((ProblemKind.LIMIT, level, i))
                raise Limit
            leaves += 1
            attrs = ref_attrs(raw, table_desc, img["hpd"], img["wxn"], img["mair"])
            if keep(attrs):
                start, end = max(va, lo), min(va + size, hi)
                pieces.append([start, end, out + start - va, attrs, 1, {level}])

    try:
        if lo >= hi:  # an empty window: nothing to visit
            raise Limit
        table(img["l3"], 3, PAGE, L3 | 3 | img["table_bits"], False)
        table([0] + img["l2"], 2, BLOCK, 0, True)
    except Limit:
        pass
    merged: list = []
    for p in pieces:
        last = merged[-1] if merged else None
        if last and last[1] == p[0] and last[2] + (last[1] - last[0]) == p[2] and last[3] == p[3]:
            last[1], last[4], last[5] = p[1], last[4] + 1, last[5] | p[5]
        else:
            merged.append(p)
    return [(s, e, pa, a, n, tuple(sorted(lv))) for s, e, pa, a, n, lv in merged], leaves, problems


def seen(space) -> tuple[list, int, list]:
    ranges = []
    for r in space.ranges:
        a, p = r.attrs, r.attrs.perms
        perms = (p.el1_read, p.el1_write, p.el1_exec, p.el0_read, p.el0_write, p.el0_exec)
        sh = {"non-shareable": 0, "reserved": 1, "outer": 2, "inner": 3}[a.shareability]
        attrs = (perms, a.pxn, a.uxn, a.memory.raw, sh, int(a.af), int(a.ng), int(a.contiguous), int(a.dbm), a.ns)
        ranges.append((r.va_start, r.va_end, r.pa_start, attrs, r.leaves, r.levels))
    return ranges, space.leaves, [(p.kind, p.level, p.index) for p in space.problems]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(img=image)
def test_dump_equals_the_reference_decode(img):
    target = build(img)
    translator = Translator(target)
    window = sorted(img["window"]) if img["window"] else (None, None)
    space = dump_range(translator, translator.regime.va_range(0), va_start=window[0], va_end=window[1],
                       physical_ranges=img["ram"], max_leaves=img["max_leaves"],
                       where=make_filter([img["filter"]]) if img["filter"] else None)
    assert seen(space) == reference(img)
    assert target.stats.reads == len(space.tables)  # one read per table page


def test_a_full_table_of_one_run_is_one_range_read_once():
    """512 consecutive read-only user pages (the shape of a forked heap): one range, 4 reads."""
    img = dict(l3=fill([(512, 0b11, 0x4100_0000, 3 << 53 | 1 << 10 | 0b11 << 6 | 1 << 11 | 1 << 2, 1, False)], 512, PAGE),
               l2=[0] * 511, table_bits=0, hpd=False, wxn=False, ips=0b101, mair=0xFF << 8, window=None,
               ram=[(0x4000_0000, 0x4800_0000)], max_leaves=1 << 20, filter=None)
    target = build(img)
    translator = Translator(target)
    space = dump_range(translator, translator.regime.va_range(0), physical_ranges=img["ram"])
    assert [(r.va_start, r.va_end, r.pa_start, r.leaves) for r in space.ranges] == [(0, 512 * PAGE, 0x4100_0000, 512)]
    assert space.ranges[0].attrs.perms.describe() == "EL1:R-- EL0:R--"
    assert (space.leaves, space.problems, target.stats.reads) == (512, [], 4)
    assert seen(space) == reference(img)


def word_runs(words: list[int], step: int) -> list[tuple[int, int | None]]:
    """The runs of a table read word by word: from each non-zero word, the words equal to
    it plus a multiple of ``step`` as integers (no wrap past 2**64); after _FEW_RUNS runs,
    the next one's start and None."""
    runs: list[tuple[int, int | None]] = []
    i = 0
    while i < len(words):
        if not words[i]:
            i += 1
            continue
        if len(runs) == _FEW_RUNS:
            return runs + [(i, None)]
        stop = i + 1
        while stop < len(words) and words[stop] == words[i] + (stop - i) * step:
            stop += 1
        runs.append((i, stop))
        i = stop
    return runs


@settings(max_examples=500, deadline=None)
@given(count=st.sampled_from([1, 4, 64, 512]), base=st.one_of(u64, st.integers((1 << 64) - (1 << 24), (1 << 64) - 1)),
       step=st.sampled_from([PAGE, BLOCK, 1]), cuts=st.lists(st.integers(0, 511), max_size=20),
       zeros=st.lists(st.tuples(st.integers(0, 511), st.integers(1, 64)), max_size=3),
       pokes=st.lists(st.tuples(st.integers(0, 511), u64), max_size=2),
       flips=st.lists(st.tuples(st.integers(0, 511), st.sampled_from([0, 1, 63])), max_size=2))
def test_runs_are_where_the_word_by_word_progression_stops(count, base, step, cuts, zeros, pokes, flips):
    """The dump's runs (64-bit words as digits of one integer, one compare a run) are
    those found comparing word by word: also when the progression passes 2**64 (the words
    wrap, the progression does not), across zero words, when a poked word breaks a run,
    when a word differs in one bit only (its lowest, or its highest: the digit's edge), and
    past _FEW_RUNS runs (up to 20 cuts restart the progression elsewhere)."""
    words, at = [], base
    for k in range(count):
        if k in cuts:
            at = (at * 0x9E37_79B9 + k) % (1 << 64)  # a fresh start: the next run
        words.append(at)
        at = (at + step) % (1 << 64)
    for index, length in zeros:
        for k in range(index % count, min(index % count + length, count)):
            words[k] = 0
    for index, value in pokes:
        words[index % count] = value
    for index, bit in flips:
        words[index % count] ^= 1 << bit
    table = b"".join(w.to_bytes(8, "little") for w in words)
    assert list(_runs(int.from_bytes(table, "little"), count, step)) == word_runs(words, step)


@pytest.mark.parametrize("count", [1, 2, 7, 64, 300, 511, 512, 513, 2048, 8191, 8192])
@pytest.mark.parametrize("step", [1, PAGE, BLOCK, 1 << 39])
def test_progressions_have_the_digits_they_name(count, step):
    """A progression cut from a whole table's (any count below it) or built whole: its
    64-bit digits are 1, 1, ... and 0, step, 2 * step, ... and nothing above them."""
    ones, steps = _progression(count, step)
    assert ones.to_bytes(8 * count, "little") == b"".join((1).to_bytes(8, "little") for _ in range(count))
    assert steps.to_bytes(8 * count, "little") == b"".join((k * step).to_bytes(8, "little") for k in range(count))
