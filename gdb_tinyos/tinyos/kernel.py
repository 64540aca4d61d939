"""One decoded view of a running TinyOS kernel: the facade every command and check uses.

:class:`KernelView` joins the debug info (where things are, how they are laid out) with a
:class:`~gdb_tinyos.core.target.Target` (the bytes now). Locations are resolved once per ELF;
every decode reads through the target, whose cache the gdb adapter clears at each stop.

Example::

    view = KernelView(DebugInfo.open(elf), target)
    cow = view.cow()                       # CowManagerState
    for p in view.processes().live():
        space = view.address_space(p)      # the process's TTBR0 half, walked from memory
"""

from __future__ import annotations

from functools import cached_property

from ..aarch64 import KERNEL_HALF, USER_HALF, AddressSpace, TranslationRegime, Translator, Walk, dump_range
from .cow import CowManagerState, ManagerLocation, locate_manager, read_manager
from ..debuginfo import DebugInfo
from ..core.errors import NoSuchProcess, TranslationError
from .frames import FrameAllocatorState, FramesLocation, locate_frames, read_frames
from .processes import Process, ProcessesLocation, ProcessTable, locate_processes, read_processes
from ..core.target import Target

__all__ = ["KERNEL_HALF", "USER_HALF", "KernelView"]


class KernelView:
    """The kernel's state behind ``info``'s symbols, read through ``target`` at each call."""

    def __init__(self, info: DebugInfo, target: Target) -> None:
        self.info = info
        self.target = target

    # -- locations (from DWARF, once) ---------------------------------------------------
    @cached_property
    def cow_location(self) -> ManagerLocation:
        """Where the COW manager lives and how it is laid out (also what the printers decode)."""
        return locate_manager(self.info)

    @property
    def manager_size(self) -> int:
        """``size_of::<CowManager>()`` from DWARF: what ``metadata_memory_bytes`` should hold."""
        return self.cow_location.found.struct.size

    @cached_property
    def _frames_at(self) -> FramesLocation:
        return locate_frames(self.info)

    @cached_property
    def _processes_at(self) -> ProcessesLocation:
        return locate_processes(self.info)

    # -- state (from memory, each call) ----------------------------------------------------
    def frames(self) -> FrameAllocatorState:
        return read_frames(self.target, self._frames_at)

    def cow(self) -> CowManagerState:
        return read_manager(self.target, self.cow_location, ram=self.frames().ram)

    def processes(self) -> ProcessTable:
        return read_processes(self.target, self._processes_at)

    def process(self, *, pid: int | None = None, asid: int | None = None) -> Process:
        """The live process with ``pid`` (or else ``asid``); NoSuchProcess, listing the live
        pids, when there is none or it has no address space any more."""
        table = self.processes()
        if pid is not None:
            found, what = table.by_pid(pid), f"pid {pid}"
        elif asid is not None:
            found, what = table.by_asid(asid), f"ASID {asid}"
        else:
            raise ValueError("give a pid or an ASID")
        live = ", ".join(f"{p.pid} (ASID {p.asid})" for p in table.live()) or "none"
        if found is None:
            raise NoSuchProcess(f"no process has {what}; live pids: {live}")
        if not found.live:
            raise NoSuchProcess(f"pid {found.pid} is {found.state.lower()}: it has no address space; live pids: {live}")
        return found

    def regime(self) -> TranslationRegime:
        return TranslationRegime.from_target(self.target)

    def regime_for(self, process: Process | None) -> TranslationRegime:
        """The live registers, with TTBR0 replaced by ``process``'s table and ASID
        (the kernel half and TCR/MAIR/SCTLR are shared by every process)."""
        regime = self.regime()
        if process is None:
            return regime
        if not process.live:
            raise TranslationError(f"pid {process.pid} is {process.state.lower()}: it has no address space")
        return regime.with_ttbr0((process.asid << 48) | process.ttbr0)

    def walk(self, va: int, process: Process | None = None) -> Walk:
        return Translator(self.target, self.regime_for(process)).walk(va)

    def address_space(self, process: Process | None = None, half: int = USER_HALF, **options) -> AddressSpace:
        """The merged dump of ``process``'s user half (or the kernel half). User pages must
        map RAM; the kernel half may also map the devices below RAM (QEMU virt's MMIO)."""
        regime = self.regime_for(process)
        start, end = self.frames().ram
        known = [(start, end)] if half == USER_HALF else [(0, end)]
        return dump_range(Translator(self.target, regime), regime.va_range(half),
                          physical_ranges=known, **options)
