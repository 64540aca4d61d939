"""The build-id keyed disk cache: a second open reads no DWARF, damaged files are
ignored and rewritten, an unwritable directory only costs speed."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess

import pytest

from gdb_tinyos.debuginfo import DebugInfo, decode
from gdb_tinyos.debuginfo import cache
from gdb_tinyos.debuginfo.cache import CacheData, cache_file
from test_debuginfo_fixture import ElfImage, build_fixture


@pytest.fixture(scope="module")
def elf():
    return build_fixture("debug")


def _open_and_use(elf, cache_dir):
    with DebugInfo.open(elf, cache_dir=cache_dir) as info:
        static = info.static("memory::cow::COW_MANAGER")
        value = decode(static.layout, ElfImage(elf).read(static.address, static.layout.size))
        return info, static, value


def test_second_open_comes_from_cache_without_parsing_dwarf(elf, tmp_path):
    first, static1, value1 = _open_and_use(elf, tmp_path)
    assert not first.from_cache
    assert cache_file(tmp_path, first.build_id.hex()).is_file()
    second, static2, value2 = _open_and_use(elf, tmp_path)
    assert second.from_cache
    assert second._reader is None  # the layout came out of the cache, DWARF untouched
    assert static2 == static1 and value2 == value1


def test_layouts_resolved_later_are_added_to_the_cache(elf, tmp_path):
    _open_and_use(elf, tmp_path)
    with DebugInfo.open(elf, cache_dir=tmp_path) as info:
        info.type("variants::Event")  # not asked for in the first session
    with DebugInfo.open(elf, cache_dir=tmp_path) as info:
        info.type("variants::Event")
        assert info._reader is None


@pytest.mark.parametrize("damage", [
    lambda p: p.write_bytes(b"not json at all"),
    lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    lambda p: p.write_bytes(b""),
    lambda p: p.write_bytes(b"\xff\xfe"),
    lambda p: p.write_text(json.dumps({"some": "other object"})),
    lambda p: p.write_text(json.dumps({"$": "PosixPath", "x": 1})),  # not a cache record class
    lambda p: p.write_text(json.dumps(cache.to_json(CacheData("another-build", [], None)))),
    lambda p: p.write_bytes(pickle.dumps(CacheData("another-build", [], None))),
])
def test_damaged_cache_is_ignored_and_rebuilt(elf, tmp_path, damage):
    info, _, expected = _open_and_use(elf, tmp_path)
    path = cache_file(tmp_path, info.build_id.hex())
    damage(path)
    again, _, value = _open_and_use(elf, tmp_path)
    assert not again.from_cache and value == expected
    third, _, _ = _open_and_use(elf, tmp_path)
    assert third.from_cache  # the rebuilt file is good again


def test_unwritable_cache_directory_still_works(elf, tmp_path):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    info, _, value = _open_and_use(elf, blocker / "cache")
    assert not info.from_cache and value.variant == "Some"


def test_each_build_has_its_own_file(tmp_path):
    for profile in ("debug", "release"):
        _open_and_use(build_fixture(profile), tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_elf_without_build_id_is_keyed_by_content(elf, tmp_path):
    copy = tmp_path / "no-build-id"
    data = bytearray(elf.read_bytes())
    # Rename the note's section type in place: SHT_NOTE (7) -> SHT_PROGBITS (1), so no note is found.
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as f:
        e = ELFFile(f)
        index = next(i for i, s in enumerate(e.iter_sections()) if s.name == ".note.gnu.build-id")
        header = e["e_shoff"] + index * e["e_shentsize"]
    assert data[header + 4] == 7
    data[header + 4] = 1
    copy.write_bytes(bytes(data))
    info, _, _ = _open_and_use(copy, tmp_path / "cache")
    assert info.build_id is None and info.cache_key.startswith("sha1-")
    assert _open_and_use(copy, tmp_path / "cache")[0].from_cache


def test_elf_edited_in_place_with_the_same_build_id_is_parsed_again(elf, tmp_path):
    """llvm-objcopy keeps the build-id note: the cache must notice the ELF changed anyway."""
    copy = tmp_path / "kernel.elf"
    shutil.copy(elf, copy)
    cache_dir = tmp_path / "cache"
    with DebugInfo.open(copy, cache_dir=cache_dir) as before:
        build_id = before.build_id
    subprocess.run(["llvm-objcopy", "--add-symbol", "ADDED_AFTER_CACHING=0x1234", str(copy)], check=True)
    with DebugInfo.open(copy, cache_dir=cache_dir) as after:
        assert after.build_id == build_id
        assert not after.from_cache
        assert after.symbol("ADDED_AFTER_CACHING").address == 0x1234


def test_the_cache_is_json_that_loads_without_running_code(elf, tmp_path):
    """A file naming a callable (what a malicious pickle does) is data, never executed."""
    info, _, _ = _open_and_use(elf, tmp_path)
    path = cache_file(tmp_path, info.build_id.hex())
    record = json.loads(path.read_text())  # plain JSON: it parses as data
    assert record["$"] == "CacheData" and record["key"] == info.build_id.hex()
    marker = tmp_path / "ran"
    record["symbols"] = [{"$": "system", "command": f"touch {marker}"}]
    path.write_text(json.dumps(record))
    again, _, _ = _open_and_use(elf, tmp_path)
    assert not again.from_cache and not marker.exists()


def test_a_directory_the_plugin_creates_is_private(elf, tmp_path):
    directory = tmp_path / "new" / "cache"
    _open_and_use(elf, directory)
    assert directory.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o722])
def test_a_directory_others_can_write_is_refused_with_one_line(elf, tmp_path, capsys, mode):
    shared = tmp_path / "shared"
    shared.mkdir()
    info, _, expected = _open_and_use(elf, shared)  # written while it was private
    shared.chmod(mode)
    again, _, value = _open_and_use(elf, shared)
    assert not again.from_cache and value == expected  # refused, not used; still correct
    lines = [line for line in capsys.readouterr().err.splitlines() if "debug-info cache" in line]
    assert len(lines) == 1 and f"{shared} is writable by" in lines[0] and f"{mode & 0o777:o}" in lines[0]
    assert shared.stat().st_mode & 0o7777 == mode  # the plugin does not change others' directories


def test_a_directory_owned_by_someone_else_is_refused(elf, tmp_path, capsys):
    if os.geteuid() != 0:
        pytest.fail("needs root to give a directory to another uid (the project's machines run as root)")
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 12345, 12345)
    info, _, _ = _open_and_use(elf, theirs)
    assert not info.from_cache and list(theirs.iterdir()) == []
    assert "belongs to uid 12345, not to you" in capsys.readouterr().err
