"""Typed failures of starting a kernel: QEMU, its tools, its serial console. Each message
is one sentence saying what went wrong and, where it helps, what QEMU showed last."""

from ..core.errors import TinyOSError


class LaunchError(TinyOSError):
    """Base of every failure raised while starting or talking to QEMU."""


class ToolMissing(LaunchError):
    """qemu-system-aarch64, gdb-multiarch or the kernel ELF is not available."""


class QemuStartError(LaunchError):
    """QEMU exited or never opened its gdbstub while starting."""


class ConsoleTimeout(LaunchError):
    """The serial console did not show what was expected in time."""


class ConsoleClosed(LaunchError):
    """QEMU closed the serial console (it exited) before showing what was expected."""
