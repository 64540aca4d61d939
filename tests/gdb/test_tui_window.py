"""`layout cow` as a user sees it: gdb-multiarch in a real terminal (tmux), on a live session.

gdb runs in its own tmux server (a private socket, killed at the end), attached to QEMU's
gdbstub with the plugin sourced; the test types into gdb with `send-keys`, into the
kernel's console through the harness, and reads the screen with `capture-pane`. The
window must show the same figures as `cow-stats` (typed in the same gdb once the TUI is
off), follow the stops (a COW fault: one more fault, a duplication, the fault address
and its frame), scroll, and carry colour."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid

import pytest

from gdb_tinyos.testing.session import default_plugin
from gdb_tinyos.testing.shell import labelled_figures

EVENT = "*tinyos::debug::tinyos_debug_event"
FORK, COW_FAULT = 19, 16
ROWS, COLS = 24, 150  # the window (2/3 of the screen) is shorter than its content: it scrolls


class Tmux:
    def __init__(self) -> None:
        self.tmux = shutil.which("tmux")
        assert self.tmux, "tmux is missing: apt-get install tmux"
        self.socket = f"tinyos-tui-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str) -> str:
        return subprocess.run([self.tmux, "-L", self.socket, *args], capture_output=True, text=True, check=True).stdout

    def start(self, command: list[str]) -> None:
        self.run("new-session", "-d", "-s", "gdb", "-x", str(COLS), "-y", str(ROWS), *command)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "gdb", *keys)

    def line(self, text: str) -> None:
        self.keys("-l", text)
        self.keys("Enter")

    def screen(self, escapes: bool = False) -> str:
        return self.run("capture-pane", "-p", "-t", "gdb", *(["-e"] if escapes else []))

    def wait_for(self, pattern: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if re.search(pattern, screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not on screen after {timeout}s:\n{screen}")
            time.sleep(0.2)

    def kill(self) -> None:
        subprocess.run([self.tmux, "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tmux():
    t = Tmux()
    yield t
    t.kill()


def window_figures(screen: str) -> dict[str, int]:
    """The `Label: N` lines of the cow window (left of the screen; the TUI draws borders)."""
    return labelled_figures("\n".join(line.strip("│| ") for line in screen.splitlines()))


def stats_figures(tmux: Tmux) -> dict[str, int]:
    tmux.line("tui disable")
    mark = f"stats-{uuid.uuid4().hex[:6]}"
    tmux.line(f"echo {mark}\\n")
    tmux.line("cow-stats")
    screen = tmux.wait_for(mark + r"[\s\S]*Memory Efficiency: \d+%")
    return labelled_figures(screen.split(mark)[-1].split("Derived:")[0])


def test_layout_cow_in_a_terminal(tinyos_qemu_factory, tinyos_kernel, tmux):
    machine = tinyos_qemu_factory(gdb=True, wait_for_prompt=False)
    tmux.start(["gdb-multiarch", "-q", "-nx", "-ex", "set pagination off", "-ex", "set confirm off",
                "-ex", "set language rust",  # stopped at the physical entry point, gdb guesses C
                "-ex", f"file {tinyos_kernel}", "-ex", f"target remote 127.0.0.1:{machine.gdb_port}",
                "-ex", f"source {default_plugin()}"])
    tmux.wait_for(r"gdb_tinyos .* loaded")
    tmux.line(f"tbreak {EVENT} if ($x0 & 0xffffffff) == {FORK}")
    tmux.line("continue")
    machine.console.wait_for_prompt(60)
    machine.console.send_line("run forkwrite")
    tmux.wait_for(r"Temporary breakpoint \d+, tinyos::debug::tinyos_debug_event")

    tmux.line("layout cow")
    screen = tmux.wait_for(r"Memory Efficiency: \d+%")
    assert "COW summary" in screen and "TinyOS copy-on-write" in screen
    at_fork = window_figures(screen)
    assert at_fork["Total COW Pages"] > 0 and at_fork["Total COW Faults"] == 0
    assert "\x1b[" in tmux.screen(escapes=True)  # styled
    assert "Pages pid" not in screen  # below the window's height

    # scrolling: the window is shorter than its content; the end shows the running process
    tmux.line("focus cow")
    tmux.keys("NPage")
    screen = tmux.wait_for(r"Pages pid 1 \(forkwrite\) shares")  # the parent forked: it is on the CPU
    assert "COW summary" not in screen
    assert re.search(r"0x800000\s+0x[0-9a-f]+\s+2\s+EL1:R-- EL0:R--", screen)
    tmux.keys("PPage")
    tmux.wait_for(r"COW summary")
    tmux.line("focus cmd")

    assert stats_figures(tmux) == at_fork  # the same figures as cow-stats

    # follows the stops: the child's COW fault, resolved
    tmux.line("layout cow")
    tmux.line(f"tbreak {EVENT} if ($x0 & 0xffffffff) == {COW_FAULT}")
    tmux.line("continue")
    screen = tmux.wait_for(r"Total COW Faults: 1")
    assert "fault at 0x800000 -> 0x" in screen  # FAR_EL1, through the child's tables: its own copy now
    after = window_figures(screen)
    assert after["Pages Duplicated"] == 1
    assert stats_figures(tmux) == after
