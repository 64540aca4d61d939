"""A debugging session: QEMU halted at reset with its gdbstub open, and gdb-multiarch
connected to it with the kernel's symbols and (if present) the gdb_tinyos plugin.

    with debug_session(kernel_path()) as s:
        s.gdb.run_to("kernel_main")
        s.gdb.resume()
        s.console.wait_for_prompt()

The CPU runs only while gdb lets it; the serial console is read all the time, so text
the kernel printed before a stop is never lost. Leaving the block exits gdb first (it
detaches), then ends QEMU."""

from __future__ import annotations

import functools

import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import gdb_tinyos
from gdb_tinyos.launcher.serial import PROMPT, SerialConsole
from gdb_tinyos.testing.errors import GdbError, HarnessError
from gdb_tinyos.testing.gdbmi import GdbSession, Stop
from gdb_tinyos.launcher.qemu import QemuMachine

PLUGIN_LOADER = Path(gdb_tinyos.__file__).resolve().parent / "gdbinit.py"


def default_plugin() -> Path | None:
    """The plugin loader gdb_tinyos/gdbinit.py, when it exists."""
    return PLUGIN_LOADER if PLUGIN_LOADER.is_file() else None


# The kernel's debugger hook (kernel/src/debug.rs): `tinyos_debug_event(kind, a, b)`,
# never inlined. Spelled with its full path: stopped in Rust code, gdb does not find the
# bare symbol.
DEBUG_EVENT = "*tinyos::debug::tinyos_debug_event"
# The shell's line reader (inlined; gdb still shows it as a frame): stopped inside it, the
# shell waits for input between two commands.
SHELL_READ_LINE = "tinyos::shell::read_line"


class DebugEvent(Enum):
    """The debugger events (``kind`` of tinyos_debug_event), by their field in the kernel's
    contract (``TINYOS_DEBUG_CONTRACT``); the numbers are the kernel's, read from its ELF
    (:meth:`DebugSession.event_number`), never written here."""

    SHELL_COMMAND = "event_shell_command"  # a = VA of the command line, b = its length; raised before it runs
    SHELL_DONE = "event_shell_done"
    FAULT_RECOVERED = "event_fault_recovered"
    HALT = "event_halt"
    COW_FAULT = "event_cow_fault"  # a = pid, b = fault address
    PAGE_DUPLICATED = "event_page_duplicated"  # a = page VA, b = the new frame
    PAGE_REUSED = "event_page_reused"
    FORK = "event_fork"  # a = parent pid, b = child pid
    PROCESS_EXIT = "event_process_exit"
    PROCESS_KILLED = "event_process_killed"


def event_condition(*numbers: int) -> str:
    """A breakpoint condition true at the hook for any of the event ``numbers`` (kind is a
    u32: only w0, the low half of x0, is defined)."""
    return " || ".join(f"($x0 & 0xffffffff) == {int(n)}" for n in numbers)


@functools.cache
def kernel_symbol(kernel: Path, symbol: str) -> int:
    """The address of the symbol whose path ends in ``symbol`` in the kernel ELF."""
    from gdb_tinyos.debuginfo import DebugInfo  # noqa: PLC0415 - only scenarios that need it

    with DebugInfo.open(kernel) as info:
        return info.symbol(symbol).address


@functools.cache
def kernel_contract(kernel: Path) -> dict[str, int]:
    """The debugger contract's constants of the kernel ELF at ``kernel`` ({} without one)."""
    from gdb_tinyos.debuginfo import DebugInfo  # noqa: PLC0415 - only scenarios with events need it
    from gdb_tinyos.tinyos.capabilities import discover  # noqa: PLC0415
    from gdb_tinyos.tinyos.contract import read_contract  # noqa: PLC0415

    with DebugInfo.open(kernel) as info:
        return read_contract(info, discover(info))


@dataclass
class DebugSession:
    """QEMU and gdb of one session; ``plugin_output`` is what loading the plugin printed.

    Besides ``.gdb`` (GdbSession) and ``.console`` (SerialConsole), the steps a scenario
    takes over and over: boot to the prompt, run a shell command, stop gdb just before
    a command runs and let it finish, and ask QEMU's monitor."""

    machine: QemuMachine
    gdb: GdbSession
    plugin_output: str = ""

    @property
    def console(self) -> SerialConsole:
        return self.machine.console

    # -- the kernel's shell -----------------------------------------------------------------

    def boot_to_prompt(self, timeout: float = 60.0) -> str:
        """Lets the kernel run (if gdb holds it) until its first prompt; returns the banner.
        The kernel is left running."""
        if not self.gdb.running:
            self.gdb.resume()
        return self.console.wait_for_prompt(timeout)

    def interrupt_at_prompt(self, attempts: int = 20, timeout: float = 10.0) -> Stop:
        """Stops the kernel while its shell waits for input — the safe point for the
        plugin's acting commands (cow-create, cow-protect, ...) — and returns that stop.

        Seeing the prompt on the console does not mean the CPU is already polling the
        UART: it may still be returning from printing it. An interrupt landing there is
        resumed and retried; the window is a few instructions, so one retry almost always
        suffices."""
        for _ in range(attempts):
            stop = self.gdb.interrupt(timeout)
            frames = self.gdb.mi("-stack-list-frames 0 8").get("stack", [])
            if any(f.get("func") == SHELL_READ_LINE for f in frames):
                return stop
            self.gdb.resume()
        raise GdbError(f"the shell was not waiting for input in {attempts} interrupts")

    def shell(self, line: str, timeout: float = 60.0) -> str:
        """Runs a shell command with the kernel running (resumed first if gdb holds it);
        its output as ``console.command`` returns it. The kernel is left running."""
        if not self.gdb.running:
            self.gdb.resume()
        return self.console.command(line, timeout=timeout)

    def location(self, symbol: str) -> str:
        """``*0xADDR`` of the kernel symbol whose path ends in ``symbol``, from the ELF's
        symbol table: a breakpoint location that resolves the same in optimised and
        unoptimised builds (gdb's ``*path`` may pick a closure's namespace there)."""
        return f"*{kernel_symbol(Path(self.machine.kernel), symbol):#x}"

    def event_number(self, event: DebugEvent) -> int:
        """The kernel's number for ``event``, from its contract."""
        contract = kernel_contract(Path(self.machine.kernel))
        if event.value not in contract:
            raise HarnessError(f"the kernel {self.machine.kernel} has no {event.value} in its debugger contract")
        return contract[event.value]

    def event_condition(self, *events: DebugEvent) -> str:
        """A breakpoint condition at DEBUG_EVENT true for any of ``events``."""
        return event_condition(*(self.event_number(e) for e in events))

    def run_to_event(
        self, *events: DebugEvent, action: Callable[[], None] | None = None, timeout: float = 60.0
    ) -> Stop:
        """Runs until the kernel raises one of the debugger ``events`` and returns that
        stop, at the hook's first instruction (x0 = kind, x1 = a, x2 = b). ``action`` runs
        once the kernel runs, e.g. typing a command."""
        return self.gdb.run_to(DEBUG_EVENT, timeout=timeout, action=action, condition=self.event_condition(*events))

    def stop_before_command(self, line: str, timeout: float = 60.0) -> Stop:
        """Types ``line`` at the shell and stops at the event the shell raises just before
        running it: the kernel's state is the one the command will report."""
        return self.run_to_event(DebugEvent.SHELL_COMMAND, action=lambda: self.console.send_line(line), timeout=timeout)

    def finish_command(self, line: str, timeout: float = 60.0) -> str:
        """Lets the command ``stop_before_command(line)`` stopped at run; its output (as
        ``console.command`` returns it). The kernel is left running."""
        self.gdb.resume()
        self.console.expect(re.compile(re.escape(line) + r"\r?\n"), timeout)
        return self.console.read_until_prompt(timeout)

    # -- QEMU's monitor -------------------------------------------------------------------

    def monitor(self, command: str, timeout: float | None = None) -> str:
        """A QEMU monitor command (``monitor ...`` through gdb); its reply."""
        return self.gdb.cli(f"monitor {command}", timeout)

    def xp(self, pa: int, count: int = 1) -> list[int]:
        """``count`` 64-bit words at physical address ``pa``, as QEMU reads them (``xp /Ngx``):
        no page table or plugin involved."""
        reply = self.monitor(f"xp /{count}gx {pa:#x}")
        words = [int(word, 16) for word in re.findall(r"\b0x([0-9a-f]{16})\b", reply)]
        if len(words) != count:
            raise HarnessError(f"QEMU's xp gave {len(words)} of {count} words at {pa:#x}: {reply!r}")
        return words

    def replay_position(self) -> int:
        """QEMU's instruction count in a replay (``monitor info replay``): where in the
        recorded run the CPU is; HarnessError when the session is not a replay."""
        reply = self.monitor("info replay")
        m = re.search(r"instruction count = (\d+)", reply)
        if m is None:
            raise HarnessError(f"not a replay session: QEMU says {reply.strip()!r}")
        return int(m.group(1))

    def gva2gpa(self, va: int) -> int:
        """The physical address QEMU translates ``va`` to, with the CPU's current tables."""
        reply = self.monitor(f"gva2gpa {va:#x}")
        m = re.search(r"gpa: 0x([0-9a-f]+)", reply)
        if m is None:
            raise HarnessError(f"QEMU did not translate {va:#x}: {reply.strip()!r}")
        return int(m.group(1), 16)


_DEFAULT = object()


@contextmanager
def debug_session(
    kernel: str | os.PathLike[str],
    el: int = 1,
    plugin: str | os.PathLike[str] | None | object = _DEFAULT,
    qemu_args: Sequence[str] = (),
    gdb_args: Sequence[str] = (),
    timeout: float = 10.0,
    prompt: str = PROMPT,
    record: str | os.PathLike[str] | None = None,
    replay: str | os.PathLike[str] | None = None,
    shared_ram: bool = True,
) -> Iterator[DebugSession]:
    """Boots ``kernel`` halted under QEMU, attaches gdb and loads ``plugin`` (default: the
    gdb_tinyos loader if it exists; None loads nothing). Everything is ended on exit.

    record=PATH records the whole run (QEMU record/replay: PATH, PATH.qcow2, PATH.json; the
    console input typed through ``s.console``/``s.shell`` included); the recording is
    complete once the session has ended. replay=PATH replays such a recording instead (same
    kernel; el and RAM come from the recording; console input is the recorded one), halted
    at the first instruction, with reverse execution (``reverse-stepi``,
    ``reverse-continue``, watchpoints backwards) and ``s.replay_position()``::

        with debug_session(kernel, record=tmp / "fw.rr") as s:
            s.boot_to_prompt(); s.shell("run forkwrite")
        with debug_session(kernel, replay=tmp / "fw.rr") as s:
            s.gdb.run_to("tinyos::shell::run")      # then any stop, reverse-continue...

    shared_ram=False gives QEMU private RAM (the plugin then reads through /proc or the gdbstub)."""
    plugin_path = default_plugin() if plugin is _DEFAULT else plugin
    with ExitStack() as stack:
        machine = stack.enter_context(
            QemuMachine(kernel=kernel, el=el, gdb=True, extra_args=qemu_args, prompt=prompt,
                        record=record, replay=replay, shared_ram=shared_ram)  # fmt: skip
        )
        gdb = stack.enter_context(GdbSession(extra_args=gdb_args, timeout=timeout))
        gdb.file(kernel)
        assert machine.gdb_port is not None
        gdb.connect(machine.gdb_port)
        output = gdb.source(plugin_path) if plugin_path is not None else ""  # type: ignore[arg-type]
        yield DebugSession(machine, gdb, output)
