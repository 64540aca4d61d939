"""The COW manager's totals straight from the static's bytes, without a page object per slot.

``cow-stats``, ``$cow_refs`` and the conventions need only a few numbers per occupied
slot (its frame, ref_count and the sharer lists' lengths), not 20 000 ``CowPage`` and
40 000 ``Sharer`` objects. :func:`summarise_manager` takes those fields as columns -- one
strided slice or ``memoryview`` cast per field over the whole ``cow_pages`` array, the
occupied slots picked by one ``itemgetter`` -- and checks every column the way the full
decoder checks each slot. When anything looks wrong it runs the full decoder instead, so
a corrupt manager fails with the decoder's own error and a clean one gives the same
figures either way (:meth:`CowSummary.of_manager` derives them from a full decode; a
property test holds the two equal).

Full pages stay available lazily: :meth:`CowSummary.pages_at` decodes only the occupied
slots asked for (``cow-status --limit 20`` decodes 20).

Example::

    summary = summarise_manager(data, where, ram=(0x4000_0000, 0x4800_0000))
    summary.tracked, summary.total_refs, summary.refs_of(0x4000c000)
    summary.pages_at(range(20))      # the first 20 tracked pages, decoded now
"""

from __future__ import annotations

import operator
from itertools import chain, repeat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ..core.address import PAGE_SIZE, Address, page_base
from ..core.columns import interleaved
from ..core.errors import CorruptStructure
from ..debuginfo import decode, plain
from .conventions import saved_pages
from .cow import (
    _INT_CODES,
    CowManagerState,
    CowPage,
    CowStatistics,
    ManagerLocation,
    _column,
    _occupied_slots,
    _page,
    decode_manager,
    permissions_name,
)

PageDecoder = Callable[[Sequence[int]], list[CowPage]]

# Up to this many pages, their sharers come from decoding them (a handful of slots);
# beyond, from strided columns of the whole array.
_FEW_PAGES = 64


class SharerColumns(NamedTuple):
    """The recorded sharers of some pages, in page order then list order: for each, the
    position of its page among the pages asked for, its VA and its pid (None: the kernel's
    pid set cannot say); and how many sharers each page has."""

    pages: list[int]
    vas: list[int]
    pids: list[int | None]
    counts: list[int]


SharerReader = Callable[[Sequence[int]], SharerColumns]


@dataclass(frozen=True)
class CowSummary:
    """The manager at one stop as columns over its occupied slots (in slot order): what
    every total is computed from. ``pages_at`` decodes full pages on demand."""

    symbol: str
    address: Address
    initialised: bool
    lock_held: bool | None
    capacity: int
    active_pages: int = 0
    statistics: CowStatistics | None = None
    slots: tuple[int, ...] = ()
    pas: tuple[int, ...] = ()
    refs: tuple[int, ...] = ()
    vas_lens: tuple[int, ...] = ()  # recorded mappings per page (virtual_addresses.len)
    pids_lens: tuple[int, ...] = ()
    cow_flags: tuple[int, ...] = ()  # is_cow per page (0 or 1)
    original: tuple[str, ...] = ()  # original_permissions per page, by name
    # Every sharer's pid is known: index-paired lists (from a full decode: any pairing).
    paired: bool = field(default=False, compare=False)
    decoder: PageDecoder | None = field(default=None, compare=False, repr=False)
    reader: SharerReader | None = field(default=None, compare=False, repr=False)

    @property
    def tracked(self) -> int:
        """Occupied slots."""
        return len(self.slots)

    @property
    def total_refs(self) -> int:
        return sum(self.refs)

    @property
    def saved_bytes(self) -> int:
        """Σ (ref_count − 1) × 4096 (see :attr:`CowManagerState.saved_bytes`)."""
        return saved_pages(self.refs, 1) * PAGE_SIZE

    def refs_of(self, pa: int) -> int:
        """The ref_count of the tracked frame holding ``pa`` (the first slot tracking it), 0
        when none does."""
        try:
            return self.refs[self.pas.index(page_base(pa))]
        except ValueError:
            return 0

    def sharer_pages(self) -> tuple[list[tuple[int, int, int]], list[int]] | None:
        """(pid, VA page, frame) of every recorded sharer and the index of its page (in
        the same order), when every sharer's pid is known; None when not (a pid set that
        cannot be paired: see :func:`~.cow.pair_sharers`)."""
        if not self.paired:
            return None
        pages, vas, pids, _ = self.sharers(range(self.tracked))
        return list(zip(pids, map(_PAGE_MASK.__and__, vas), map(self.pas.__getitem__, pages))), pages

    def sharers(self, indices: Sequence[int]) -> SharerColumns:
        """The recorded sharers of the ``indices``-th occupied slots, as columns: from the
        array's columns when there are many, else from decoding those pages."""
        if self.reader is not None and len(indices) > _FEW_PAGES:
            return self.reader(indices)
        return sharers_of(self.pages_at(indices))

    def pages_at(self, indices: Sequence[int]) -> list[CowPage]:
        """The full pages of the ``indices``-th occupied slots (0 = the first occupied)."""
        if self.decoder is None:
            raise ValueError("this summary has no page decoder")
        return self.decoder(indices)

    @classmethod
    def of_manager(cls, cow: CowManagerState) -> CowSummary:
        """The same columns from a full decode (its pages serve ``pages_at``)."""
        pages = cow.pages
        return cls(
            cow.symbol, cow.address, cow.initialised, cow.lock_held, cow.capacity, cow.active_pages, cow.statistics,
            tuple(p.slot for p in pages), tuple(p.physical_addr for p in pages), tuple(p.ref_count for p in pages),
            tuple(p.recorded_mappings for p in pages), tuple(len(p.process_ids) for p in pages),
            tuple(int(p.is_cow) for p in pages), tuple(p.original_permissions for p in pages),
            all(s.pid is not None for p in pages for s in p.sharers), decoder=lambda indices: [pages[k] for k in indices],
        )


def sharers_of(pages: Sequence[CowPage]) -> SharerColumns:
    """:class:`SharerColumns` of decoded pages."""
    found = [(k, s.va, s.pid) for k, p in enumerate(pages) for s in p.sharers]
    return SharerColumns([k for k, _, _ in found], [int(va) for _, va, _ in found], [pid for _, _, pid in found],
                         [len(p.sharers) for p in pages])


def summarise_manager(data: bytes, where: ManagerLocation, ram: tuple[int, int] | None = None,
                      pids_parallel: bool | None = None) -> CowSummary:
    """The manager's :class:`CowSummary` from the static's bytes (arguments as
    :func:`~.cow.decode_manager`, whose CorruptStructure it raises for a corrupt slot)."""
    base = dict(symbol=where.symbol, address=Address(where.address), capacity=where.page_fields.count,
                lock_held=where.found.lock_held(data, where.symbol))
    if not where.found.present(data, where.symbol):
        return CowSummary(initialised=False, **base)
    slots, bad_slot = _occupied_slots(data, where)
    columns = None if bad_slot is not None else _columns(data, where, slots)
    names = None if columns is None else _permission_names(data, where, slots, columns[5])
    if names is None or _suspicious(where, columns, ram, pids_parallel):
        return CowSummary.of_manager(decode_manager(data, where, ram, pids_parallel))  # raises what is wrong
    active_pages = where.found.member_int(data, "active_pages")
    if active_pages > where.page_fields.count:
        decode_manager(data, where, ram, pids_parallel)  # raises the decoder's error
    stats_off, stats_t = where.statistics
    stats = CowStatistics(**plain(decode(stats_t, data, stats_off, f"{where.symbol}.statistics")))
    pas, refs, cow_flags, vas_lens, pids_lens, perms = columns
    decoder = _slot_decoder(data, where, tuple(slots), ram, pids_parallel)
    parallel = pids_parallel is not False and vas_lens == pids_lens  # pair_sharers pairs by index
    return CowSummary(active_pages=active_pages, statistics=stats, initialised=True, slots=tuple(slots),
                      pas=pas, refs=refs, vas_lens=vas_lens, pids_lens=pids_lens, cow_flags=cow_flags,
                      original=tuple(map(names.__getitem__, perms)), decoder=decoder,
                      paired=parallel,
                      reader=_sharer_reader(data, where, slots, vas_lens) if parallel else None, **base)


def _columns(data: bytes, where: ManagerLocation, slots: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """(pa, refs, is_cow, vas_len, pids_len, perms) of the occupied slots, one column each."""
    f = where.page_fields
    start, stride, count = where.pages_offset, f.stride, f.count
    pick = picker(slots, count)
    perms_size = f.perms[1].size
    fields = (f.pa, f.refs, (f.is_cow, 1), (f.vas[3], f.vas[4]), (f.pids[3], f.pids[4]), (f.perms[0], perms_size))
    out = []
    for offset, size in fields:
        if size in _INT_CODES:
            out.append(pick(_column(data, start + offset, stride, count, size, False)))
        else:  # not a machine integer (an odd-sized enum): its raw bytes
            out.append(tuple(data[start + s * stride + offset: start + s * stride + offset + size] for s in slots))
    return tuple(out)


def picker(indices: Sequence[int], count: int) -> Callable[[Sequence[int]], Sequence[int]]:
    """Picks the ``indices``-th values (distinct, ascending) out of a column of ``count``:
    the occupied slots of a whole array, or some of a summary's pages -- in C."""
    if len(indices) == count:
        return tuple
    if isinstance(indices, range) and indices.step == 1:
        return lambda column: column[indices.start:indices.stop]
    if len(indices) == 0:
        return lambda column: ()
    if len(indices) == 1:
        return lambda column: (column[indices[0]],)
    getter = operator.itemgetter(*indices)
    return lambda column: tuple(getter(column))


def _suspicious(where: ManagerLocation, columns, ram: tuple[int, int] | None, pids_parallel: bool | None) -> bool:
    """Whether any occupied slot fails a check the full decoder makes (then it decides)."""
    pas, _, is_cow, vas_lens, pids_lens, _ = columns
    if not pas:
        return False
    f = where.page_fields
    if max(is_cow) > 1 or max(vas_lens) > f.vas[2] or max(pids_lens) > f.pids[2]:
        return True
    if any(map((PAGE_SIZE - 1).__and__, pas)):
        return True
    if ram is not None and (min(pas) < ram[0] or max(pas) >= ram[1]):
        return True
    return bool(pids_parallel and vas_lens != pids_lens)


def _permission_names(data: bytes, where: ManagerLocation, slots: Sequence[int],
                      perms: Sequence) -> dict | None:
    """original_permissions' name by raw value (a handful of values: each decoded once, on
    its first slot); None when one decodes to no variant (the full decoder then says so)."""
    f = where.page_fields
    names = {}
    for value in set(perms):
        slot = slots[perms.index(value)]
        try:
            names[value] = permissions_name(data, where.pages_offset + slot * f.stride, f, "original_permissions")
        except CorruptStructure:
            return None
    return names


def _slot_decoder(data: bytes, where: ManagerLocation, slots: tuple[int, ...], ram: tuple[int, int] | None,
                  pids_parallel: bool | None) -> PageDecoder:
    """Decodes the k-th occupied slots on demand with the full decoder's per-slot code."""
    f = where.page_fields
    names: dict[bytes, str] = {}

    def pages_at(indices: Sequence[int]) -> list[CowPage]:
        return [_page(data, where.pages_offset + slots[k] * f.stride, slots[k], f, f.codec, names, where.symbol,
                      ram, pids_parallel) for k in indices]

    return pages_at


def _sharer_reader(data: bytes, where: ManagerLocation, slots: Sequence[int], lens: Sequence[int]) -> SharerReader:
    """:meth:`CowSummary.sharers` for index-paired lists: the i-th items of both lists of
    the slots asked for taken as two columns, each page's first ``len`` kept (all in C)."""
    f = where.page_fields
    (va_off, va_size, *_), (pid_off, pid_size, *_) = f.vas, f.pids

    def read(indices: Sequence[int]) -> SharerColumns:
        every = len(indices) == len(slots)
        pick = picker(slots if every else [slots[k] for k in indices], f.count)
        counts = lens if every else [lens[k] for k in indices]
        widest = max(counts, default=0)

        alike = min(counts, default=0) == widest  # every page as many sharers (a fork): no cut per page

        def items(offset: int, size: int) -> list[int]:
            per_item = [pick(_column(data, where.pages_offset + offset + i * size, f.stride, f.count, size, False))
                        for i in range(widest)]
            return interleaved(per_item) if alike else list(chain.from_iterable(
                map(operator.getitem, zip(*per_item), map(slice, counts))))  # a tuple of items per page, cut

        positions = (interleaved([range(len(counts))] * widest) if alike
                     else list(chain.from_iterable(map(repeat, range(len(counts)), counts))))
        return SharerColumns(positions, items(va_off, va_size), items(pid_off, pid_size), list(counts))

    return read


_PAGE_MASK = ~(PAGE_SIZE - 1)
