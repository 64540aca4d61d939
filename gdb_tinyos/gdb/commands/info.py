"""``tinyos-info``: what the plugin works with -- kernel ELF, target state, memory access, MMU.

Every line degrades to a sentence instead of failing: the command is what a user runs when
something else does not work.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import gdb

from ... import __version__
from ...core import render
from ...aarch64 import SCTLR
from ...core.errors import BuildIdMismatch, TinyOSError
from ...core.render import Address
from ..base import TinyOSCommand
from ..inferior import check_running_build_id
from ..registry import command
from .. import hostram
from ..session import Session, session
from ..target import require_stopped

@dataclass
class MmuState:
    exception_level: int | None
    mmu: str
    sctlr: Address | None
    tcr: Address | None
    ttbr0: Address | None
    ttbr1: Address | None


@dataclass
class PluginInfo:
    version: str
    kernel_elf: str | None
    kernel_source: str
    build_id: str
    target: str
    physical_path: str | None  # shared-ram, proc-mem, gdbstub or fallback; None when not stopped
    physical_memory: str  # how and why
    cpu: MmuState | None


@command
class TinyOSInfo(TinyOSCommand):
    """Show the plugin's state: kernel ELF in use, build-id match, target, physical-memory access, MMU.

    Usage: tinyos-info [--json]
    Example:
      (gdb) tinyos-info
      version:         0.1.0
      kernel ELF:      /work/main/kernel/target/.../release/tinyos (gdb's loaded file)
      physical memory: shared-ram: QEMU's RAM file mapped read-only (ram 0x40000000-0x48000000, QEMU pid 4242)
      ..."""

    name = "tinyos-info"

    def run(self, s: Session, args: argparse.Namespace) -> PluginInfo:
        kernel = s.kernel
        target, (path, physical), cpu = _target_state(s)
        return PluginInfo(
            version=__version__,
            kernel_elf=str(kernel.path) if kernel.path else None,
            kernel_source=kernel.source,
            build_id=_build_id_state(s, connected=cpu is not None),
            target=target,
            physical_path=path,
            physical_memory=physical,
            cpu=cpu,
        )

    def format_text(self, info: PluginInfo) -> str:
        rows = [
            ("version", info.version),
            ("kernel ELF", f"{info.kernel_elf or 'none'} ({info.kernel_source})"),
            ("build-id", info.build_id),
            ("target", info.target),
            ("physical memory", f"{info.physical_path}: {info.physical_memory}" if info.physical_path else info.physical_memory),
        ]
        if info.cpu is not None:
            cpu = info.cpu
            rows += [
                ("exception level", f"EL{cpu.exception_level}" if cpu.exception_level is not None else "unknown"),
                ("MMU", cpu.mmu),
                ("SCTLR_EL1", cpu.sctlr),
                ("TCR_EL1", cpu.tcr),
                ("TTBR0_EL1", cpu.ttbr0),
                ("TTBR1_EL1", cpu.ttbr1),
            ]
        return render.key_values(rows)


def _target_state(s: Session) -> tuple[str, tuple[str | None, str], MmuState | None]:
    try:
        require_stopped()
    except TinyOSError as exc:
        return str(exc), (None, "unavailable (no target)"), None
    connection = gdb.selected_inferior().connection
    where = f"{connection.type} {connection.details or ''}".strip()
    return f"stopped, {where}", s.gdb_target.physical_path(), _mmu_state(s)


class PhysicalMemoryPath(gdb.Parameter):
    """How the plugin reads guest physical memory.

    auto (default): the fastest verified path -- QEMU's RAM file mapped into gdb, else
    /proc/<qemu pid>/mem, else the gdbstub. shared-ram / proc-mem: only that host path (then
    the gdbstub). gdbstub: always the remote protocol. `tinyos-info` shows the path in use.
    Example: set tinyos-physical-memory gdbstub"""

    set_doc = "Set how the plugin reads guest physical memory."
    show_doc = "Show how the plugin reads guest physical memory."

    def __init__(self) -> None:
        super().__init__("tinyos-physical-memory", gdb.COMMAND_DATA, gdb.PARAM_ENUM, list(hostram.CHOICES))
        self.value = "auto"

    def get_set_string(self) -> str:
        session().gdb_target.set_preference(self.value)
        session().target.invalidate()
        return ""

    def get_show_string(self, svalue: str) -> str:
        return f"Physical memory is read through: {svalue}"


PhysicalMemoryPath()


def _mmu_state(s: Session) -> MmuState:
    def reg(name: str) -> Address | None:
        try:
            return Address(s.target.read_register(name))
        except TinyOSError:
            return None

    cpsr, sctlr = reg("cpsr"), reg("SCTLR_EL1")
    mmu = "unknown (SCTLR_EL1 unreadable)" if sctlr is None else ("on" if SCTLR.decode(sctlr).mmu else "off")
    return MmuState(
        exception_level=(cpsr >> 2) & 3 if cpsr is not None else None,
        mmu=mmu,
        sctlr=sctlr,
        tcr=reg("TCR_EL1"),
        ttbr0=reg("TTBR0_EL1"),
        ttbr1=reg("TTBR1_EL1"),
    )


def _build_id_state(s: Session, connected: bool) -> str:
    """The ELF's build-id and whether the running kernel carries the same one."""
    try:
        info = s.debuginfo()
        expected = info.require_build_id().hex()
    except ImportError as exc:
        return f"unknown: the debug-info layer does not load ({exc})"
    except TinyOSError as exc:
        return f"unknown: {exc}"
    if not connected:
        return f"{expected} (running kernel not checked: not connected)"
    try:
        check_running_build_id(s)
    except BuildIdMismatch as exc:
        return f"MISMATCH: {exc}"
    except TinyOSError as exc:
        return f"{expected} (running kernel not checked: {exc})"
    return f"{expected} (matches the running kernel)"
