"""QemuMachine and its serial console against real QEMU and the kernel under test.

Expected console texts come from the shell contract in the team brief (prompt
``tinyos> ``, CR LF line ends, ``error: unknown command '<word>' (try 'help')``)."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest

from gdb_tinyos.testing import ConsoleClosed, ConsoleTimeout, QemuMachine, QemuStartError, ToolMissing
from gdb_tinyos.launcher.ports import free_port, process_listens_on
from gdb_tinyos.launcher.processes import pid_alive


def unknown(word: str) -> str:
    return f"error: unknown command '{word}' (try 'help')\n"


def pids_with_arg(arg: str) -> list[int]:
    """Processes whose command line contains ``arg`` exactly (read from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if arg.encode() in args and pid_alive(int(entry)):
            found.append(int(entry))
    return found


@pytest.fixture
def taken_port():
    """A loopback port held by a listening socket of this test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield s.getsockname()[1]


def test_boot_reaches_prompt_and_banner_is_the_text_before_it(tinyos_machine):
    console = tinyos_machine.console
    assert re.match(r"TinyOS \S+ \(aarch64\)\n", console.banner)
    assert "tinyos> " not in console.banner
    # The transcript is raw: the banner with CR LF line ends, then exactly one prompt.
    assert console.transcript == console.banner.replace("\n", "\r\n") + "tinyos> "


def test_prompt_is_configurable(tinyos_kernel):
    # Taking the banner's second line start as the "prompt" leaves only the first line.
    with QemuMachine(kernel=tinyos_kernel, prompt="booted at ") as m:
        assert re.fullmatch(r"TinyOS \S+ \(aarch64\)\n", m.console.banner)


def test_command_returns_the_output_between_echo_and_prompt(tinyos_machine):
    assert tinyos_machine.console.command("frobnicate") == unknown("frobnicate")


def test_consecutive_commands_each_get_their_own_output(tinyos_machine):
    console = tinyos_machine.console
    assert console.command("alpha") == unknown("alpha")
    assert console.command("beta") == unknown("beta")
    assert console.transcript.count("tinyos> ") == 3


def test_empty_line_gives_empty_output(tinyos_machine):
    assert tinyos_machine.console.command("") == ""


def test_backspace_sent_raw_edits_the_line(tinyos_machine):
    console = tinyos_machine.console
    console.send_raw(b"frobx\x7fnicate\r")
    output = console.read_until_prompt()
    # The last line is the kernel's answer to the edited word; the lines before it are
    # the echo, whose erase sequence is the kernel's business.
    assert output.splitlines()[-1] + "\n" == unknown("frobnicate")


def test_expect_times_out_with_the_console_tail_in_the_message(tinyos_machine):
    with pytest.raises(ConsoleTimeout) as info:
        tinyos_machine.console.expect("this text is never printed", timeout=0.3)
    assert "tinyos> " in str(info.value)
    assert "QEMU is running" in str(info.value)


def test_qemu_exiting_early_reports_its_stderr(tinyos_kernel, no_new_children):
    with pytest.raises(ConsoleClosed) as info:
        with QemuMachine(kernel=tinyos_kernel, extra_args=["-no-such-option"]):
            pass
    assert "-no-such-option" in str(info.value)
    assert "exited with status 1" in str(info.value)


def test_missing_kernel_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ToolMissing, match="does not exist"):
        with QemuMachine(kernel=tmp_path / "nothing.elf"):
            pass


def test_gdbstub_listens_on_loopback_and_cpu_is_halted(tinyos_kernel):
    with QemuMachine(kernel=tinyos_kernel, gdb=True) as m:
        assert m.gdb_port is not None
        assert process_listens_on(m.pid, m.gdb_port)
        assert f"tcp:127.0.0.1:{m.gdb_port}" in m.argv and "-s" not in m.argv
        # Halted at reset (-S): the CPU prints nothing.
        with pytest.raises(ConsoleTimeout):
            m.console.expect("tinyos> ", timeout=1.0)


def test_taken_gdb_port_is_replaced_by_a_free_one(tinyos_kernel, taken_port):
    offered = [taken_port]

    def picker() -> int:
        port = taken_port if len(offered) == 1 else free_port()
        offered.append(port)
        return port

    with QemuMachine(kernel=tinyos_kernel, gdb=True, port_picker=picker) as m:
        assert offered[1] == taken_port and len(offered) == 3
        assert m.gdb_port == offered[2] != taken_port
        assert process_listens_on(m.pid, m.gdb_port)
    assert pids_with_arg(f"tcp:127.0.0.1:{taken_port}") == []


def test_only_taken_ports_fail_with_qemus_message_and_leave_nothing(tinyos_kernel, taken_port, no_new_children):
    with pytest.raises(QemuStartError, match="Address already in use"):
        with QemuMachine(kernel=tinyos_kernel, gdb=True, port_picker=lambda: taken_port, port_attempts=2):
            pass
    assert pids_with_arg(f"tcp:127.0.0.1:{taken_port}") == []


@pytest.mark.parametrize("gdb", [False, True])
def test_teardown_ends_qemu_when_the_body_raises(tinyos_kernel, gdb):
    pids = []
    with pytest.raises(RuntimeError, match="test body failed"):
        with QemuMachine(kernel=tinyos_kernel, gdb=gdb) as m:
            pids.append(m.pid)
            assert pid_alive(m.pid)
            raise RuntimeError("test body failed")
    assert not pid_alive(pids[0])
    assert m.pid is None


def test_factory_machines_are_ended_after_the_test(pids_gone_afterwards, tinyos_qemu_factory):
    first = tinyos_qemu_factory()
    second = tinyos_qemu_factory(gdb=True)
    pids_gone_afterwards += [first.pid, second.pid]
    assert all(pid_alive(pid) for pid in pids_gone_afterwards)


def test_missing_qemu_is_an_error_naming_the_package(tinyos_kernel):
    with pytest.raises(ToolMissing, match="qemu-system-arm"):
        with QemuMachine(kernel=tinyos_kernel, qemu="qemu-system-nonexistent"):
            pass


def test_kernel_from_the_environment_must_exist(monkeypatch, tmp_path):
    from gdb_tinyos.testing import kernel_path

    monkeypatch.setenv("TINYOS_KERNEL", str(tmp_path / "gone.elf"))
    with pytest.raises(ToolMissing, match=r"gone\.elf given by \$TINYOS_KERNEL does not exist"):
        kernel_path()
    monkeypatch.setenv("TINYOS_KERNEL", str(tmp_path))  # a directory is not an ELF either
    with pytest.raises(ToolMissing):
        kernel_path()
