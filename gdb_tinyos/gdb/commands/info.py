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
from ...core.errors import BuildIdMismatch, TargetStateError, TinyOSError
from ...core.render import Address
from ..base import TinyOSCommand
from ..inferior import check_running_build_id
from ..registry import command
from .. import hostram
from ..session import Session, session
from ..target import NOT_CONNECTED, require_stopped

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
    build_id: str | None  # the ELF's, hex; None when unknown (build_id_note says why)
    build_id_check: str  # "match", "mismatch" or "unchecked"
    build_id_note: str  # why unchecked or unknown, the mismatch's sentence; "" on a match
    target: str  # "stopped", "running" or "not connected"
    connection: str | None  # e.g. "remote 127.0.0.1:1234"
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
      kernel ELF:      kernel/target/aarch64-unknown-none-softfloat/release/tinyos (gdb's loaded file)
      physical memory: shared-ram: QEMU's RAM file mapped read-only (ram 0x40000000-0x48000000, QEMU pid 4242)
      ..."""

    name = "tinyos-info"

    def run(self, s: Session, args: argparse.Namespace) -> PluginInfo:
        kernel = s.kernel
        (target, connection), (path, physical), cpu = _target_state(s)
        build_id, check, note = _build_id_state(s, target)
        return PluginInfo(
            version=__version__,
            kernel_elf=str(kernel.path) if kernel.path else None,
            kernel_source=kernel.source,
            build_id=build_id,
            build_id_check=check,
            build_id_note=note,
            target=target,
            connection=connection,
            physical_path=path,
            physical_memory=physical,
            cpu=cpu,
        )

    def format_text(self, info: PluginInfo) -> str:
        rows = [
            ("version", info.version),
            ("kernel ELF", f"{info.kernel_elf or 'none'} ({info.kernel_source})"),
            ("build-id", _build_id_text(info)),
            ("target", _target_text(info)),
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


def _target_state(s: Session) -> tuple[tuple[str, str | None], tuple[str | None, str], MmuState | None]:
    """((state, connection), physical-memory path, CPU state): state is "stopped",
    "running" or "not connected"; the CPU is read only when stopped."""
    inferior = gdb.selected_inferior()
    connection = inferior.connection
    if inferior.pid == 0 or connection is None:
        return ("not connected", None), (None, "unavailable (no target)"), None
    where = f"{connection.type} {connection.details or ''}".strip()
    try:
        require_stopped()
    except TargetStateError:
        return ("running", where), (None, "unavailable while the target runs"), None
    return ("stopped", where), s.gdb_target.physical_path(), _mmu_state(s)


def _target_text(info: PluginInfo) -> str:
    if info.target == "not connected":
        return NOT_CONNECTED
    if info.target == "running":
        return f"running, {info.connection} (interrupt it, Ctrl-C or `interrupt`, to read registers and memory)"
    return f"stopped, {info.connection}"


def _build_id_text(info: PluginInfo) -> str:
    if info.build_id_check == "mismatch":
        return f"MISMATCH: {info.build_id_note}"
    if info.build_id is None:
        return f"unknown: {info.build_id_note}"
    if info.build_id_check == "match":
        return f"{info.build_id} (matches the running kernel)"
    return f"{info.build_id} (running kernel not checked: {info.build_id_note})"


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


def _build_id_state(s: Session, target: str) -> tuple[str | None, str, str]:
    """(the ELF's build-id, "match" | "mismatch" | "unchecked", why / the mismatch)."""
    try:
        info = s.debuginfo()
        expected = info.require_build_id().hex()
    except ImportError as exc:
        return None, "unchecked", f"the debug-info layer does not load ({exc})"
    except TinyOSError as exc:
        return None, "unchecked", str(exc)
    if target != "stopped":
        return expected, "unchecked", "the target is running" if target == "running" else "not connected"
    try:
        check_running_build_id(s)
    except BuildIdMismatch as exc:
        return expected, "mismatch", str(exc)
    except TinyOSError as exc:
        return expected, "unchecked", str(exc)
    return expected, "match", ""
