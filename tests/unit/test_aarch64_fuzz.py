"""Random registers, descriptors and memory images: only typed errors, always finishing.

Termination is structural (a walk descends one level per step; dumps skip ancestors and
stop at their table/leaf limits), so these tests bound work, not wall-clock time.
"""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gdb_tinyos.aarch64 import ESR, GRANULE_4K, MAIR, SCTLR, TCR, AddressSpace, Translator, Walk, dump_range
from gdb_tinyos.aarch64.descriptors import DescriptorKind, decode_descriptor
from gdb_tinyos.aarch64.granule import GRANULES
from gdb_tinyos.core.errors import TinyOSError, TranslationError
from gdb_tinyos.core.target import FakeTarget

u64 = st.integers(0, (1 << 64) - 1)
POOL = 0x4000_0000
TABLE_SLOTS = 6  # tables live at POOL + k * 64 KiB, whatever the granule
SLOT = 0x1_0000


@given(raw=u64, level=st.integers(0, 3), granule=st.sampled_from(GRANULES))
def test_any_descriptor_decodes_to_a_typed_value(raw, level, granule):
    d = decode_descriptor(raw, level, granule)
    assert d.kind in DescriptorKind
    assert isinstance(d.describe(), str)
    if d.kind in (DescriptorKind.BLOCK, DescriptorKind.PAGE):
        assert d.output_address % d.size == 0 and d.output_address < 1 << 48


@given(raw=u64)
def test_any_register_value_decodes(raw):
    for decoded in (TCR.decode(raw), SCTLR.decode(raw), MAIR.decode(raw), ESR.decode(raw & 0xFFFF_FFFF)):
        assert isinstance(decoded.describe(), str)


TG0 = {"4K": 0b00, "16K": 0b10, "64K": 0b01}
TG1 = {"4K": 0b10, "16K": 0b01, "64K": 0b11}
# Bits of TCR_EL1 a sane configuration may still flip: EPD0/1, A1, AS, TBI0/1, HA, HPD0/1.
TCR_FLAGS = 1 << 7 | 1 << 23 | 1 << 22 | 1 << 36 | 1 << 37 | 1 << 38 | 1 << 39 | 1 << 41 | 1 << 42
OA_FIELD = ((1 << 48) - 1) & ~0xFFF

pool_pointer = st.integers(0, TABLE_SLOTS - 1).map(lambda k: POOL + k * SLOT)
wild_pointer = st.integers(0, (1 << 48) - 1).map(lambda v: v & OA_FIELD)
upper_and_lower_attrs = u64.map(lambda v: v & ~OA_FIELD & ~0b11)


@st.composite
def sane_tcr(draw):
    g0, g1 = draw(st.sampled_from(list(TG0))), draw(st.sampled_from(list(TG1)))
    t0sz, t1sz = draw(st.integers(16, 39)), draw(st.integers(16, 39))
    flags = draw(u64) & TCR_FLAGS & draw(u64)  # each flag set a quarter of the time
    return t0sz | TG0[g0] << 14 | t1sz << 16 | TG1[g1] << 30 | 0b101 << 32 | flags


entry_value = st.one_of(
    st.tuples(pool_pointer, upper_and_lower_attrs).map(lambda t: t[0] | t[1] | 0b11),  # table into the pool
    st.tuples(wild_pointer, upper_and_lower_attrs, st.sampled_from([0b01, 0b11])).map(lambda t: t[0] | t[1] | t[2]),
    u64,
)


# Small indices hit the entries low VAs walk through; any index up to a 64K table's size.
index_strategy = st.one_of(st.just(0), st.integers(0, 3), st.integers(0, 8191))
image_strategy = st.fixed_dictionaries(
    {
        "entries": st.lists(st.tuples(st.integers(0, TABLE_SLOTS - 1), index_strategy, entry_value), max_size=40),
        "tcr": st.one_of(sane_tcr(), sane_tcr(), u64),
        "sctlr": st.one_of(st.just(1), st.just(1 | 1 << 19), u64),
        "mair": u64,
        "ttbr0": st.tuples(st.one_of(st.just(0), st.integers(0, TABLE_SLOTS)), u64).map(lambda t: POOL + t[0] * SLOT | (t[1] & ~((1 << 48) - 1))),
        "ttbr1": st.one_of(u64, st.tuples(pool_pointer, u64).map(lambda t: t[0] | (t[1] & ~((1 << 48) - 1)))),
        "vas": st.lists(
            st.one_of(u64, st.integers(0, 1 << 32), st.integers(1, 1 << 32).map(lambda v: (1 << 64) - v)),
            max_size=6,
        ),
        "backed_slots": st.one_of(st.just(TABLE_SLOTS), st.integers(0, TABLE_SLOTS)),
        # slot k entry 0 -> slot k+1 (when True): a path deep walks and dumps can follow
        "spine": st.lists(st.tuples(st.booleans(), upper_and_lower_attrs), min_size=TABLE_SLOTS, max_size=TABLE_SLOTS),
    }
)


def build(image) -> FakeTarget:
    target = FakeTarget(
        registers=dict(
            TCR_EL1=image["tcr"], SCTLR=image["sctlr"], MAIR_EL1=image["mair"],
            TTBR0_EL1=image["ttbr0"], TTBR1_EL1=image["ttbr1"],
        )
    )
    # Back whole 64 KiB slots (one byte per 4 KiB page) for some tables, leave others holes.
    for k in range(image["backed_slots"]):
        for page in range(0, SLOT, GRANULE_4K.size):
            target.write_physical(POOL + k * SLOT + page, b"\0")
    for k, (linked, attrs) in enumerate(image["spine"]):
        if linked:
            target.write_u64(POOL + k * SLOT, (POOL + (k + 1) * SLOT) | attrs | 0b11)
    for slot, index, value in image["entries"]:
        target.write_u64(POOL + slot * SLOT + 8 * index, value)
    return target


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image=image_strategy)
def test_random_images_walk_and_dump_with_typed_results(image):
    target = build(image)
    try:
        translator = Translator(target)
    except TinyOSError:
        return
    for va in image["vas"] + [0, 0x40_0000, 0xFFFF_0000_4008_0000]:
        w = translator.walk(va)
        assert isinstance(w, Walk)
        assert len(w.steps) <= 4
        assert isinstance(w.describe(), str)
        event(f"walk: {len(w.steps)} steps, {'ok' if w.ok else w.fault.kind.value}")
    for which in (0, 1):
        try:
            va_range = translator.regime.va_range(which)
        except TranslationError:
            continue
        space = dump_range(translator, va_range, max_tables=24, max_leaves=2000)
        assert isinstance(space, AddressSpace)
        assert space.leaves <= 2000
        for r in space.ranges:
            assert va_range.va_start <= r.va_start < r.va_end <= va_range.va_end
        assert isinstance(space.describe(), str)
        event(f"dump: {'ranges' if space.ranges else 'empty'}, {'problems' if space.problems else 'clean'}")
    # the session cache: never more reads than distinct (table, size) pairs asked for
    assert target.stats.reads == translator.tables.tables_read
