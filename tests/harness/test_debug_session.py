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
from gdb_tinyos.testing.processes import pid_alive

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


def test_continue_and_wait_stop_returns_the_breakpoint_stop(session):
    number = session.gdb.break_insert("kernel_main")
    stop = session.gdb.continue_and_wait_stop(timeout=10)
    assert (stop.reason, stop.bkptno) == ("breakpoint-hit", number)
    assert "kernel_main" in stop.func


def test_run_to_stops_at_the_location_and_carries_on_afterwards(session):
    stop = session.gdb.run_to("kernel_main")
    assert "kernel_main" in stop.func
    assert not session.gdb.running
    session.gdb.resume()
    session.console.wait_for_prompt()
    idle_pc = session.gdb.interrupt().addr
    session.gdb.resume()
    # run_to on a running target interrupts it first; the action (an empty line) makes
    # sure the shell goes round its input loop again.
    stop = session.gdb.run_to(f"*{idle_pc:#x}", action=lambda: session.console.send_line(""))
    assert (stop.reason, stop.addr) == ("breakpoint-hit", idle_pc)


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


def test_results_stay_matched_while_a_breakpoint_stop_interleaves(session):
    session.gdb.run_to("kernel_main")
    session.gdb.resume()
    session.console.wait_for_prompt()
    session.gdb.interrupt()
    pc = session.gdb.read_register("pc")
    session.gdb.break_insert(f"*{pc:#x}")
    session.gdb.resume()
    # The target hits the breakpoint at once while these commands are answered: every
    # answer must still be the one to its own command.
    for value in range(70000, 70040):
        session.gdb.mi(f"-gdb-set max-value-size {value}")
        assert session.gdb.mi("-gdb-show max-value-size") == {"value": str(value)}
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


def test_gdb_dying_is_reported_and_teardown_still_works(tinyos_kernel):
    with debug_session(tinyos_kernel, plugin=None) as s:
        qemu_pid, gdb_pid = s.machine.pid, s.gdb.pid
        os.kill(gdb_pid, signal.SIGKILL)
        with pytest.raises(GdbError, match="gdb exited"):
            s.gdb.mi("-gdb-show version")
    assert not pid_alive(gdb_pid) and not pid_alive(qemu_pid)


def test_tinyos_gdb_fixture_is_connected_and_halted(tinyos_gdb, tinyos_kernel):
    entry, _ = elf_entry_and_first_bytes(tinyos_kernel, 4)
    assert tinyos_gdb.gdb.read_register("pc") == physical(entry)
    assert not tinyos_gdb.gdb.running
