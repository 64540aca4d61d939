"""The pages ``cow-status`` lists, as columns: one entry per page and one per sharer.

``cow-status --limit 0`` on 20 000 shared pages lists 40 000 sharers. Making a page object,
a sharer object and a PTE object per row, then a row of cells per line, cost ~1 s; here
the listing is built as columns -- the summary's page columns, the sharers read as columns
(:meth:`~.cow_columns.CowSummary.sharers`), their live PTEs looked up in bulk
(:meth:`~.mappings.PteLookup.columns`), flags kept only where there are some -- and its
table is formatted a column at a time. :class:`StatusRows` is still a sequence of
:class:`PageView` (made on demand), which is what ``--json``, MI, ``cow-graph`` and the
TUI read: one model, every face.

Example::

    rows = status_rows(state.cow_summary(), range(100), state.pte_lookup(), state.conventions())
    rows[0].sharers[0].pte           # 'EL1:R-- EL0:R--'
    for line in rows.table_lines(): print(line)
    for piece in rows.table_chunks(2000): print(piece)   # the same text, in pieces, faster
"""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple
from itertools import accumulate, compress, repeat

from ..core.address import Address
from ..core.columns import interleaved
from .conventions import Conventions
from .cow_columns import CowSummary, SharerColumns, picker
from .mappings import Pte, pte_columns

COLUMNS = ("slot", "pa", "refs", "cow", "original", "va", "pid", "live PTE", "flags")
_HEAD = 5  # the page's own columns; the rest are the sharer's
_YES_NO = ("no", "yes")


@dataclass(frozen=True)
class SharerView:
    va: Address
    pid: int | None  # None: the kernel's pid set cannot tell whose mapping this is
    pte: str  # the live permissions, or why there are none
    maps: Address | None  # the frame the VA maps now
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class PageView:
    slot: int
    pa: Address
    refs: int
    cow: bool
    original_permissions: str
    sharers: tuple[SharerView, ...]
    flags: tuple[str, ...] = ()

    @property
    def flagged(self) -> bool:
        return bool(self.flags) or any(s.flags for s in self.sharers)


class StatusRows(Sequence[PageView]):
    """Pages (``slots`` .. ``page_flags``, ``counts`` sharers each) and their sharers in
    page order (``vas`` .. ``sharer_flags``); flags as {position: reasons}, mostly empty."""

    def __init__(self, slots: Sequence[int], pas: Sequence[int], refs: Sequence[int], cow: Sequence[bool],
                 original: Sequence[str], page_flags: dict[int, tuple[str, ...]], counts: Sequence[int],
                 vas: Sequence[int], pids: Sequence[int | None], ptes: Sequence[str], maps: Sequence[int | None],
                 sharer_flags: dict[int, tuple[str, ...]]) -> None:
        self.slots, self.pas, self.refs, self.cow, self.original = slots, pas, refs, cow, original
        self.page_flags, self.counts = page_flags, counts
        self.vas, self.pids, self.ptes, self.maps, self.sharer_flags = vas, pids, ptes, maps, sharer_flags
        self.first = [0, *accumulate(counts)]  # page p's sharers: first[p] .. first[p + 1]

    @classmethod
    def of_views(cls, pages: Sequence[PageView]) -> StatusRows:
        """The columns of page objects (a model built by hand, e.g. by a test)."""
        if isinstance(pages, StatusRows):
            return pages
        sharers = [s for p in pages for s in p.sharers]
        return cls([p.slot for p in pages], [p.pa for p in pages], [p.refs for p in pages], [p.cow for p in pages],
                   [p.original_permissions for p in pages], {k: p.flags for k, p in enumerate(pages) if p.flags},
                   [len(p.sharers) for p in pages], [s.va for s in sharers], [s.pid for s in sharers],
                   [s.pte for s in sharers], [s.maps for s in sharers],
                   {i: s.flags for i, s in enumerate(sharers) if s.flags}) if pages else cls.empty()

    @classmethod
    def empty(cls) -> StatusRows:
        return cls((), (), (), (), (), {}, (), (), (), (), (), {})

    # -- a sequence of PageView -----------------------------------------------------------
    def __len__(self) -> int:
        return len(self.slots)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        sharers = tuple(self._sharer(i) for i in range(self.first[k], self.first[k + 1]))
        return PageView(self.slots[k], Address(self.pas[k]), self.refs[k], bool(self.cow[k]), self.original[k],
                        sharers, self.page_flags.get(k, ()))

    def _sharer(self, i: int) -> SharerView:
        maps = self.maps[i]
        return SharerView(Address(self.vas[i]), self.pids[i], self.ptes[i], None if maps is None else Address(maps),
                          self.sharer_flags.get(i, ()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"StatusRows({len(self)} pages, {len(self.vas)} sharers)"

    @property
    def flagged(self) -> int:
        """Pages with a flag of their own or on a sharer."""
        return len(self.page_flags.keys() | {self._page_of(i) for i in self.sharer_flags})

    def _page_of(self, i: int) -> int:
        return bisect_right(self.first, i) - 1

    # -- the table ------------------------------------------------------------------------
    def table_lines(self) -> list[str]:
        """The lines of tabulate's "simple" table of :data:`COLUMNS` (as
        :func:`~gdb_tinyos.core.render.table_lines` makes it), a row per sharer (the page's
        cells on its first), a page without sharers on one row of ``-``. Formatted a column
        at a time and ``%`` per line: 40 000 rows in tens of milliseconds."""
        layout = self._layout()
        lines = layout.header()
        heads = list(map(layout.page_format.__mod__, zip(*(values for values, _ in layout.head))))
        line_heads = [layout.blank] * layout.rows
        if self._alike():  # one slice assignment
            line_heads[::max(self.counts[0], 1)] = heads
        else:
            for r, text in zip(layout.row_start, heads):
                line_heads[r] = text
        line = "%s" + layout.sharer_format
        lines += map(line.__mod__, zip(line_heads, *(values for values, _ in layout.tail)))
        return lines

    def table_chunks(self, pages: int) -> Iterator[str]:
        """:meth:`table_lines` joined by newlines, in pieces of ``pages`` pages (the header
        in the first). When every page has the same number of sharers, each piece is one
        ``%`` of a page's block repeated (no string per line), and a column with one value
        throughout the piece (a fork's refs, pids, permissions) is written into the block
        instead of formatted per line: a third of the time of the lines."""
        if not self._alike() or not self.counts[0]:
            lines = self.table_lines()
            per_piece = pages * max(max(self.counts, default=1), 1)
            for start in range(0, len(lines), per_piece):
                yield "\n".join(lines[start:start + per_piece])
            return
        layout = self._layout()
        cells, c, n = layout.cells(), self.counts[0], len(self.slots)
        yield "\n".join(layout.header())
        for first in range(0, n, pages):
            last = min(n, first + pages)
            # (format, this piece's values) in the order of a page's block: its own cells,
            # then each sharer's
            columns = [(cell, values[first:last]) for cell, (values, _) in zip(cells, layout.head)]
            for k in range(c):
                columns += [(cell, values[first * c + k:last * c:c]) for cell, (values, _) in zip(cells[_HEAD:], layout.tail)]
            formats, variable = [], []
            for cell, values in columns:
                if _one_value(values):  # written into the block
                    formats.append((cell % values[0]).replace("%", "%%"))
                else:
                    formats.append(cell)
                    variable.append(values)
            sharer = len(layout.tail)
            lines = ["  ".join(formats[:_HEAD + sharer])]
            lines += [layout.blank + "  ".join(formats[_HEAD + sharer * k:_HEAD + sharer * (k + 1)]) for k in range(1, c)]
            yield "\n".join(["\n".join(lines)] * (last - first)) % tuple(interleaved(variable))

    def _alike(self) -> bool:
        """Every page has the same number of sharers."""
        return bool(self.counts) and _one_value(self.counts)

    def _layout(self) -> _Layout:
        # page p's first row (pages of as many sharers: a range, nothing to add up)
        row_start = (range(0, (len(self.counts) + 1) * self.counts[0], self.counts[0]) if self._alike() and self.counts[0]
                     else [0, *accumulate(map(max, self.counts, repeat(1)))])
        rows = row_start[-1]
        head = [(self.slots, "d"), (self.pas, "#x"), (self.refs, "d"), (list(map(_YES_NO.__getitem__, map(bool, self.cow))), "s"),
                (self.original, "s")]
        flags = (self._flag_cells(row_start, rows), "s")
        if rows == len(self.vas) and None not in self.pids:  # the usual table: numbers formatted by %
            tail = [(self.vas, "#x"), (self.pids, "d"), (self.ptes, "s"), flags]
        else:
            spread = self._spread(row_start, rows)
            tail = [(spread(list(map(hex, self.vas))), "s"), (spread(list(map(_pid_cell, self.pids))), "s"),
                    (spread(list(self.ptes)), "s"), flags]
        widths = [max(len(name) + 2, _width(values, kind)) for name, (values, kind) in zip(COLUMNS, head + tail)]
        return _Layout(row_start, rows, head, tail, widths)

    def _spread(self, row_start: Sequence[int], rows: int):
        """Puts per-sharer cells on their rows (``-`` on the row of a page without sharers)."""
        if rows == len(self.vas):  # every page has sharers: sharer i is row i
            return lambda cells: cells
        at = [row_start[p] + (i - self.first[p]) for p, n in enumerate(self.counts) for i in
              range(self.first[p], self.first[p] + n)]

        def spread(cells: list[str]) -> list[str]:
            out = ["-"] * rows
            for r, cell in zip(at, cells):
                out[r] = cell
            return out

        return spread

    def _flag_cells(self, row_start: Sequence[int], rows: int) -> list[str]:
        """The flags cell of each row: the page's flags on its first row, then the sharer's."""
        cells = ["-"] * rows
        for p, n in enumerate(self.counts) if self.page_flags or self.sharer_flags else ():
            own = self.page_flags.get(p, ())
            for k, i in enumerate(range(self.first[p], self.first[p] + max(n, 1))):
                flags = (own if k == 0 else ()) + (self.sharer_flags.get(i, ()) if n else ())
                if flags:
                    cells[row_start[p] + k] = "; ".join(flags)
        return cells


class _Layout(NamedTuple):
    """Each page's first row, the rows, the page columns and the sharer columns as
    (values, % conversion), and the column widths; the % formats they make."""

    row_start: Sequence[int]
    rows: int
    head: list[tuple[Sequence, str]]
    tail: list[tuple[Sequence, str]]
    widths: list[int]

    def header(self) -> list[str]:
        """The column names and the dashes under them."""
        return ["  ".join(map(str.ljust, COLUMNS, self.widths)).rstrip(), "  ".join("-" * w for w in self.widths)]

    def cells(self) -> list[str]:
        """Each column's % format, padded to its width (the flags, last, unpadded)."""
        padded = [f"%-{kind[:-1]}{w}{kind[-1]}" for w, (_, kind) in zip(self.widths, self.head + self.tail)]  # %-#10x
        return padded[:-1] + ["%s"]

    @property
    def page_format(self) -> str:
        """A page's own cells, padded, up to its first sharer's."""
        return "  ".join(self.cells()[:_HEAD]) + "  "

    @property
    def sharer_format(self) -> str:
        """A sharer's cells."""
        return "  ".join(self.cells()[_HEAD:])

    @property
    def blank(self) -> str:
        """Where a page's cells go, on its sharers' other rows."""
        return " " * (sum(self.widths[:_HEAD]) + 2 * _HEAD)


def _one_value(values: Sequence) -> bool:
    """Every value of a non-empty column is its first (counted in C)."""
    return values.count(values[0]) == len(values)


def _width(values: Sequence, kind: str) -> int:
    """The widest cell of a column of numbers (``d``, ``#x``) or strings (``s``)."""
    if not values:
        return 0
    if _one_value(values):  # a fork's pids, permissions
        return len(f"%{kind}" % values[0])
    if kind == "d":
        return max(len(str(min(values))), len(str(max(values))))
    if kind == "#x":
        return len(hex(max(values)))
    return max(map(len, set(values)))


def _pid_cell(pid: int | None) -> str:
    return "?" if pid is None else str(pid)


def status_rows(cow: CowSummary, indices: Sequence[int], lookup: Callable[[int, int], Pte] | None,
                conventions: Conventions) -> StatusRows:
    """The rows of the ``indices``-th tracked pages; ``lookup`` None: no live PTEs (the
    column says ``-``)."""
    if not indices:
        return StatusRows.empty()
    pick = picker(indices, cow.tracked)
    pas, refs, cows, vas_lens = pick(cow.pas), pick(cow.refs), pick(cow.cow_flags), pick(cow.vas_lens)
    sharers = cow.sharers(indices)
    ptes, maps, flags = _live(sharers, pas, cows, lookup)
    return StatusRows(pick(cow.slots), pas, refs, list(map((1).__eq__, cows)), pick(cow.original),
                      _page_flags(refs, vas_lens, cows, conventions), sharers.counts, sharers.vas, sharers.pids,
                      ptes, maps, flags)


def _page_flags(refs: Sequence[int], recorded: Sequence[int], cows: Sequence[int],
                conventions: Conventions) -> dict[int, tuple[str, ...]]:
    """What is wrong with each page's own record (only pages with something)."""
    extra = conventions.expected_refs(0)  # the owner's reference, when the kernel counts one
    owner = " + the owner" if extra else ""
    out = {}
    expected = list(map(extra.__add__, recorded))
    if cows.count(1) == len(cows) and list(refs) == expected:  # the healthy record: nothing to say
        return {}
    wrong_refs = list(map(int.__ne__, refs, expected))
    not_cow = list(map(operator.ne, cows, repeat(1)))
    for p in compress(range(len(refs)), map(bool.__or__, wrong_refs, not_cow)):
        flags = (f"refs {refs[p]} != {recorded[p]} recorded sharers{owner}",) if wrong_refs[p] else ()
        out[p] = flags + (("tracked but not COW",) if not_cow[p] else ())
    return out


def _live(sharers: SharerColumns, pas: Sequence[int], cows: Sequence[int], lookup: Callable[[int, int], Pte] | None):
    """Each sharer's live permissions, the frame its VA maps, and its flags."""
    n = len(sharers.vas)
    if lookup is None:
        return ["-"] * n, [None] * n, {}
    known = None if None not in sharers.pids else [i for i, pid in enumerate(sharers.pids) if pid is not None]
    if known is None:  # every pid known: the columns as they are
        found = pte_columns(lookup, sharers.pids, sharers.vas)
        ptes, maps = found.perms, found.pas
        if "" in ptes:  # a sharer with nothing mapped
            ptes = [perms or "-" for perms in ptes]
    else:
        found = pte_columns(lookup, [sharers.pids[i] for i in known], [sharers.vas[i] for i in known])
        ptes, maps = ["?"] * n, [None] * n
        for i, perms, pa in zip(known, found.perms, found.pas):
            ptes[i], maps[i] = perms or "-", pa
    rows = known or range(n)
    frames = list(map(pas.__getitem__, sharers.pages if known is None else map(sharers.pages.__getitem__, known)))
    if found.pas == frames and True not in found.writable:  # every sharer maps its frame read-only
        return ptes, maps, {}
    # Only rows with a problem, another frame, or write access need a look.
    odd = compress(range(len(rows)), map(operator.or_, map(operator.ne, found.pas, frames), found.writable))
    flags = {}
    for j in odd:
        i, pa, problem = rows[j], found.pas[j], found.problems[j]
        if problem is not None:
            flags[i] = (problem,)
        elif pa != frames[j]:
            flags[i] = (f"maps another frame ({Address(pa)})",)
        elif cows[sharers.pages[i]] == 1:
            flags[i] = ("COW page mapped writable",)
    return ptes, maps, flags
