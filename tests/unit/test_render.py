"""One model, three faces: plain data (JSON), MI (strings only), text tables."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gdb_tinyos.core.render import Address, cell, hexs, key_values, table, to_json, to_mi, to_plain


class Kind(enum.Enum):
    PAGE = 3
    BLOCK = 2


@dataclass
class Row:
    va: Address
    kind: Kind
    writable: bool
    pids: list[int] = field(default_factory=list)
    note: str | None = None


ROWS = [Row(Address(0x40_0000), Kind.PAGE, False, [1, 2]), Row(Address(0xFFFF_0000_4000_0000), Kind.BLOCK, True)]


def test_plain_data_keeps_field_order_and_renders_addresses_as_hex():
    assert to_plain(ROWS[0]) == {"va": "0x400000", "kind": "PAGE", "writable": False, "pids": [1, 2], "note": None}
    assert to_plain({"p": Path("/x"), "b": b"\x01\xff"}) == {"p": "/x", "b": "01ff"}


def test_json_round_trips_64_bit_addresses_exactly():
    doc = json.loads(to_json(ROWS))
    assert int(doc[1]["va"], 16) == 0xFFFF_0000_4000_0000


def test_mi_leaves_are_strings():
    assert to_mi(ROWS[0]) == {"va": "0x400000", "kind": "PAGE", "writable": "false", "pids": ["1", "2"], "note": ""}
    assert to_mi({"a b": 1}) == {"a_b": "1"}


def test_unknown_objects_are_refused():
    with pytest.raises(TypeError):
        to_plain(object())


def test_table_shows_named_columns_with_rendered_cells():
    lines = table(ROWS, ["va", "kind", "writable", "pids"], titles=["VA", "kind", "W", "pids"]).splitlines()
    assert lines[0].split() == ["VA", "kind", "W", "pids"]
    assert lines[2].split() == ["0x400000", "PAGE", "no", "1,", "2"]
    assert lines[3].split() == ["0xffff000040000000", "BLOCK", "yes", "-"]


def test_cells_and_hex():
    assert cell(None) == "-" and cell([]) == "-" and cell(Kind.PAGE) == "PAGE"
    assert hexs(0x1F, 4) == "0x001f" and hexs(None) == "-"
    assert key_values([("a", 1), ("long name", None)]) == "a:         1\nlong name: -"


@given(cells=st.lists(st.lists(st.text(alphabet=" -_.:0123456789abcxyzé", max_size=12), min_size=3, max_size=3), max_size=8),
       headers=st.lists(st.text(alphabet="abcdef ", min_size=1, max_size=9).map(str.strip).filter(bool), min_size=3, max_size=3))
def test_table_lines_equal_tabulates_simple_table(cells, headers):
    from tabulate import tabulate

    from gdb_tinyos.core.render import table_lines

    expected = tabulate(cells, headers=headers, tablefmt="simple", disable_numparse=True)
    assert "\n".join(table_lines(cells, headers)) == expected
