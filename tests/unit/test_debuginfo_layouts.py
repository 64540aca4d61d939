"""DWARF layouts of the fixture crate against the compiler's own size_of/align_of/offset_of!
answers (LAYOUT_FACTS), in debug and release builds."""

from __future__ import annotations

import pytest

from gdb_tinyos.debuginfo import ArrayType, BaseType, EnumType, RustEnumType, StructType
from gdb_tinyos.core.errors import LayoutError
from test_debuginfo_fixture import fixture_elf, fixture_info, layout_facts  # noqa: F401  (pytest fixtures)


def _check_fact(info, label: str, expected: int) -> None:
    if label.endswith("#len"):
        type_name, field = label.removesuffix("#len").split(".", 1)
        _, array = info.type(type_name).member_path(field)
        assert isinstance(array, ArrayType) and array.count == expected, label
    elif "@align" in label:
        assert info.type(label.removesuffix("@align")).align == expected, label
    elif label.endswith(">") or "." not in label.rsplit("::", 1)[-1]:
        assert info.type(label).size == expected, label
    else:
        type_name, field = label.rsplit(".", 1)
        offset, _ = info.type(type_name).member_path(field)
        assert offset == expected, label


def test_every_compiler_fact_matches_dwarf(fixture_elf, fixture_info):
    facts = layout_facts(fixture_elf)
    assert len(facts) >= 50
    for label, value in facts.items():
        _check_fact(fixture_info, label, value)


def test_rustc_reorders_fields_and_dwarf_follows(fixture_elf, fixture_info):
    facts = layout_facts(fixture_elf)
    declared = ["flag", "address", "count", "kind", "asid"]
    by_offset = sorted(declared, key=lambda f: facts[f"variants::PackedByRustc.{f}"])
    assert by_offset != declared  # the point of the fixture: rustc moved them
    members = fixture_info.type("variants::PackedByRustc").members
    assert [m.name for m in sorted(members, key=lambda m: m.offset)] == by_offset


def test_upstream_cow_shapes(fixture_info):
    page = fixture_info.type("memory::cow::CowPage")
    assert isinstance(page, StructType)
    assert {m.name for m in page.members} == {
        "physical_addr", "ref_count", "is_cow", "original_permissions", "virtual_addresses", "process_ids"}
    is_cow = page.member("is_cow").type
    assert isinstance(is_cow, BaseType) and is_cow.encoding == "boolean" and is_cow.size == 1
    region = page.member("original_permissions").type
    assert isinstance(region, EnumType)
    assert [(e.name, e.value) for e in region.enumerators] == [
        ("KernelCode", 0), ("KernelData", 1), ("UserCode", 2), ("UserData", 3), ("Device", 4), ("Shared", 5)]


def test_option_cow_page_is_niche_encoded_in_is_cow(fixture_elf, fixture_info):
    facts = layout_facts(fixture_elf)
    option = fixture_info.type("Option<rust_layouts::memory::cow::CowPage>")
    assert isinstance(option, RustEnumType)
    assert option.size == facts["memory::cow::CowPage"]  # no room for a separate tag
    some = option.variant("Some")
    assert some.discr is None  # the dataful variant is the default arm
    # facts.md: None is the is_cow byte holding 2 (Some.__0 sits at offset 0 of the Option).
    assert option.discr_offset == facts["memory::cow::CowPage.is_cow"]
    assert option.discr_size == 1
    assert option.variant("None").discr == ((2, 2),)


def test_explicit_tags_and_discriminants(fixture_info):
    event = fixture_info.type("variants::Event")
    assert isinstance(event, RustEnumType)
    assert {v.name: v.discr for v in event.variants} == {"Idle": ((3, 3),), "Fault": ((7, 7),), "Exit": ((9, 9),)}
    colour = fixture_info.type("variants::Colour")
    assert {e.name: e.value for e in colour.enumerators} == {"Red": 1, "Green": 0x20, "Blue": 0x300}
    sign = fixture_info.type("variants::Sign")
    assert sign.signed and {e.name: e.value for e in sign.enumerators} == {"Minus": -2, "Zero": 0, "Plus": 5}


def test_wrappers_navigate_generically(fixture_elf, fixture_info):
    facts = layout_facts(fixture_elf)
    lock = fixture_info.static("memory::cow::manager::LOCKED_COW_MANAGER")
    offset, manager = lock.layout.member_path("data.value.Some.__0")
    assert offset == facts["SpinLock<core::option::Option<rust_layouts::memory::cow::CowManager>>.data"]
    assert manager.name == "CowManager"
    address, pages = lock.member("data.value.Some.__0.cow_pages[3].Some.__0.is_cow")
    assert address == (lock.address + offset + facts["memory::cow::CowManager.cow_pages"]
                       + 3 * facts["Option<rust_layouts::memory::cow::CowPage>"] + facts["memory::cow::CowPage.is_cow"])
    assert pages.name == "bool"


def test_grid_is_an_array_of_arrays(fixture_info):
    grid = fixture_info.static("variants::GRID").layout
    assert isinstance(grid, ArrayType) and grid.count == 2
    row = grid.row()
    assert isinstance(row, ArrayType) and row.count == 3 and row.element.name == "u16"


def test_self_referential_pointer_resolves_lazily(fixture_info):
    node = fixture_info.type("variants::ListNode")
    next_ptr = node.member("next").type
    assert fixture_info.pointee(next_ptr) is node


@pytest.mark.parametrize("path, why", [
    ("cow_pages.nope", "no member"),
    ("cow_pages[64]", "outside"),
    ("active_pages[0]", "not an array"),
    ("active_pages.x", "no members"),
])
def test_bad_member_paths_say_why(fixture_info, path, why):
    with pytest.raises(LayoutError, match=why):
        fixture_info.type("memory::cow::CowManager").member_path(path)


def test_type_lookup_errors(fixture_info):
    with pytest.raises(LayoutError, match="ambiguous.*CowManager"):
        fixture_info.type("CowManager")  # memory::cow:: and variants::small::
    with pytest.raises(LayoutError, match="no type named or ending in 'NoSuchType'"):
        fixture_info.type("NoSuchType")
