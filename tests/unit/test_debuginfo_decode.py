"""decode(): the fixture's initialised statics read back as the values written in its Rust
source (tests/fixtures/rust_layouts/src), corrupt bytes rejected with precise errors, and
random bytes through every real layout only ever raising typed errors."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdb_tinyos.debuginfo import (
    ArrayType, BaseType, DecodeError, EnumValue, Member, PointerType, RawValue, RustEnumType, StructType, StructValue,
    TypedefType, Variant, decode, plain,
)
from gdb_tinyos.debuginfo.decode import (
    decode_rows,
)
from gdb_tinyos.core.errors import CorruptStructure
from test_debuginfo_fixture import ElfImage, build_fixture, fixture_elf, fixture_info, layout_facts  # noqa: F401

# Expected values, transcribed by hand from memory/cow.rs (sample_pages, sample_statistics).
PAGE0 = {
    "variant": "Some", "__0": {
        "physical_addr": 0x4010_0000, "ref_count": 2, "is_cow": True,
        "original_permissions": {"variant": "UserData"},
        "virtual_addresses": {"data": [0x40_0000, 0x40_1000, 0, 0, 0, 0, 0, 0], "len": 2},
        "process_ids": {"data": [1, 2, 0, 0, 0, 0, 0, 0], "len": 2},
    },
}
PAGE3 = {
    "variant": "Some", "__0": {
        "physical_addr": 0x4020_3000, "ref_count": 1, "is_cow": False,
        "original_permissions": {"variant": "Shared"},
        "virtual_addresses": {"data": [0x1000_0000, 0, 0, 0, 0, 0, 0, 0x7FFF_FFFF_E000], "len": 1},
        "process_ids": {"data": [7, 0, 0, 0, 0, 0, 0, 9], "len": 1},
    },
}
STATISTICS = {
    "cow_pages_count": 2, "cow_faults_handled": 5, "pages_duplicated": 3,
    "memory_saved_bytes": 8192, "metadata_memory_bytes": 1234, "peak_cow_pages": 4,
}
NONE = {"variant": "None"}


def _pages(n: int) -> list:
    pages = [NONE] * n
    pages[0], pages[3] = PAGE0, PAGE3
    return pages


def _static(info, image: ElfImage, query: str):
    s = info.static(query)
    return decode(s.layout, image.read(s.address, s.layout.size))


def test_cow_manager_decodes_to_its_initialiser(fixture_elf, fixture_info):
    image = ElfImage(fixture_elf)
    value = _static(fixture_info, image, "memory::cow::COW_MANAGER")
    memory_manager = fixture_info.symbol("memory::cow::MEMORY_MANAGER").address
    assert plain(value) == {"variant": "Some", "__0": {
        "cow_pages": _pages(64), "active_pages": 2, "statistics": STATISTICS,
        "memory_manager": {"variant": "Some", "__0": memory_manager}, "next_process_id": 3,
    }}
    # attribute access, the way the COW decoder uses it
    assert value.__0.cow_pages[0].__0.process_ids.data[:2] == [1, 2]
    assert value.__0.cow_pages[1].variant == "None"


def test_locked_and_small_managers(fixture_elf, fixture_info):
    image = ElfImage(fixture_elf)
    locked = _static(fixture_info, image, "LOCKED_COW_MANAGER")
    assert plain(locked.data.value)["__0"]["next_process_id"] == 11
    assert plain(locked.data.value)["__0"]["memory_manager"] == NONE
    assert plain(locked.data.value)["__0"]["cow_pages"] == _pages(64)
    assert plain(locked.locked) == {"v": {"value": {"__0": 0}}}  # AtomicBool(false): UnsafeCell<u8>
    small = _static(fixture_info, image, "small::COW_MANAGER")
    assert plain(small)["__0"]["cow_pages"] == _pages(5)
    assert plain(small)["__0"]["statistics"]["peak_cow_pages"] == 1


@pytest.mark.parametrize("query, expected", [
    ("variants::REORDERED", {"is_cow": True, "original_permissions": {"variant": "Device"}, "ref_count": 3,
                             "physical_addr": 0x4800_0000}),
    ("PACKED_BY_RUSTC", {"flag": True, "address": 0xDEAD_BEEF_0000, "count": 513,
                         "kind": {"variant": "KernelCode"}, "asid": 77}),
    ("COLOURS", [{"variant": "Blue"}, {"variant": "Red"}, {"variant": "Green"}]),
    ("SIGNS", [{"variant": "Minus"}, {"variant": "Plus"}, {"variant": "Zero"}]),
    ("EVENTS", [{"variant": "Fault", "addr": 0x1234_5000, "write": True}, {"variant": "Idle"},
                {"variant": "Exit", "__0": -42}]),
    ("OPTIONAL_NUMBERS", [{"variant": "Some", "__0": 0xABCD}, NONE]),
    ("NONZERO_OPTIONS", [NONE, {"variant": "Some", "__0": {"__0": {"__0": 99}}}]),
    ("NESTED_OPTIONS", [{"variant": "Some", "__0": {"variant": "Some", "__0": False}},
                        {"variant": "Some", "__0": {"variant": "Some", "__0": True}},
                        {"variant": "Some", "__0": NONE}, NONE]),
    ("variants::MANY", [{"variant": "D"}, {"variant": "Flag", "__0": True}, {"variant": "B"}, {"variant": "C"}]),
    ("REGION_OPTIONS", [{"variant": "Some", "__0": {"variant": "Shared"}}, NONE]),
    ("RESULTS", [{"variant": "Ok", "__0": 500}, {"variant": "Err", "__0": True}]),
    ("GRID", [[1, 2, 3], [4, 5, 6]]),
    ("MIXED", {"letter": "λ", "small": -300, "tuple": {"__0": 9, "__1": 70000}, "ratio": 0.25, "nothing": None}),
    ("TINYOS_FIXTURE_MARKER", 0x1234_5678_9ABC_DEF0),
])
def test_statics_decode_to_their_initialisers(fixture_elf, fixture_info, query, expected):
    assert plain(_static(fixture_info, ElfImage(fixture_elf), query)) == expected


def test_list_head_points_at_itself(fixture_elf, fixture_info):
    head = _static(fixture_info, ElfImage(fixture_elf), "LIST_HEAD")
    assert head.__0.value == 5
    assert head.__0.next == fixture_info.symbol("LIST_HEAD").address


def _page_bytes(info, image, facts, index: int) -> tuple[RustEnumType, bytearray]:
    static = info.static("memory::cow::COW_MANAGER")
    offset, option = static.layout.member_path(f"Some.__0.cow_pages[{index}]")
    return option, bytearray(image.read(static.address + offset, option.size))


def test_is_cow_byte_selects_none_and_rejects_garbage(fixture_elf, fixture_info):
    facts = layout_facts(fixture_elf)
    image = ElfImage(fixture_elf)
    option, raw = _page_bytes(fixture_info, image, facts, 0)
    is_cow = facts["memory::cow::CowPage.is_cow"]
    raw[is_cow] = 2
    assert decode(option, bytes(raw)).variant == "None"
    raw[is_cow] = 7
    with pytest.raises(DecodeError) as err:
        decode(option, bytes(raw), path="cow_pages[0]")
    assert err.value.path == "cow_pages[0].Some.__0.is_cow"
    assert err.value.offset == is_cow
    assert "holds 0x7, not 0 or 1" in str(err.value)


def test_bad_region_type_names_the_legal_values(fixture_elf, fixture_info):
    facts = layout_facts(fixture_elf)
    option, raw = _page_bytes(fixture_info, ElfImage(fixture_elf), facts, 3)
    raw[facts["memory::cow::CowPage.original_permissions"]] = 9
    with pytest.raises(DecodeError, match=r"original_permissions: RegionType .* holds 9, which is no variant .*Shared=5"):
        decode(option, bytes(raw))


def test_unknown_explicit_tag_is_rejected(fixture_info):
    event = fixture_info.type("variants::Event")
    raw = bytearray(event.size)
    raw[event.discr_offset] = 8  # tags are 3, 7, 9 and there is no default arm
    with pytest.raises(DecodeError, match="holds 8, which selects no variant"):
        decode(event, bytes(raw))


def test_too_few_bytes(fixture_info):
    page = fixture_info.type("memory::cow::CowPage")
    with pytest.raises(DecodeError, match=f"needs {page.size} bytes at offset 0, only 3 given"):
        decode(page, b"abc")


def test_synthetic_discriminant_lists_and_signed_tags():
    # Built by hand: a signed 1-byte tag at offset 0; "Low" claims -5..-1, "High" 10..20,
    # "Rest" is the default arm.
    u8 = BaseType("u8", 1, 1, "unsigned")
    payload = StructType("P", 2, 1, (Member("x", 1, u8),))
    enum = RustEnumType("E", 2, 1, 0, 1, True, (
        Variant("Low", ((-5, -1),), payload), Variant("High", ((10, 20),), payload), Variant("Rest", None, payload)))
    assert decode(enum, bytes([0xFD, 4])) == EnumValue("E", "Low", -3, StructValue("P", {"x": 4}))
    assert decode(enum, bytes([15, 0])).variant == "High"
    assert decode(enum, bytes([0, 0])).variant == "Rest"
    assert decode(enum, bytes([0x80, 0])).discriminant == -128


def test_synthetic_c_shapes():
    # What C DWARF has and rustc does not emit: typedefs, one array with two subranges,
    # unions and bit fields. Expected values worked out by hand from the bytes.
    u16 = BaseType("u16", 2, 2, "unsigned")
    word = TypedefType("word_t", 2, 2, u16)
    grid = ArrayType("word_t[2][3]", 12, 2, word, (2, 3))
    flags = StructType("flags", 1, 1, (
        Member("low", 0, u16, bit_size=3, bit_offset=0), Member("high", 0, u16, bit_size=5, bit_offset=3)))
    union = StructType("u", 2, 2, (Member("a", 0, u16), Member("b", 0, flags.members[0].type)), is_union=True)
    outer = StructType("outer", 16, 2, (Member("grid", 0, grid), Member("flags", 12, flags), Member("u", 14, union)))
    raw = bytes(range(1, 13)) + bytes([0b10101_110, 0]) + b"\xaa\xbb"
    value = decode(outer, raw)
    assert value.grid == [[0x0201, 0x0403, 0x0605], [0x0807, 0x0A09, 0x0C0B]]
    assert (value.flags.low, value.flags.high) == (0b110, 0b10101)
    assert value.u == RawValue("u", b"\xaa\xbb")
    assert outer.member_path("grid[1][2]") == (10, word.target)


def _all_static_layouts(info):
    return [info.static(q).layout for q in (
        "memory::cow::COW_MANAGER", "LOCKED_COW_MANAGER", "small::COW_MANAGER", "REORDERED", "PACKED_BY_RUSTC",
        "COLOURS", "SIGNS", "EVENTS", "OPTIONAL_NUMBERS", "NONZERO_OPTIONS", "NESTED_OPTIONS", "MANY",
        "REGION_OPTIONS", "RESULTS", "GRID", "MIXED", "LIST_HEAD")]


@pytest.fixture(scope="module")
def release_layouts(tmp_path_factory):
    from gdb_tinyos.debuginfo import DebugInfo

    with DebugInfo.open(build_fixture("release"), cache_dir=tmp_path_factory.mktemp("cache")) as info:
        return _all_static_layouts(info)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_bytes_only_raise_typed_errors(release_layouts, data):
    layout = data.draw(st.sampled_from(release_layouts))
    size = data.draw(st.one_of(st.just(layout.size), st.integers(0, layout.size + 8)))
    raw = data.draw(st.binary(min_size=size, max_size=size)) if size <= 64 else bytes(
        data.draw(st.lists(st.integers(0, 255), min_size=1, max_size=64))) * (size // 64 + 1)
    raw = raw[:size]
    try:
        decode(layout, raw)
    except CorruptStructure:
        pass


def test_rows_of_structs_hold_the_named_members_only():
    """decode_rows: each struct row holds the members asked for (those it has), decoded as
    decode() does; None asks for all of them; rows that are not structs decode whole."""
    u8, u16 = BaseType("u8", 1, 1, "unsigned"), BaseType("u16", 2, 2, "unsigned")
    row = StructType("R", 4, 2, (Member("a", 0, u16), Member("b", 2, u8), Member("flag", 3, BaseType("bool", 1, 1, "boolean"))))
    table = ArrayType("R[2]", 8, 2, row, (2,))
    raw = bytes([0x34, 0x12, 7, 0xFF, 0x78, 0x56, 9, 1])  # row 0's bool holds 0xff: corrupt
    assert [r.fields() for r in decode_rows(table, raw, 0, "t", frozenset({"a", "b"}))] == [
        {"a": 0x1234, "b": 7}, {"a": 0x5678, "b": 9}]
    with pytest.raises(DecodeError, match=r"t\[0\]\.flag"):  # asked for, the corrupt member still says so
        decode_rows(table, raw, 0, "t", frozenset({"flag"}))
    with pytest.raises(DecodeError, match="needs 8 bytes"):
        decode_rows(table, raw[:7], 0, "t", frozenset({"a"}))
    fine = raw[:3] + b"\x01" + raw[4:]
    assert decode_rows(table, fine, 0, "t") == decode(table, fine, 0, "t")
    words = ArrayType("u16[4]", 8, 2, u16, (4,))
    assert decode_rows(words, raw, 0, "w", frozenset({"a"})) == [0x1234, 0xFF07, 0x5678, 0x0109]


def _structs_within(layout, found=None) -> list[StructType]:
    """Every (non-union) struct type reachable from ``layout``: members, array rows, typedef
    targets and enum variants' payloads."""
    found = {} if found is None else found
    t = layout.strip_typedefs()
    if isinstance(t, StructType):
        if not t.is_union and id(t) not in found:
            found[id(t)] = t
        for m in t.members:
            _structs_within(m.type, found)
    elif isinstance(t, ArrayType):
        _structs_within(t.element, found)
    elif isinstance(t, RustEnumType):
        for v in t.variants:
            _structs_within(v.payload, found)
    return list(found.values())


def _row_by_row(table: ArrayType, raw: bytes, members: frozenset[str]):
    """decode_rows's meaning, written out: each row decoded alone, holding ``members``."""
    from dataclasses import replace
    from gdb_tinyos.debuginfo.decode import _struct

    row = table.row()
    wanted = replace(row, members=tuple(m for m in row.members if m.name in members))
    return [_struct(wanted, memoryview(raw), i * row.size, f"t[{i}]") for i in range(table.count)]


I8, U32, I64 = BaseType("i8", 1, 1, "signed"), BaseType("u32", 4, 4, "unsigned"), BaseType("i64", 8, 8, "signed")
PTR = PointerType("*const u8", 8, 8, "u8", None)
NAME = StructType("&str", 16, 8, (Member("data_ptr", 0, PTR), Member("length", 8, TypedefType("usize", 8, 8, BaseType("u64", 8, 8, "unsigned")))))
SYNTHETIC = [
    StructType("Row", 40, 8, (Member("pid", 0, U32), Member("small", 4, I8), Member("flag", 5, BaseType("bool", 1, 1, "boolean")),
                              Member("c", 6, BaseType("char", 4, 4, "char")), Member("name", 16, NAME), Member("big", 32, I64))),
    StructType("Bits", 8, 4, (Member("low", 0, U32, 3, 0), Member("high", 0, U32, 5, 3), Member("after", 4, U32))),
    StructType("Past", 8, 4, (Member("a", 0, U32), Member("b", 6, U32))),  # b runs past the row: row by row, its error
    StructType("Overlap", 8, 4, (Member("a", 0, I64), Member("b", 4, U32))),  # overlapping members: row by row
    StructType("Outer", 16, 4, (Member("x", 0, U32), Member("inner", 8, StructType("Bits", 8, 4, (
        Member("low", 0, U32, 3, 0), Member("high", 0, U32, 5, 3), Member("after", 4, U32)))))),  # bit fields, nested
    StructType("PastBool", 4, 4, (Member("a", 0, U32), Member("flag", 4, BaseType("bool", 1, 1, "boolean")))),
]


@pytest.mark.parametrize("which", range(6))
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_rows_decoded_by_plan_are_those_decoded_row_by_row_synthetic(which, data):
    _assert_rows_as_row_by_row(SYNTHETIC[which], data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_rows_decoded_by_plan_are_those_decoded_row_by_row(release_layouts, data):
    """decode_rows unpacks a row's integers (nested structs' included) with one
    precompiled struct and decodes the rest as _struct does: for every struct of the
    fixture's layouts, any members asked for, random bytes, the same rows or the same error."""
    rows = [s for layout in release_layouts for s in _structs_within(layout) if s.size <= 256]  # not the manager
    _assert_rows_as_row_by_row(data.draw(st.sampled_from(rows)), data)


def _assert_rows_as_row_by_row(row: StructType, data) -> None:
    names = [m.name for m in row.members]
    members = frozenset(data.draw(st.lists(st.sampled_from(names), unique=True) if names else st.just([])))
    table = ArrayType(f"[{row.name}; 3]", 3 * row.size, row.align, row, (3,))
    # mostly small values and zeros (valid bools, chars and enums), sometimes anything
    byte = st.one_of(st.just(0), st.integers(0, 2), st.integers(0, 255))
    raw = bytes(data.draw(st.lists(byte, min_size=table.size, max_size=table.size)))
    try:
        expected = _row_by_row(table, raw, members)
    except DecodeError as exc:
        with pytest.raises(DecodeError) as got:
            decode_rows(table, raw, 0, "t", members)
        assert str(got.value) == str(exc)
        return
    assert decode_rows(table, raw, 0, "t", members) == expected


def test_rows_the_plan_cannot_take_are_decoded_row_by_row():
    """Zero-sized rows, an array whose size holds fewer rows than its count (DWARF at odds
    with itself: the member past the bytes is named, as row by row), any iterable of names."""
    marker = StructType("Marker", 0, 1, ())
    assert decode_rows(ArrayType("[Marker; 2]", 0, 1, marker, (2,)), b"", 0, "t", frozenset({"x"})) == [
        StructValue("Marker", {}), StructValue("Marker", {})]
    row = StructType("R", 8, 4, (Member("a", 0, U32), Member("b", 4, U32)))
    short = ArrayType("[R; 2]", 12, 4, row, (2,))
    with pytest.raises(DecodeError, match=r"t\[1\]\.b: member lies outside the bytes given"):
        decode_rows(short, bytes(12), 0, "t", frozenset({"b"}))
    table = ArrayType("[R; 2]", 16, 4, row, (2,))
    raw = bytes(range(16))
    assert decode_rows(table, raw, 0, "t", {"b"}) == decode_rows(table, raw, 0, "t", ["b"]) == _row_by_row(table, raw, frozenset({"b"}))
