"""Boot and shell basics through the serial console: the banner, the same prompt from
every exception level QEMU can start at, help, unknown commands, line editing."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from gdb_tinyos.testing import QemuMachine

# The commands issue 2 requires (issue 3 adds more; help may list them too).
REQUIRED_COMMANDS = {"help", "mem", "pt", "fault", "layout"}


def test_banner_names_the_kernel_and_its_state(shared_machine: QemuMachine) -> None:
    lines = shared_machine.console.banner.splitlines()
    assert re.fullmatch(r"TinyOS \d+\.\d+\.\d+ \(aarch64\)", lines[0])
    assert "booted at EL1, running at EL1, MMU on" in lines


@pytest.mark.parametrize("el", [1, 2, 3])
def test_every_start_level_reaches_el1_with_the_mmu_on(tinyos_qemu_factory: Callable[..., QemuMachine], el: int) -> None:
    machine = tinyos_qemu_factory(el=el)
    assert f"booted at EL{el}, running at EL1, MMU on" in machine.console.banner.splitlines()
    # The shell works, not just the banner: a command that walks the live tables.
    assert machine.console.command("mem").startswith("frames: total=")


def test_help_lists_each_command_once_in_the_contract_format(shared_machine: QemuMachine) -> None:
    out = shared_machine.console.command("help")
    names = []
    for line in out.splitlines():
        match = re.fullmatch(r"  (\S+) +(\S.*)", line)
        assert match, f"help line not '  <name>  <description>': {line!r}"
        names.append(match.group(1))
    assert len(names) == len(set(names))
    assert REQUIRED_COMMANDS <= set(names)


def test_unknown_command_is_answered_with_one_clear_error(shared_machine: QemuMachine) -> None:
    out = shared_machine.console.command("frobnicate now")
    assert out == "error: unknown command 'frobnicate' (try 'help')\n"


def test_empty_line_just_prompts_again(shared_machine: QemuMachine) -> None:
    shared_machine.console.send_raw(b"\r")
    assert shared_machine.console.read_until_prompt().strip() == ""


@pytest.mark.parametrize("erase", [b"\x7f", b"\x08"], ids=["DEL", "BS"])
def test_backspace_edits_the_line(shared_machine: QemuMachine, erase: bytes) -> None:
    console = shared_machine.console
    # "hepl", erase twice, "lp" -> "help"; erasing on an empty line does nothing.
    console.send_raw(erase + b"hepl" + erase * 2 + b"lp\r")
    out = console.read_until_prompt()
    assert "error" not in out
    assert re.search(r"^  help +\S", out, re.MULTILINE)
    # Each erase is echoed as backspace-space-backspace, and only when there is a character.
    echo = out.split("\n", 1)[0]
    assert echo == "hepl" + "\b \b" * 2 + "lp"


def test_crlf_counts_as_one_line_end(shared_machine: QemuMachine) -> None:
    console = shared_machine.console
    start = len(console.transcript)
    console.send_raw(b"frob\r\n")
    assert console.read_until_prompt() == "frob\nerror: unknown command 'frob' (try 'help')\n"
    assert console.command("frob2") == "error: unknown command 'frob2' (try 'help')\n"
    # Had the LF counted as a second (empty) line, an extra prompt would sit in between.
    assert console.transcript[start:].count("tinyos> ") == 2
