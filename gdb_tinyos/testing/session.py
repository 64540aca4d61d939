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

import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import gdb_tinyos
from gdb_tinyos.testing.console import PROMPT, SerialConsole
from gdb_tinyos.testing.gdbmi import GdbSession
from gdb_tinyos.testing.qemu import QemuMachine

PLUGIN_LOADER = Path(gdb_tinyos.__file__).resolve().parent / "gdbinit.py"


def default_plugin() -> Path | None:
    """The plugin loader gdb_tinyos/gdbinit.py, when it exists."""
    return PLUGIN_LOADER if PLUGIN_LOADER.is_file() else None


@dataclass
class DebugSession:
    """QEMU and gdb of one session; ``plugin_output`` is what loading the plugin printed."""

    machine: QemuMachine
    gdb: GdbSession
    plugin_output: str = ""

    @property
    def console(self) -> SerialConsole:
        return self.machine.console


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
) -> Iterator[DebugSession]:
    """Boots ``kernel`` halted under QEMU, attaches gdb and loads ``plugin`` (default: the
    gdb_tinyos loader if it exists; None loads nothing). Everything is ended on exit."""
    plugin_path = default_plugin() if plugin is _DEFAULT else plugin
    with ExitStack() as stack:
        machine = stack.enter_context(QemuMachine(kernel=kernel, el=el, gdb=True, extra_args=qemu_args, prompt=prompt))
        gdb = stack.enter_context(GdbSession(extra_args=gdb_args, timeout=timeout))
        gdb.file(kernel)
        assert machine.gdb_port is not None
        gdb.connect(machine.gdb_port)
        output = gdb.source(plugin_path) if plugin_path is not None else ""  # type: ignore[arg-type]
        yield DebugSession(machine, gdb, output)
