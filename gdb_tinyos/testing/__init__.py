"""Test harness for TinyOS under QEMU and gdb-multiarch, driven from outside gdb.

- ``QemuMachine``: QEMU virt board with the serial console (``.console``) and an
  optional gdbstub on a free loopback port.
- ``GdbSession``: gdb-multiarch under pygdbmi, every MI command matched to its result
  by token.
- ``debug_session``: both, connected, with the gdb_tinyos plugin loaded
  (``DebugSession``: boot to the prompt, stop before a shell command, QEMU's monitor).
- ``shell`` (gdb_tinyos.testing.shell): the kernel shell's answers parsed into values.
- ``kernel_path``: the kernel ELF under test.

The pytest plugin (``gdb_tinyos.testing.plugin``, entry point ``tinyos``) turns these
into fixtures. Nothing here imports ``gdb``.
"""

from gdb_tinyos.launcher.serial import PROMPT, SerialConsole
from gdb_tinyos.testing.errors import (
    ConsoleClosed,
    ConsoleTimeout,
    GdbCommandError,
    GdbError,
    GdbTimeout,
    HarnessError,
    KernelBuildError,
    QemuStartError,
    ToolMissing,
    UnexpectedStop,
)
from gdb_tinyos.testing.gdbmi import GdbSession, MiResponse, Stop
from gdb_tinyos.testing.kernel import kernel_path
from gdb_tinyos.launcher.qemu import QemuMachine
from gdb_tinyos.testing.session import DEBUG_EVENT, DebugEvent, DebugSession, debug_session, event_condition

__all__ = [
    "DEBUG_EVENT",
    "PROMPT",
    "ConsoleClosed",
    "ConsoleTimeout",
    "DebugEvent",
    "DebugSession",
    "GdbCommandError",
    "GdbError",
    "GdbSession",
    "GdbTimeout",
    "HarnessError",
    "KernelBuildError",
    "MiResponse",
    "QemuMachine",
    "QemuStartError",
    "SerialConsole",
    "Stop",
    "ToolMissing",
    "UnexpectedStop",
    "debug_session",
    "event_condition",
    "kernel_path",
]
