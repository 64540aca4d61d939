"""Where a virtual window lies in physical memory: its physically contiguous runs.

The one answer to "read [va, va + size) through the translation tables" for every reader
that translates in software (:class:`~gdb_tinyos.aarch64.translated.TranslatedTarget`,
the gdb target's host-RAM reads, :class:`~gdb_tinyos.aarch64.coredump.CoreTarget`): they
only differ in where they then read the physical runs.

:func:`physical_runs` answers a window that maps cleanly with ONE dump of it through the
tables (a few runs for megabytes of pages), anything else with a walk per page or block;
both give the same runs. :func:`merged_runs` is the walk's loop, for a caller that
translates one address at a time itself.

Example::

    physical_runs(Translator(target), 0xFFFF_0000_4010_0000, 3 << 20)
    # [(0x40100000, 0x300000)]: three megabytes of the kernel's linear map, one run
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ..core.address import PAGE_SIZE
from ..core.errors import MemoryReadError, TinyOSError, TranslationError
from .ranges import dump_range
from .walker import Translator, canonical

Run = tuple[int, int]  # (pa, length)
# One dump of a window costs about three walks (its first walk, then the dump; scripts/bench's
# synthetic space), so a window of up to this many pages is walked page by page instead.
_FEW_PAGES = 3


def physical_runs(translator: Translator, va: int, size: int) -> list[Run]:
    """``[va, va + size)`` as physically contiguous (pa, length) runs through
    ``translator``'s tables, adjacent runs merged; MemoryReadError naming the window (and
    the first address that does not translate) when some byte does not translate.

    Example (4 KiB pages at va and va + 0x1000 mapped to frames 0x4200_0000, 0x4300_0000)::

        physical_runs(translator, va + 0xFFC, 8)    # [(0x42000FFC, 4), (0x43000000, 4)]
    """
    pages = (va % PAGE_SIZE + size + PAGE_SIZE - 1) // PAGE_SIZE
    if pages > _FEW_PAGES:
        runs = dumped_runs(translator, va, size)
        if runs is not None:
            return runs
    return merged_runs(va, size, partial(_block_at, translator))


def dumped_runs(translator: Translator, va: int, size: int) -> list[Run] | None:
    """The runs of ``[va, va + size)`` from one dump of that window through the tables;
    None unless every byte maps with the access flag set (or TCR.HA) and the dump met no
    problem: the walk per page then decides, and says why."""
    first = translator.walk(va)
    if not first.ok or first.ttbr is None or (va + size - 1) >> 55 & 1 != first.ttbr:
        return None
    va_range = translator.regime.va_range(first.ttbr)
    cva = canonical(va_range, va)
    try:
        space = dump_range(translator, va_range, va_start=cva, va_end=cva + size)
    except TinyOSError:
        return None  # whatever stopped the dump, the walk words it
    if space.problems or not space.ranges:
        return None
    runs: list[Run] = []
    at = cva
    for r in space.ranges:
        if r.va_start != at or not (r.attrs.af or translator.regime.tcr.ha):
            return None
        _extend(runs, r.pa_start, r.size)  # ranges split where attributes change, runs do not
        at = r.va_end
    return runs if at == cva + size else None


def merged_runs(va: int, size: int, locate: Callable[[int], Run]) -> list[Run]:
    """``[va, va + size)`` as merged (pa, length) runs, where ``locate(at)`` gives the PA
    of ``at`` and how many bytes from ``at`` on map contiguously (the rest of its page or
    block), or raises TranslationError; that becomes a MemoryReadError naming the whole
    window, as a failed read of it.

    Example (identity, one page at a time)::

        merged_runs(0x1FFC, 8, lambda at: (at, 0x1000 - at % 0x1000))   # [(0x1FFC, 8)]
    """
    runs: list[Run] = []
    at, end = va, va + size
    while at < end:
        try:
            pa, span = locate(at)
        except TranslationError as exc:
            raise MemoryReadError(f"cannot read {size} bytes at {va:#x}: {exc}", va, size) from None
        n = min(span, end - at)
        _extend(runs, pa, n)
        at += n
    return runs


def _extend(runs: list[Run], pa: int, n: int) -> None:
    """Append ``n`` bytes at ``pa`` to ``runs``, into the last run when they continue it."""
    if runs and runs[-1][0] + runs[-1][1] == pa:
        runs[-1] = (runs[-1][0], runs[-1][1] + n)
    else:
        runs.append((pa, n))


def _block_at(translator: Translator, at: int) -> Run:
    """The PA of ``at`` and the rest of its page or block (all of it maps contiguously);
    a page at a time while the MMU is off."""
    walk = translator.walk_mapped(at)
    block = walk.mapping.size if walk.mapping is not None else PAGE_SIZE
    return walk.pa, block - at % block
