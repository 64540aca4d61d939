"""Helpers for the COW scenarios: stopping at a shell command, parsing the kernel's own
`~1`/`~2` output and the plugin's answers, so tests compare them figure by figure.

The reference is the kernel: a test stops gdb at the debugger event the shell raises just
before running a command (``tinyos_debug_event(EVENT_SHELL_COMMAND = 1, line, len)``),
runs the plugin's commands at that stop, then lets the command run and reads what the
kernel printed — both views of the same memory."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

EVENT_SHELL_COMMAND = 1
EVENT_FORK = 19
PAGE = 4096
SLOTS = 128 * 1024 * 1024 // PAGE  # one slot per frame of QEMU's 128 MiB (issue 3's table)

_FIGURE = re.compile(r"^([A-Za-z][A-Za-z ]+): (\d+)(?: bytes|%)?$")
_PAGE = re.compile(r"^\s+0x([0-9A-Fa-f]+) refs=(\d+) cow=(yes|no)((?: va=0x[0-9A-Fa-f]+/pid=\d+)*)\s*$")
_SHARER = re.compile(r"va=0x([0-9A-Fa-f]+)/pid=(\d+)")


@dataclass(frozen=True)
class ShellPage:
    pa: int
    refs: int
    cow: bool
    sharers: frozenset[tuple[int, int]]  # (va, pid)


def figures(text: str) -> dict[str, int]:
    """``Label: N``, ``Label: N bytes`` and ``Label: N%`` lines as {label: N}."""
    found = {}
    for line in text.splitlines():
        m = _FIGURE.match(line.strip())
        if m:
            found[m.group(1)] = int(m.group(2))
    return found


def shell_pages(text: str) -> dict[int, ShellPage]:
    """The page lines of the kernel's ``~1``, by physical address."""
    pages = {}
    for line in text.splitlines():
        m = _PAGE.match(line)
        if m:
            sharers = frozenset((int(va, 16), int(pid)) for va, pid in _SHARER.findall(m.group(4)))
            pages[int(m.group(1), 16)] = ShellPage(int(m.group(1), 16), int(m.group(2)), m.group(3) == "yes", sharers)
    return pages


def json_pages(status: dict) -> dict[int, ShellPage]:
    """cow-status --json pages in the same shape as :func:`shell_pages`."""
    return {
        int(p["pa"], 16): ShellPage(int(p["pa"], 16), p["refs"], p["cow"],
                                    frozenset((int(s["va"], 16), s["pid"]) for s in p["sharers"]))
        for p in status["pages"]
    }


def plugin_json(s, command: str) -> dict:
    return json.loads(s.gdb.cli(f"{command} --json"))


def booted(factory):
    """A debug session whose kernel sits at its shell prompt, running."""
    s = factory()
    s.gdb.resume()
    s.console.wait_for_prompt(timeout=60)
    return s


def stop_before(s, line: str, timeout: float = 60.0):
    """Type ``line`` at the shell and stop at the event raised just before it runs."""
    if s.gdb.running:
        s.gdb.interrupt()
    s.gdb.cli(f"tbreak *tinyos::debug::tinyos_debug_event if ($x0 & 0xffffffff) == {EVENT_SHELL_COMMAND}")
    s.gdb.resume()
    s.console.send_line(line)
    stop = s.gdb.wait_for_stop(timeout)
    assert stop.reason == "breakpoint-hit", stop.payload
    return stop


def finish(s, line: str, timeout: float = 60.0) -> str:
    """Let the command typed by :func:`stop_before` run; its output (as console.command)."""
    s.gdb.resume()
    s.console.expect(re.compile(re.escape(line) + r"\r?\n"), timeout)
    return s.console.read_until_prompt(timeout)


def shell(s, line: str, timeout: float = 60.0) -> str:
    """Run a shell command with the target running (no stop)."""
    if s.gdb.running is False:
        s.gdb.resume()
    return s.console.command(line, timeout=timeout)


@dataclass
class SameStop:
    """The plugin's answers and the kernel's output for ``~1`` and ``~2``, each pair
    taken at one stop."""

    status_text: str
    status: dict
    shell_status: str
    stats_text: str
    stats: dict
    shell_stats: str
    check: str


def compare_at_same_stop(s) -> SameStop:
    stop_before(s, "~1")
    status_text = s.gdb.cli("cow-status --limit 0")
    status = plugin_json(s, "cow-status --limit 0")
    check = s.gdb.cli("cow-check")
    shell_status = finish(s, "~1")
    stop_before(s, "~2")
    stats_text = s.gdb.cli("cow-stats")
    stats = plugin_json(s, "cow-stats")
    shell_stats = finish(s, "~2")
    return SameStop(status_text, status, shell_status, stats_text, stats, shell_stats, check)
