"""``va2pa`` and ``pt``: the AArch64 translation layer (:mod:`gdb_tinyos.aarch64`) in gdb.

Both read the translation registers and whole table pages through the session's cached
target (one physical read per table page, shared by every command at the same stop).
``--pid N`` / ``--asid N`` walk another process's tables: the process table
(:class:`~gdb_tinyos.tinyos.state.KernelState`) gives its TTBR0, the live registers the rest.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from ...core import render
from ...aarch64 import FILTERS, KERNEL_HALF, USER_HALF, AddressSpace, TranslationRegime, Translator, Walk, dump_range, make_filter
from ...aarch64.model import Attributes
from ...aarch64.ranges import human_size
from ...aarch64.search import SearchResult, needle_for, search_space
from ...core.errors import BuildIdMismatch, DebugInfoError, LayoutError, SymbolError, TranslationError
from ..args import UsageError
from ..base import TinyOSCommand, TinyOSFunction, gdb_address, gdb_number
from ..registry import command
from ..session import Session
from ..target import require_stopped

if TYPE_CHECKING:  # the decoders behind --pid load lazily, as the debug info does (session.py)
    from ...tinyos.processes import Process

# What stops the process table from being decoded: then `pt` shows the live registers' halves.
_NO_PROCESS_TABLE = (DebugInfoError, LayoutError, SymbolError)


REGIMES = {"el1": 1, "el2": 2, "el3": 3}


def _translator(s: Session, regime: str | None = None) -> Translator:
    """The translator of the regime the CPU is in, or of ``regime`` (el1/el2/el3): this
    stop's shared one, or a private one when the kernel's debug info cannot be read (the
    walk itself needs registers and memory only)."""
    require_stopped()
    el = REGIMES[regime] if regime else None
    try:
        return s.state().translator(el=el)
    except (*_NO_PROCESS_TABLE, BuildIdMismatch, ImportError):
        return Translator(s.target, TranslationRegime.from_target(s.target, el))


def walk_va(s: Session, va: int, root: int | None = None, asid: int | None = None, regime: str | None = None) -> Walk:
    """Walk ``va`` with the live registers, or through the tables at ``root`` (another space)."""
    translator = _translator(s, regime)
    if root is None:
        return translator.walk(va)
    va_range = translator.regime.va_range((va >> 55) & 1).with_root(root, asid)
    return translator.walk_range(va_range, va)


def add_regime_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--regime", choices=sorted(REGIMES),
                        help="the translation regime to use (default: the one the CPU is in; "
                             "el1 shows the kernel's EL1&0 tables from EL2/EL3)")


def add_process_arguments(parser: argparse.ArgumentParser, what: str) -> argparse._MutuallyExclusiveGroup:
    """``--pid``/``--asid``/``--root``: whose lower-half tables to use (one of them)."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--pid", type=gdb_number, help=f"{what} of the live process with this pid")
    which.add_argument("--root", type=gdb_address, help=f"{what} through the L0 table at this PA")
    parser.add_argument("--asid", type=gdb_number,
                        help="the live process with this ASID (with --root: the ASID to report)")
    return which


def check_process_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--pid`` and ``--asid`` each name a process: both at once is a guess at which wins."""
    if args.pid is not None and args.asid is not None:
        parser.error("--pid cannot be combined with --asid; give one of them (--asid goes with --root)")


def chosen_process(s: Session, args: argparse.Namespace) -> Process | None:
    """The process ``--pid``/``--asid`` name (None when neither does); NoSuchProcess if dead."""
    if args.pid is not None:
        return s.state().process(pid=args.pid)
    if args.asid is not None and args.root is None:
        return s.state().process(asid=args.asid)
    return None


@command
class Va2Pa(TinyOSCommand):
    """Translate a virtual address through the page tables, showing every level.

    Usage: va2pa VA [--pid N | --asid N | --root PA [--asid N]] [--regime el1|el2|el3] [--json]
    The walk uses the registers of the regime the CPU is in (EL1&0 at EL0/EL1, EL2 or
    EL3 there; --regime picks another); with that regime's MMU off the answer is flat
    (PA = VA). --pid/--asid walk that process's tables (its TTBR0 from the process table,
    which the kernel must have), --root the tables at an L0 table PA. Kernel addresses
    (upper half) always walk TTBR1.
    Example:
      (gdb) va2pa 0x10000000 --pid 2
      L0 index=0 table=0x40011000 desc=0x0000000040012003 table
      ...
      L3 index=0 table=0x40016000 desc=0x006000004001af47 page
      va 0x10000000 -> pa 0x4001a000 EL1:RW- EL0:RW- PXN UXN normal (Normal WB RA WA) inner nG"""

    name = "va2pa"
    decodes_only = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("va", type=gdb_address, help="virtual address: a number or a gdb expression ($sp)")
        add_process_arguments(parser, "walk the tables")
        add_regime_argument(parser)

    def run(self, s: Session, args: argparse.Namespace) -> Walk:
        check_process_arguments(self.parser, args)
        require_stopped()
        process = chosen_process(s, args)
        if process is not None:
            return s.state().walk(args.va, process)
        return walk_va(s, args.va, args.root, args.asid, args.regime)

    def format_text(self, model: Walk) -> str:
        return model.describe()


@dataclass
class PageTableDump:
    spaces: list[AddressSpace]
    process: Process | None = None  # whose lower half is shown, when known
    search: SearchResult | None = None  # with --search/--bytes/--u64/--u32: the matches
    regime: str = "EL1&0"
    notes: tuple[str, ...] = ()  # what is not shown and why (MMU off, no process table)


@command
class Pt(TinyOSCommand):
    """Dump an address space's mappings, merged into ranges with identical attributes.

    Usage: pt [--pid N | --asid N | --user | --root PA [--asid N]] [--kernel] [--regime el1|el2|el3] [--filter NAME ...] [--range START END] [--json]
    The regime is the one the CPU is in (--regime picks another: `pt --regime el1` shows
    the kernel's tables from EL2/EL3); with its MMU off there are no tables: addresses are
    physical, and pt says so in one line, as va2pa answers flat.
    Default: the running process's user half (TTBR0); when no process runs, the kernel half.
    --pid/--asid: that process's user half; --user: the live TTBR0 half; --root: the lower
    half through the L0 table at PA. --kernel: the kernel half (TTBR1), alone or after the
    chosen user half.
    Filters (all must hold): writable readonly executable noexec user kernel device normal wx
    global nonglobal, and per exception level ur uw ux (EL0) kr kw kx (EL1), ro (writable at neither).
    --search TEXT | --bytes HEX | --u64 V | --u32 V: search the (filtered) ranges' memory
    instead, physically, one read per range (device ranges are never read); --limit N
    matches (default 100, 0 = all).
    Example:
      (gdb) pt --pid 2
      (gdb) pt --kernel --filter kw kx
      (gdb) pt --pid 1 --search "child wrote"
      (gdb) pt --pid 2 --filter uw --u64 0x1111
      (gdb) pt --user --range 0x400000 0x500000 --json"""

    name = "pt"
    decodes_only = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        which = add_process_arguments(parser, "dump the lower half")
        which.add_argument("--user", action="store_true", help="the live TTBR0 (user) half")
        parser.add_argument("--kernel", action="store_true", help="the TTBR1 (kernel) half")
        parser.add_argument("--filter", nargs="+", default=[], choices=sorted(FILTERS), metavar="NAME",
                            help="keep ranges whose attributes match every NAME")
        parser.add_argument("--range", nargs=2, type=gdb_address, metavar=("START", "END"),
                            help="only virtual addresses in [START, END)")
        pattern = parser.add_mutually_exclusive_group()
        pattern.add_argument("--search", metavar="TEXT", help="search the mapped memory for this string (UTF-8)")
        pattern.add_argument("--bytes", metavar="HEX", help="... for these bytes ('de ad be ef')")
        pattern.add_argument("--u64", type=gdb_address, metavar="V", help="... for this little-endian 64-bit value")
        pattern.add_argument("--u32", type=gdb_address, metavar="V", help="... for this little-endian 32-bit value")
        parser.add_argument("--limit", type=gdb_number, default=100, metavar="N", help="at most N matches (0: all)")
        add_regime_argument(parser)

    def run(self, s: Session, args: argparse.Namespace) -> PageTableDump:
        start, end = args.range or (None, None)
        if args.range and start >= end:
            self.parser.error(f"--range: START {start:#x} is not below END {end:#x}")
        check_process_arguments(self.parser, args)
        translator = _translator(s, args.regime)
        regime = translator.regime
        process = chosen_process(s, args)  # a process's own tables exist whatever the CPU's MMU state
        if not regime.mmu_enabled and process is None:
            return PageTableDump([], None, None, regime.name, (
                f"MMU off ({regime.name} regime, SCTLR_EL{regime.el}.M=0): no translation tables are in use; "
                "every address is physical (flat), as `va2pa` shows",))
        options = dict(va_start=start, va_end=end, where=make_filter(args.filter) if args.filter else None)
        live_halves: list[int] = []
        spaces: list[AddressSpace] = []
        notes: list[str] = []
        if process is not None:
            spaces.append(s.state().address_space(process, USER_HALF, **options))
        elif args.root is not None:
            va_range = translator.regime.va_range(USER_HALF).with_root(args.root, args.asid)
            spaces.append(dump_range(translator, va_range, **options))
        elif args.user:
            live_halves.append(USER_HALF)
        elif not args.kernel:
            process, live_halves = _default_choice(s, regime)
            if process is not None:
                spaces.append(s.state().address_space(process, USER_HALF, **options))
        if args.kernel and KERNEL_HALF not in live_halves:
            if not regime.two_ranges:
                raise TranslationError(f"pt: the {regime.name} regime has one VA range (TTBR0_EL{regime.el}); "
                                       "`pt --regime el1 --kernel` shows the kernel's EL1&0 upper half")
            live_halves.append(KERNEL_HALF)
        spaces += [dump_range(translator, regime.va_range(half), **options) for half in live_halves]
        if process is None and not _has_process_table(s):
            notes.append(_missing_process_table(s))
        return PageTableDump(spaces, process, _search(s, spaces, args), regime.name, tuple(notes))

    def format_text(self, model: PageTableDump) -> str:
        if model.search is not None:
            return _search_text(model)
        parts = list(model.notes)
        parts += [_space_text(space, model.process if space.name == "TTBR0" else None) for space in model.spaces]
        return "\n\n".join(parts)


def _search(s: Session, spaces: list[AddressSpace], args: argparse.Namespace) -> SearchResult | None:
    """The matches of the pattern given (None: no pattern), read physically without caching
    (a search may read megabytes that no later command needs)."""
    if all(getattr(args, name) is None for name in ("search", "bytes", "u64", "u32")):
        return None
    if args.limit < 0:
        raise UsageError("pt: --limit must be 0 (all) or more")
    try:
        needle = needle_for(args.search, args.bytes, args.u64, args.u32)
    except ValueError as exc:
        raise UsageError(f"pt: {exc}") from None
    result = SearchResult(needle.hex(" "))
    for space in spaces:
        search_space(s.target.inner, space, needle, limit=args.limit, result=result)
    return result


def _search_text(model: PageTableDump) -> str:
    found = model.search
    owner = f"pid {model.process.pid} ({model.process.name}) " if model.process is not None else ""
    names = "+".join(space.name for space in model.spaces)
    more = f" (stopped at --limit {len(found.hits)})" if found.truncated else ""
    count = f"{len(found.hits)} match" + ("" if len(found.hits) == 1 else "es")
    head = (f"{owner}{names}: {count}{more} of {found.needle} in {found.ranges_searched} ranges, "
            f"{found.bytes_searched} bytes")
    rows = [{"va": f"{h.va:#018x}", "pa": f"{h.pa:#x}", "perms": h.perms, "bytes": h.preview} for h in found.hits]
    parts = [head]
    if rows:
        parts.append(render.table(rows, list(rows[0])))
    parts += [f"skipped: {reason}" for reason in found.skipped]
    return "\n".join(parts)


def _default_choice(s: Session, regime: TranslationRegime) -> tuple[Process | None, list[int]]:
    """The running process (its user half), else the kernel half; every live half when
    the kernel has no process table (or its debug info cannot be read), or outside EL1&0
    (EL2&0 under VHE has two)."""
    halves = [USER_HALF, KERNEL_HALF] if regime.two_ranges else [USER_HALF]
    if regime.el > 1 or not _has_process_table(s):
        return None, halves
    current = s.state().processes().current
    return (current, []) if current is not None and current.live else (None, [KERNEL_HALF])


def _has_process_table(s: Session) -> bool:
    try:
        return s.state().has_processes()
    except _NO_PROCESS_TABLE:
        return False


def _missing_process_table(s: Session) -> str:
    try:
        return s.state().capabilities.missing_line("process-table")
    except _NO_PROCESS_TABLE as exc:
        return f"live PTE: no process table read ({exc})"


_RANGE_COLUMNS = ["va", "pa", "size", "perms", "flags", "memory", "leaves"]


def _attribute_cells(attrs: Attributes) -> list[str]:
    """The perms, flags and memory cells of a range."""
    return [attrs.perms.describe(), _flags(attrs), attrs.memory.kind]


def _flags(attrs: Attributes) -> str:
    return " ".join(n for n, on in (("PXN", attrs.pxn), ("UXN", attrs.uxn), ("nG", attrs.ng), ("AF=0", not attrs.af)) if on)


# A dump's ranges share a few sizes and level sets: each described once.
_size = lru_cache(maxsize=256)(human_size)


@lru_cache(maxsize=16)
def _levels(levels: tuple[int, ...]) -> str:
    return "L" + "/".join(map(str, levels))


def _space_text(space: AddressSpace, process: Process | None) -> str:
    owner = f"pid {process.pid} ({render.printable(process.name)}) " if process is not None else ""
    head = (
        f"{owner}{space.name} root {space.root_table:#x} ASID {space.asid}: {space.granule} granule, "
        f"{space.input_bits}-bit VA, {len(space.ranges)} ranges, {space.leaves} leaves, {len(space.tables)} tables"
    )
    # every cell made here from numbers and the plugin's own words: text as it is
    # A dump has a handful of distinct attributes, each one object (the translator interns
    # them): by identity, as hashing one costs more than describing it.
    described: dict[int, list[str]] = {}
    rows = [[f"{r.va_start:#018x}-{r.va_end:#018x}", f"{r.pa_start:#x}-{r.pa_start + r.size:#x}", _size(r.size),
             *(described.get(id(r.attrs)) or described.setdefault(id(r.attrs), _attribute_cells(r.attrs))),
             f"{r.leaves} {_levels(r.levels)}"] for r in space.ranges]
    parts = [head]
    if rows:
        parts += render.table_lines(rows, _RANGE_COLUMNS)
    parts += [f"problem: {p.describe()}" for p in space.problems]
    return "\n".join(parts)


@command
class Va2PaFunction(TinyOSFunction):
    """$va2pa(VA): the physical address the CPU would access for VA now (error if it faults).

    Example: (gdb) x/2gx $va2pa(0xffff000040080000)  -- with `maint packet Qqemu.PhyMemMode:1`
             (gdb) p/x $va2pa($sp)"""

    name = "va2pa"

    def compute(self, s: Session, va: int) -> int:
        walk = walk_va(s, va)
        if walk.pa is None or walk.fault is not None:  # the same verdict va2pa prints
            reason = walk.fault.describe() if walk.fault else "no mapping"
            raise TranslationError(f"$va2pa: {va:#x} is not mapped: {reason}")
        return walk.pa
