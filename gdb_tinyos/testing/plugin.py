"""pytest plugin (entry point ``tinyos``): fixtures that boot the kernel under test.

- ``tinyos_kernel`` (session): the ELF path: ``--tinyos-kernel PATH``, else $TINYOS_KERNEL,
  else built by scripts/build-kernel.
- ``tinyos_machine``: a QemuMachine booted at EL1 and sitting at the shell prompt.
- ``tinyos_qemu_factory``: boots more machines with options (``el=2``, ``gdb=True``...);
  all of them are ended after the test.

A missing qemu-system-aarch64 or kernel is a test error (ToolMissing), never a skip."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from gdb_tinyos.testing.kernel import existing_kernel, kernel_path
from gdb_tinyos.testing.qemu import QemuMachine


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tinyos", "TinyOS kernel under QEMU")
    group.addoption(
        "--tinyos-kernel",
        metavar="PATH",
        default=None,
        help="kernel ELF to boot in the tinyos fixtures (default: $TINYOS_KERNEL, else scripts/build-kernel).",
    )


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

        def boot(**options: Any) -> QemuMachine:
            options.setdefault("kernel", tinyos_kernel)
            return stack.enter_context(QemuMachine(**options))

        yield boot


@pytest.fixture
def tinyos_machine(tinyos_qemu_factory: Callable[..., QemuMachine]) -> QemuMachine:
    """The kernel booted at EL1 without gdb, at the shell prompt."""
    return tinyos_qemu_factory()
