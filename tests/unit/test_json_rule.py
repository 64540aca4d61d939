"""The one JSON rule: addresses are "0x..." strings, counts and identifiers are integers.

Checked on decoded models (the COW manager of the upstream-shaped fixture crate, whose
initialisers are restated by hand in test_cow_model.py) through the single serializer
every face uses, render.to_plain / to_json / to_mi."""

from __future__ import annotations

import json

import pytest

from gdb_tinyos.core.address import Address
from gdb_tinyos.tinyos.cow import locate_manager, read_manager
from gdb_tinyos.debuginfo import DebugInfo
from gdb_tinyos.core.render import to_json, to_mi, to_plain

from test_debuginfo_fixture import ElfImage, fixture_elf  # noqa: F401  (pytest fixture)

SYMBOL = "memory::cow::COW_MANAGER"


@pytest.fixture
def state(fixture_elf):
    info = DebugInfo.open(fixture_elf, cache_dir=None)
    return info, read_manager(ElfImage(fixture_elf).target(), locate_manager(info, SYMBOL))


def test_cow_manager_json_addresses_are_hex_strings(state):
    info, cow = state
    data = json.loads(to_json(cow))
    assert data["address"] == hex(info.symbol(SYMBOL).address)
    assert data["memory_manager"] == hex(info.symbol("memory::cow::MEMORY_MANAGER").address)
    # sample_pages(): slot 0 at 0x4010_0000 shared by pid 1 (va 0x40_0000) and pid 2 (va 0x40_1000)
    page = data["pages"][0]
    assert page["physical_addr"] == "0x40100000"
    assert page["sharers"] == [{"va": "0x400000", "pid": 1}, {"va": "0x401000", "pid": 2}]
    assert (page["slot"], page["ref_count"], data["active_pages"], data["capacity"]) == (0, 2, 2, 64)
    assert data["statistics"]["memory_saved_bytes"] == 8192


def test_mi_and_json_agree_on_addresses(state):
    _, cow = state
    plain, mi = to_plain(cow), to_mi(cow)
    assert mi["pages"][1]["physical_addr"] == plain["pages"][1]["physical_addr"] == "0x40203000"
    assert mi["pages"][1]["ref_count"] == "1"  # MI leaves are strings; JSON keeps the integer
    assert plain["pages"][1]["ref_count"] == 1


def test_address_is_an_int_that_prints_hex():
    a = Address(0xFFFF_0000_4008_0000)
    assert a == 0xFFFF_0000_4008_0000 and hash(a) == hash(0xFFFF_0000_4008_0000)
    assert f"{a}" == str(a) == repr(a) == "0xffff000040080000" and f"{a:#018x}" == "0xffff000040080000"
    assert type(a + 1) is int and to_plain(a - 0xFFFF_0000_0000_0000) == 0x4008_0000
    assert to_plain([a, {Address(2), Address(1)}]) == ["0xffff000040080000", ["0x1", "0x2"]]
