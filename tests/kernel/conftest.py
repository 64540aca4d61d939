"""Fixtures for the kernel's shell tests: the ELF facts of the kernel under test and a
booted machine shared by a module's tests that leave it at the prompt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from elf_facts import KernelImage, read_image

from gdb_tinyos.testing import QemuMachine


@pytest.fixture(scope="session")
def kernel_image(tinyos_kernel: Path) -> KernelImage:
    return read_image(tinyos_kernel)


@pytest.fixture(scope="module")
def shared_machine(tinyos_kernel: Path) -> Iterator[QemuMachine]:
    """One EL1 boot for a module's tests that leave the machine at the prompt."""
    with QemuMachine(kernel=tinyos_kernel, el=1) as machine:
        yield machine
