"""Stage-1 VA -> PA translation for one regime (EL1&0, or EL2/EL3 through their TCR
re-expressed in TCR_EL1's layout, see :mod:`.regime`), with a per-level trace.

:class:`Translator` holds a :class:`TableReader` session cache: each translation table is
fetched with ONE read of the whole table (4/16/64 KiB, or the smaller start-level table)
and reused by every later walk or dump through the same translator. Faults the hardware
would take (translation, address size, access flag, unreadable table) are returned in
:class:`~gdb_tinyos.aarch64.model.Walk`, never raised; :func:`translate` raises
``TranslationError`` for callers that only want an address.

Example::

    t = Translator(target)               # registers read once from the target
    w = t.walk(0xFFFF_0000_4008_0000)
    print(w.describe())                  # L0..L3 lines, then "va ... -> pa ... EL1:R-X ..."
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import NamedTuple

from ..core.address import Address
from ..core.columns import unsigned_column
from ..core.errors import MemoryReadError, TranslationError
from ..core.target import Target
from .descriptors import (
    LEAF_ATTRIBUTE_BITS,
    InvalidDescriptor,
    LeafDescriptor,
    TableDescriptor,
    decode_descriptor,
    leaf_fields,
)
from .model import Attributes, Fault, FaultKind, Mapping, Permissions, Walk, WalkStep
from .regime import TranslationRegime, VaRange
from .sysregs import MAIR, SHAREABILITY

MASK64 = (1 << 64) - 1
# With the MMU off the output address is the VA; without FEAT_LPA it must fit 48 bits.
FLAT_PA_BITS = 48


class TableReader:
    """Fetches translation tables whole, once each, and remembers them (failures too)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._data: dict[tuple[int, int], bytes | MemoryReadError] = {}
        self._tables: dict[tuple[int, int], Sequence[int]] = {}

    def data(self, table: int, count: int) -> bytes:
        """The ``count`` 64-bit entries at ``table`` as bytes (one read); MemoryReadError
        if unreadable."""
        key = (table, count)
        cached = self._data.get(key)
        if cached is None:
            try:
                cached = self.target.read_physical(table, 8 * count)
            except MemoryReadError as e:
                cached = e
            self._data[key] = cached
        if isinstance(cached, MemoryReadError):
            raise cached
        return cached

    def entries(self, table: int, count: int) -> Sequence[int]:
        """The ``count`` 64-bit entries at ``table``; MemoryReadError if unreadable. An
        array of machine words: a copy of the bytes, no int per entry until one is read
        (and nothing for the cycle collector to scan)."""
        key = (table, count)
        cached = self._tables.get(key)
        if cached is None:
            cached = self._tables[key] = unsigned_column(self.data(table, count), 8)
        return cached

    @property
    def tables_read(self) -> int:
        return len(self._data)


class Inherited(NamedTuple):
    """Restrictions accumulated from table descriptors above the current level (a tuple:
    it keys the attribute memo, hashed and compared in C)."""

    ap_table: int = 0
    uxn: bool = False
    pxn: bool = False
    ns: bool = False

    def through(self, table: TableDescriptor, hierarchical_disabled: bool) -> Inherited:
        if not (table.ap_table or table.uxn_table or table.pxn_table or table.ns_table):
            return self  # the usual table descriptor: nothing more to inherit
        # TCR_EL1.HPDn (FEAT_HPDS) makes APTable/UXNTable/PXNTable ignored; NSTable stays.
        if hierarchical_disabled:
            return Inherited(self.ap_table, self.uxn, self.pxn, self.ns or table.ns_table)
        return Inherited(self.ap_table | table.ap_table, self.uxn or table.uxn_table,
                         self.pxn or table.pxn_table, self.ns or table.ns_table)


@lru_cache(maxsize=1024)  # a pure function: every stop's translators meet the same leaves
def leaf_attributes(raw: int, inherited: Inherited, mair: MAIR, wxn: bool, el: int = 1,
                    el0: bool | None = None) -> Attributes:
    """The effective attributes of the block/page descriptor ``raw`` (only its
    LEAF_ATTRIBUTE_BITS matter) below tables that passed on ``inherited``, in the regime
    of ``el`` (1 = EL1&0); ``el0``: whether that regime has an EL0 (EL1&0, and EL2&0
    under VHE: the same rules, the privileged EL being EL2), by default only EL1&0.

    AP[2] (read-only) is forced by APTable[1], AP[1] (EL0 access) cleared by APTable[0].
    A region writable at EL0 is never executable at EL1; with WXN any writable region is
    execute-never for the EL that can write it. EL0 may execute memory it cannot read.
    EL2/EL3 (one range, no EL0): AP[1] and PXN are RES0/ignored, bit 54 is XN and
    XNTable (bit 60) inherits it.
    """
    f = leaf_fields(raw & LEAF_ATTRIBUTE_BITS)
    if not (el == 1 if el0 is None else el0):
        read_only = bool(f["AP"] & 0b10) or bool(inherited.ap_table & 0b10)
        xn = bool(f["UXN"]) or inherited.uxn
        perms = Permissions(el1_read=True, el1_write=not read_only, el1_exec=not (xn or (wxn and not read_only)),
                            el0_read=False, el0_write=False, el0_exec=False, el=el, el0=False)
        return Attributes(perms=perms, pxn=False, uxn=xn, memory=mair[f["AttrIndx"]],
                          shareability=SHAREABILITY[f["SH"]], af=bool(f["AF"]), ng=bool(f["nG"]),
                          contiguous=bool(f["Contiguous"]), dbm=bool(f["DBM"]), ns=bool(f["NS"]) or inherited.ns)
    ap = f["AP"]
    read_only = bool(ap & 0b10) or bool(inherited.ap_table & 0b10)
    el0_access = bool(ap & 0b01) and not inherited.ap_table & 0b01
    uxn = bool(f["UXN"]) or inherited.uxn
    pxn = bool(f["PXN"]) or inherited.pxn
    el1_write = not read_only
    el0_write = el0_access and not read_only
    perms = Permissions(
        el1_read=True,
        el1_write=el1_write,
        el1_exec=not (pxn or el0_write or (wxn and el1_write)),
        el0_read=el0_access,
        el0_write=el0_write,
        el0_exec=not (uxn or (wxn and el0_write)),
        el=el,
    )
    return Attributes(
        perms=perms,
        pxn=pxn,
        uxn=uxn,
        memory=mair[f["AttrIndx"]],
        shareability=SHAREABILITY[f["SH"]],
        af=bool(f["AF"]),
        ng=bool(f["nG"]),
        contiguous=bool(f["Contiguous"]),
        dbm=bool(f["DBM"]),
        ns=bool(f["NS"]) or inherited.ns,
    )


def canonical(va_range: VaRange, va: int) -> int:
    """``va`` with the bits above the range's input size made all-zero/all-one (drops tags)."""
    return va_range.va_start | (va & ((1 << va_range.input_bits) - 1))


class Translator:
    """Walks addresses of one translation regime, sharing one table cache."""

    def __init__(self, target: Target, regime: TranslationRegime | None = None) -> None:
        self.target = target
        self.regime = regime if regime is not None else TranslationRegime.from_target(target)
        self.tables = TableReader(target)
        # Attributes by (descriptor attribute bits, inheritance): a table's leaves share a
        # handful, so each distinct one is looked up once per translator (MAIR/WXN fixed).
        self._attributes: dict[tuple[int, Inherited], Attributes] = {}
        self._interned: dict[Attributes, Attributes] = {}

    def attributes(self, raw: int, inherited: Inherited) -> Attributes:
        """:func:`leaf_attributes` of the leaf ``raw`` under this regime, memoised; equal
        attributes are one object (range merging compares them by identity)."""
        key = (raw & LEAF_ATTRIBUTE_BITS, inherited)
        found = self._attributes.get(key)
        if found is None:
            decoded = leaf_attributes(key[0], inherited, self.regime.mair, self.regime.sctlr.wxn, self.regime.el,
                                      self.regime.two_ranges)
            found = self._attributes[key] = self._interned.setdefault(decoded, decoded)
        return found

    def walk(self, va: int) -> Walk:
        """Translate ``va`` as the CPU would now (TTBR selection, TBI, EPD, MMU state)."""
        va = Address(va & MASK64)
        if not self.regime.mmu_enabled:
            return self._flat(va)
        which = (va >> 55) & 1  # bit 55 picks the half, also when the top byte is a tag
        try:
            va_range = self.regime.va_range(which)
        except TranslationError as e:
            return Walk(va, True, which, fault=Fault(FaultKind.CONFIGURATION, 0, str(e)))
        top = 55 if va_range.tbi else 63
        expected = (1 << (top + 1 - va_range.input_bits)) - 1 if which else 0
        if (va >> va_range.input_bits) & ((1 << (top + 1 - va_range.input_bits)) - 1) != expected:
            message = (
                f"VA bits [{top}:{va_range.input_bits}] must all be {which} for the "
                f"{va_range.input_bits}-bit {va_range.name} range"
            )
            return Walk(va, True, which, fault=Fault(FaultKind.TRANSLATION, 0, f"non-canonical address: {message}"))
        if va_range.epd:
            message = f"walks of the {va_range.name} range are disabled ({self.regime.tcr_name}.EPD{which}=1)"
            return Walk(va, True, which, fault=Fault(FaultKind.TRANSLATION, 0, message), notes=va_range.notes)
        return self.walk_range(va_range, va)

    def translate(self, va: int) -> int:
        """The PA for ``va``; TranslationError naming the fault when there is none."""
        return self.walk_mapped(va).pa

    def walk_mapped(self, va: int) -> Walk:
        """:meth:`walk` of ``va`` when it reaches a PA (its mapping tells how far that
        goes on); TranslationError naming the fault when it does not."""
        w = self.walk(va)
        if w.pa is None:
            reason = w.fault.describe() if w.fault is not None else "no mapping"
            raise TranslationError(f"cannot translate {va:#x}: {reason}")
        return w

    def walk_range(self, va_range: VaRange, va: int) -> Walk:
        """Walk ``va``'s index bits through ``va_range``'s tables (any root, e.g. another process's)."""
        va = Address(va & MASK64)
        granule = va_range.granule
        cva = canonical(va_range, va)
        steps: list[WalkStep] = []
        notes = list(va_range.notes)

        def done(fault: Fault | None = None, mapping: Mapping | None = None) -> Walk:
            return Walk(va, True, va_range.which, tuple(steps), mapping, fault, tuple(notes))

        def fault(kind: FaultKind, level: int, message: str) -> Walk:
            return done(Fault(kind, level, message))

        table = Address(va_range.root_table)
        if table >> va_range.oa_bits:
            return fault(FaultKind.ADDRESS_SIZE, 0, f"{va_range.name} base {table:#x} exceeds {va_range.oa_bits}-bit PA")
        inherited = Inherited()
        path: dict[int, int] = {}
        counts = va_range.table_entries
        for level in range(va_range.start_level, 4):
            path.setdefault(table, level)
            try:
                entries = self.tables.entries(table, counts[level])
            except MemoryReadError as e:
                return fault(FaultKind.EXTERNAL_ABORT, level, f"level {level} table at {table:#x} is unreadable: {e}")
            index = (cva >> granule.level_shift(level)) & (counts[level] - 1)  # Granule.index, its count known
            desc = decode_descriptor(entries[index], level, granule)
            steps.append(WalkStep(level, table, index, desc.raw, desc.kind, desc))
            if isinstance(desc, InvalidDescriptor):
                return fault(FaultKind.TRANSLATION, level, f"the descriptor is {desc.kind.value}: {desc.reason}")
            if isinstance(desc, TableDescriptor):
                if desc.next_table >> va_range.oa_bits:
                    message = f"next table {desc.next_table:#x} exceeds {va_range.oa_bits}-bit PA"
                    return fault(FaultKind.ADDRESS_SIZE, level, message)
                if desc.next_table in path:
                    notes.append(
                        f"level {level} entry points back to the level {path[desc.next_table]} table "
                        f"{desc.next_table:#x} (recursive mapping)"
                    )
                inherited = inherited.through(desc, va_range.hpd)
                table = desc.next_table
                continue
            return self._leaf(va_range, va, cva, desc, inherited, done)
        raise AssertionError("unreachable: level 3 never holds a table descriptor")

    def _leaf(
        self,
        va_range: VaRange,
        va: int,
        cva: int,
        leaf: LeafDescriptor,
        inherited: Inherited,
        done: Callable[..., Walk],
    ) -> Walk:
        level = leaf.level
        if leaf.output_address >> va_range.oa_bits:
            message = f"output address {leaf.output_address:#x} exceeds {va_range.oa_bits}-bit PA"
            return done(Fault(FaultKind.ADDRESS_SIZE, level, message))
        offset = cva & (leaf.size - 1)
        mapping = Mapping(
            va=va,
            pa=Address(leaf.output_address + offset),
            va_base=Address(cva - offset),
            pa_base=leaf.output_address,
            size=leaf.size,
            level=level,
            kind=leaf.kind,
            attrs=self.attributes(leaf.raw, inherited),
            asid=va_range.asid if leaf.ng else None,
        )
        if not leaf.af and not self.regime.tcr.ha:
            return done(Fault(FaultKind.ACCESS_FLAG, level, "the access flag (AF) is clear"), mapping)
        return done(mapping=mapping)

    def _flat(self, va: int) -> Walk:
        if va >> FLAT_PA_BITS:
            message = f"with the MMU off the address must fit {FLAT_PA_BITS} bits"
            return Walk(va, False, None, fault=Fault(FaultKind.ADDRESS_SIZE, 0, message))
        return Walk(va, False, None, notes=("MMU off (SCTLR_EL1.M=0): VA == PA",))


def walk(target: Target, va: int, regime: TranslationRegime | None = None) -> Walk:
    """Translate one VA (registers read from ``target`` unless ``regime`` is given)."""
    return Translator(target, regime).walk(va)


def translate(target: Target, va: int, regime: TranslationRegime | None = None) -> int:
    """The PA for ``va``; TranslationError naming the fault when there is none."""
    return Translator(target, regime).translate(va)
