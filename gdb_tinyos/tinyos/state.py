"""A TinyOS kernel as the debugger sees it: :class:`KernelModel` per ELF, :class:`KernelState`
per stop.

:class:`KernelModel` holds what the ELF says once: the debug info, the capabilities found in
it, the contract's constants, where each structure lives. :class:`KernelState` is one stop's
snapshot: the manager, the allocator, the process table, the translation regime, one
translator with its table cache and the frame -> PTE index, each decoded on first use and
then shared by every command, function, printer and MI command until the gdb adapter drops
the state (stop, memory or register change, new objfile, inferior call). ``decodes`` counts
what was decoded, so a test can prove nothing is decoded twice at one stop.

Kernel statics are read through a :class:`~gdb_tinyos.aarch64.translated.TranslatedTarget`:
at their load address from the ELF, or through the kernel's own tables -- the same bytes
at EL0, at EL1, in boot code with the MMU off.

Example::

    model = KernelModel(DebugInfo.open(elf))
    state = KernelState(model, target)            # target: registers + physical memory
    state.cow().pages, state.processes().live()
    state.cow()                                   # the same object: decoded once per stop
    state.notes("process-table")                  # one line per missing piece / MMU off
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from ..aarch64 import KERNEL_HALF, USER_HALF, AddressSpace, TranslationRegime, Translator, Walk, dump_range
from ..aarch64.regime import current_el
from ..aarch64.translated import TranslatedTarget
from ..core.errors import NoSuchProcess, RegisterError, TranslationError
from ..core.target import Target
from ..debuginfo import DebugInfo
from .capabilities import Capabilities, discover
from .contract import read_contract
from .conventions import PIDS_PARALLEL, Conventions
from .cow import CowManagerState, ManagerLocation, decode_manager, locate_manager
from .cow_columns import CowSummary, summarise_manager
from .events import EventKinds
from .frames import FrameAllocatorState, FramesLocation, locate_frames, read_frames, read_ram
from .mappings import MappingIndex, Pte, PteLookup
from .processes import Process, ProcessesLocation, ProcessTable, locate_processes, read_processes

__all__ = ["KERNEL_HALF", "USER_HALF", "KernelModel", "KernelState"]

# Single-VA walks per process before cow-status indexes the process's whole user half.
WALK_BUDGET = 128


class KernelModel:
    """What one kernel ELF offers, resolved once: capabilities, contract, locations.

    ``symbols`` maps capability names to symbol names set by the user; ``conventions``
    maps convention names (refs, pids, maintained, efficiency) to values set by the user."""

    def __init__(self, info: DebugInfo, symbols: Mapping[str, str] | None = None,
                 conventions: Mapping[str, Any] | None = None) -> None:
        self.info = info
        self.symbol_overrides = dict(symbols or {})
        self.convention_overrides = {k: v for k, v in (conventions or {}).items() if v not in (None, "auto")}

    @cached_property
    def capabilities(self) -> Capabilities:
        return discover(self.info, self.symbol_overrides)

    @cached_property
    def contract(self) -> dict[str, int]:
        return read_contract(self.info, self.capabilities)

    @cached_property
    def event_kinds(self) -> EventKinds:
        """The debug events' numbers (MissingCapability without a contract)."""
        return EventKinds.from_contract(self.contract)

    @cached_property
    def cow_location(self) -> ManagerLocation:
        """Where the COW manager lives and how it is laid out (also what the printers decode)."""
        return locate_manager(self.info, self.capabilities.symbol("cow-manager"))

    @property
    def manager_size(self) -> int:
        """``size_of::<CowManager>()`` from DWARF: what ``metadata_memory_bytes`` should hold."""
        return self.cow_location.found.struct.size

    @cached_property
    def frames_location(self) -> FramesLocation:
        return locate_frames(self.info, self.capabilities.symbol("frame-allocator"))

    @cached_property
    def processes_location(self) -> ProcessesLocation:
        caps = self.capabilities
        current = caps.get("current-process").symbol
        return locate_processes(self.info, caps.symbol("process-table"), current)

    def pids_parallel(self) -> bool | None:
        """How to pair sharer pids with VAs when decoding, if the kernel or the user said."""
        if "pids" in self.convention_overrides:
            return self.convention_overrides["pids"] == PIDS_PARALLEL
        if "cow_pids_parallel" in self.contract:
            return bool(self.contract["cow_pids_parallel"])
        return None


class KernelState:
    """One stop of one kernel: everything decoded lazily, once.

    ``target`` gives registers and physical memory (virtual reads are translated here)."""

    def __init__(self, model: KernelModel, target: Target) -> None:
        self.model = model
        self.memory = target if isinstance(target, TranslatedTarget) else TranslatedTarget(target, model.info.image())
        self.decodes: Counter[str] = Counter()
        self._cache: dict[Any, Any] = {}

    @property
    def info(self) -> DebugInfo:
        return self.model.info

    @property
    def capabilities(self) -> Capabilities:
        return self.model.capabilities

    @property
    def target(self) -> Target:
        return self.memory

    def _once(self, key: Any, build):
        if key not in self._cache:
            self.decodes[key if isinstance(key, str) else " ".join(map(str, key))] += 1
            with self.memory.batch():  # a decode's reads, e.g. every table page of a process
                self._cache[key] = build()
        return self._cache[key]

    # -- the CPU ------------------------------------------------------------------------
    def el(self) -> int | None:
        """The exception level the CPU stopped at (None when the target has no PSTATE)."""
        try:
            return self._once("el", lambda: current_el(self.memory))
        except RegisterError:
            return None

    def mmu_on(self) -> bool | None:
        """Whether the kernel's EL1&0 translation is on (off at reset and in early boot)."""
        return self.memory.mmu_on  # not memoised here: unknown now may be known later

    def regime(self, el: int | None = None) -> TranslationRegime:
        """The regime the CPU is in (``el`` None), or the one of ``el``."""
        return self._once(("regime", el), lambda: TranslationRegime.from_target(self.memory, el))

    def notes(self, *pieces: str) -> tuple[str, ...]:
        """One line for each missing piece among ``pieces``, and one when the MMU is off."""
        lines = [line for p in pieces if (line := self.capabilities.missing_line(p))]
        if self.mmu_on() is False:
            lines.append("MMU off: statics read at their load addresses from the ELF")
        return tuple(lines)

    # -- kernel structures ----------------------------------------------------------------
    def frames(self) -> FrameAllocatorState:
        return self._once("frames", lambda: read_frames(self.memory, self.model.frames_location))

    def ram(self) -> tuple[int, int] | None:
        """Physical RAM (start, end) from the frame allocator, None when the kernel has none
        (its header only, unless the whole allocator was read at this stop)."""
        if not self.capabilities.has("frame-allocator"):
            return None
        if "frames" in self._cache:
            return self._cache["frames"].ram
        return self._once("ram", lambda: read_ram(self.memory, self.model.frames_location))

    def cow_bytes(self) -> bytes:
        """The manager static's bytes: one read per stop, shared by the summary and the decode."""
        self.capabilities.require("cow-manager")
        where = self.model.cow_location
        return self._once("cow-bytes", lambda: self.memory.read_virtual(where.address, where.size))

    def cow(self) -> CowManagerState:
        """The manager with every page decoded (what a per-page command needs)."""
        self.capabilities.require("cow-manager")
        return self._once("cow", lambda: decode_manager(self.cow_bytes(), self.model.cow_location, self.ram(),
                                                           self.model.pids_parallel()))

    def cow_summary(self) -> CowSummary:
        """The manager's totals and per-page columns, without a page object per slot (the
        full decode's when it was already made); pages decoded on demand."""
        def summarise() -> CowSummary:
            if "cow" in self._cache:
                return CowSummary.of_manager(self._cache["cow"])
            return summarise_manager(self.cow_bytes(), self.model.cow_location, self.ram(), self.model.pids_parallel())
        return self._once("cow-summary", summarise)

    def conventions(self) -> Conventions:
        def detect() -> Conventions:
            cow = self.cow_summary()
            return Conventions.detect(contract=self.model.contract, columns=(cow.refs, cow.vas_lens, cow.pids_lens),
                                      statistics=cow.statistics, overrides=self.model.convention_overrides)
        return self._once("conventions", detect)

    def processes(self) -> ProcessTable:
        return self._once("processes", lambda: read_processes(self.memory, self.model.processes_location))

    def has_processes(self) -> bool:
        return self.capabilities.has("process-table")

    def process(self, *, pid: int | None = None, asid: int | None = None) -> Process:
        """The live process with ``pid`` (or else ``asid``); NoSuchProcess, listing the live
        pids, when there is none or it has no address space any more."""
        self.capabilities.require("process-table", f"pid {pid}" if pid is not None else f"ASID {asid}")
        table = self.processes()
        if pid is not None:
            found, what = table.by_pid(pid), f"pid {pid}"
        elif asid is not None:
            found, what = table.by_asid(asid), f"ASID {asid}"
        else:
            raise ValueError("give a pid or an ASID")
        if found is not None and found.live:
            return found
        live = ", ".join(f"{p.pid} (ASID {p.asid})" for p in table.live()) or "none"
        if found is None:
            raise NoSuchProcess(f"no process has {what}; live pids: {live}")
        raise NoSuchProcess(f"pid {found.pid} is {found.state.lower()}: it has no address space; live pids: {live}")

    # -- translation ------------------------------------------------------------------------
    def regime_for(self, process: Process | None) -> TranslationRegime:
        """The EL1&0 registers, with TTBR0 replaced by ``process``'s table and ASID (the
        kernel half and TCR/MAIR/SCTLR are shared by every process); the CPU's own regime
        when ``process`` is None."""
        if process is None:
            return self.regime()
        if not process.live:
            raise TranslationError(f"pid {process.pid} is {process.state.lower()}: it has no address space")
        return self.regime(1).with_ttbr0((process.asid << 48) | process.ttbr0)

    def translator(self, process: Process | None = None, el: int | None = None) -> Translator:
        """One translator (one table cache) per address space per stop: ``process``'s (EL1&0
        with its TTBR0), else the regime of ``el``, else the CPU's own regime."""
        if process is not None:
            key = ("translator", process.pid)
            return self._once(key, lambda: Translator(self.memory, self.regime_for(process)))
        return self._once(("translator", None, el), lambda: Translator(self.memory, self.regime(el)))

    def walk(self, va: int, process: Process | None = None) -> Walk:
        return self.translator(process).walk(va)

    def address_space(self, process: Process | None = None, half: int = USER_HALF, **options) -> AddressSpace:
        """The merged dump of ``process``'s user half (or the kernel half). User pages must
        map RAM; the kernel half may also map the devices below RAM (QEMU virt's MMIO)."""
        options = {k: v for k, v in options.items() if v is not None}  # pt passes its unset options
        translator = self.translator(process)
        ram = self.ram()
        known = None if ram is None else ([ram] if half == USER_HALF else [(0, ram[1])])
        build = lambda: dump_range(translator, translator.regime.va_range(half), physical_ranges=known, **options)  # noqa: E731
        if options:
            return build()
        return self._once(("space", process.pid if process is not None else None, half), build)

    # -- who maps what ------------------------------------------------------------------
    def mappings(self) -> MappingIndex:
        """Every live process's user PTEs, indexed by frame and by page (once per stop)."""
        self.capabilities.require("process-table", "live PTEs")
        return self._once("mappings", lambda: MappingIndex.build(
            {p.pid: self.address_space(p) for p in self.processes().live()}))

    def pte_lookup(self) -> PteLookup | None:
        """``lookup(pid, va) -> Pte`` in the process's own tables (None without a process table)."""
        if not self.has_processes():
            return None
        return self._once("pte-lookup", lambda: PteLookup(
            walk=lambda pid, va: self.walk(va, self.processes().by_pid(pid)),
            space=lambda pid: self.address_space(self.processes().by_pid(pid)),
            live=self._not_live, walk_budget=WALK_BUDGET,
            index=self._cache.get("mappings")))

    def pte(self, pid: int, va: int) -> Pte:
        return self.pte_lookup()(pid, va)

    def _not_live(self, pid: int) -> str | None:
        process = self.processes().by_pid(pid)
        if process is not None and process.live:
            return None
        return f"pid {pid} is not live ({'no such process' if process is None else process.state.lower()})"
