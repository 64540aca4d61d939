"""Strings read from target memory never reach the terminal raw (issue 10 item 3): a process
name holding terminal control sequences is shown escaped by `pt` (text and JSON) and by
`cow-create`'s refusal, the way gdb's own `print` escapes it; a corrupted name length is
flagged instead of showing the bytes after the name.

The name is rewritten in the kernel's memory (the bytes of `idle`, the name `run idle`
gives its process) through the process table's own pointer and length fields."""

from __future__ import annotations

import json

import pytest

ROW = ("from gdb_tinyos.gdb.session import session; from gdb_tinyos.debuginfo import decode; "
       "w = session().model().processes_location; "
       "rows = decode(w.table, session().target.read_virtual(w.address, w.size), w.table_offset, w.symbol); "
       "row_size = w.table.size // len(rows); "
       "length_at = w.address + w.table_offset + row_size * {slot} + w.table.row().member_path('name.length')[0]; ")


def name_fields(s, slot: int = 0) -> tuple[int, int, int]:
    """(name pointer, name length, address of the length field) of process table slot ``slot``."""
    out = s.gdb.cli("python " + ROW.format(slot=slot)
                    + "print(rows[%d].name.data_ptr, rows[%d].name.length, length_at)" % (slot, slot))
    ptr, length, length_at = (int(x) for x in out.strip().splitlines()[-1].split())
    return ptr, length, length_at


def poke(s, address: int, data: bytes) -> None:
    s.gdb.cli(f"python gdb.selected_inferior().write_memory({address:#x}, {data!r})")


@pytest.fixture
def idle(tinyos_booted):
    s = tinyos_booted
    assert "process 1 (idle) started" in s.shell("run idle")
    s.interrupt_at_prompt()
    ptr, length, length_at = name_fields(s)
    assert length == 4 and s.gdb.read_memory(f"{ptr:#x}", 4) == b"idle"
    return s, ptr, length_at


def test_a_name_with_control_sequences_is_shown_escaped(idle):
    s, ptr, _ = idle
    poke(s, ptr, b"\x1b[2J")  # "clear the screen", same length as "idle"
    try:
        text = s.gdb.cli("pt --pid 1")
        assert "\x1b" not in text
        assert text.splitlines()[0].startswith("pid 1 (\\x1b[2J) TTBR0 root")
        # gdb's own print escapes it too: the plugin agrees with it.
        assert "27 '\\033'" in s.gdb.cli(f"x/4c {ptr:#x}")
        process = s.gdb.cli_json("pt --pid 1 --json")["process"]
        assert process["name"] == "\x1b[2J"  # JSON carries the data, escaped by JSON itself
        raw = s.gdb.cli("pt --pid 1 --json")
        assert "\x1b" not in raw and '"name": "\\u001b[2J"' in raw
    finally:
        poke(s, ptr, b"idle")


def test_a_corrupted_name_length_is_flagged_not_read(idle):
    s, ptr, length_at = idle
    poke(s, length_at, (200).to_bytes(8, "little"))
    try:
        head = s.gdb.cli("pt --pid 1").splitlines()[0]
        assert head.startswith("pid 1 (<corrupt name: length 200 > 64>) TTBR0 root"), head
    finally:
        poke(s, length_at, (4).to_bytes(8, "little"))
    assert s.gdb.cli("pt --pid 1").startswith("pid 1 (idle)")


def test_json_is_utf8_with_terminal_controls_escaped(idle):
    s, ptr, _ = idle
    poke(s, ptr, "é\u202e".encode()[:4].ljust(4, b"x"))  # 'é' + the first bytes of a bidi override
    try:
        raw = s.gdb.cli("pt --pid 1 --json")
        assert '"name": "é' in raw  # UTF-8 as is, not \u00e9
        assert json.loads(raw[raw.index("{"):])["process"]["name"].startswith("é")
    finally:
        poke(s, ptr, b"idle")
