"""Whole-address-space dumps: every mapping of a TTBR0/TTBR1 range, merged into runs.

:func:`dump` walks the tree from a root table (the live TTBR, or any table PA so another
process's space can be listed) and merges leaves that are virtually and physically
contiguous with identical :class:`~gdb_tinyos.aarch64.model.Attributes` into
:class:`Range` objects. Trouble in the tables never stops the dump and is never followed
forever: loops back to an ancestor table, tables outside known memory, unreadable tables,
reserved descriptors and oversized addresses become :class:`Problem` entries.

Example::

    space = dump(target, which=1, where=make_filter(["writable", "executable"]))
    for r in space.ranges: print(r.describe())     # W+X kernel mappings, if any
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import compress
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import NamedTuple

from ..core.address import Address
from ..core.errors import MemoryReadError
from ..core.target import Target
from .descriptors import LEAF_LAYOUT, TABLE_ATTRIBUTE_BITS, InvalidDescriptor, LeafDescriptor, TableDescriptor, decode_descriptor
from .granule import OA_BITS_MAX
from .model import Attributes
from .regime import TranslationRegime, VaRange
from .walker import MASK64, Inherited, Translator

AttributeFilter = Callable[[Attributes], bool]

FILTERS: dict[str, AttributeFilter] = {
    "writable": lambda a: a.perms.writable,
    "readonly": lambda a: not a.perms.writable,
    "executable": lambda a: a.perms.executable,
    "noexec": lambda a: not a.perms.executable,
    "user": lambda a: a.perms.user,
    "kernel": lambda a: not a.perms.user,
    "device": lambda a: a.memory.is_device,
    "normal": lambda a: a.memory.kind == "normal",
    "wx": lambda a: a.perms.writable and a.perms.executable,
    "global": lambda a: not a.ng,
    "nonglobal": lambda a: a.ng,
    # Per exception level, as gdb-pt-dump users filter: u = EL0 (user), k = EL1 (kernel).
    "ur": lambda a: a.perms.el0_read,
    "uw": lambda a: a.perms.el0_write,
    "ux": lambda a: a.perms.el0_exec,
    "kr": lambda a: a.perms.el1_read,
    "kw": lambda a: a.perms.el1_write,
    "kx": lambda a: a.perms.el1_exec,
    "ro": lambda a: not a.perms.writable,  # writable at neither level (alias of readonly)
}

_OA_FIELD = ((1 << 48) - 1) & ~0xFFF  # bits [47:12]: output address in every granule
_CONTIGUOUS_BIT = 1 << LEAF_LAYOUT["Contiguous"].lsb
_VALID = bytes(byte & 1 for byte in range(256))  # a descriptor's low byte -> 1 if valid (bytes.translate)
_TYPE = (0b11).__and__  # a descriptor's bits[1:0]: 0b11 for a table above level 3
# A table cut into more runs than this is scanned whole (a run costs a few µs to find).
_FEW_RUNS = 16


# A range's levels, by the bits an open range collects them in (bit n: level n).
_LEVELS = tuple(tuple(level for level in range(4) if bits >> level & 1) for bits in range(16))
_WORD = struct.Struct("<Q")
_SECOND = MASK64 << 64  # the second entry of a table's words


def _runs(words: int, n: int, step: int) -> Iterator[tuple[int, int | None]]:
    """``(start, stop)`` of each run of ``words`` -- ``n`` table entries as the 64-bit
    digits of one integer (``int.from_bytes(table, "little")``) -- in order: entries that
    step by ``step`` from the first, zero entries skipped; up to _FEW_RUNS runs, then
    ``(start, None)`` for the rest.

    Each run ends where the digits stop matching their progression, found in one compare
    of integers: the lowest differing bit names the digit. Only the digits the progression
    keeps below 2**64 are compared (each then holds its own value, no carry); the next one
    cannot match. ``words`` is shifted past each run, so it always starts at the entry in
    hand; questions about its first digits mask them off (an operation on a few digits,
    not on the whole table)."""
    i = runs = 0
    while words:
        if not words & MASK64:  # zero entries before the next one
            skip = ((words & -words).bit_length() - 1) >> 6
            words >>= skip << 6
            i += skip
        if runs == _FEW_RUNS:
            yield i, None
            return
        base = words & MASK64
        if i + 1 == n or (words & _SECOND) >> 64 != base + step:
            stop = i + 1  # a run of one, told by its next entry
        else:
            fits = min(n - i, (MASK64 - base) // step + 1)
            ones, steps = _progression(fits, step)
            differ = words ^ (base * ones + steps)
            if differ >> (64 * fits):  # digits past the progression: only those below count
                differ &= (1 << 64 * fits) - 1
            stop = i + (((differ & -differ).bit_length() - 1) >> 6 if differ else fits)
        yield i, stop
        runs += 1
        words >>= (stop - i) << 6
        i = stop


@lru_cache(maxsize=64)
def _progression(count: int, step: int) -> tuple[int, int]:
    """The numbers whose ``count`` 64-bit digits are ``1, 1, ...`` and ``0, step, 2 * step, ...``.

    Runs start anywhere in a table, so ``count`` takes many values: those below a whole
    table's (a power of two, 512 at least) are cut from its in two operations, not built."""
    whole = max(512, 1 << (count - 1).bit_length())
    if count == whole:
        ones = int.from_bytes((1).to_bytes(8, "little") * count, "little")
        return ones, int.from_bytes(struct.pack(f"<{count}Q", *range(0, count * step, step)), "little")
    ones, steps = _progression(whole, step)
    shift = 64 * (whole - count)  # the top `count` digits: ones, and (whole - count + k) * step
    ones >>= shift
    return ones, (steps >> shift) - (whole - count) * step * ones


def _leaf_type(level: int) -> int:
    """The low bits of a leaf at ``level``: a page at level 3, a block above."""
    return 0b11 if level == 3 else 0b01
DEFAULT_MAX_TABLES = 16384
DEFAULT_MAX_LEAVES = 1 << 20


def make_filter(names: Iterable[str]) -> AttributeFilter:
    """All of the named filters at once (see FILTERS); ValueError names an unknown one."""
    chosen = []
    for name in names:
        if name not in FILTERS:
            raise ValueError(f"unknown filter {name!r}; choose from {', '.join(FILTERS)}")
        chosen.append(FILTERS[name])
    return lambda attrs: all(f(attrs) for f in chosen)


class ProblemKind(Enum):
    LOOP = "loop"
    UNREADABLE = "unreadable table"
    OUTSIDE_MEMORY = "outside known memory"
    RESERVED = "reserved descriptor"
    ADDRESS_SIZE = "address size"
    LIMIT = "limit reached"
    CONTIGUOUS = "contiguous hint misprogrammed"


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    level: int
    table: Address
    index: int
    va: Address
    descriptor: Address
    message: str

    def describe(self) -> str:
        where = f"L{self.level} table {self.table:#x} index {self.index}, va {self.va:#x}"
        return f"{self.kind.value}: {self.message} ({where})"


@dataclass(frozen=True)
class Range:
    """A run of leaves contiguous in VA and PA with identical attributes."""

    va_start: Address
    va_end: Address  # exclusive
    pa_start: Address
    attrs: Attributes
    leaves: int
    levels: tuple[int, ...]

    @property
    def size(self) -> int:
        return self.va_end - self.va_start

    @property
    def pa_end(self) -> Address:
        return Address(self.pa_start + self.size)

    def describe(self) -> str:
        return (
            f"{self.va_start:#018x}-{self.va_end:#018x} -> {self.pa_start:#012x}-{self.pa_end:#012x} "
            f"{human_size(self.size):>6} {self.attrs.describe()}"
        )


@dataclass
class AddressSpace:
    """A dump of one VA range: merged ranges, problems met, tables visited."""

    name: str
    root_table: Address
    asid: int
    granule: str
    input_bits: int
    start_level: int
    va_start: Address
    va_end: Address
    ranges: list[Range] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    tables: list[Address] = field(default_factory=list)
    leaves: int = 0

    def describe(self) -> str:
        lines = [
            f"{self.name} root {self.root_table:#x} ASID {self.asid}, {self.granule} granule, "
            f"{self.input_bits}-bit VA, start level {self.start_level}: {len(self.ranges)} ranges, "
            f"{self.leaves} leaves, {len(self.tables)} tables"
        ]
        lines += [r.describe() for r in self.ranges]
        lines += [f"problem: {p.describe()}" for p in self.problems]
        return "\n".join(lines)


def human_size(size: int) -> str:
    for unit, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift}{unit}"
    return f"{size}B"


class _Limit(Exception):
    """Internal: stops the traversal when a size limit is reached."""


class _Table(NamedTuple):
    """A table being visited, and what its entries inherit."""

    table: int
    level: int
    entries: Sequence[int]  # the table's words (an array)
    prefix: int  # the VA bits above this table's span
    inherited: Inherited
    ancestors: tuple[int, ...]
    groups_checked: set[int]  # contiguous-hint groups already checked


class _At(NamedTuple):
    """Where an entry sits: what a Problem points at (the TTBR itself for the root)."""

    level: int
    table: int
    index: int
    va: int
    descriptor: int


class _Dumper:
    def __init__(
        self,
        translator: Translator,
        va_range: VaRange,
        lo: int,
        hi: int,
        where: AttributeFilter | None,
        physical_ranges: Sequence[tuple[int, int]] | None,
        max_tables: int,
        max_leaves: int,
    ) -> None:
        self.t = translator
        self.r = va_range
        self.lo, self.hi = lo, hi
        self.where = where
        self.physical_ranges = physical_ranges
        self.max_tables, self.max_leaves = max_tables, max_leaves
        self.visits = 0
        self.seen: dict[int, None] = {}  # insertion-ordered set of tables read
        self._open: list | None = None  # the range being extended: [start, end, pa, attrs, leaves, levels (bit per level)]
        self._filtered: dict[Attributes, bool] = {}
        r = va_range
        # by level, asked for every table visited
        self._shift = [r.granule.level_shift(level) for level in range(4)]
        self._count = [r.granule.table_entries(level, r.input_bits) for level in range(4)]
        self._leaves_at = [level == 3 or r.granule.allows_block(level) for level in range(4)]
        # a level 3 table's entries, page shift and size, and the span of the level 2 entry above it
        self._below_level_2 = (self._count[3], self._shift[3], 1 << self._shift[3], 1 << self._shift[2])
        self.space = AddressSpace(r.name, Address(r.root_table), r.asid, r.granule.name, r.input_bits, r.start_level,
                                  Address(lo), Address(hi))

    def run(self) -> None:
        r = self.r
        root, level = r.root_table, r.start_level
        at = _At(level, root, 0, r.va_start, r.ttbr)
        if root >> r.oa_bits:
            self._problem(ProblemKind.ADDRESS_SIZE, at, f"root table {root:#x} exceeds {r.oa_bits}-bit PA")
            return
        try:
            entries = self._read(root, level, at)
            if entries is not None:
                self._visit(root, level, entries, r.va_start, Inherited(), (root,))
        except _Limit:
            pass

    def finish(self) -> AddressSpace:
        self._close()
        self.space.tables = [Address(t) for t in self.seen]
        return self.space

    def _problem(self, kind: ProblemKind, at: _At, message: str) -> None:
        level, table, index, va, descriptor = at
        self.space.problems.append(Problem(kind, level, Address(table), index, Address(va), Address(descriptor), message))

    def _inside_memory(self, pa: int, size: int) -> bool:
        if self.physical_ranges is None:
            return True
        for start, end in self.physical_ranges:
            if start <= pa and pa + size <= end:
                return True
        return False

    def _read(self, table: int, level: int, at: _At) -> Sequence[int] | None:
        """Read the level-``level`` table ``at`` points to (one read, cached), or say why not."""
        count = self._count[level]
        if not self._inside_memory(table, count * 8):
            message = f"level {level} table {table:#x} lies outside known memory; not followed"
            self._problem(ProblemKind.OUTSIDE_MEMORY, at, message)
            return None
        if self.visits >= self.max_tables:
            self._problem(ProblemKind.LIMIT, at, f"stopped after visiting {self.max_tables} tables")
            raise _Limit
        self.visits += 1
        try:
            entries = self.t.tables.entries(table, count)
        except MemoryReadError as e:
            self._problem(ProblemKind.UNREADABLE, at, f"level {level} table {table:#x} is unreadable: {e}")
            return None
        self.seen.setdefault(table)
        return entries

    def _visit(
        self,
        table: int,
        level: int,
        entries: Sequence[int],
        prefix: int,
        inherited: Inherited,
        ancestors: tuple[int, ...],
    ) -> None:
        shift = self._shift[level]
        # A --range dump visits only the entries whose span meets [lo, hi), so it reads
        # only the tables below them.
        first = (self.lo - prefix) >> shift if self.lo > prefix else 0
        last = min(len(entries) - 1, (self.hi - 1 - prefix) >> shift)
        if last < first:
            return
        window = entries if last - first + 1 == len(entries) else entries[first : last + 1]  # no copy of a whole table
        if level == 2:
            self._prefetch(window, ancestors)
        here = _Table(table, level, entries, prefix, inherited, ancestors, set())
        leaves_here = self._leaves_at[level]
        # In a run of leaves every entry is the previous one plus one block: the same
        # attribute bits (hence one decode), the next output address. A table of few runs
        # is cut where each run stops following its progression (found in one compare of
        # integers, see _runs; a run of one by its next entry), one of many runs by
        # scanning the window. A window whose first valid entry is a table descriptor (a
        # level 2 table of level 3 tables) has no runs to find: it is scanned at once.
        step = 1 << shift
        data = memoryview(self.t.tables.data(table, len(entries)))[8 * first : 8 * (last + 1)]
        low = data[::8].tobytes()  # each entry's low byte: its valid and type bits
        valid = low.translate(_VALID)
        start = valid.find(1)
        if start < 0:
            return
        if level < 3 and low[start] & 0b11 == 0b11:
            self._scan(here, first, window, valid, start, step, leaves_here)
            return
        for i, stop in _runs(int.from_bytes(data, "little"), len(window), step):
            if stop is None:
                self._scan(here, first, window, valid, i, step, leaves_here)
                return
            self._entries(here, first + i, first + stop - 1, leaves_here)

    def _prefetch(self, window: Sequence[int], ancestors: tuple[int, ...]) -> None:
        """Read the level 3 tables a level 2 window points to one after another, before any
        of them is decoded: over a remote stub the reads then come back to back instead of
        each waking the decoder. Only tables the visit reads anyway -- inside memory, no
        loop, within both limits even if every one were full (the window's blocks are fewer
        than one table's entries, so they cannot stop the visit first) -- so the reads stay
        one per table."""
        r = self.r
        count = self._count[3]
        tables = map(r.granule.next_table_address, compress(window, map((0b11).__eq__, map(_TYPE, window))))
        tables = [t for t in tables if self._followable(t, ancestors, count)]
        if (len(tables) < 2 or self.visits + len(tables) > self.max_tables
                or self.space.leaves + len(tables) * count > self.max_leaves):
            return
        for table in tables:
            try:
                self.t.tables.data(table, count)
            except MemoryReadError:
                pass  # remembered: the visit reports it where it reads the table

    def _scan(self, here: _Table, first: int, window: Sequence[int], valid: bytes, start: int, step: int,
              leaves_here: bool) -> None:
        """Entries ``start``.. of the window, ``valid`` saying which are valid (a byte
        each): a run of leaves ends where the next entry is not one block on (a scan in
        C, made for a window holding leaves), anything else is taken entry by entry."""
        ends: list[bool] | None = None
        leaf = _leaf_type(here.level) if leaves_here else None
        i = valid.find(1, start)
        while i >= 0:
            j = i
            if window[i] & 0b11 == leaf:
                if ends is None:
                    ends = list(map(step.__ne__, map(operator.sub, window[1:], window[:-1])))
                    ends.append(True)
                j = ends.index(True, i)
            self._entries(here, first + i, first + j, leaves_here)
            i = valid.find(1, j + 1)

    def _entries(self, here: _Table, i: int, j: int, leaves_here: bool) -> None:
        """Entries ``i..j`` of ``here``, each the previous one plus one block: leaves added
        as one run; anything else entry by entry (invalid ones skipped)."""
        raw = here.entries[i]
        if not raw & 1:
            return
        if leaves_here and raw & 0b11 == _leaf_type(here.level):
            self._run_of_leaves(here, i, j)
            return
        whole = self._whole_table if here.level == 2 else None
        for index in range(i, j + 1):  # table descriptors or reserved encodings
            if whole is None or not whole(here, index):
                self._entry(here, index)

    def _entry(self, here: _Table, index: int) -> None:
        """Decode the valid entry ``index`` of ``here`` on its own and act on it."""
        r, level, raw = self.r, here.level, here.entries[index]
        at = _At(level, here.table, index, here.prefix | (index << self._shift[level]), raw)
        desc = decode_descriptor(raw, level, r.granule)
        if isinstance(desc, InvalidDescriptor):
            self._problem(ProblemKind.RESERVED, at, desc.reason)
        elif isinstance(desc, TableDescriptor):
            self._table(desc, at, here.inherited, here.ancestors)
        else:
            group = index - index % r.granule.contiguous_entries(level)
            if desc.contiguous and group not in here.groups_checked:
                here.groups_checked.add(group)
                self._check_contiguous(here.entries, group, at, here.prefix)
            self._leaf(desc, at, here.inherited)

    def _whole_table(self, here: _Table, index: int) -> bool:
        """Entry ``index`` of a level 2 table, done here when it is a table descriptor
        whose level 3 table lies inside the dump's window and holds only a few runs of
        pages that need no word (see :meth:`_plain_run`): the table counted and read (where
        the visit would read it, after the same checks), each run added as one piece --
        what the visit would do, without its steps per level. False, having changed
        nothing, for anything else: the visit then takes the entry as usual (a read made
        here stays in the cache)."""
        raw = here.entries[index]
        if raw & 0b11 != 0b11 or raw & TABLE_ATTRIBUTE_BITS:  # not a table, or one passing restrictions on
            return False
        table, (count_, shift, step, span) = self.r.granule.next_table_address(raw), self._below_level_2
        va = here.prefix | (index << self._shift[2])
        if (va < self.lo or va + span > self.hi or self.visits >= self.max_tables
                or not self._followable(table, here.ancestors, count_)):
            return False
        try:
            data = self.t.tables.data(table, count_)
        except MemoryReadError:
            return False
        room, pieces = self.max_leaves - self.space.leaves, []
        for i, stop in _runs(int.from_bytes(data, "little"), count_, step):
            if stop is None:
                return False  # many runs: the visit scans them
            first, n = _WORD.unpack_from(data, 8 * i)[0], stop - i
            room -= n
            if (room < 0 or first & 0b11 != 0b11 or first & _CONTIGUOUS_BIT
                    or not self._plain_run(first, first + (n - 1) * step, n, shift)):
                return False  # past the leaf limit (the visit says where), or a run that needs a word
            pieces.append((va | (i << shift), first, n))
        self.visits += 1
        self.seen.setdefault(table)
        self._leaves(pieces, shift, 3, here.inherited)  # no table bits: the level 3 table inherits what this one does
        return True

    def _followable(self, table: int, ancestors: tuple[int, ...], count_: int) -> bool:
        """Whether the visit would read the next-level ``table`` of ``count_`` entries (its
        address fits, it is no ancestor, it lies in known memory) rather than report it."""
        return not table >> self.r.oa_bits and table not in ancestors and self._inside_memory(table, count_ * 8)

    def _plain_run(self, raw: int, last: int, count_: int, shift: int) -> bool:
        """Whether ``count_`` leaves from ``raw`` to ``last``, each the previous one plus one
        block, map inside the output-address size and known memory without the step carrying
        out of the output address: then they need no problem (nor a word each)."""
        out = raw & _OA_FIELD & -(1 << shift)
        return not ((last ^ raw) >> OA_BITS_MAX or (out + (count_ - 1 << shift)) >> self.r.oa_bits
                    or not self._inside_memory(out, count_ << shift))

    def _leaves(self, runs: Iterable[tuple[int, int, int]], shift: int, level: int, inherited: Inherited) -> None:
        """Runs of ``(va, raw, count)``: ``count`` leaves from ``va``, the first ``raw``, each
        the previous one plus one block: counted, and each added as one piece of the dump
        when the filter keeps them."""
        attributes, lo, hi = self.t.attributes, self.lo, self.hi
        for va, raw, count_ in runs:
            self.space.leaves += count_
            attrs = attributes(raw, inherited)
            if self.where is None or self._kept(attrs):
                start, end = max(va, lo), min(va + (count_ << shift), hi)
                self._add(start, end, (raw & _OA_FIELD & -(1 << shift)) + (start - va), attrs, count_, level)

    def _run_of_leaves(self, here: _Table, i: int, j: int) -> None:
        """Entries ``i..j`` of ``here``: leaves whose raw values step by one block.

        Added as one piece when nothing about them needs a word (the common case);
        otherwise entry by entry, so that each problem names its own entry.
        """
        level, entries = here.level, here.entries
        shift = self._shift[level]
        raw, count = entries[i], j - i + 1
        if not self._plain_run(raw, entries[j], count, shift) or self.space.leaves + count > self.max_leaves:
            for index in range(i, j + 1):
                self._entry(here, index)
            return
        if raw & _CONTIGUOUS_BIT:
            n = self.r.granule.contiguous_entries(level)
            at = _At(level, here.table, i, here.prefix | (i << shift), raw)
            for group in range(i - i % n, j + 1, n):
                if group not in here.groups_checked:
                    here.groups_checked.add(group)
                    self._check_contiguous(entries, group, at, here.prefix)
        self._leaves(((here.prefix | (i << shift), raw, count),), shift, level, here.inherited)

    def _table(self, desc: TableDescriptor, at: _At, inherited: Inherited, ancestors: tuple[int, ...]) -> None:
        r, nxt = self.r, desc.next_table
        if nxt >> r.oa_bits:
            self._problem(ProblemKind.ADDRESS_SIZE, at, f"next table {nxt:#x} exceeds {r.oa_bits}-bit PA")
            return
        if nxt in ancestors:
            back = r.start_level + ancestors.index(nxt)
            self._problem(ProblemKind.LOOP, at, f"points back to the level {back} table {nxt:#x}; not followed")
            return
        entries = self._read(nxt, at.level + 1, at)
        if entries is not None:
            self._visit(nxt, at.level + 1, entries, at.va, inherited.through(desc, r.hpd), ancestors + (nxt,))

    def _leaf(self, desc: LeafDescriptor, at: _At, inherited: Inherited) -> None:
        r, out = self.r, desc.output_address
        if out >> r.oa_bits:
            self._problem(ProblemKind.ADDRESS_SIZE, at, f"output address {out:#x} exceeds {r.oa_bits}-bit PA")
            return
        if not self._inside_memory(out, desc.size):
            self._problem(ProblemKind.OUTSIDE_MEMORY, at, f"maps {out:#x}+{human_size(desc.size)} outside known memory")
        if self.space.leaves >= self.max_leaves:
            self._problem(ProblemKind.LIMIT, at, f"stopped after {self.max_leaves} leaves")
            raise _Limit
        self.space.leaves += 1
        attrs = self.t.attributes(desc.raw, inherited)
        if not self._kept(attrs):
            return
        start, end = max(at.va, self.lo), min(at.va + desc.size, self.hi)
        self._add(start, end, out + (start - at.va), attrs, 1, desc.level)

    def _kept(self, attrs: Attributes) -> bool:
        """Whether the filter keeps leaves with ``attrs`` (asked once per distinct value)."""
        if self.where is None:
            return True
        kept = self._filtered.get(attrs)
        if kept is None:
            kept = self._filtered[attrs] = bool(self.where(attrs))
        return kept

    def _check_contiguous(self, entries: Sequence[int], start: int, at: _At, prefix: int) -> None:
        """Report a misprogrammed Contiguous-bit group (Arm ARM "The Contiguous bit").

        The group is the N aligned entries around ``at``: all must be leaves of the same
        kind with identical attributes (Contiguous bit included) mapping one aligned,
        contiguous output range; otherwise the TLB may use any entry for the whole group.
        """
        granule, level = self.r.granule, at.level
        n, size = granule.contiguous_entries(level), granule.block_size(level)
        group = entries[start : start + n]
        base = granule.output_address(group[0], level)
        leaf_type = _leaf_type(level)
        reason = None
        if len(group) < n or any(raw & 0b11 != leaf_type for raw in group):
            reason = f"the {n} entries of the group are not all {'pages' if level == 3 else 'blocks'}"
        elif len({raw & ~_OA_FIELD for raw in group}) != 1:
            reason = f"the {n} entries of the group differ in attributes or Contiguous bits"
        elif base % (n * size):
            reason = f"output address {base:#x} is not aligned to the {human_size(n * size)} group"
        elif any(granule.output_address(raw, level) != base + i * size for i, raw in enumerate(group)):
            reason = "the group's output addresses are not one contiguous range"
        if reason:
            first = _At(level, at.table, start, prefix | (start << granule.level_shift(level)), group[0])
            self._problem(ProblemKind.CONTIGUOUS, first, reason)

    def _add(self, start: int, end: int, pa: int, attrs: Attributes, leaves: int, level: int) -> None:
        """Extend the open range with [start, end) -> pa when it continues it, else open a new one.
        (Equal attributes are one object: Translator.attributes interns them.)"""
        run = self._open
        if run is not None and run[1] == start and run[2] + (run[1] - run[0]) == pa and run[3] is attrs:
            run[1] = end
            run[4] += leaves
            run[5] |= 1 << level
            return
        self._close()
        self._open = [start, end, pa, attrs, leaves, 1 << level]

    def _close(self) -> None:
        if self._open is not None:
            start, end, pa, attrs, leaves, levels = self._open
            self.space.ranges.append(Range(Address(start), Address(end), Address(pa), attrs, leaves, _LEVELS[levels]))
            self._open = None


def dump_range(
    translator: Translator,
    va_range: VaRange,
    *,
    va_start: int | None = None,
    va_end: int | None = None,
    where: AttributeFilter | None = None,
    physical_ranges: Sequence[tuple[int, int]] | None = None,
    max_tables: int = DEFAULT_MAX_TABLES,
    max_leaves: int = DEFAULT_MAX_LEAVES,
) -> AddressSpace:
    """Dump ``va_range`` (optionally only [va_start, va_end)) through ``translator``'s table cache."""
    lo = va_range.va_start if va_start is None else max(va_start, va_range.va_start)
    hi = va_range.va_end if va_end is None else min(va_end, va_range.va_end)
    dumper = _Dumper(translator, va_range, lo, hi, where, physical_ranges, max_tables, max_leaves)
    if lo < hi:
        dumper.run()
    return dumper.finish()


def dump(
    target: Target,
    which: int = 0,
    *,
    regime: TranslationRegime | None = None,
    root: int | None = None,
    asid: int | None = None,
    **options,
) -> AddressSpace:
    """Dump the TTBR0 (``which=0``) or TTBR1 range; ``root`` walks another table instead.

    ``options`` are those of :func:`dump_range`. Raises TranslationError only when the
    regime itself is unusable (reserved TCR_EL1.TGn), RegisterError when registers are
    missing; everything found in memory is reported in the result.
    """
    translator = Translator(target, regime)
    va_range = translator.regime.va_range(which)
    if root is not None:
        va_range = va_range.with_root(root, asid)
    return dump_range(translator, va_range, **options)
