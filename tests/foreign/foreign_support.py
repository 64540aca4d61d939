"""Building and stopping the foreign kernel (tests/fixtures/foreign_kernel), for
conftest.py and the tests (a module of its own: `conftest` is not importable by name when
several test directories have one)."""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gdb_tinyos.testing import DebugSession, GdbError, KernelBuildError, SerialConsole, Stop
from gdb_tinyos.testing.kernel import existing_kernel

ROOT = Path(__file__).resolve().parents[2]
FOREIGN_CRATE = ROOT / "tests" / "fixtures" / "foreign_kernel"
BUILD_SCRIPT = ROOT / "scripts" / "build-kernel"
FOREIGN_KERNEL_ENV = "TINYOS_FOREIGN_KERNEL"
FOREIGN_EL = 2
# Frames that show the shell waiting for a key (get_byte may be inlined into read_line).
SHELL_WAITING = ("tiny_os_lib::shell::read_line", "tiny_os_lib::uart::get_byte")


@functools.cache
def build_foreign_kernel() -> Path:
    """The foreign kernel's ELF, built with scripts/build-kernel --crate (release profile)."""
    explicit = os.environ.get(FOREIGN_KERNEL_ENV)
    if explicit:
        return existing_kernel(explicit, f"${FOREIGN_KERNEL_ENV}")
    done = subprocess.run(
        [str(BUILD_SCRIPT), "--crate", str(FOREIGN_CRATE), "--quiet"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise KernelBuildError(f"building {FOREIGN_CRATE} failed with status {done.returncode}:\n{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise KernelBuildError(f"{BUILD_SCRIPT} printed no kernel path for {FOREIGN_CRATE}.")
    return existing_kernel(lines[-1].strip(), str(BUILD_SCRIPT))


def stop_at_prompt(s: DebugSession, attempts: int = 20, timeout: float = 10.0) -> Stop:
    """Interrupts the foreign kernel while its shell waits for input and returns that stop
    (an interrupt landing elsewhere, e.g. while the prompt is still printed, is resumed and
    retried). The kernel's state is then the one the next shell command will see."""
    for _ in range(attempts):
        stop = s.gdb.interrupt(timeout)
        frames = s.gdb.mi("-stack-list-frames 0 8").get("stack", [])
        if any(f.get("func") in SHELL_WAITING for f in frames):
            return stop
        s.gdb.resume()
    raise GdbError(f"the foreign kernel's shell was not waiting for input in {attempts} interrupts")


HEX = r"0x[1-9A-F][0-9A-F]*"
_PAGES = re.compile(rf"({HEX}) refs=(\d+) cow=(yes|no) vas=((?:{HEX},?)*) pids=((?:\d+,?)*)")


@dataclass(frozen=True)
class Page:
    refs: int
    cow: bool
    vas: tuple[int, ...]
    pids: tuple[int, ...]


def pages(console: SerialConsole) -> dict[int, Page]:
    """`pages`: every tracked page with its VA list and pid set, in slot order."""
    found = {}
    for line in console.command("pages").splitlines():
        m = _PAGES.fullmatch(line)
        assert m, f"not a pages line: {line!r}"
        vas = tuple(int(v, 16) for v in m.group(4).split(",") if v)
        pids = tuple(int(p) for p in m.group(5).split(",") if p)
        found[int(m.group(1), 16)] = Page(int(m.group(2)), m.group(3) == "yes", vas, pids)
    return found


