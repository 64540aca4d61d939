"""Fixtures for the foreign kernel (tests/fixtures/foreign_kernel): a TinyOS-shaped
kernel that is not ours — crate `tiny_os_lib`, EL2 with the MMU off, its COW manager at
`tiny_os_lib::memory::cow::manager::COW_MANAGER` (a `spin::Mutex<Option<CowManager>>`),
no frame allocator, no process table, no debugger contract, no build-id note.

- ``foreign_kernel`` (session): its ELF, built once per session with scripts/build-kernel's
  offline recipe (cargo rebuilds only when the crate changed), or $TINYOS_FOREIGN_KERNEL.
  A failed build (e.g. a missing toolchain, also under CI=true) is a test error, never a skip.
- ``foreign_machine``: QemuMachine at EL2 without gdb, at the `tinyos> ` prompt.
- ``foreign_debug_factory``: ``factory(**debug_session options) -> DebugSession`` with
  kernel and el=2 preset; everything is ended after the test.
- ``foreign_gdb``: QEMU halted at the first instruction, gdb attached with the ELF's symbols
  and the gdb_tinyos plugin loaded (as ``tinyos_gdb`` does for the shipped kernel).
- ``foreign_booted``: the same, booted to its prompt and running.

The kernel raises no debugger events, so there is no ``stop_before_command``: stop with
``foreign_support.stop_at_prompt(s)`` (the shell is idle: nothing changes until the next
command), ask the plugin, then resume and compare with the shell::

    from foreign_support import stop_at_prompt

    def test_cow_status_matches(foreign_booted):
        s = foreign_booted
        s.shell("~3 0x1000 0x2000")
        stop_at_prompt(s)
        text = s.gdb.cli("cow-status")
        shell = parse_cow_status(s.shell("~1"))     # s.shell resumes the kernel first
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from foreign_support import FOREIGN_EL, build_foreign_kernel

from gdb_tinyos.testing import DebugSession, QemuMachine, debug_session


@pytest.fixture(scope="session")
def foreign_kernel() -> Path:
    return build_foreign_kernel()


@pytest.fixture
def foreign_machine(foreign_kernel: Path) -> Iterator[QemuMachine]:
    with QemuMachine(kernel=foreign_kernel, el=FOREIGN_EL) as machine:
        yield machine


@pytest.fixture
def foreign_debug_factory(foreign_kernel: Path) -> Iterator[Callable[..., DebugSession]]:
    with ExitStack() as stack:

        def start(**options: Any) -> DebugSession:
            options.setdefault("kernel", foreign_kernel)
            options.setdefault("el", FOREIGN_EL)
            return stack.enter_context(debug_session(**options))

        yield start


@pytest.fixture
def foreign_gdb(foreign_debug_factory: Callable[..., DebugSession]) -> DebugSession:
    return foreign_debug_factory()


@pytest.fixture
def foreign_booted(foreign_debug_factory: Callable[..., DebugSession]) -> DebugSession:
    session = foreign_debug_factory()
    session.boot_to_prompt()
    return session
