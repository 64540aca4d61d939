"""Declarative decoding of the EL1 system registers that shape translation and faults.

A register layout is a tuple of :class:`Field` (name, lsb, width, optional value names),
in the style of pwndbg and gdb-pt-dump; the typed dataclasses (:class:`TCR`,
:class:`SCTLR`, :class:`MAIR`, :class:`ESR`) are built from those tables and know how to
``describe()`` themselves. Field positions follow the Arm ARM (DDI 0487) register
descriptions for TCR_EL1, SCTLR_EL1, MAIR_EL1 and ESR_EL1.

Example::

    TCR.decode(0x5_8010_0010).granule1.name    # "4K" (T0SZ=T1SZ=16, TG1=0b10, IPS=48-bit)
    ESR.decode(0x9600_0047).describe()         # "Data Abort ... Translation fault, level 3 (write)"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from .granule import GRANULE_4K, GRANULE_16K, GRANULE_64K, Granule


@dataclass(frozen=True)
class Field:
    """A bit-field: ``width`` bits from ``lsb``, with optional names for its values."""

    name: str
    lsb: int
    width: int = 1
    values: Mapping[int, str] = field(default_factory=dict)

    def extract(self, raw: int) -> int:
        return (raw >> self.lsb) & ((1 << self.width) - 1)

    def describe(self, raw: int) -> str:
        value = self.extract(raw)
        named = self.values.get(value)
        if named is not None:
            return f"{self.name}={named}"
        return f"{self.name}={value:#x}" if self.width > 8 else f"{self.name}={value}"


@dataclass(frozen=True)
class RegisterLayout:
    name: str
    fields: tuple[Field, ...]

    def __getitem__(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def decode(self, raw: int) -> dict[str, int]:
        return {f.name: f.extract(raw) for f in self.fields}

    def describe(self, raw: int, only_set: bool = False) -> str:
        parts = [f.describe(raw) for f in self.fields if not only_set or f.extract(raw)]
        return f"{self.name}={raw:#x}: " + " ".join(parts)


# --- TCR_EL1 -----------------------------------------------------------------------

# TG0 and TG1 encode the same sizes with DIFFERENT values (Arm ARM, TCR_EL1.TG0/TG1).
TG0_GRANULES: dict[int, Granule] = {0b00: GRANULE_4K, 0b01: GRANULE_64K, 0b10: GRANULE_16K}
TG1_GRANULES: dict[int, Granule] = {0b01: GRANULE_16K, 0b10: GRANULE_4K, 0b11: GRANULE_64K}
IPS_BITS: dict[int, int] = {0: 32, 1: 36, 2: 40, 3: 42, 4: 44, 5: 48, 6: 52}
_CACHE = {0: "NC", 1: "WB-RA-WA", 2: "WT-RA", 3: "WB-RA"}
SHAREABILITY = {0: "non-shareable", 1: "reserved", 2: "outer", 3: "inner"}


def _names(mapping: Mapping[int, Granule]) -> dict[int, str]:
    return {k: g.name for k, g in mapping.items()}


TCR_LAYOUT = RegisterLayout(
    "TCR_EL1",
    (
        Field("T0SZ", 0, 6),
        Field("EPD0", 7),
        Field("IRGN0", 8, 2, _CACHE),
        Field("ORGN0", 10, 2, _CACHE),
        Field("SH0", 12, 2, SHAREABILITY),
        Field("TG0", 14, 2, _names(TG0_GRANULES)),
        Field("T1SZ", 16, 6),
        Field("A1", 22),
        Field("EPD1", 23),
        Field("IRGN1", 24, 2, _CACHE),
        Field("ORGN1", 26, 2, _CACHE),
        Field("SH1", 28, 2, SHAREABILITY),
        Field("TG1", 30, 2, _names(TG1_GRANULES)),
        Field("IPS", 32, 3, {k: f"{v}-bit" for k, v in IPS_BITS.items()}),
        Field("AS", 36, 1, {0: "8-bit", 1: "16-bit"}),
        Field("TBI0", 37),
        Field("TBI1", 38),
        Field("HA", 39),
        Field("HD", 40),
        Field("HPD0", 41),
        Field("HPD1", 42),
    ),
)


@dataclass(frozen=True)
class TCR:
    """TCR_EL1 decoded. ``granule0``/``granule1`` are None for reserved TG encodings."""

    raw: int
    t0sz: int
    t1sz: int
    granule0: Granule | None
    granule1: Granule | None
    ips_bits: int | None
    epd0: bool
    epd1: bool
    tbi0: bool
    tbi1: bool
    a1: bool
    asid16: bool
    ha: bool
    hpd0: bool
    hpd1: bool
    sh0: int
    irgn0: int
    orgn0: int
    sh1: int
    irgn1: int
    orgn1: int

    @classmethod
    @lru_cache(maxsize=32)  # decoded once per value: every stop and translator asks again
    def decode(cls, raw: int) -> TCR:
        f = TCR_LAYOUT.decode(raw)
        return cls(
            raw=raw,
            t0sz=f["T0SZ"],
            t1sz=f["T1SZ"],
            granule0=TG0_GRANULES.get(f["TG0"]),
            granule1=TG1_GRANULES.get(f["TG1"]),
            ips_bits=IPS_BITS.get(f["IPS"]),
            epd0=bool(f["EPD0"]),
            epd1=bool(f["EPD1"]),
            tbi0=bool(f["TBI0"]),
            tbi1=bool(f["TBI1"]),
            a1=bool(f["A1"]),
            asid16=bool(f["AS"]),
            ha=bool(f["HA"]),
            hpd0=bool(f["HPD0"]),
            hpd1=bool(f["HPD1"]),
            sh0=f["SH0"],
            irgn0=f["IRGN0"],
            orgn0=f["ORGN0"],
            sh1=f["SH1"],
            irgn1=f["IRGN1"],
            orgn1=f["ORGN1"],
        )

    def describe(self) -> str:
        return TCR_LAYOUT.describe(self.raw)


# --- SCTLR_EL1 ---------------------------------------------------------------------

SCTLR_LAYOUT = RegisterLayout(
    "SCTLR_EL1",
    (
        Field("M", 0),
        Field("A", 1),
        Field("C", 2),
        Field("SA", 3),
        Field("SA0", 4),
        Field("nAA", 6),
        Field("I", 12),
        Field("DZE", 14),
        Field("UCT", 15),
        Field("nTWI", 16),
        Field("nTWE", 18),
        Field("WXN", 19),
        Field("SPAN", 23),
        Field("E0E", 24),
        Field("EE", 25),
        Field("UCI", 26),
    ),
)


@dataclass(frozen=True)
class SCTLR:
    """SCTLR_EL1: MMU enable, caches, alignment checks and write-implies-XN."""

    raw: int
    mmu: bool
    alignment_check: bool
    dcache: bool
    icache: bool
    sp_alignment: bool
    wxn: bool
    big_endian: bool

    @classmethod
    @lru_cache(maxsize=32)  # decoded once per value: every stop and translator asks again
    def decode(cls, raw: int) -> SCTLR:
        f = SCTLR_LAYOUT.decode(raw)
        return cls(
            raw=raw,
            mmu=bool(f["M"]),
            alignment_check=bool(f["A"]),
            dcache=bool(f["C"]),
            icache=bool(f["I"]),
            sp_alignment=bool(f["SA"]),
            wxn=bool(f["WXN"]),
            big_endian=bool(f["EE"]),
        )

    def describe(self) -> str:
        return SCTLR_LAYOUT.describe(self.raw)


# --- MAIR_EL1 ----------------------------------------------------------------------

_DEVICE_TYPES = {0b0000: "Device-nGnRnE", 0b0100: "Device-nGnRE", 0b1000: "Device-nGRE", 0b1100: "Device-GRE"}


@dataclass(frozen=True)
class Cacheability:
    """One half (inner or outer) of a Normal memory attribute nibble."""

    policy: str  # "WB", "WT", "NC" or "reserved"
    transient: bool = False
    read_allocate: bool = False
    write_allocate: bool = False

    @classmethod
    def decode(cls, nibble: int) -> Cacheability:
        ra, wa = bool(nibble & 0b10), bool(nibble & 0b01)
        if nibble == 0b0100:
            return cls("NC")
        if nibble == 0b0000:
            return cls("reserved")
        top = nibble >> 2
        # 0b00RW / 0b01RW are the transient forms of WT / WB (RW != 00).
        policy = {0b00: "WT", 0b01: "WB", 0b10: "WT", 0b11: "WB"}[top]
        return cls(policy, transient=top < 0b10, read_allocate=ra, write_allocate=wa)

    def describe(self) -> str:
        parts = [self.policy]
        if self.transient:
            parts.append("transient")
        if self.read_allocate:
            parts.append("RA")
        if self.write_allocate:
            parts.append("WA")
        return " ".join(parts)


@dataclass(frozen=True)
class MemoryAttribute:
    """One MAIR_EL1 byte: ``kind`` is "device", "normal" or "reserved"."""

    index: int
    raw: int
    kind: str
    name: str
    inner: Cacheability | None = None
    outer: Cacheability | None = None

    @classmethod
    def decode(cls, index: int, raw: int) -> MemoryAttribute:
        outer, inner = raw >> 4, raw & 0xF
        if outer == 0:
            name = _DEVICE_TYPES.get(inner)
            if name is None:
                return cls(index, raw, "reserved", f"reserved device encoding {raw:#04x}")
            return cls(index, raw, "device", name)
        o, i = Cacheability.decode(outer), Cacheability.decode(inner)
        if i.policy == "reserved":
            return cls(index, raw, "reserved", f"reserved normal encoding {raw:#04x}")
        if o == i:
            name = f"Normal {i.describe()}"
        else:
            name = f"Normal inner {i.describe()} / outer {o.describe()}"
        return cls(index, raw, "normal", name, inner=i, outer=o)

    @property
    def is_device(self) -> bool:
        return self.kind == "device"

    def describe(self) -> str:
        return f"Attr{self.index}={self.raw:#04x} {self.name}"


@dataclass(frozen=True)
class MAIR:
    raw: int
    attrs: tuple[MemoryAttribute, ...]

    def __hash__(self) -> int:
        # The attributes follow from the value: hashing them would cost a memoised
        # attribute decode (walker.leaf_attributes) more than it saves.
        return hash(self.raw)

    @classmethod
    @lru_cache(maxsize=32)  # decoded once per value: every stop and translator asks again
    def decode(cls, raw: int) -> MAIR:
        return cls(raw, tuple(MemoryAttribute.decode(i, (raw >> (8 * i)) & 0xFF) for i in range(8)))

    def __getitem__(self, index: int) -> MemoryAttribute:
        return self.attrs[index]

    def describe(self) -> str:
        return f"MAIR_EL1={self.raw:#x}: " + ", ".join(a.describe() for a in self.attrs)


# --- ESR_EL1 -----------------------------------------------------------------------

EC_NAMES: dict[int, str] = {
    0x00: "Unknown reason",
    0x01: "Trapped WFI/WFE",
    0x03: "Trapped MCR/MRC (coproc 0b1111)",
    0x04: "Trapped MCRR/MRRC (coproc 0b1111)",
    0x05: "Trapped MCR/MRC (coproc 0b1110)",
    0x06: "Trapped LDC/STC",
    0x07: "Access to SVE/SIMD/floating-point",
    0x0C: "Trapped MRRC (coproc 0b1110)",
    0x0D: "Branch Target Exception",
    0x0E: "Illegal Execution state",
    0x11: "SVC in AArch32",
    0x15: "SVC in AArch64",
    0x16: "HVC in AArch64",
    0x17: "SMC in AArch64",
    0x18: "Trapped MSR/MRS/system instruction",
    0x19: "Access to SVE",
    0x1C: "Pointer authentication failure",
    0x20: "Instruction Abort from a lower Exception level",
    0x21: "Instruction Abort taken without a change in Exception level",
    0x22: "PC alignment fault",
    0x24: "Data Abort from a lower Exception level",
    0x25: "Data Abort taken without a change in Exception level",
    0x26: "SP alignment fault",
    0x28: "Floating-point exception (AArch32)",
    0x2C: "Floating-point exception (AArch64)",
    0x2F: "SError interrupt",
    0x30: "Breakpoint from a lower Exception level",
    0x31: "Breakpoint taken without a change in Exception level",
    0x32: "Software Step from a lower Exception level",
    0x33: "Software Step taken without a change in Exception level",
    0x34: "Watchpoint from a lower Exception level",
    0x35: "Watchpoint taken without a change in Exception level",
    0x38: "BKPT (AArch32)",
    0x3C: "BRK (AArch64)",
}
ABORT_ECS = frozenset({0x20, 0x21, 0x24, 0x25})
DATA_ABORT_ECS = frozenset({0x24, 0x25})


def fault_status_name(code: int) -> str:
    """Name of a DFSC/IFSC value (ESR_EL1.ISS[5:0] for aborts)."""
    level = code & 0b11
    by_group = {
        0b0000: "Address size fault",
        0b0001: "Translation fault",
        0b0010: "Access flag fault",
        0b0011: "Permission fault",
        0b0101: "Synchronous External abort on translation table walk",
        0b0111: "Parity/ECC error on translation table walk",
    }
    group = code >> 2
    if group in by_group:
        return f"{by_group[group]}, level {level}"
    fixed = {
        0b010000: "Synchronous External abort, not on translation table walk",
        0b010001: "Synchronous Tag Check Fault",
        0b011000: "Synchronous parity or ECC error, not on translation table walk",
        0b100001: "Alignment fault",
        0b110000: "TLB conflict abort",
        0b110001: "Unsupported atomic hardware update fault",
        0b110100: "IMPLEMENTATION DEFINED fault (Lockdown)",
        0b110101: "IMPLEMENTATION DEFINED fault (Unsupported Exclusive or Atomic access)",
    }
    return fixed.get(code, f"reserved fault status {code:#08b}")


ESR_LAYOUT = RegisterLayout(
    "ESR_EL1",
    (Field("ISS", 0, 25), Field("IL", 25), Field("EC", 26, 6, EC_NAMES)),
)


@dataclass(frozen=True)
class ESR:
    """ESR_EL1 decoded; abort-only fields are None for other exception classes."""

    raw: int
    ec: int
    ec_name: str
    il: bool
    iss: int
    fault_status: int | None = None
    fault_name: str | None = None
    write: bool | None = None  # WnR, data aborts only
    imm16: int | None = None  # SVC/HVC/SMC/BRK immediate

    @classmethod
    def decode(cls, raw: int) -> ESR:
        f = ESR_LAYOUT.decode(raw)
        ec, iss = f["EC"], f["ISS"]
        common = dict(raw=raw, ec=ec, ec_name=EC_NAMES.get(ec, f"reserved EC {ec:#x}"), il=bool(f["IL"]), iss=iss)
        if ec in ABORT_ECS:
            fsc = iss & 0x3F
            wnr = bool(iss & (1 << 6)) if ec in DATA_ABORT_ECS else None
            return cls(**common, fault_status=fsc, fault_name=fault_status_name(fsc), write=wnr)
        if ec in (0x15, 0x16, 0x17, 0x3C):
            return cls(**common, imm16=iss & 0xFFFF)
        return cls(**common)

    def describe(self) -> str:
        text = f"ESR_EL1={self.raw:#x}: {self.ec_name} (EC={self.ec:#04x})"
        if self.fault_name is not None:
            text += f": {self.fault_name}"
            if self.write is not None:
                text += " (write)" if self.write else " (read)"
        if self.imm16 is not None:
            text += f" #{self.imm16:#x}"
        return text
