"""The CowManager decoder on the upstream-shaped fixture crate (tests/fixtures/rust_layouts).

Expected values are the initialisers written in the fixture's Rust source
(src/memory/cow.rs: sample_pages, sample_statistics), restated here by hand."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from gdb_tinyos.tinyos.cow import Sharer, decode_manager, locate_manager, read_manager
from gdb_tinyos.debuginfo import DebugInfo
from gdb_tinyos.core.errors import CorruptStructure, TinyOSError

from test_debuginfo_fixture import ElfImage, fixture_elf  # noqa: F401  (pytest fixture)

# sample_pages(): slot 0 shared by pids 1 and 2, slot 3 one sharer; sample_statistics().
PAGE0 = (0, 0x4010_0000, 2, True, "UserData", (Sharer(0x40_0000, 1), Sharer(0x40_1000, 2)))
PAGE3 = (3, 0x4020_3000, 1, False, "Shared", (Sharer(0x1000_0000, 7),))
STATS = dict(cow_pages_count=2, cow_faults_handled=5, pages_duplicated=3,
             memory_saved_bytes=8192, metadata_memory_bytes=1234, peak_cow_pages=4)
RAM = (0x4000_0000, 0x4800_0000)


def summary(page):
    return (page.slot, page.physical_addr, page.ref_count, page.is_cow, page.original_permissions, page.sharers)


@pytest.fixture
def loaded(fixture_elf):
    return DebugInfo.open(fixture_elf, cache_dir=None), ElfImage(fixture_elf)


@pytest.mark.parametrize("symbol, capacity, next_pid, locked", [
    ("memory::cow::COW_MANAGER", 64, 3, None),           # static mut Option<CowManager>
    ("LOCKED_COW_MANAGER", 64, 11, False),               # SpinLock<Option<CowManager>>
    ("small::COW_MANAGER", 5, 1, None),                  # MAX_COW_PAGES = 5
])
def test_upstream_shapes_decode_to_the_initialisers(loaded, symbol, capacity, next_pid, locked):
    info, image = loaded
    state = read_manager(image.target(), locate_manager(info, symbol), ram=RAM)
    assert state.initialised
    assert state.capacity == capacity
    assert state.lock_held is locked
    assert state.active_pages == 2
    assert state.next_process_id == next_pid
    assert [summary(p) for p in state.pages] == [PAGE0, PAGE3]
    if symbol == "memory::cow::COW_MANAGER":
        assert state.statistics.__dict__ == STATS
        # memory_manager: Some(&raw mut MEMORY_MANAGER)
        assert state.memory_manager == info.symbol("memory::cow::MEMORY_MANAGER").address
    assert state.page(0x4010_0abc) == state.pages[0]
    assert state.page(0x4030_0000) is None


def test_one_read_of_the_static(loaded):
    info, image = loaded
    where = locate_manager(info, "memory::cow::COW_MANAGER")
    target = image.target()
    read_manager(target, where)
    assert target.stats.reads == 1
    assert target.stats.bytes == info.static("memory::cow::COW_MANAGER").layout.size


def _static_bytes(info, image, symbol):
    where = locate_manager(info, symbol)
    return where, bytearray(image.read(where.address, where.size))


def _page_offset(where, slot):
    return where.pages_offset + slot * where.page_fields.stride + where.page_fields.page_offset


def test_held_lock_is_reported(loaded):
    info, image = loaded
    where, data = _static_bytes(info, image, "LOCKED_COW_MANAGER")
    lock_member = info.static("LOCKED_COW_MANAGER").layout.strip_typedefs().member("locked")
    data[lock_member.offset] = 1
    assert decode_manager(bytes(data), where).lock_held is True
    data[lock_member.offset] = 7
    with pytest.raises(CorruptStructure, match="lock word"):
        decode_manager(bytes(data), where)


def test_option_none_is_an_uninitialised_manager(loaded):
    info, image = loaded
    where, data = _static_bytes(info, image, "memory::cow::COW_MANAGER")
    check = where.found.checks[0]
    none = next(v for v in check.layout.variants if v.name == "None")
    lo = none.discr[0][0]
    at = check.offset + check.layout.discr_offset
    data[at : at + check.layout.discr_size] = lo.to_bytes(check.layout.discr_size, "little")
    state = decode_manager(bytes(data), where)
    assert not state.initialised and state.pages == () and state.statistics is None


@pytest.mark.parametrize("field, value, message", [
    ("is_cow", 5, "is_cow holds 5"),
    ("vas_len", 9, "virtual_addresses.len is 9, more than its capacity 8"),
    ("pa", 0x9000_0000, "outside RAM"),
    ("pa", 0x4010_0010, "not page aligned"),
])
def test_corrupt_pages_are_named(loaded, field, value, message):
    info, image = loaded
    where, data = _static_bytes(info, image, "memory::cow::COW_MANAGER")
    f = where.page_fields
    base = where.pages_offset  # slot 0
    if field == "is_cow":
        data[base + f.is_cow] = value
    elif field == "vas_len":
        data[base + f.vas[3] : base + f.vas[3] + f.vas[4]] = value.to_bytes(f.vas[4], "little")
    else:
        data[base + f.pa[0] : base + f.pa[0] + 8] = value.to_bytes(8, "little")
    with pytest.raises(CorruptStructure, match=message) as err:
        decode_manager(bytes(data), where, ram=RAM)
    assert "cow_pages[0]" in str(err.value)


def test_active_pages_beyond_capacity(loaded):
    info, image = loaded
    where, data = _static_bytes(info, image, "small::COW_MANAGER")
    active = where.found.struct.member("active_pages")
    at, t = where.found.offset + active.offset, active.type
    data[at : at + t.size] = (6).to_bytes(t.size, "little")
    with pytest.raises(CorruptStructure, match="active_pages is 6, more than the 5 slots"):
        decode_manager(bytes(data), where)


def test_not_a_manager(loaded):
    info, _ = loaded
    with pytest.raises(TinyOSError, match="is this a TinyOS kernel.*no struct of the expected shape"):
        locate_manager(info, "MIXED")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzzed_bytes_give_typed_errors_only(loaded, data):
    # the fixture is read-only here: every example mutates its own copy of the bytes
    info, image = loaded
    where, raw = _static_bytes(info, image, "small::COW_MANAGER")
    for _ in range(data.draw(st.integers(1, 24))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        decode_manager(bytes(raw), where, ram=RAM)
    except TinyOSError:
        pass
