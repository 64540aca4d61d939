"""``va2pa`` and ``pt``: the AArch64 translation layer (:mod:`gdb_tinyos.aarch64`) in gdb.

Both read the translation registers and whole table pages through the session's cached
target (one physical read per table page, shared by every command at the same stop).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from .. import render
from ..aarch64 import FILTERS, AddressSpace, Translator, Walk, dump_range, make_filter
from ..aarch64.ranges import human_size
from ..errors import TranslationError
from ..target import Target
from .base import TinyOSCommand, TinyOSFunction, gdb_address
from .registry import command
from .session import Session
from .target import require_stopped


def _translator(target: Target) -> Translator:
    require_stopped()
    return Translator(target)


def walk_va(target: Target, va: int, root: int | None = None, asid: int | None = None) -> Walk:
    """Walk ``va`` with the live registers, or through the tables at ``root`` (another space)."""
    translator = _translator(target)
    if root is None:
        return translator.walk(va)
    va_range = translator.regime.va_range((va >> 55) & 1).with_root(root, asid)
    return translator.walk_range(va_range, va)


@command
class Va2Pa(TinyOSCommand):
    """Translate a virtual address through the page tables, showing every level.

    Usage: va2pa VA [--root PA [--asid N]] [--json]
    The walk uses the CPU's TCR/SCTLR/MAIR/TTBRs; --root walks another address space's
    tables (an L0 table PA, e.g. a process's TTBR0) with the same configuration.
    Example:
      (gdb) va2pa 0xffff000040080000
      L0 index=0 table=0x40091000 desc=0x0000000040092003 table
      ...
      va 0xffff000040080000 -> pa 0x40080000 EL1:R-X EL0:--- UXN normal (...)"""

    name = "va2pa"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("va", type=gdb_address, help="virtual address: a number or a gdb expression ($sp)")
        parser.add_argument("--root", type=gdb_address, help="walk the tables at this PA instead of the live TTBR")
        parser.add_argument("--asid", type=int, help="with --root: the ASID to report")

    def run(self, s: Session, args: argparse.Namespace) -> Walk:
        return walk_va(s.target, args.va, args.root, args.asid)

    def format_text(self, model: Walk) -> str:
        return model.describe()


@dataclass
class PageTableDump:
    spaces: list[AddressSpace]


@command
class Pt(TinyOSCommand):
    """Dump an address space's mappings, merged into ranges with identical attributes.

    Usage: pt [--kernel | --user | --root PA [--asid N]] [--filter NAME ...] [--range START END] [--json]
    Without a choice both halves are shown: TTBR0 (user) and TTBR1 (kernel).
    Filters (all must hold): writable readonly executable noexec user kernel device normal wx global nonglobal.
    Example:
      (gdb) pt --kernel --filter writable
      (gdb) pt --user --range 0x400000 0x500000 --json"""

    name = "pt"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--kernel", action="store_true", help="only the TTBR1 (kernel) half")
        which.add_argument("--user", action="store_true", help="only the TTBR0 (user) half")
        which.add_argument("--root", type=gdb_address, help="dump the lower half through the L0 table at this PA")
        parser.add_argument("--asid", type=int, help="with --root: the ASID to report")
        parser.add_argument("--filter", nargs="+", default=[], choices=sorted(FILTERS), metavar="NAME",
                            help="keep ranges whose attributes match every NAME")
        parser.add_argument("--range", nargs=2, type=gdb_address, metavar=("START", "END"),
                            help="only virtual addresses in [START, END)")

    def run(self, s: Session, args: argparse.Namespace) -> PageTableDump:
        translator = _translator(s.target)
        halves = [1] if args.kernel else [0] if (args.user or args.root is not None) else [0, 1]
        start, end = args.range or (None, None)
        where = make_filter(args.filter) if args.filter else None
        spaces = []
        for which in halves:
            va_range = translator.regime.va_range(which)
            if args.root is not None:
                va_range = va_range.with_root(args.root, args.asid)
            spaces.append(dump_range(translator, va_range, va_start=start, va_end=end, where=where))
        return PageTableDump(spaces)

    def format_text(self, model: PageTableDump) -> str:
        return "\n\n".join(_space_text(space) for space in model.spaces)


def _space_text(space: AddressSpace) -> str:
    head = (
        f"{space.name} root {space.root_table:#x} ASID {space.asid}: {space.granule} granule, "
        f"{space.input_bits}-bit VA, {len(space.ranges)} ranges, {space.leaves} leaves, {len(space.tables)} tables"
    )
    rows = [
        {
            "va": f"{r.va_start:#018x}-{r.va_end:#018x}",
            "pa": f"{r.pa_start:#x}-{r.pa_end:#x}",
            "size": human_size(r.size),
            "perms": r.attrs.perms.describe(),
            "flags": " ".join(n for n, on in (("PXN", r.attrs.pxn), ("UXN", r.attrs.uxn), ("nG", r.attrs.ng),
                                             ("AF=0", not r.attrs.af)) if on),
            "memory": r.attrs.memory.kind,
            "leaves": f"{r.leaves} L{'/'.join(str(level) for level in r.levels)}",
        }
        for r in space.ranges
    ]
    parts = [head]
    if rows:
        parts.append(render.table(rows, list(rows[0])))
    parts += [f"problem: {p.describe()}" for p in space.problems]
    return "\n".join(parts)


@command
class Va2PaFunction(TinyOSFunction):
    """$va2pa(VA): the physical address the CPU would access for VA now (error if it faults).

    Example: (gdb) x/2gx $va2pa(0xffff000040080000)  -- with `maint packet Qqemu.PhyMemMode:1`
             (gdb) p/x $va2pa($sp)"""

    name = "va2pa"

    def compute(self, s: Session, va: int) -> int:
        walk = walk_va(s.target, va)
        if walk.pa is None:
            reason = walk.fault.describe() if walk.fault else "no mapping"
            raise TranslationError(f"$va2pa: {va:#x} is not mapped: {reason}")
        return walk.pa

