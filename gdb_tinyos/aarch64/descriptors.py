"""VMSAv8-64 stage-1 translation table descriptors (48-bit output addresses).

``decode_descriptor(raw, level, granule)`` classifies one 64-bit entry as a table, block,
page, invalid (bit 0 clear) or reserved encoding (e.g. bits[1:0] = 0b01 at level 3, or a
block at a level the granule does not allow) and returns a typed object. It never raises
for any 64-bit value: reserved encodings are translation faults, reported as data.

Bit positions (Arm ARM D8 "VMSAv8-64 translation table format descriptors"):
table: NSTable[63] APTable[62:61] UXNTable[60] PXNTable[59], next table [47:granule shift];
block/page: UXN[54] PXN[53] Contiguous[52] DBM[51] GP[50], output address [47:level shift],
nG[11] AF[10] SH[9:8] AP[2:1] at [7:6] NS[5] AttrIndx[4:2].
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from ..core.address import Address
from .granule import Granule
from .sysregs import SHAREABILITY, Field, RegisterLayout

_AP_NAMES = {0: "EL1:RW EL0:--", 1: "EL1:RW EL0:RW", 2: "EL1:R- EL0:--", 3: "EL1:R- EL0:R-"}
_APTABLE_NAMES = {0: "none", 1: "no-EL0", 2: "read-only", 3: "read-only,no-EL0"}

TABLE_LAYOUT = RegisterLayout(
    "table",
    (
        Field("NSTable", 63),
        Field("APTable", 61, 2, _APTABLE_NAMES),
        Field("UXNTable", 60),
        Field("PXNTable", 59),
    ),
)
LEAF_LAYOUT = RegisterLayout(
    "leaf",
    (
        Field("UXN", 54),
        Field("PXN", 53),
        Field("Contiguous", 52),
        Field("DBM", 51),
        Field("GP", 50),
        Field("nG", 11),
        Field("AF", 10),
        Field("SH", 8, 2, SHAREABILITY),
        Field("AP", 6, 2, _AP_NAMES),
        Field("NS", 5),
        Field("AttrIndx", 2, 3),
        Field("SW", 55, 4),
    ),
)


def _field_bits(layout: RegisterLayout) -> int:
    return sum(((1 << f.width) - 1) << f.lsb for f in layout.fields)


# Every bit a leaf's attributes are decoded from (the layout's fields): two leaves whose
# raw values agree on these bits have the same attributes, whatever they map. Decoders
# memoise on ``raw & LEAF_ATTRIBUTE_BITS`` instead of decoding each leaf (and on
# ``raw & TABLE_ATTRIBUTE_BITS`` for a table descriptor).
LEAF_ATTRIBUTE_BITS = _field_bits(LEAF_LAYOUT)
TABLE_ATTRIBUTE_BITS = _field_bits(TABLE_LAYOUT)


class DescriptorKind(Enum):
    INVALID = "invalid"
    RESERVED = "reserved"
    TABLE = "table"
    BLOCK = "block"
    PAGE = "page"


@dataclass(frozen=True)
class TableDescriptor:
    raw: Address
    level: int
    next_table: Address
    ns_table: bool
    ap_table: int  # APTable[1:0]: bit 0 = no EL0 access below, bit 1 = no writes below
    uxn_table: bool
    pxn_table: bool
    kind: DescriptorKind = DescriptorKind.TABLE

    def describe(self) -> str:
        return f"table -> {self.next_table:#x} " + TABLE_LAYOUT.describe(self.raw, only_set=True).split(": ", 1)[1]


@dataclass(frozen=True)
class LeafDescriptor:
    """A block (levels 1/2) or page (level 3) descriptor."""

    raw: Address
    level: int
    kind: DescriptorKind
    output_address: Address
    attr_index: int
    ns: bool
    ap: int  # AP[2:1]: bit 1 = read-only, bit 0 = EL0 access
    shareability: str
    af: bool
    ng: bool
    dbm: bool
    contiguous: bool
    pxn: bool
    uxn: bool
    gp: bool
    software: int  # bits [58:55], ignored by hardware
    size: int

    def describe(self) -> str:
        fields = LEAF_LAYOUT.describe(self.raw).split(": ", 1)[1]
        return f"{self.kind.value} -> {self.output_address:#x} {fields}"


@dataclass(frozen=True)
class InvalidDescriptor:
    raw: Address
    level: int
    kind: DescriptorKind
    reason: str

    def describe(self) -> str:
        return f"{self.kind.value}: {self.reason}"


Descriptor = TableDescriptor | LeafDescriptor | InvalidDescriptor


def decode_descriptor(raw: int, level: int, granule: Granule) -> Descriptor:
    """Classify and decode one descriptor found at ``level`` of a ``granule`` walk (the
    result is immutable and may be shared)."""
    return _decoded(raw & ((1 << 64) - 1), level, granule)


@lru_cache(maxsize=4096)
def _decoded(raw: int, level: int, granule: Granule) -> Descriptor:
    # A pure function of one word: the walks of every stop meet the same kernel tables'
    # descriptors, and a LeafDescriptor costs ~5 us to build.
    raw = Address(raw)
    if not raw & 1:
        return InvalidDescriptor(raw, level, DescriptorKind.INVALID, "bit 0 is clear")
    is_table_or_page = bool(raw & 2)
    if level == 3:
        if not is_table_or_page:
            return InvalidDescriptor(raw, level, DescriptorKind.RESERVED, "bits[1:0]=0b01 is reserved at level 3")
        return _leaf(raw, level, granule, DescriptorKind.PAGE)
    if is_table_or_page:
        return _table(raw, level, granule)
    if not granule.allows_block(level):
        reason = f"a block is not allowed at level {level} with the {granule.name} granule"
        return InvalidDescriptor(raw, level, DescriptorKind.RESERVED, reason)
    return _leaf(raw, level, granule, DescriptorKind.BLOCK)


def _table(raw: int, level: int, granule: Granule) -> TableDescriptor:
    f = table_fields(raw & TABLE_ATTRIBUTE_BITS)
    return TableDescriptor(
        raw=raw,
        level=level,
        next_table=Address(granule.next_table_address(raw)),
        ns_table=bool(f["NSTable"]),
        ap_table=f["APTable"],
        uxn_table=bool(f["UXNTable"]),
        pxn_table=bool(f["PXNTable"]),
    )


@lru_cache(maxsize=64)
def table_fields(attribute_bits: int) -> dict[str, int]:
    """TABLE_LAYOUT's fields of ``attribute_bits`` (``raw & TABLE_ATTRIBUTE_BITS``), decoded
    once per distinct value (a kernel's tables use one or two). Shared: do not modify it."""
    return TABLE_LAYOUT.decode(attribute_bits)


@lru_cache(maxsize=4096)
def leaf_fields(attribute_bits: int) -> dict[str, int]:
    """LEAF_LAYOUT's fields of ``attribute_bits`` (``raw & LEAF_ATTRIBUTE_BITS``), decoded
    once per distinct value: a table holds few. The dict is shared: do not modify it."""
    return LEAF_LAYOUT.decode(attribute_bits)


def _leaf(raw: int, level: int, granule: Granule, kind: DescriptorKind) -> LeafDescriptor:
    f = leaf_fields(raw & LEAF_ATTRIBUTE_BITS)
    return LeafDescriptor(
        raw=raw,
        level=level,
        kind=kind,
        output_address=Address(granule.output_address(raw, level)),
        attr_index=f["AttrIndx"],
        ns=bool(f["NS"]),
        ap=f["AP"],
        shareability=SHAREABILITY[f["SH"]],
        af=bool(f["AF"]),
        ng=bool(f["nG"]),
        dbm=bool(f["DBM"]),
        contiguous=bool(f["Contiguous"]),
        pxn=bool(f["PXN"]),
        uxn=bool(f["UXN"]),
        gp=bool(f["GP"]),
        software=f["SW"],
        size=granule.block_size(level),
    )
