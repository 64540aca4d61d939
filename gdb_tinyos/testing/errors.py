"""Typed failures of the test harness. Each message is one sentence saying what went wrong
and, where it helps, what the console or gdb showed last."""

from gdb_tinyos.core.errors import TinyOSError
# Launch failures are raised by the launcher the harness drives; re-exported as the harness's API.
from gdb_tinyos.launcher.errors import ConsoleClosed, ConsoleTimeout, LaunchError, QemuStartError, ToolMissing  # noqa: F401


class HarnessError(TinyOSError):
    """Base of every failure raised by gdb_tinyos.testing."""


class KernelBuildError(HarnessError):
    """scripts/build-kernel failed or printed no usable ELF path."""


class GdbError(HarnessError):
    """gdb-multiarch misbehaved: it died, or its output could not be understood."""


class GdbTimeout(GdbError):
    """gdb did not answer a command, or the target did not stop, in time."""


class GdbCommandError(GdbError):
    """gdb answered a command with ^error; ``message`` holds gdb's own text."""

    def __init__(self, command: str, message: str, log: str = ""):
        super().__init__(f"gdb refused {command!r}: {message}")
        self.command = command
        self.message = message
        self.log = log  # gdb's log stream for the command (e.g. a Python traceback)


class UnexpectedStop(GdbError):
    """The target stopped, but not where or why the test asked for."""

    def __init__(self, message: str, record: dict):
        super().__init__(message)
        self.record = record
