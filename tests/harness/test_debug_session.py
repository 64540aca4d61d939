"""GdbSession and debug_session against real QEMU and gdb-multiarch.

Expected values come from the AArch64 architecture (CPSR.M[3:2] is the exception level),
from the kernel ELF read with pyelftools (entry point, loaded bytes), from the shell
contract (prompt, unknown-command message) and from gdb's documented MI behaviour."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from gdb_tinyos.testing import ConsoleTimeout, GdbCommandError, GdbError, debug_session
from gdb_tinyos.launcher.processes import pid_alive

# The upper-half kernel is linked at PA + KERNEL_OFFSET; QEMU starts the CPU at the
# physical address of the entry point (facts.md section 2).
KERNEL_OFFSET = 0xFFFF_0000_0000_0000


def unknown(word: str) -> str:
    """A pattern matching the kernel's answer to an unknown command, literally."""
    return re.escape(f"error: unknown command '{word}' (try 'help')")


def elf_entry_and_first_bytes(path: Path, count: int) -> tuple[int, bytes]:
    """The ELF entry point and the ``count`` file bytes loaded there."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        entry = elf.header.e_entry
        for segment in elf.iter_segments():
            start = segment["p_vaddr"]
            if segment["p_type"] == "PT_LOAD" and start <= entry < start + segment["p_filesz"]:
                data = segment.data()[entry - start : entry - start + count]
                return entry, data
    raise AssertionError(f"no loaded segment holds the entry point of {path}")


def elf_symbol(path: Path, name: str) -> int:
    """The value of a symbol in the ELF's symbol table."""
    with open(path, "rb") as f:
        symbols = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)
    assert symbols, f"{path} has no symbol {name}"
    return symbols[0]["st_value"]


@pytest.fixture
def session(tinyos_kernel):
    with debug_session(tinyos_kernel, plugin=None) as s:
        yield s


def physical(address: int) -> int:
    return address - KERNEL_OFFSET if address >= KERNEL_OFFSET else address


def test_halted_at_the_elf_entry_point_with_its_bytes_in_memory(session, tinyos_kernel):
    entry, first = elf_entry_and_first_bytes(tinyos_kernel, 16)
    pc = session.gdb.read_register("pc")
    assert pc == physical(entry)
    assert session.gdb.read_memory(pc, 16) == first


@pytest.mark.parametrize("el", [1, 2, 3])
def test_reset_exception_level_follows_the_el_option(tinyos_kernel, el):
    with debug_session(tinyos_kernel, el=el, plugin=None) as s:
        cpsr = s.gdb.read_register("cpsr")
        assert (cpsr >> 2) & 0b11 == el


def test_console_is_read_while_gdb_controls_the_cpu(session):
    session.gdb.resume()
    session.console.wait_for_prompt()
    stop = session.gdb.interrupt()
    assert (stop.reason, stop.signal) == ("signal-received", "SIGINT")
    # Stopped: the kernel cannot answer what is typed now...
    session.console.send_line("frobnicate")
    with pytest.raises(ConsoleTimeout):
        session.console.expect(unknown("frobnicate"), timeout=1.0)
    # ...and answers it once gdb lets the CPU run again.
    session.gdb.resume()
    session.console.expect(unknown("frobnicate"), timeout=10)
    assert session.gdb.running


def test_continue_and_wait_stop_returns_the_breakpoint_stop(session, tinyos_kernel):
    number = session.gdb.break_insert("*kernel_main")
    stop = session.gdb.continue_and_wait_stop(timeout=10)
    assert (stop.reason, stop.bkptno) == ("breakpoint-hit", number)
    assert stop.addr == elf_symbol(tinyos_kernel, "kernel_main")


def test_run_to_stops_at_the_location_and_carries_on_afterwards(session, tinyos_kernel):
    stop = session.gdb.run_to("*kernel_main")
    assert stop.addr == elf_symbol(tinyos_kernel, "kernel_main")
    assert not session.gdb.running
    session.gdb.resume()
    session.console.wait_for_prompt()
    idle_pc = session.gdb.interrupt().addr
    session.gdb.resume()
    # run_to on a running target interrupts it first; the action (an empty line) makes
    # sure the shell goes round its input loop again.
    stop = session.gdb.run_to(f"*{idle_pc:#x}", action=lambda: session.console.send_line(""))
    assert (stop.reason, stop.addr) == ("breakpoint-hit", idle_pc)


def test_run_to_with_an_action_reaches_the_debug_event_of_the_typed_command(session, tinyos_kernel):
    # kernel/src/debug.rs: tinyos_debug_event(kind=1 EVENT_SHELL_COMMAND, a=VA of the
    # line, b=its length) before each shell command; AAPCS64 passes them in x0..x2.
    event = elf_symbol(tinyos_kernel, "tinyos_debug_event")
    session.gdb.resume()
    session.console.wait_for_prompt()
    # Its first instruction (before any prologue moves the arguments).
    stop = session.gdb.run_to(f"*{event:#x}", action=lambda: session.console.send_line("frobnicate"))
    assert stop.addr == event
    kind, line, length = (session.gdb.read_register(r) for r in ("x0", "x1", "x2"))
    assert (kind & 0xFFFF_FFFF, length) == (1, len("frobnicate"))
    assert session.gdb.read_memory(line, length) == b"frobnicate"
    # The command has not run yet: its answer comes only after the CPU carries on.
    assert "unknown command" not in session.console.transcript
    session.gdb.resume()
    session.console.expect(unknown("frobnicate"))


def test_mi_error_raises_with_gdbs_message(session):
    with pytest.raises(GdbCommandError) as info:
        session.gdb.mi("-no-such-command")
    assert info.value.message == "Undefined MI command: no-such-command"


def test_cli_error_raises_with_gdbs_message(session):
    with pytest.raises(GdbCommandError, match=r'Undefined command: \\?"frobnicate\\?"'):
        session.gdb.cli("frobnicate")


def test_cli_returns_what_the_command_printed(session):
    assert session.gdb.cli("print 6*7") == "$1 = 42\n"
    assert session.gdb.cli("print $1 + 1") == "$2 = 43\n"


def test_pipelined_results_are_matched_by_token_around_a_breakpoint_stop(session):
    session.gdb.resume()
    session.console.wait_for_prompt()
    session.gdb.interrupt()
    pc = session.gdb.read_register("pc")
    session.gdb.break_insert(f"*{pc:#x}")
    # Continue and 40 more commands go out before any answer is read: the target hits
    # the breakpoint while they are answered. Collected in reverse order, each answer
    # must still be its own command's.
    cont = session.gdb.submit("-exec-continue")
    shows = {}
    for value in range(70000, 70020):
        session.gdb.submit(f"-gdb-set max-value-size {value}")
        shows[session.gdb.submit("-gdb-show max-value-size")] = str(value)
    for token in sorted(shows, reverse=True):
        assert session.gdb.collect(token).payload == {"value": shows[token]}
    assert session.gdb.collect(cont).message == "running"
    stop = session.gdb.wait_for_stop(timeout=10)
    assert (stop.reason, stop.addr) == ("breakpoint-hit", pc)


def test_plugin_file_is_sourced_and_its_output_returned(tinyos_kernel, tmp_path):
    plugin = tmp_path / "plugin.py"
    plugin.write_text("import gdb\nprint('plugin loaded, arch', gdb.selected_frame().architecture().name())\n")
    with debug_session(tinyos_kernel, plugin=plugin) as s:
        assert s.plugin_output == "plugin loaded, arch aarch64\n"


def test_failing_plugin_fails_the_session_and_leaves_nothing(tinyos_kernel, tmp_path, no_new_children):
    plugin = tmp_path / "broken.py"
    plugin.write_text("raise RuntimeError('plugin is broken')\n")
    with pytest.raises(GdbCommandError, match="RuntimeError: plugin is broken") as info:
        with debug_session(tinyos_kernel, plugin=plugin):
            pass
    assert "plugin is broken" in info.value.log


def test_teardown_ends_gdb_and_qemu_when_the_body_raises(tinyos_kernel):
    with pytest.raises(RuntimeError, match="scenario failed"):
        with debug_session(tinyos_kernel, plugin=None) as s:
            pids = [s.gdb.pid, s.machine.pid]
            s.gdb.resume()
            raise RuntimeError("scenario failed")
    assert [pid for pid in pids if pid_alive(pid)] == []


@pytest.mark.parametrize("gone", [False, True], ids=["dying", "gone before the next command"])
def test_gdb_dying_is_reported_and_teardown_still_works(tinyos_kernel, gone):
    with debug_session(tinyos_kernel, plugin=None) as s:
        qemu_pid, gdb_pid = s.machine.pid, s.gdb.pid
        os.kill(gdb_pid, signal.SIGKILL)
        if gone:  # its stdin closed: the command cannot even be written
            s.gdb._controller.gdb_process.wait(timeout=10)
        with pytest.raises(GdbError, match="gdb exited"):
            s.gdb.mi("-gdb-show version")
    assert not pid_alive(gdb_pid) and not pid_alive(qemu_pid)


def test_tinyos_gdb_fixture_is_connected_and_halted(tinyos_gdb, tinyos_kernel):
    entry, _ = elf_entry_and_first_bytes(tinyos_kernel, 4)
    assert tinyos_gdb.gdb.read_register("pc") == physical(entry)
    assert not tinyos_gdb.gdb.running


def test_tinyos_booted_runs_at_the_prompt_and_its_shell_answers(tinyos_booted):
    s = tinyos_booted
    assert s.gdb.running and s.console.banner.startswith("TinyOS ")
    assert s.shell("frobnicate") == "error: unknown command 'frobnicate' (try 'help')\n"
    s.gdb.interrupt()
    assert s.shell("frobnicate") == "error: unknown command 'frobnicate' (try 'help')\n"  # resumed for it
    assert s.gdb.running


def test_stop_before_command_stops_before_it_runs_and_finish_returns_its_output(tinyos_booted, tinyos_kernel):
    s = tinyos_booted
    stop = s.stop_before_command("frobnicate")
    assert stop.addr == elf_symbol(tinyos_kernel, "tinyos_debug_event")
    kind, line, length = (s.gdb.read_register(r) for r in ("x0", "x1", "x2"))
    assert (kind & 0xFFFF_FFFF, s.gdb.read_memory(line, length)) == (1, b"frobnicate")
    assert "unknown command" not in s.console.transcript
    assert s.finish_command("frobnicate") == "error: unknown command 'frobnicate' (try 'help')\n"
    assert s.gdb.running


def test_interrupt_at_prompt_stops_in_the_shells_line_reader(tinyos_booted):
    s = tinyos_booted
    for _ in range(5):  # each time right after the prompt came back, where the race is
        s.shell("mem")
        s.interrupt_at_prompt()
        frames = s.gdb.mi("-stack-list-frames 0 8")["stack"]
        assert "tinyos::shell::read_line" in [f.get("func") for f in frames]
        s.gdb.resume()


def test_monitor_xp_and_gva2gpa_answer_as_qemu(tinyos_booted, tinyos_kernel):
    s = tinyos_booted
    s.gdb.interrupt()
    assert s.monitor("info status").startswith("VM status: paused")
    entry, first = elf_entry_and_first_bytes(tinyos_kernel, 16)
    assert b"".join(word.to_bytes(8, "little") for word in s.xp(physical(entry), 2)) == first
    kernel_main = elf_symbol(tinyos_kernel, "kernel_main")  # linked in the upper half: VA = PA + offset
    assert s.gva2gpa(kernel_main) == kernel_main - KERNEL_OFFSET
