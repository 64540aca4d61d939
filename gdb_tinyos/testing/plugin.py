"""pytest plugin (entry point ``tinyos``): fixtures that boot the kernel under test.

- ``tinyos_kernel`` (session): the ELF path: ``--tinyos-kernel PATH``, else $TINYOS_KERNEL,
  else built by scripts/build-kernel.
- ``tinyos_machine``: a QemuMachine booted at EL1 and sitting at the shell prompt.
- ``tinyos_qemu_factory``: boots more machines with options (``el=2``, ``gdb=True``...);
  all of them are ended after the test.
- ``tinyos_gdb``: a DebugSession: QEMU halted at reset, gdb-multiarch connected with the
  kernel's symbols and the gdb_tinyos plugin loaded (``.gdb``, ``.console``, ``.machine``).
- ``tinyos_debug_factory``: more debug sessions with options (``el=2``, ``plugin=None``...).
- ``tinyos_booted``: a DebugSession whose kernel booted to its shell prompt and runs on.

A missing qemu-system-aarch64, gdb-multiarch or kernel is a test error (ToolMissing), never a skip.

Every wait (gdb/MI, console, QEMU start) is multiplied by ``--tinyos-timeout-scale N`` (or
$TINYOS_TIMEOUT_SCALE). Scenarios run in parallel with pytest-xdist (``-n auto``): each
test starts its own QEMU on its own free port, in its own session directory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from gdb_tinyos.core.timeouts import TIMEOUT_SCALE_ENV

from gdb_tinyos.testing.kernel import existing_kernel, kernel_path
from gdb_tinyos.launcher.qemu import QemuMachine
from gdb_tinyos.testing.session import DebugSession, debug_session


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tinyos", "TinyOS kernel under QEMU")
    group.addoption(
        "--tinyos-kernel",
        metavar="PATH",
        default=None,
        help="kernel ELF to boot in the tinyos fixtures (default: $TINYOS_KERNEL, else scripts/build-kernel).",
    )
    group.addoption(
        "--tinyos-timeout-scale",
        metavar="FACTOR",
        type=float,
        default=None,
        help=f"multiply every harness timeout (gdb, console, QEMU start) by FACTOR (default: ${TIMEOUT_SCALE_ENV}, else 1).",
    )


def pytest_configure(config: pytest.Config) -> None:
    factor = config.getoption("--tinyos-timeout-scale")
    if factor is not None:
        if not factor > 0:
            raise pytest.UsageError(f"--tinyos-timeout-scale must be a positive number, not {factor}")
        # The environment carries it to every wait, in this process and in xdist workers.
        os.environ[TIMEOUT_SCALE_ENV] = repr(factor)


def _entered_with_kernel(stack: ExitStack, make: Callable[..., Any], kernel: Path) -> Callable[..., Any]:
    """A factory entering ``make(kernel=kernel, **options)`` into ``stack``, which the
    fixture closes after the test whatever its outcome."""

    def start(**options: Any) -> Any:
        options.setdefault("kernel", kernel)
        return stack.enter_context(make(**options))

    return start


@pytest.fixture(scope="session")
def tinyos_kernel(pytestconfig: pytest.Config) -> Path:
    """The kernel ELF under test."""
    option = pytestconfig.getoption("--tinyos-kernel")
    if option:
        return existing_kernel(option, "--tinyos-kernel")
    return kernel_path()


@pytest.fixture
def tinyos_qemu_factory(tinyos_kernel: Path) -> Iterator[Callable[..., QemuMachine]]:
    """``factory(**QemuMachine options) -> started QemuMachine``; ended after the test."""
    with ExitStack() as stack:
        yield _entered_with_kernel(stack, QemuMachine, tinyos_kernel)


@pytest.fixture
def tinyos_machine(tinyos_qemu_factory: Callable[..., QemuMachine]) -> QemuMachine:
    """The kernel booted at EL1 without gdb, at the shell prompt."""
    return tinyos_qemu_factory()


@pytest.fixture
def tinyos_debug_factory(tinyos_kernel: Path) -> Iterator[Callable[..., DebugSession]]:
    """``factory(**debug_session options) -> DebugSession``; all ended after the test."""
    with ExitStack() as stack:
        yield _entered_with_kernel(stack, debug_session, tinyos_kernel)


@pytest.fixture
def tinyos_gdb(tinyos_debug_factory: Callable[..., DebugSession]) -> DebugSession:
    """QEMU halted at the kernel's first instruction, gdb attached, plugin loaded."""
    return tinyos_debug_factory()


@pytest.fixture
def tinyos_booted(tinyos_debug_factory: Callable[..., DebugSession]) -> DebugSession:
    """A debug session whose kernel booted to its shell prompt, running (gdb attached,
    plugin loaded): ``s.shell("ps")``, ``s.stop_before_command("~1")``..."""
    session = tinyos_debug_factory()
    session.boot_to_prompt()
    return session
