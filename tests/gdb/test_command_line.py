"""The command line as gdb users know it (issue 10 items 5 and 7's loose arguments, 10, 12):
completion on every command (gdb's own `complete`), one error voice (`cmd: what; what to
do`, no argparse wording, one usage block in `help`), expressions for --pid/--asid, arity
and type checks on every $function, and tinyos-dump's path quoted for QEMU's monitor.

Expected values: the commands' documented options and choices, gdb's own behaviour
(`complete`, `print $x2`), the shell's `ps`, and the ELF program headers of QEMU's dump
(one PT_LOAD per RAM range, 128 MiB of RAM as the harness starts QEMU with -m 128M)."""

from __future__ import annotations

import re

import pytest
from elftools.elf.elffile import ELFFile

from gdb_tinyos.testing import DebugEvent
from gdb_tinyos.testing.shell import processes

COMMANDS = ("cow-status", "cow-stats", "cow-check", "cow-create", "cow-protect", "cow-unprotect", "cow-test",
            "cow-trace", "pt", "va2pa", "tinyos-info", "tinyos-dump", "tinyos-break")


@pytest.fixture
def at_prompt(tinyos_booted):
    tinyos_booted.interrupt_at_prompt()
    return tinyos_booted


def completions(g, line: str) -> list[str]:
    return [c for c in g.cli(f"complete {line}").splitlines() if c.strip()]


def test_completion_offers_options_choices_files_and_expressions(tinyos_gdb, tmp_path):
    g = tinyos_gdb.gdb
    assert completions(g, "pt --fi") == ["pt --filter"]
    assert {"pt --pid", "pt --asid", "pt --range", "pt --json", "pt --kernel"} <= set(completions(g, "pt --"))
    assert "pt --help" not in completions(g, "pt --")
    assert completions(g, "pt --filter us") == ["pt --filter user"]
    assert set(completions(g, "cow-trace ")) >= {"cow-trace on", "cow-trace off", "cow-trace clear"}
    (tmp_path / "fault.core").write_bytes(b"")
    assert completions(g, f"tinyos-dump {tmp_path}/fa") == [f"tinyos-dump {tmp_path}/fault.core"]
    assert completions(g, "va2pa kernel_ma") == ["va2pa kernel_main"]  # gdb's expression completer
    for command in COMMANDS:  # every command completes its options
        assert f"{command} --json" in completions(g, f"{command} --"), command


def test_help_has_one_usage_block_and_mentions_tinyos(tinyos_gdb):
    g = tinyos_gdb.gdb
    for command in COMMANDS:
        text = g.cli(f"help {command}")
        assert text.count("Usage:") == 1 and "usage:" not in text, command
        assert "-h, --help" not in text and "tinyos" in text.lower(), command


@pytest.mark.parametrize(("command", "message"), [
    ("va2pa", "va2pa: argument required: VA; see `help va2pa`"),
    ("pt --bogus", "pt: unrecognized option at: --bogus; see `help pt`"),
    ("pt --filter usr", 'pt: --filter: invalid choice "usr"; choose from '),
    ("pt --pid 1 --pid 2", "pt: --pid: given twice; see `help pt`"),
    ("pt --pid 1 --asid 2", "pt: --pid cannot be combined with --asid; "),
    ("va2pa 0x800000 --pid 1 --asid 1", "va2pa: --pid cannot be combined with --asid; "),
    ("pt --range 5 1", "pt: --range: START 0x5 is not below END 0x1; see `help pt`"),
    ("pt --range 5", "pt: --range: takes 2 arguments; see `help pt`"),
    ("cow-test --timeout 0", "cow-test: --timeout: '0' is not a timeout"),
    ("cow-trace sideways", 'cow-trace: ACTION: invalid choice "sideways"; choose from on, off, clear, show'),
    ("va2pa nowhere", "va2pa: VA: not an address: No symbol 'nowhere' in current context; see `help va2pa`"),
    ("print $va2pa(1.5)", "$va2pa: argument 1 (VA) is of type f64, not an integer or address; write $va2pa(VA)"),
    ("print $cow_refs()", "$cow_refs: takes 1 argument, 0 given; write $cow_refs(PA)"),
    ("print $cow_pa(1)", "$cow_pa: takes 2 arguments, 1 given; write $cow_pa(VA, PID)"),
    ("print $cow_violations(3)", "$cow_violations: takes 0 arguments, 1 given; write $cow_violations()"),
])
def test_one_error_voice(at_prompt, command, message):
    got = at_prompt.gdb.expect_one_line_error(command)
    assert got.startswith(message), got
    assert "the following arguments" not in got and "usage:" not in got and "internal error" not in got


def test_pid_takes_an_expression(tinyos_booted):
    """At the fork event x2 holds the child's pid: `--pid $x2` walks the child's tables."""
    s = tinyos_booted
    s.run_to_event(DebugEvent.FORK, action=lambda: s.console.send_line("run forkpause 1"))
    child = s.gdb.read_register("x2")
    via_register = s.gdb.cli_json("pt --pid $x2 --json")
    assert via_register["process"]["pid"] == child
    assert via_register == s.gdb.cli_json(f"pt --pid {child} --json")
    assert s.gdb.cli_json("cow-status --pid $x2-1 --json") == s.gdb.cli_json(f"cow-status --pid {child - 1} --json")
    for pid in (child, child - 1):  # the same command line, another value: evaluated again
        s.gdb.cli(f"set $tinyos_test_pid = {pid}")
        assert s.gdb.cli_json("pt --pid $tinyos_test_pid --json")["process"]["pid"] == pid
    s.gdb.resume()
    assert processes(s.console)[child].ppid == child - 1


def test_dump_paths_are_quoted_for_qemus_monitor(at_prompt, tmp_path, monkeypatch):
    s = at_prompt
    tricky = tmp_path / "a.core 0x40000000 0x1000"
    s.gdb.cli(f'tinyos-dump "{tricky}"')
    with open(tricky, "rb") as f:
        loads = [seg for seg in ELFFile(f).iter_segments() if seg["p_type"] == "PT_LOAD"]
    assert sum(seg["p_filesz"] for seg in loads) == 128 << 20  # all of RAM, not 0x1000 bytes
    assert not (tmp_path / "a.core").exists()
    quoted = tmp_path / 'quote" and \\ back'
    s.gdb.cli("tinyos-dump '%s'" % str(quoted).replace("\\", "\\\\"))  # gdb's argv: backslash escapes
    assert quoted.is_file()


def test_relative_dump_paths_land_in_gdbs_working_directory(at_prompt, tmp_path):
    s = at_prompt
    s.gdb.cli(f"cd {tmp_path}")
    out = s.gdb.cli("tinyos-dump rel.core")
    assert (tmp_path / "rel.core").is_file() and re.search(rf"core:\s+{re.escape(str(tmp_path))}/rel.core", out)


def test_styling_follows_gdbs_settings_and_never_reaches_json_or_mi(tinyos_gdb):
    g = tinyos_gdb.gdb
    probe = "python from gdb_tinyos.gdb.base import styled; print(repr(styled({text!r}, terminal=True{extra})))"
    line = "va 0x800000 EL0:RW- cow-check: OK; 2 violations"
    g.cli("set style enabled on")
    g.cli("set style address foreground magenta")
    out = g.cli(probe.format(text=line, extra="")).strip()
    assert out == repr("va \x1b[35m0x800000\x1b[0m \x1b[36mEL0:RW-\x1b[0m cow-check: \x1b[32mOK\x1b[0m; "
                       "\x1b[1;31m2 violations\x1b[0m")
    assert g.cli(probe.format(text=line, extra=", plain=True")).strip() == repr(line)  # the JSON face
    g.cli("set style enabled off")
    assert g.cli(probe.format(text=line, extra="")).strip() == repr(line)
    g.cli("set style enabled on")
    assert "\x1b" not in g.cli("tinyos-info")  # MI's console is no terminal: plain text
