"""The foreign kernel's ELF, read with pyelftools (no QEMU): the capabilities it lacks
(no build-id note, no frame allocator, no process table, no debugger contract), where it
loads (flat, VA = PA, in the virt board's RAM), and upstream TinyOS's COW shapes in its
DWARF under the `tiny_os_lib` crate path, as facts.md section 3 lists them."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

RAM = 0x4000_0000
RAM_END = RAM + 128 * 1024 * 1024
ABSENT = ("FRAME_ALLOCATOR", "PROCESSES", "tinyos_debug_event", "TINYOS_DEBUG_CONTRACT", "TINYOS_BUILD_ID", "build_id")


def symbols(path: Path) -> dict[str, int]:
    with path.open("rb") as f:
        table = ELFFile(f).get_section_by_name(".symtab")
        assert table is not None, "the foreign kernel keeps its symbol table"
        return {s.name: s["st_value"] for s in table.iter_symbols() if s.name}


@functools.cache
def dwarf_index(path: Path) -> tuple[dict[str, list[dict]], dict[str, list[tuple[str, ...]]]]:
    """({struct or enum name: [{member name: (offset, type name)} | {enumerator: value}]},
    {variable name: [namespace path]}) from every compile unit."""
    types: dict[str, list[dict]] = {}
    variables: dict[str, list[tuple[str, ...]]] = {}
    with path.open("rb") as f:
        dwarf = ELFFile(f).get_dwarf_info()
        for cu in dwarf.iter_CUs():
            for die in cu.iter_DIEs():
                name = die.attributes.get("DW_AT_name")
                if name is None:
                    continue
                name = name.value.decode()
                if die.tag == "DW_TAG_structure_type" and die.has_children:
                    members = {}
                    for child in die.iter_children():
                        if child.tag == "DW_TAG_member":
                            offset = child.attributes["DW_AT_data_member_location"].value
                            members[child.attributes["DW_AT_name"].value.decode()] = (offset, _type_name(child))
                    types.setdefault(name, []).append(members)
                elif die.tag == "DW_TAG_enumeration_type":
                    values = {c.attributes["DW_AT_name"].value.decode(): c.attributes["DW_AT_const_value"].value
                              for c in die.iter_children() if c.tag == "DW_TAG_enumerator"}
                    types.setdefault(name, []).append(values)
                elif die.tag == "DW_TAG_variable":
                    variables.setdefault(name, []).append(_namespace(die))
    return types, variables


def _type_name(die) -> str:
    t = die.get_DIE_from_attribute("DW_AT_type")
    if t.tag == "DW_TAG_array_type":
        counts = [c.attributes["DW_AT_count"].value for c in t.iter_children() if c.tag == "DW_TAG_subrange_type"]
        return f"[{_type_name(t)}; {counts[0]}]"
    return t.attributes["DW_AT_name"].value.decode() if "DW_AT_name" in t.attributes else t.tag


def _namespace(die) -> tuple[str, ...]:
    path = []
    parent = die.get_parent()
    while parent is not None and parent.tag == "DW_TAG_namespace":
        path.append(parent.attributes["DW_AT_name"].value.decode())
        parent = parent.get_parent()
    return tuple(reversed(path))


def one_struct(path: Path, name: str) -> dict:
    found = dwarf_index(path)[0].get(name, [])
    assert found, f"no DWARF type {name!r}"
    assert all(f == found[0] for f in found), f"{name}: differing definitions {found}"
    return found[0]


def test_no_build_id_note(foreign_kernel):
    with foreign_kernel.open("rb") as f:
        elf = ELFFile(f)
        notes = [s.name for s in elf.iter_sections() if s["sh_type"] == "SHT_NOTE"]
        note_segments = [seg for seg in elf.iter_segments() if seg["p_type"] == "PT_NOTE"]
    assert notes == [] and note_segments == []


@pytest.mark.parametrize("fragment", ABSENT)
def test_capability_symbols_are_absent(foreign_kernel, fragment):
    assert [name for name in symbols(foreign_kernel) if fragment.lower() in name.lower()] == []
    variables = dwarf_index(foreign_kernel)[1]
    assert [name for name in variables if fragment.lower() in name.lower()] == []


def test_flat_image_in_ram(foreign_kernel):
    with foreign_kernel.open("rb") as f:
        elf = ELFFile(f)
        entry = elf.header["e_entry"]
        loads = [seg for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"]
    assert loads and all(seg["p_vaddr"] == seg["p_paddr"] for seg in loads)
    assert all(RAM <= seg["p_paddr"] and seg["p_paddr"] + seg["p_memsz"] <= RAM_END for seg in loads)
    assert entry == symbols(foreign_kernel)["_start"] and RAM <= entry < RAM_END


def test_cow_manager_is_a_locked_option_under_the_upstream_path(foreign_kernel):
    mangled = [n for n in symbols(foreign_kernel) if n.endswith("11tiny_os_lib6memory3cow7manager11COW_MANAGER")]
    assert len(mangled) == 1, mangled
    assert dwarf_index(foreign_kernel)[1]["COW_MANAGER"] == [("tiny_os_lib", "memory", "cow", "manager")]
    lock = one_struct(foreign_kernel, "Mutex<core::option::Option<tiny_os_lib::memory::cow::manager::CowManager>>")
    assert list(lock) == ["lock", "data"]
    assert lock["lock"][0] == 0 and lock["lock"][1] in ("AtomicBool", "Atomic<bool>")  # rustc 1.96 names it Atomic<bool>
    assert lock["data"][0] > 0
    assert lock["data"][1] == "UnsafeCell<core::option::Option<tiny_os_lib::memory::cow::manager::CowManager>>"


def test_upstream_cow_shapes(foreign_kernel):
    def fields(name: str) -> dict[str, str]:
        return {field: type_name for field, (_, type_name) in one_struct(foreign_kernel, name).items()}

    assert fields("CowManager") == {
        "cow_pages": "[Option<tiny_os_lib::memory::cow::CowPage>; 64]",
        "active_pages": "usize",
        "statistics": "CowStatistics",
        "memory_manager": "Option<*mut tiny_os_lib::memory::MemoryManager>",
        "next_process_id": "usize",
    }
    assert fields("CowPage") == {
        "physical_addr": "u64",
        "ref_count": "usize",
        "is_cow": "bool",
        "original_permissions": "RegionType",
        "virtual_addresses": "SimpleVec<u64>",
        "process_ids": "SimpleVec<usize>",
    }
    assert fields("SimpleVec<u64>") == {"data": "[u64; 8]", "len": "usize"}
    assert fields("SimpleVec<usize>") == {"data": "[usize; 8]", "len": "usize"}
    assert fields("CowStatistics") == {
        "cow_pages_count": "usize", "cow_faults_handled": "usize", "pages_duplicated": "usize",
        "memory_saved_bytes": "u64", "metadata_memory_bytes": "u64", "peak_cow_pages": "usize",
    }  # fmt: skip
    region = dwarf_index(foreign_kernel)[0]["RegionType"][0]
    assert list(region) == ["KernelCode", "KernelData", "UserCode", "UserData", "Device", "Shared"]
