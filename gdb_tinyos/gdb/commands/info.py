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
from ..registry import command
from ..session import Session, check_running_build_id
from ..target import NOT_CONNECTED, require_stopped

@dataclass
class MmuState:
    exception_level: int | None
    mmu: str
    sctlr: Address | None
    tcr: Address | None
    ttbr0: Address | None
    ttbr1: Address | None
    regime: str = "EL1&0"  # the regime the registers above belong to (the CPU's)


@dataclass
class CapabilityInfo:
    """One piece of the kernel: found (with its symbol and address) or why not."""

    name: str
    found: bool
    symbol: str | None
    address: Address | None
    adds: str
    reason: str


@dataclass
class KernelPieces:
    capabilities: list[CapabilityInfo]
    contract_fields: int  # constants read from the debugger contract (0: none)
    conventions: list[str]  # the bookkeeping rules cow-check holds this kernel to


@dataclass
class PluginInfo:
    version: str
    kernel_elf: str | None
    kernel_source: str
    build_id: str | None  # the ELF's, hex; None when unknown (build_id_note says why)
    build_id_check: str  # "match", "mismatch" or "unchecked"
    build_id_note: str  # why unchecked or unknown, the mismatch's sentence; "" on a match
    target: str  # "stopped", "running", "not connected" or "core" (offline: tinyos-core)
    connection: str | None  # e.g. "remote 127.0.0.1:1234"; the core file's path offline
    physical_path: str | None  # shared-ram, proc-mem, gdbstub or fallback; None when not stopped
    physical_memory: str  # how and why
    cpu: MmuState | None
    kernel: KernelPieces | str  # what the ELF offers, or why that is unknown


@command
class TinyOSInfo(TinyOSCommand):
    """Show the plugin's state: kernel ELF, its capabilities and conventions, build-id, target, MMU.

    Usage: tinyos-info [--json]
    Capabilities are the pieces found in the ELF by symbol suffix (COW manager, frame
    allocator, process table, debugger contract, event hook, entry points...), each with the
    symbol it came from, or what it would add and why it is missing; `set tinyos SETTING
    SYMBOL` names another symbol. Conventions are the bookkeeping rules cow-check holds the
    kernel to, each with where it came from (contract, state, parameter, default).
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
            kernel=_kernel_pieces(s, stopped=cpu is not None),
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
            suffix = "_EL1" if cpu.regime == "EL1&0" else "_" + cpu.regime
            rows += [
                ("exception level", f"EL{cpu.exception_level}" if cpu.exception_level is not None else "unknown"),
                ("MMU", f"{cpu.mmu} ({cpu.regime} regime)"),
                ("SCTLR" + suffix, cpu.sctlr),
                ("TCR" + suffix, cpu.tcr),
                ("TTBR0" + suffix, cpu.ttbr0),
            ]
            if cpu.regime == "EL1&0":
                rows.append(("TTBR1_EL1", cpu.ttbr1))
        text = render.key_values(rows)
        if isinstance(info.kernel, str):
            return text + "\n" + render.key_values([("capabilities", info.kernel)])
        caps = [(f"  {c.name}", f"{c.symbol} at {c.address}" if c.found else f"missing: {c.reason} (adds {c.adds})")
                for c in info.kernel.capabilities]
        contract = (f"{info.kernel.contract_fields} constants" if info.kernel.contract_fields
                    else "none (events and entry points unavailable; conventions detected from the state)")
        lines = [text, "capabilities:", render.key_values(caps), render.key_values([("contract", contract)])]
        if info.kernel.conventions:
            lines += ["conventions:"] + [f"  {c}" for c in info.kernel.conventions]
        return "\n".join(lines)


def _target_state(s: Session) -> tuple[tuple[str, str | None], tuple[str | None, str], MmuState | None]:
    """((state, connection), physical-memory path, CPU state): state is "stopped",
    "running", "not connected" or "core" (offline); the CPU is read only when stopped."""
    if s.core is not None:
        ram = ", ".join(f"{seg.pa:#x}-{seg.pa + seg.size:#x}" for seg in s.core.segments)
        return ("core", str(s.core.path)), ("core", f"the core dump's RAM (ram {ram}), offline"), _mmu_state(s)
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
    if info.target == "core":
        return f"core dump {info.connection} (offline: read-only commands only)"
    if info.target == "running":
        return f"running, {info.connection} (interrupt it, Ctrl-C or `interrupt`, to read registers and memory)"
    return f"stopped, {info.connection}"


def _build_id_text(info: PluginInfo) -> str:
    if info.build_id_check == "mismatch":
        return f"MISMATCH: {info.build_id_note}"
    if info.build_id is None:
        return f"unknown: {info.build_id_note}"
    if info.build_id_check == "match":
        return f"{info.build_id} (matches the {'dumped' if info.target == 'core' else 'running'} kernel)"
    return f"{info.build_id} (running kernel not checked: {info.build_id_note})"


def _mmu_state(s: Session) -> MmuState:
    def reg(name: str) -> Address | None:
        try:
            return Address(s.target.read_register(name))
        except TinyOSError:
            return None

    cpsr = reg("cpsr")
    el = (cpsr >> 2) & 3 if cpsr is not None else None
    suffix = f"_EL{max(el or 1, 1)}"
    sctlr = reg("SCTLR" + suffix)
    mmu = f"unknown (SCTLR{suffix} unreadable)" if sctlr is None else ("on" if SCTLR.decode(sctlr).mmu else "off")
    return MmuState(
        exception_level=el,
        mmu=mmu,
        sctlr=sctlr,
        tcr=reg("TCR" + suffix),
        ttbr0=reg("TTBR0" + suffix),
        ttbr1=reg("TTBR1_EL1") if suffix == "_EL1" else None,
        regime="EL1&0" if suffix == "_EL1" else suffix[1:],
    )


def _kernel_pieces(s: Session, stopped: bool) -> KernelPieces | str:
    """The ELF's capabilities (no target needed) and, at a stop, the conventions in force."""
    try:
        model = s.model()
        caps = model.capabilities
        contract = len(model.contract)
    except TinyOSError as exc:
        return f"unknown: {exc}"
    pieces = [CapabilityInfo(c.name, c.found, c.symbol, c.address, c.adds, c.reason) for c in caps.pieces.values()]
    conventions: list[str] = []
    if stopped and caps.has("cow-manager"):
        try:
            conventions = s.state().conventions().describe()
        except TinyOSError as exc:
            conventions = [f"unknown: {exc}"]
    return KernelPieces(pieces, contract, conventions)


def _build_id_state(s: Session, target: str) -> tuple[str | None, str, str]:
    """(the ELF's build-id, "match" | "mismatch" | "unchecked", why / the mismatch)."""
    try:
        info = s.debuginfo()
        expected = info.require_build_id().hex()
    except ImportError as exc:
        return None, "unchecked", f"the debug-info layer does not load ({exc})"
    except TinyOSError as exc:
        return None, "unchecked", str(exc)
    if target not in ("stopped", "core"):
        return expected, "unchecked", "the target is running" if target == "running" else "not connected"
    try:
        check_running_build_id(s)
    except BuildIdMismatch as exc:
        return expected, "mismatch", str(exc)
    except TinyOSError as exc:
        return expected, "unchecked", str(exc)
    return expected, "match", ""
