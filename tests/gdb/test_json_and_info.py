"""JSON faces and tinyos-info (issue 10 items 13, 8, 15): every address a "0x..." string
(cow-trace's events and breakpoints included), fields instead of sentences (tinyos-info's
build-id and target), tinyos-info while the target runs says so, `help tinyos-info` shows
no machine path, and `apropos tinyos` finds every command.

Expected values: the ELF's own build-id note (pyelftools), forkwrite's fork 1 -> 2 and its
child's fault at 0x800000 (kernel/src/process/user_programs.S), gdb's `info breakpoints`."""

from __future__ import annotations

import re

from elftools.elf.elffile import ELFFile

HEX = re.compile(r"^0x[0-9a-f]+$")
COMMANDS = ("cow-status", "cow-stats", "cow-check", "cow-create", "cow-protect", "cow-unprotect", "cow-test",
            "cow-trace", "pt", "va2pa", "tinyos-info", "tinyos-dump", "tinyos-break")


def elf_build_id(kernel) -> str:
    with open(kernel, "rb") as f:
        note = next(ELFFile(f).get_section_by_name(".note.gnu.build-id").iter_notes())
        return note["n_desc"]


def test_cow_trace_json_addresses_are_hex_strings(tinyos_booted):
    s = tinyos_booted
    s.interrupt_at_prompt()
    s.gdb.cli("cow-trace on")
    s.gdb.resume()
    s.shell("run forkwrite", timeout=60)
    s.gdb.interrupt()
    trace = s.gdb.cli_json("cow-trace --last 50 --json")
    assert HEX.match(trace["hook"]) and HEX.match(trace["fault_entry"])
    fork = next(e for e in trace["events"] if e["name"] == "fork")
    assert (fork["a"], fork["b"], fork["pid"], fork["child"]) == ("0x1", "0x2", 1, 2)
    copy = next(e for e in trace["events"] if e["name"] == "copy")
    assert copy["va"] == "0x800000" and HEX.match(copy["new_frame"]) and HEX.match(copy["old_frame"])
    for event in trace["events"]:
        assert HEX.match(event["a"]) and HEX.match(event["b"]), event


def test_tinyos_info_fields_and_the_running_target(tinyos_booted, tinyos_kernel):
    s = tinyos_booted
    running = s.gdb.cli_json("tinyos-info --json")
    assert (running["target"], running["build_id_check"]) == ("running", "unchecked")
    assert running["connection"].startswith("remote ") and running["build_id"] == elf_build_id(tinyos_kernel)
    text = s.gdb.cli("tinyos-info")
    assert re.search(r"^target:\s+running, remote ", text, re.M) and "not connected" not in text
    s.gdb.interrupt()
    stopped = s.gdb.cli_json("tinyos-info --json")
    assert (stopped["target"], stopped["build_id_check"], stopped["build_id_note"]) == ("stopped", "match", "")
    assert stopped["build_id"] == elf_build_id(tinyos_kernel)  # a field, not a sentence
    assert all(HEX.match(stopped["cpu"][k]) for k in ("sctlr", "tcr", "ttbr0", "ttbr1"))


def test_help_and_apropos(tinyos_gdb):
    g = tinyos_gdb.gdb
    assert "/work/" not in g.cli("help tinyos-info")
    found = g.cli("apropos tinyos")
    for command in COMMANDS:
        assert re.search(rf"^{re.escape(command)} -- ", found, re.M), command
