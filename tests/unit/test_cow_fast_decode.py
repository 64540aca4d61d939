"""The strided/struct COW decoder equals the slot-at-a-time one it replaced.

Synthetic managers: the static's initial bytes from an ELF (every slot empty), then random
slots written through the DWARF offsets -- pages that are fine, and every way a slot can be
wrong (unaligned or outside-RAM addresses, is_cow > 1, unknown permissions, SimpleVec
lengths over capacity or disagreeing, discriminants that select nothing or the empty
variant). Shapes: the upstream-shaped fixture crate's three managers (tests/fixtures/
rust_layouts: Option<CowManager>, SpinLock<Option<CowManager>>, 5 slots), both build
profiles, and the shipped kernel's 32 768-slot manager. Both decoders must give the same
pages, or the same error.
"""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdb_tinyos.core.errors import CorruptStructure
from gdb_tinyos.debuginfo import DebugInfo
from gdb_tinyos.tinyos.cow import _pages, decode_manager, locate_manager

from cow_reference import reference_pages
from test_debuginfo_fixture import ElfImage, fixture_elf  # noqa: F401  (pytest fixture)

RAM = (0x4000_0000, 0x4800_0000)
FIXTURE_SYMBOLS = ("memory::cow::COW_MANAGER", "LOCKED_COW_MANAGER", "small::COW_MANAGER")


@functools.cache
def manager(path, symbol: str):
    """(location, the static's initial bytes) of ``symbol`` in the ELF at ``path``."""
    with DebugInfo.open(path, cache_dir=None) as info:
        where = locate_manager(info, symbol)
    return where, ElfImage(path).read(where.address, where.size)


def put(data: bytearray, at: int, size: int, value: int) -> None:
    data[at : at + size] = (value % (1 << (8 * size))).to_bytes(size, "little")


u64 = st.integers(0, (1 << 64) - 1)
address = st.one_of(
    st.integers(RAM[0] >> 12, (RAM[1] >> 12) - 1).map(lambda f: f << 12),  # a frame in RAM
    st.integers(RAM[0], RAM[1] - 1),  # maybe unaligned
    u64,
)
slot_strategy = st.fixed_dictionaries({
    "slot": st.one_of(st.integers(0, 7), st.integers(0, 1 << 15)),
    "pa": address,
    "refs": st.one_of(st.integers(0, 8), u64),
    "is_cow": st.one_of(st.integers(0, 1), st.integers(0, 255)),
    "perms": st.one_of(st.integers(0, 5), st.integers(0, 255)),
    "vas": st.lists(u64, max_size=10),
    "pids": st.one_of(st.none(), st.lists(st.integers(0, 99), max_size=10)),  # None: as many as vas
    # the discriminant as written last: leave it (the payload decides), a variant's own value, or any
    "tag": st.one_of(st.none(), st.integers(0, 7), u64),
})


def synthetic(where, initial: bytes, slots: list[dict]) -> bytes:
    f = where.page_fields
    data = bytearray(initial)
    for s in slots:
        if s["slot"] >= f.count:
            continue
        at = where.pages_offset + s["slot"] * f.stride
        put(data, at + f.pa[0], f.pa[1], s["pa"])
        put(data, at + f.refs[0], f.refs[1], s["refs"])
        put(data, at + f.is_cow, 1, s["is_cow"])
        perms_t = f.perms[1].strip_typedefs()
        values = [e.value for e in getattr(perms_t, "enumerators", ())]
        perms = values[s["perms"]] if s["perms"] < len(values) else s["perms"]
        put(data, at + f.perms[0], perms_t.size, perms)
        pids = s["pids"] if s["pids"] is not None else list(range(1, len(s["vas"]) + 1))
        for (data_off, size, capacity, len_off, len_size), items in ((f.vas, s["vas"]), (f.pids, pids)):
            put(data, at + len_off, len_size, len(items))
            for k, item in enumerate(items[:capacity]):
                put(data, at + data_off + k * size, size, item)
        e = f.slot_enum
        if s["tag"] is not None and e is not None and e.discr_offset is not None:
            discrs = [v.discr[0][0] for v in e.variants if v.discr]
            tag = discrs[s["tag"]] if s["tag"] < len(discrs) else s["tag"]
            put(data, at + e.discr_offset, e.discr_size, tag)
    return bytes(data)


def outcome(pages) -> list | tuple[str, str]:
    try:
        return list(pages)
    except CorruptStructure as exc:
        return ("error", str(exc))


def same_as_reference(where, data: bytes) -> None:
    fast = outcome(_pages(data, where, RAM, pids_parallel=True))  # the reference's reading of the lists
    assert fast == outcome(reference_pages(data, where, RAM))
    if not isinstance(fast, tuple):
        assert [p.slot for p in fast] == sorted(p.slot for p in fast)


@pytest.mark.parametrize("symbol", FIXTURE_SYMBOLS)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slots=st.lists(slot_strategy, max_size=12))
def test_upstream_shapes_decode_as_the_reference(fixture_elf, symbol, slots):
    where, initial = manager(fixture_elf, symbol)
    same_as_reference(where, synthetic(where, initial, slots))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slots=st.lists(slot_strategy, max_size=12))
def test_the_kernels_manager_decodes_as_the_reference(tinyos_kernel, slots):
    where, initial = manager(tinyos_kernel, "COW_MANAGER")
    same_as_reference(where, synthetic(where, initial, slots))


def test_a_full_kernel_manager_decodes_as_the_reference(tinyos_kernel):
    """20 000 occupied slots shared by pids 1 and 2 (forkpause 20000's shape), every tag
    found by the one strided slice."""
    where, initial = manager(tinyos_kernel, "COW_MANAGER")
    slots = [dict(slot=i, pa=0x4100_0000 + i * 4096 if i < 7000 else 0x4000_0000 + i * 4096, refs=2, is_cow=1,
                  perms=3, vas=[0x1000_0000 + i * 4096] * 2, pids=[1, 2], tag=None) for i in range(20_000)]
    data = synthetic(where, initial, slots)
    same_as_reference(where, data)
    state = decode_manager(data, where, RAM)
    assert [p.slot for p in state.pages] == list(range(20_000))
    assert state.pages[-1].sharers[1].pid == 2 and state.pages[6999].physical_addr == 0x4100_0000 + 6999 * 4096
