"""Build-ids: the ELF's own (checked against readelf), the running kernel's read from
target memory at __build_id_start..__build_id_end, and what a missing DWARF looks like."""

from __future__ import annotations

import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from gdb_tinyos.debuginfo import DebugInfo, check_build_id, parse_build_id_notes
from gdb_tinyos.core.errors import BuildIdMismatch, DebugInfoError, MemoryReadError
from gdb_tinyos.core.target import FakeTarget
from test_debuginfo_fixture import ElfImage, build_fixture, fixture_elf, fixture_info  # noqa: F401


def _readelf_build_id(path) -> str:
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True, check=True).stdout
    return out.split("Build ID:")[1].split()[0]


def test_build_id_matches_readelf(fixture_elf, fixture_info):
    assert fixture_info.build_id.hex() == _readelf_build_id(fixture_elf)


def test_running_kernel_with_the_same_image_passes(fixture_elf, fixture_info):
    target = ElfImage(fixture_elf).target()
    assert check_build_id(fixture_info, target).hex() == _readelf_build_id(fixture_elf)


def test_other_kernel_in_memory_is_a_mismatch_naming_both_ids(tmp_path):
    debug, release = build_fixture("debug"), build_fixture("release")
    with DebugInfo.open(debug, cache_dir=tmp_path) as info_debug, DebugInfo.open(release, cache_dir=tmp_path) as info_release:
        target = ElfImage(debug).target()
        # The release ELF's note symbols point elsewhere: put the debug build's note there.
        start = info_release.symbol("__build_id_start").address
        note = ElfImage(debug).read(info_debug.symbol("__build_id_start").address, 36)
        target.write_physical(start, note)
        with pytest.raises(BuildIdMismatch) as err:
            check_build_id(info_release, target)
    assert _readelf_build_id(debug) in str(err.value) and _readelf_build_id(release) in str(err.value)


def test_garbage_instead_of_a_note_is_a_mismatch(fixture_info):
    start = fixture_info.symbol("__build_id_start").address
    target = FakeTarget()
    target.write_physical(start, b"\xff" * 64)
    with pytest.raises(BuildIdMismatch, match="no build-id note"):
        check_build_id(fixture_info, target)


def test_unreadable_region_is_a_memory_error(fixture_info):
    with pytest.raises(MemoryReadError):
        check_build_id(fixture_info, FakeTarget())


def test_parse_notes_skips_other_notes():
    # Hand-built: an NT_VERSION note (type 1, name "Xen\0") then a GNU build-id.
    other = (4).to_bytes(4, "little") + (2).to_bytes(4, "little") + (1).to_bytes(4, "little") + b"Xen\0" + b"ab\0\0"
    build = (4).to_bytes(4, "little") + (3).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"GNU\0" + b"\x01\x02\x03\0"
    assert parse_build_id_notes(other + build) == b"\x01\x02\x03"
    assert parse_build_id_notes(other) is None
    assert parse_build_id_notes(build[:14]) is None


def _without_debug_info(src, dst):
    """Copy ``src`` with the .debug_info section renamed, as strip would leave it for our purpose."""
    data = bytearray(src.read_bytes())
    with open(src, "rb") as f:
        e = ELFFile(f)
        strtab = e.get_section(e["e_shstrndx"])["sh_offset"]
        name = e.get_section_by_name(".debug_info")["sh_name"]
    data[strtab + name : strtab + name + len(".debug_info")] = b".xebug_info"
    dst.write_bytes(bytes(data))
    return dst


def test_elf_without_dwarf_is_a_clear_error(tmp_path):
    stripped = _without_debug_info(build_fixture("debug"), tmp_path / "stripped.elf")
    with pytest.raises(DebugInfoError, match=f"{stripped} has no DWARF debug info"):
        DebugInfo.open(stripped, cache_dir=None)


def test_missing_and_non_elf_files(tmp_path):
    with pytest.raises(DebugInfoError, match="cannot open the kernel ELF"):
        DebugInfo.open(tmp_path / "nope", cache_dir=None)
    text = tmp_path / "text.elf"
    text.write_text("hello")
    with pytest.raises(DebugInfoError, match="is not a readable ELF file"):
        DebugInfo.open(text, cache_dir=None)
