"""Offline target: a QEMU ``dump-guest-memory`` ELF core plus the kernel ELF.

What QEMU 7.2 writes for an aarch64 guest (checked on this project's QEMU): an ``ET_CORE``
ELF with one ``PT_LOAD`` per RAM range at its *physical* address (``p_paddr``; without
``-p``, ``p_vaddr`` equals it) and a ``PT_NOTE`` with, per CPU, ``NT_PRSTATUS`` (x0-x30,
sp, pc, pstate) and ``NT_FPREGSET``. No system register is recorded -- no TTBR0/TTBR1,
TCR, SCTLR or MAIR -- so a page-table walk is impossible from the core alone. The
``tinyos-dump FILE`` gdb command therefore writes a JSON *sidecar* ``FILE.sysregs.json``
with those registers read live at the same stop::

    {"format": "tinyos-sysregs/1", "registers": {"TTBR1_EL1": "0x40091000", ...}}

Virtual reads translate through the page tables when the sidecar has the registers and the
MMU was on (``translate`` hook, see :class:`CoreTarget`); otherwise through the kernel's
linear map (VA = PA + offset from the kernel ELF's load segments) or identity while the MMU
was off.

Example::

    core = CoreTarget("/tmp/x.core", kernel_elf="kernel/.../tinyos")
    core.read_register("pc"); core.read_physical(0x4008_0000, 16)
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from ..core import registers
from ..core.address import PAGE_SIZE
from . import SCTLR, Translator
from .runs import merged_runs, physical_runs
from ..core.errors import DebugInfoError, MemoryReadError, RegisterError, TranslationError
from ..core.target import Target

SIDECAR_SUFFIX = ".sysregs.json"
SIDECAR_FORMAT = "tinyos-sysregs/1"
# The memory-map contract's linear map (kernel VA = PA + KERNEL_OFFSET), for when the
# kernel ELF does not tell it (none given, or linked at its physical address).
KERNEL_OFFSET = 0xFFFF_0000_0000_0000

_NT_PRSTATUS = 1
# struct elf_prstatus for aarch64: pr_pid at 32, pr_reg (34 u64: x0-x30, sp, pc, pstate) at 112.
_PRSTATUS_PID = 32
_PRSTATUS_REGS = 112
_PRSTATUS_SIZE = _PRSTATUS_REGS + 34 * 8


@dataclass(frozen=True)
class Segment:
    """One PT_LOAD: ``size`` bytes of physical memory at ``pa``, stored at ``offset`` in the file."""

    pa: int
    size: int
    offset: int
    filesz: int

    def contains(self, pa: int) -> bool:
        return self.pa <= pa < self.pa + self.size


@dataclass
class CpuState:
    """General registers of one CPU from its NT_PRSTATUS note (gdb's names)."""

    pid: int
    registers: dict[str, int] = field(default_factory=dict)


def read_sidecar(path: str | os.PathLike[str]) -> dict[str, int]:
    """System registers from a ``tinyos-dump`` sidecar, by canonical name."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DebugInfoError(f"cannot read the register sidecar {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise DebugInfoError(f"{path} is not a {SIDECAR_FORMAT} register sidecar")
    try:
        return {registers.canonical(k): int(v, 0) for k, v in data["registers"].items()}
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise DebugInfoError(f"malformed register sidecar {path}: {exc}") from None


def write_sidecar(path: str | os.PathLike[str], values: dict[str, int], **extra: str) -> None:
    """Write ``values`` (canonical register names) as a sidecar; hex strings keep 64 bits exact."""
    doc = {"format": SIDECAR_FORMAT, **extra, "registers": {k: f"{v:#x}" for k, v in values.items()}}
    Path(path).write_text(json.dumps(doc, indent=2) + "\n")


def linear_map_offset(kernel_elf: str | os.PathLike[str]) -> int | None:
    """VA - PA of the kernel's loaded segments (its linear map), None if linked at its PA.

    Every loaded segment of a higher-half kernel is linked at offset + its load address;
    segments that disagree make the ELF unusable for this translation."""
    try:
        with open(kernel_elf, "rb") as f:
            offsets = {
                seg["p_vaddr"] - seg["p_paddr"]
                for seg in ELFFile(f).iter_segments()
                if seg["p_type"] == "PT_LOAD" and seg["p_memsz"]
            }
    except (OSError, ELFError) as exc:
        raise DebugInfoError(f"cannot read the kernel ELF {kernel_elf}: {exc}") from None
    offsets.discard(0)
    if len(offsets) > 1:
        raise DebugInfoError(
            f"{kernel_elf}: loaded segments use different VA-PA offsets "
            f"({', '.join(hex(o) for o in sorted(offsets))}); cannot derive the linear map"
        )
    return offsets.pop() if offsets else None


def kernel_linear_offset(kernel_elf: str | os.PathLike[str] | None) -> int:
    """The kernel linear map's VA - PA: from ``kernel_elf``'s load segments, else KERNEL_OFFSET."""
    offset = linear_map_offset(kernel_elf) if kernel_elf is not None else None
    return KERNEL_OFFSET if offset is None else offset


class CoreTarget(Target):
    """Physical memory and CPU registers of a QEMU guest-memory core.

    ``sysregs``: system registers by canonical name; default: the sidecar beside the core
    if present. With TTBR1/TCR known and the MMU on, virtual reads walk the page tables
    (``translate(target, va) -> pa``; default: one :class:`gdb_tinyos.aarch64.Translator`
    kept for the core's lifetime, so registers and each table are read once); without
    them they use the kernel linear map.
    ``cpu`` selects which NT_PRSTATUS (QEMU writes one per vCPU) registers come from."""

    def __init__(
        self,
        core: str | os.PathLike[str],
        kernel_elf: str | os.PathLike[str] | None = None,
        sysregs: dict[str, int] | None = None,
        translate: Callable[[Target, int], int] | None = None,
        linear_offset: int | None = None,
        cpu: int = 0,
    ) -> None:
        super().__init__()
        self.path = Path(core)
        self._file = open(self.path, "rb")
        try:
            self._map = _map_file(self._file, self.path)
            self.segments, self.cpus = _parse_core(self._file, self.path)
        except BaseException:
            self.close()
            raise
        if not self.cpus:
            self.close()
            raise DebugInfoError(f"{self.path} has no NT_PRSTATUS note: not a QEMU guest-memory core")
        if not 0 <= cpu < len(self.cpus):
            self.close()
            raise DebugInfoError(f"{self.path} has {len(self.cpus)} CPU(s); there is no CPU {cpu}")
        self.cpu = cpu
        sidecar = self.path.with_name(self.path.name + SIDECAR_SUFFIX)
        if sysregs is None and sidecar.is_file():
            sysregs = read_sidecar(sidecar)
        self.sysregs = {registers.canonical(k): v for k, v in (sysregs or {}).items()}
        self.translate = translate
        self._translator: Translator | None = None  # built on the first walk: the core never changes
        self.linear_offset = kernel_linear_offset(kernel_elf) if linear_offset is None else linear_offset

    def close(self) -> None:
        if getattr(self, "_map", None) is not None:
            self._map.close()
            self._map = None
        self._file.close()

    def __enter__(self) -> CoreTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- memory ------------------------------------------------------------------------

    def read_physical(self, pa: int, size: int) -> bytes:
        if size < 0 or pa < 0:
            raise MemoryReadError(f"cannot read {size} bytes at physical {pa:#x}", pa, size)
        self.stats.count(size)
        out = bytearray()
        addr, end = pa, pa + size
        while addr < end:
            seg = next((s for s in self.segments if s.contains(addr)), None)
            if seg is None:
                raise MemoryReadError(
                    f"cannot read {size} bytes at physical {pa:#x}: {addr:#x} is not in the core's RAM", pa, size
                )
            n = min(end, seg.pa + seg.size) - addr
            rel = addr - seg.pa
            if rel + n > seg.filesz:
                raise MemoryReadError(
                    f"cannot read {size} bytes at physical {pa:#x}: {addr:#x} was not saved in the core", pa, size
                )
            out += self._map[seg.offset + rel : seg.offset + rel + n]
            addr += n
        return bytes(out)

    def read_virtual(self, va: int, size: int) -> bytes:
        if not self._walks_tables():
            return self.read_physical(self.virtual_to_physical(va), size)
        # Through page tables, consecutive pages need not be physically consecutive.
        if self.translate is None:
            runs = physical_runs(self._walker(), va, size)
        else:  # the hook knows nothing of blocks: it is asked once per page
            runs = merged_runs(va, size, self._hook_page)
        return b"".join(self.read_physical(pa, n) for pa, n in runs)

    def _hook_page(self, va: int) -> tuple[int, int]:
        """The ``translate`` hook's PA for ``va`` and the rest of its page."""
        return self.translate(self, va), PAGE_SIZE - va % PAGE_SIZE

    def virtual_to_physical(self, va: int) -> int:
        """The PA behind ``va``: page tables if possible, else linear map, else identity."""
        if not self.mmu_on():
            return va
        if self._walks_tables():
            try:
                return self.translate(self, va) if self.translate else self._walker().translate(va)
            except TranslationError as exc:
                raise MemoryReadError(str(exc), va) from None
        if va >= self.linear_offset:
            return va - self.linear_offset
        raise MemoryReadError(
            f"cannot translate {va:#x}: the core has no page-table registers (take it with `tinyos-dump`) "
            "and the address is outside the kernel linear map",
            va,
        )

    def _walker(self) -> Translator:
        if self._translator is None:
            self._translator = Translator(self)
        return self._translator

    def _walks_tables(self) -> bool:
        return self.mmu_on() and "TTBR1_EL1" in self.sysregs and "TCR_EL1" in self.sysregs

    def mmu_on(self) -> bool:
        """SCTLR_EL1.M from the sidecar; assumed on (a running kernel) when unknown."""
        sctlr = self.sysregs.get("SCTLR_EL1")
        return True if sctlr is None else SCTLR.decode(sctlr).mmu

    # -- registers -----------------------------------------------------------------------

    def read_register(self, name: str) -> int:
        general = self.cpus[self.cpu].registers
        found = registers.resolve(name, general.keys())
        if found is not None:
            return general[found]
        found = registers.resolve(name, self.sysregs.keys())
        if found is not None:
            return self.sysregs[found]
        hint = "" if self.sysregs else f" (no {SIDECAR_SUFFIX} sidecar: QEMU's core notes hold only x0-x30, sp, pc, pstate)"
        raise RegisterError(f"register {name} is not in the core {self.path.name}{hint}")


def _map_file(f, path: Path) -> mmap.mmap:
    try:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except ValueError:  # mmap refuses empty files
        raise DebugInfoError(f"{path} is empty: not a core file") from None


def _parse_core(f, path: Path) -> tuple[list[Segment], list[CpuState]]:
    try:
        elf = ELFFile(f)
        if elf.header["e_type"] != "ET_CORE" or elf.header["e_machine"] != "EM_AARCH64":
            raise DebugInfoError(
                f"{path} is not an AArch64 core file ({elf.header['e_type']}, {elf.header['e_machine']})"
            )
        segments, cpus = [], []
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_memsz"]:
                segments.append(Segment(seg["p_paddr"], seg["p_memsz"], seg["p_offset"], seg["p_filesz"]))
            elif seg["p_type"] == "PT_NOTE":
                cpus += [_cpu_state(n["n_desc"], path) for n in seg.iter_notes() if n["n_type"] in ("NT_PRSTATUS", _NT_PRSTATUS)]
    except ELFError as exc:
        raise DebugInfoError(f"{path} is not a readable ELF core: {exc}") from None
    return sorted(segments, key=lambda s: s.pa), cpus


def _cpu_state(desc: bytes | str, path: Path) -> CpuState:
    raw = desc if isinstance(desc, bytes) else desc.encode("latin-1")
    if len(raw) < _PRSTATUS_SIZE:
        raise DebugInfoError(f"{path}: NT_PRSTATUS note of {len(raw)} bytes is too short for AArch64 ({_PRSTATUS_SIZE})")
    (pid,) = struct.unpack_from("<I", raw, _PRSTATUS_PID)
    values = struct.unpack_from("<34Q", raw, _PRSTATUS_REGS)
    return CpuState(pid, dict(zip(registers.GENERAL_REGISTERS, values, strict=True)))
