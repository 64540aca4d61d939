"""tinyos-gdb's pieces that need neither QEMU nor gdb: kernel choice, gdb's command line,
and the console bridge (a unix socket in front of the serial console)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from gdb_tinyos.launcher import cli, kernel
from gdb_tinyos.launcher.cli import gdb_command
from gdb_tinyos.launcher.console import ConsoleBridge
from gdb_tinyos.launcher.kernel import KernelChoice, choose_kernel


class FakeConsole:
    """What the bridge uses of SerialConsole: a growing transcript and send_raw."""

    def __init__(self, text: str = "") -> None:
        self.transcript = text
        self.typed = bytearray()
        self.got_input = threading.Event()

    def send_raw(self, data: bytes) -> None:
        self.typed += data
        self.got_input.set()


def recv_until(sock: socket.socket, needle: bytes, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        data += sock.recv(4096)
    return data


def test_kernel_choice_order(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel, "SHIPPED_KERNEL", tmp_path / "shipped")
    env = {"TINYOS_KERNEL": "/env/kernel"}
    assert choose_kernel("/gdb/file", env) == KernelChoice(Path("/gdb/file"), "gdb's loaded file")
    assert choose_kernel(None, env) == KernelChoice(Path("/env/kernel"), "$TINYOS_KERNEL")
    assert choose_kernel(None, {}).path is None  # no shipped build yet
    (tmp_path / "shipped").write_bytes(b"")
    assert choose_kernel(None, {}) == KernelChoice(tmp_path / "shipped", "shipped build")


def test_gdb_command_loads_symbols_then_plugin_then_connects():
    argv = gdb_command(Path("/k.elf"), 4321, batch=True, scripts=[Path("/w.gdb")], extra=["-ex", "bt"], gdb="gdb")
    ex = [argv[i + 1] for i, a in enumerate(argv) if a == "-ex"]
    assert ex[-4:] == ["file /k.elf", f"source {cli.LOADER}", "target remote 127.0.0.1:4321", "bt"]
    assert argv.index("-batch") < argv.index("-x") and argv[argv.index("-x") + 1] == "/w.gdb"
    assert "-batch" not in gdb_command(Path("/k"), 1, batch=False, scripts=[], extra=[])


def test_bridge_replays_history_streams_output_and_forwards_keys(tmp_path):
    console = FakeConsole("TinyOS 0.1.0\r\ntinyos> ")
    with ConsoleBridge(console, tmp_path / "c.sock", tmp_path / "c.log"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(tmp_path / "c.sock"))
            assert recv_until(client, b"tinyos> ").startswith(b"TinyOS 0.1.0\r\ntinyos> ")
            client.sendall(b"mem\r")
            assert console.got_input.wait(5)
            assert bytes(console.typed) == b"mem\r"
            console.transcript += "mem\r\nframes: total=1\r\n"
            assert b"frames: total=1" in recv_until(client, b"frames: total=1")
    assert not (tmp_path / "c.sock").exists()  # removed with the session
    assert (tmp_path / "c.log").read_bytes().decode() == "TinyOS 0.1.0\r\ntinyos> mem\r\nframes: total=1\r\n"
