"""``tinyos-dump FILE``: a QEMU guest-memory core plus the system registers it lacks.

QEMU's aarch64 core notes hold only x0-x30, sp, pc and pstate, so the registers a page-table
walk needs are read live at the same stop and written to ``FILE.sysregs.json``
(:mod:`gdb_tinyos.aarch64.coredump` reads both).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import gdb

from ...core import registers
from ...core import render
from ...aarch64.coredump import SIDECAR_SUFFIX, write_sidecar
from ...core.errors import RegisterError, TargetStateError
from ...core.render import Address
from ..args import UsageError, local_path
from ..base import TinyOSCommand
from ..registry import command
from ..session import Session
from ..target import require_live


@dataclass
class DumpResult:
    core: str
    sidecar: str
    registers: dict[str, Address]
    missing: list[str]


# QEMU's monitor reads a file name argument into a 1024-byte buffer.
_MAX_MONITOR_PATH = 1000


def monitor_quoted(path: Path) -> str:
    """``path`` as one argument of a QEMU monitor (HMP) command: in double quotes with ``\\``
    and ``"`` escaped -- unquoted, ``/tmp/a.core 0x40000000 0x1000`` would be a file name
    followed by BEGIN and LENGTH (a partial dump). Paths HMP cannot carry are refused."""
    text = str(path)
    if len(text.encode()) > _MAX_MONITOR_PATH:
        raise UsageError(f"tinyos-dump: the path is longer than QEMU's monitor accepts ({_MAX_MONITOR_PATH} bytes); "
                         "choose a shorter one")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise UsageError("tinyos-dump: the path holds control characters; choose another name")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@command
class TinyOSDump(TinyOSCommand):
    """Save guest RAM as an ELF core (QEMU dump-guest-memory) plus the system registers beside it.

    Usage: tinyos-dump FILE [--force] [--json]
    Example:
      (gdb) tinyos-dump /tmp/fault.core
      core:    /tmp/fault.core
      sidecar: /tmp/fault.core.sysregs.json (TTBR0_EL1, TTBR1_EL1, TCR_EL1, ...)
    Read it offline with gdb_tinyos.aarch64.coredump.CoreTarget("/tmp/fault.core", kernel_elf=...)."""

    name = "tinyos-dump"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", type=local_path, help="where QEMU writes the core (relative: to gdb's working directory)")
        parser.add_argument("--force", action="store_true", help="overwrite an existing file")

    def run(self, s: Session, args: argparse.Namespace) -> DumpResult:
        require_live()
        core = args.file
        quoted = monitor_quoted(core)
        if core.exists() and not args.force:
            raise TargetStateError(f"tinyos-dump: {core} exists; pass --force to overwrite it")
        if core.exists():
            core.unlink()
        values, missing = {}, []
        for name in registers.SYSTEM_REGISTERS:
            try:
                values[name] = s.target.read_register(name)
            except RegisterError:
                missing.append(name)
        reply = gdb.execute(f"monitor dump-guest-memory {quoted}", to_string=True)
        if not core.is_file():
            raise TargetStateError(f"tinyos-dump: QEMU did not write {core} ({reply.strip() or 'no reply'}); "
                                   "check that the directory exists and QEMU may write there")
        sidecar = core.with_name(core.name + SIDECAR_SUFFIX)
        kernel = s.kernel.path
        write_sidecar(sidecar, values, kernel_elf=str(kernel) if kernel else "")
        return DumpResult(str(core), str(sidecar), {k: Address(v) for k, v in values.items()}, missing)

    def format_text(self, r: DumpResult) -> str:
        saved = ", ".join(r.registers) or "none"
        lines = [("core", r.core), ("sidecar", f"{r.sidecar} ({saved})")]
        if r.missing:
            lines.append(("not saved", ", ".join(r.missing) + " (unknown to this target)"))
        return render.key_values(lines)


@dataclass
class CoreOpened:
    core: str
    sidecar: str | None  # None: the dump has no sidecar (virtual reads use the linear map)
    ram: list[list[Address]]  # [start, end) of each RAM segment saved in the dump
    cpus: int
    registers: list[str]  # the system registers the sidecar holds

    def describe(self) -> str:
        ram = ", ".join(f"{start}-{end}" for start, end in self.ram) or "none"
        sidecar = (f"{self.sidecar} ({', '.join(self.registers) or 'no registers'})" if self.sidecar
                   else f"none (no {SIDECAR_SUFFIX}: page-table walks unavailable, kernel statics via the linear map)")
        return "\n".join([
            "tinyos-core: reading the core dump instead of a live target: read-only commands only",
            render.key_values([("core", self.core), ("sidecar", sidecar), ("ram", ram), ("cpus", str(self.cpus))]),
        ])


@command
class TinyOSCore(TinyOSCommand):
    """Read the kernel from a tinyos-dump core instead of a live target (offline).

    Usage: tinyos-core FILE [--json]
    From then on the read-only commands (cow-status, cow-stats, cow-check, pt, va2pa,
    tinyos-info, $cow_refs()...) decode the dump and its FILE.sysregs.json sidecar with
    the loaded kernel ELF; commands that run the kernel refuse in one line. A dump of
    another build is refused. `tinyos-gdb --core FILE` opens gdb this way.
    Example:
      (gdb) tinyos-core /tmp/fork.core
      (gdb) cow-status"""

    name = "tinyos-core"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", type=local_path, help="a core written by tinyos-dump (relative: to gdb's working directory)")

    def run(self, s: Session, args: argparse.Namespace) -> CoreOpened:
        if gdb.selected_inferior().pid != 0:
            raise TargetStateError("gdb is connected to a live target: `disconnect` first, or open the core "
                                   "in another gdb (tinyos-gdb --core FILE)")
        if not args.file.is_file():
            raise UsageError(f"tinyos-core: no file {args.file}")
        core = s.open_core(args.file)
        sidecar = core.path.with_name(core.path.name + SIDECAR_SUFFIX)
        return CoreOpened(
            core=str(core.path), sidecar=str(sidecar) if sidecar.is_file() else None,
            ram=[[Address(seg.pa), Address(seg.pa + seg.size)] for seg in core.segments],
            cpus=len(core.cpus), registers=sorted(core.sysregs),
        )

    def format_text(self, model: CoreOpened) -> str:
        return model.describe()
