"""The README's "In your own gdb" blocks, replayed as typed: QEMU started by hand with the
README's command line, then gdb-multiarch given the README's `(gdb) ` lines, from the
repository's root. The only substitution is PORT, the README's placeholder for a free port.

Expected: what the README prints after `source` (its `...` standing for the checkout's
path), and a working plugin at that stop: `tinyos-info` finds the target stopped and the
running kernel's build-id equal to the ELF's (checked by the plugin against the loaded
image; a wrong PORT or path would fail before that)."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from pathlib import Path

from gdb_tinyos.core.timeouts import scaled
from gdb_tinyos.launcher.ports import free_port, process_listens_on
from gdb_tinyos.launcher.processes import die_with_parent, stop_process
from gdb_tinyos.testing.gdbmi import GdbSession

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def own_gdb_section() -> str:
    text = README.read_text()
    return text[text.index("### In your own gdb"):text.index("## Walkthrough")]


def shell_commands(section: str) -> list[str]:
    """The ```console block's `$ ` commands, continuation lines joined."""
    block = re.search(r"```console\n(.*?)```", section, re.S).group(1)
    joined = block.replace("\\\n", " ")
    return [line[2:].strip() for line in joined.splitlines() if line.startswith("$ ")]


def gdb_lines(section: str) -> tuple[list[str], list[str]]:
    """The ```text block: the `(gdb) ` commands and the lines gdb prints."""
    block = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    lines = block.splitlines()
    return ([line[len("(gdb) "):] for line in lines if line.startswith("(gdb) ")],
            [line for line in lines if line and not line.startswith("(gdb) ")])


def wait_listening(qemu: subprocess.Popen, port: int, timeout: float = 30) -> None:
    """As a user waits for QEMU to start before typing `target remote`."""
    deadline = time.monotonic() + scaled(timeout)
    while not process_listens_on(qemu.pid, port):
        assert qemu.poll() is None, f"QEMU exited ({qemu.returncode}): {qemu.stderr.read().decode()}"
        assert time.monotonic() < deadline, f"QEMU does not listen on 127.0.0.1:{port}"
        time.sleep(0.05)


def test_the_readme_in_your_own_gdb_block_runs_as_typed(tinyos_kernel):
    section = own_gdb_section()
    qemu_line, gdb_line = shell_commands(section)
    commands, printed = gdb_lines(section)
    assert "PORT" in qemu_line and any("PORT" in c for c in commands) and gdb_line.startswith("gdb-multiarch")
    port = str(free_port())
    qemu = subprocess.Popen(shlex.split(qemu_line.replace("PORT", port)), cwd=REPO, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=die_with_parent)
    try:
        wait_listening(qemu, int(port))
        with GdbSession(timeout=30) as g:
            g.cli(f"cd {REPO}")  # "from the repository's root"
            out = "".join(g.cli(c.replace("PORT", port)) for c in commands)
            expected = re.escape(printed[0]).replace(re.escape("..."), ".+")
            assert re.search(expected, out), out
            info = g.cli_json("tinyos-info --json")
            assert info["target"] == "stopped" and info["build_id_check"] == "match", info
            assert "cow status" in g.cli("help cow")
    finally:
        stop_process(qemu)
