"""The stage-1 translation regime the CPU is in: which tables, granules and sizes a walk uses.

A :class:`TranslationRegime` is a snapshot of TCR, SCTLR, MAIR and the TTBRs of one regime:
EL1&0 (two VA ranges, TTBR0 and TTBR1), or EL2 / EL3 (one range, TTBR0_ELx; their TCR is
re-expressed in TCR_EL1's layout with the upper range disabled, so one walker serves all).
:func:`current_el` reads the exception level from PSTATE; :meth:`TranslationRegime.from_target`
picks the regime of that level unless told one. ``regime.va_range(0)`` / ``va_range(1)`` give the :class:`VaRange` (the TTBR0 lower
half or the TTBR1 upper half) with its granule, input size, starting level, root table
and ASID. ``regime.with_ttbr0(ttbr)`` walks another process's tables with the same
configuration.

Example::

    regime = TranslationRegime.from_target(target)           # the CPU's regime now
    regime.va_range(1).start_level      # 0 for 4K granule and T1SZ=16
    TranslationRegime.from_target(target, el=1)              # EL1&0, from EL2 or EL3 too
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

from ..core.errors import RegisterError, TranslationError
from ..core.target import Target
from .granule import MAX_TXSZ, MIN_TXSZ, OA_BITS_MAX, Granule
from .sysregs import MAIR, SCTLR, TCR

TTBR_BADDR_MASK = ((1 << OA_BITS_MAX) - 1) & ~1  # BADDR[47:1]; bit 0 is CnP
# The two VA ranges by the TTBR that maps them: va_range(USER_HALF) / va_range(KERNEL_HALF).
USER_HALF, KERNEL_HALF = 0, 1
# TCR_EL2 (non-VHE) / TCR_EL3 fields -> their TCR_EL1 positions: (from bit, width, to bit).
_TCR_ELX_TO_EL1 = ((0, 6, 0), (8, 8, 8), (16, 3, 32), (20, 1, 37), (24, 1, 41))
_TCR_EPD1 = 1 << 23


def current_el(target: Target) -> int:
    """The exception level the CPU is at (PSTATE.EL, bits [3:2] of cpsr)."""
    return (target.read_register("cpsr") >> 2) & 3


def regime_el(el: int) -> int:
    """The regime serving code at ``el``: EL0 and EL1 share the EL1&0 regime."""
    return max(el, 1)


def el1_layout_tcr(tcr_elx: int) -> int:
    """TCR_EL2/TCR_EL3 (one VA range) in TCR_EL1's layout, with TTBR1 walks disabled."""
    out = _TCR_EPD1
    for src, width, dst in _TCR_ELX_TO_EL1:
        out |= ((tcr_elx >> src) & ((1 << width) - 1)) << dst
    return out


@dataclass(frozen=True)
class VaRange:
    """One of the two VA ranges of the EL1&0 regime (``which`` 0 = TTBR0, 1 = TTBR1)."""

    which: int
    ttbr: int
    granule: Granule
    txsz: int  # effective (clamped) TxSZ
    epd: bool
    tbi: bool
    hpd: bool
    asid: int
    oa_bits: int
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"TTBR{self.which}"

    @property
    def input_bits(self) -> int:
        return 64 - self.txsz

    # Derived once per range (a walk asks for these at every level): a cached property
    # writes the instance's __dict__, which a frozen dataclass allows; equality and
    # hashing stay on the fields.
    @cached_property
    def start_level(self) -> int:
        return self.granule.start_level(self.input_bits)

    @property
    def root_entries(self) -> int:
        return self.granule.table_entries(self.start_level, self.input_bits)

    @cached_property
    def root_table(self) -> int:
        """Base of the root table; BADDR bits below the table's alignment are ignored."""
        return self.ttbr & TTBR_BADDR_MASK & ~(self.root_entries * 8 - 1)

    @property
    def va_start(self) -> int:
        return 0 if self.which == 0 else (1 << 64) - (1 << self.input_bits)

    @property
    def va_end(self) -> int:
        """Exclusive end of the range (2**64 for TTBR1)."""
        return (1 << self.input_bits) if self.which == 0 else 1 << 64

    @cached_property
    def table_entries(self) -> tuple[int, ...]:
        """Entries of the table at each level 0-3 (the start level's may be fewer)."""
        return tuple(self.granule.table_entries(level, self.input_bits) for level in range(4))

    def with_root(self, table_pa: int, asid: int | None = None) -> VaRange:
        """The same range walking the table at ``table_pa`` (e.g. another process's)."""
        ttbr = (self.ttbr & ~TTBR_BADDR_MASK) | (table_pa & TTBR_BADDR_MASK)
        return replace(self, ttbr=ttbr, asid=self.asid if asid is None else asid)

    def describe(self) -> str:
        text = (
            f"{self.name}={self.ttbr:#x}: {self.granule.name} granule, {self.input_bits}-bit VA "
            f"({self.va_start:#x}-{self.va_end - 1:#x}), start level {self.start_level}, "
            f"root {self.root_table:#x} ({self.root_entries} entries), ASID {self.asid}"
        )
        flags = [n for n, on in (("EPD", self.epd), ("TBI", self.tbi), ("HPD", self.hpd)) if on]
        return text + (", " + " ".join(flags) if flags else "")


@dataclass(frozen=True)
class TranslationRegime:
    """A snapshot of the registers that control EL1&0 stage-1 translation."""

    tcr: TCR
    sctlr: SCTLR
    mair: MAIR
    ttbr0: int
    ttbr1: int
    notes: tuple[str, ...] = field(default=())
    el: int = 1  # the regime: 1 = EL1&0, 2 = EL2 (or EL2&0 with vhe), 3 = EL3
    # HCR_EL2.E2H at EL2 (FEAT_VHE): the EL2&0 regime, two VA ranges and EL0, TCR_EL2 in
    # TCR_EL1's layout -- translated by EL1&0's rules
    vhe: bool = False

    @classmethod
    def from_values(cls, *, tcr: int, sctlr: int, mair: int, ttbr0: int, ttbr1: int, el: int = 1,
                    vhe: bool = False) -> TranslationRegime:
        """Registers of regime ``el``; for EL2/EL3 ``tcr`` is TCR_ELx as the CPU holds it."""
        notes: tuple[str, ...] = ()
        if el > 1 and not vhe:
            tcr, ttbr1 = el1_layout_tcr(tcr), 0
            notes = (f"TCR_EL{el}'s fields are shown in TCR_EL1's layout (T0SZ, TG0, PS as IPS, TBI0, "
                     "HPD0); this regime has no TTBR1 half",)
        return cls(TCR.decode(tcr), SCTLR.decode(sctlr), MAIR.decode(mair), ttbr0, ttbr1, notes, el, vhe)

    @property
    def two_ranges(self) -> bool:
        """Whether the regime has a TTBR1 half (and an EL0): EL1&0, and EL2&0 under VHE."""
        return self.el == 1 or self.vhe

    @classmethod
    def from_target(cls, target: Target, el: int | None = None) -> TranslationRegime:
        """The registers of regime ``el`` (default: the one the CPU is in now, EL1&0 when
        the target has no PSTATE); RegisterError if one is unavailable."""
        asked = el
        if el is None:
            try:
                el = current_el(target)
            except RegisterError:
                el = 1  # a synthetic or partial target: the kernel's own regime
        hcr = _hcr(target) if el in (0, 2) else 0  # E2H/TGE matter at EL0 and EL2 only
        if asked is None and el == 0 and hcr & (HCR_E2H | HCR_TGE) == HCR_E2H | HCR_TGE:
            el = 2  # a VHE host's user code runs under the EL2&0 regime
        el = regime_el(el)
        suffix = f"_EL{el}"
        vhe = el == 2 and bool(hcr & HCR_E2H)
        return cls.from_values(
            tcr=target.read_register("TCR" + suffix),
            sctlr=target.read_register("SCTLR" + suffix),
            mair=target.read_register("MAIR" + suffix),
            ttbr0=target.read_register("TTBR0" + suffix),
            ttbr1=target.read_register("TTBR1" + suffix) if el == 1 or vhe else 0,
            el=el,
            vhe=vhe,
        )

    @property
    def name(self) -> str:
        return f"EL{self.el}&0" if self.two_ranges else f"EL{self.el}"

    @property
    def tcr_name(self) -> str:
        return f"TCR_EL{self.el}"

    @property
    def mmu_enabled(self) -> bool:
        return self.sctlr.mmu

    @property
    def asid(self) -> int:
        """The current ASID: from TTBR1 when TCR.A1 is set, else TTBR0; 8 or 16 bits per TCR.AS."""
        return asid_of(self.ttbr1 if self.tcr.a1 else self.ttbr0, self.tcr.asid16)

    @property
    def oa_bits(self) -> int:
        # IPS values above the 48-bit limit (52-bit needs FEAT_LPA) act as 48 here.
        return min(self.tcr.ips_bits or OA_BITS_MAX, OA_BITS_MAX)

    def with_ttbr0(self, ttbr0: int) -> TranslationRegime:
        return replace(self, ttbr0=ttbr0)

    def va_range(self, which: int) -> VaRange:
        """The TTBR0 (``which=0``) or TTBR1 (``which=1``) half; TranslationError if its TG is reserved."""
        halves = self._halves
        if which not in halves:
            halves[which] = self._va_range(which)
        return halves[which]

    @cached_property
    def _halves(self) -> dict[int, VaRange]:
        return {}  # by ``which``: every walk asks for its half

    def _va_range(self, which: int) -> VaRange:
        tcr = self.tcr
        if which and not self.two_ranges:
            raise TranslationError(f"the {self.name} regime has one VA range (TTBR0_EL{self.el}); no TTBR1 half")
        granule = tcr.granule1 if which else tcr.granule0
        if granule is None:
            tg = (tcr.raw >> (30 if which else 14)) & 3
            raise TranslationError(f"{self.tcr_name}.TG{which}={tg:#04b} is a reserved granule encoding")
        txsz = tcr.t1sz if which else tcr.t0sz
        notes: tuple[str, ...] = ()
        clamped = min(max(txsz, MIN_TXSZ), MAX_TXSZ)
        if clamped != txsz:
            notes = (f"T{which}SZ={txsz} is outside {MIN_TXSZ}..{MAX_TXSZ}; walked as T{which}SZ={clamped}",)
        return VaRange(
            which=which,
            ttbr=self.ttbr1 if which else self.ttbr0,
            granule=granule,
            txsz=clamped,
            epd=tcr.epd1 if which else tcr.epd0,
            tbi=tcr.tbi1 if which else tcr.tbi0,
            hpd=tcr.hpd1 if which else tcr.hpd0,
            asid=self.asid,
            oa_bits=self.oa_bits,
            notes=notes,
        )

    def describe(self) -> str:
        lines = [
            f"{self.name} regime, MMU {'on' if self.mmu_enabled else 'off'} (SCTLR M={int(self.sctlr.mmu)} "
            f"C={int(self.sctlr.dcache)} I={int(self.sctlr.icache)} WXN={int(self.sctlr.wxn)}), "
            f"ASID {self.asid} ({16 if self.tcr.asid16 else 8}-bit, from TTBR{int(self.tcr.a1)}), "
            f"{self.oa_bits}-bit output addresses",
            self.tcr.describe(),
            self.mair.describe(),
        ]
        for which in ((0, 1) if self.two_ranges else (0,)):
            try:
                lines.append(self.va_range(which).describe())
            except TranslationError as e:
                lines.append(f"TTBR{which}: {e}")
        return "\n".join(lines + list(self.notes))


# HCR_EL2.E2H (bit 34): EL2 is a host OS's EL, with the EL2&0 regime (FEAT_VHE); with
# TGE (bit 27) as well, EL0 runs under that regime too.
HCR_E2H, HCR_TGE = 1 << 34, 1 << 27


def _hcr(target: Target) -> int:
    """HCR_EL2; 0 when the target exposes no EL2 state (as without FEAT_VHE)."""
    try:
        return target.read_register("HCR_EL2")
    except RegisterError:
        return 0


def asid_of(ttbr: int, asid16: bool) -> int:
    """ASID field TTBR[63:48]; only bits [55:48] count with 8-bit ASIDs."""
    return (ttbr >> 48) & (0xFFFF if asid16 else 0xFF)

