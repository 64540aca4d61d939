"""`tinyos-break KIND` and `$cow_event()` (issue 10 item 9): named kernel events instead of
hand-written register conditions, from the reset stop (gdb's language is C there, where
`tbreak *tinyos::debug::tinyos_debug_event` does not even resolve); and the README's
walkthrough, replayed command by command from README.md against a live session.

Expected values: forkwrite's fork is pid 1 -> pid 2 (the first program after boot), its
child's COW fault is at 0x800000 (the user data page; kernel/src/process/user_programs.S),
and gdb's own registers at each stop."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gdb_tinyos.testing.errors import GdbCommandError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_break_on_fork_from_the_reset_stop(tinyos_gdb):
    s = tinyos_gdb
    assert "currently c" in s.gdb.cli("show language")
    out = s.gdb.cli("tinyos-break fork --temporary")
    assert re.search(r"tinyos-break: temporary breakpoint \d+ on fork events \(tinyos_debug_event kind 19 at 0x", out)
    s.gdb.resume()
    s.console.wait_for_prompt(timeout=60)
    s.console.send_line("run forkwrite")
    stop = s.gdb.wait_for_stop(timeout=60)
    assert stop.func == "tinyos::debug::tinyos_debug_event"
    assert (s.gdb.read_register("x0") & 0xFFFF_FFFF, s.gdb.read_register("x1"), s.gdb.read_register("x2")) == (19, 1, 2)
    assert [s.gdb.evaluate(e) for e in ("$cow_event()", "$cow_event_a()", "$cow_event_b()")] == ["19", "1", "2"]
    assert "tinyos-break" not in s.gdb.cli("info breakpoints")  # temporary: gone after its stop


def test_pid_filter_skips_other_processes(tinyos_booted):
    s = tinyos_booted
    s.gdb.interrupt()
    s.gdb.cli("tinyos-break fault --pid 2")
    s.gdb.resume()
    s.console.send_line("run forkwrite")  # the child (2) faults first, then the parent (1) in wait
    s.gdb.wait_for_stop(timeout=60)
    assert (s.gdb.read_register("x0") & 0xFFFF_FFFF, s.gdb.read_register("x1"), s.gdb.read_register("x2")) \
        == (16, 2, 0x80_0000)
    s.gdb.cli("delete")
    s.gdb.cli("tinyos-break exit --pid 7")  # no such process: never stops
    s.gdb.resume()
    s.console.read_until_prompt(timeout=60)
    assert "process 1 (forkwrite) exited with status 0" in s.console.transcript


def test_refusals(tinyos_gdb):
    g = tinyos_gdb.gdb
    assert g.expect_one_line_error("tinyos-break forks").startswith('tinyos-break: KIND: invalid choice "forks"; choose from fork, fault')
    assert g.expect_one_line_error("tinyos-break command --pid 1").startswith("tinyos-break: --pid does not apply")
    assert g.expect_one_line_error("print $cow_event()").startswith("$cow_event: not stopped at tinyos_debug_event")


def readme_walkthrough() -> list[str]:
    """The `(gdb) ` commands of README.md's walkthrough text blocks, in order."""
    text = README.read_text()
    section = text[text.index("## Walkthrough"):text.index("The console (terminal 2) meanwhile")]
    blocks = re.findall(r"```text\n(.*?)```", section, flags=re.S)
    return [line[len("(gdb) "):] for block in blocks for line in block.splitlines() if line.startswith("(gdb) ")]


def test_the_readme_walkthrough_runs_as_typed(tinyos_gdb):
    s = tinyos_gdb
    commands = readme_walkthrough()
    assert commands[0] == "tinyos-break fork --temporary" and commands.count("continue") == 4
    typed = False
    for command in commands:
        if command == "continue":
            s.gdb.resume()
            if not typed:  # "in the console terminal type: run forkwrite"
                s.console.wait_for_prompt(timeout=60)
                s.console.send_line("run forkwrite")
                typed = True
            s.gdb.wait_for_stop(timeout=60)
            continue
        try:
            s.gdb.cli(command, timeout=60)
        except GdbCommandError as err:
            pytest.fail(f"README command {command!r} failed: {err.message}")
    assert "forkwrite: parent still sees 0x1111, child exited 0" in s.console.transcript
