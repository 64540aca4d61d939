"""Reading the kernel wherever the CPU stopped: the regime of the current exception level,
and kernel statics read physically (gdb_tinyos.aarch64.regime / .translated).

Expected values come from the Arm ARM register layouts written out here (TCR_EL2/EL3 field
positions, PSTATE.EL) and from tables built by hand, never from the code under test."""

from __future__ import annotations

import pytest

from gdb_tinyos.aarch64 import FaultKind, TranslationRegime, Translator
from gdb_tinyos.aarch64.regime import current_el
from gdb_tinyos.aarch64.translated import TranslatedTarget
from gdb_tinyos.core.errors import MemoryReadError, TranslationError
from gdb_tinyos.core.image import ImageMap, LoadSegment

TABLE = PAGE = 0b11
AF = 1 << 10
MAIR = 0xFF << 8
NORMAL = 1 << 2
KERNEL_VA = 0xFFFF_0000_4008_0000
KERNEL_PA = 0x4008_0000


def pstate(el: int) -> int:
    """SPSR/PSTATE with EL in bits [3:2] and SP_ELx selected (bit 0), DAIF masked."""
    return 0x3C0 | el << 2 | (1 if el else 0)


def tcr_el2(t0sz=16, tg0=0b00, ps=0b101, tbi=0, hpd=0):
    """TCR_EL2 (non-VHE) / TCR_EL3: T0SZ[5:0], TG0[15:14], PS[18:16], TBI[20], HPD[24]."""
    return t0sz | tg0 << 14 | ps << 16 | tbi << 20 | hpd << 24 | 1 << 23 | 1 << 31  # RES1 bits 23, 31


def four_level(image, va: int, leaf: int) -> int:
    """An L0..L3 chain mapping ``va``'s 4 KiB page to ``leaf``; returns the L0 table."""
    tables = [image.table() for _ in range(4)]
    for level, shift in enumerate((39, 30, 21, 12)):
        index = (va >> shift) & 0x1FF
        image.set(tables[level], index, leaf if level == 3 else tables[level + 1] | TABLE | AF)
    return tables[0]


@pytest.mark.parametrize("el", [0, 1, 2, 3])
def test_current_el_reads_pstate(image, el):
    image.registers(cpsr=pstate(el))
    assert current_el(image.target) == el


def test_el2_regime_walks_ttbr0_el2_with_its_own_tcr(image):
    va, pa = 0x8_0040_3000, 0x4020_5000
    root = four_level(image, va, pa | PAGE | AF | NORMAL)
    image.registers(cpsr=pstate(2), TCR_EL2=tcr_el2(), SCTLR_EL2=1, MAIR_EL2=MAIR, TTBR0_EL2=root,
                    # EL1's registers describe another regime: they must not be used.
                    TCR_EL1=0, SCTLR=0, MAIR_EL1=0, TTBR0_EL1=0, TTBR1_EL1=0)
    regime = TranslationRegime.from_target(image.target)
    assert (regime.el, regime.name, regime.mmu_enabled) == (2, "EL2", True)
    assert regime.va_range(0).input_bits == 48 and regime.va_range(0).granule.name == "4K"
    assert regime.oa_bits == 48  # PS=0b101
    assert Translator(image.target, regime).translate(va | 0x123) == pa | 0x123
    with pytest.raises(TranslationError, match="one VA range"):
        regime.va_range(1)


# HCR_EL2.E2H (bit 34), Arm ARM D13.2.48: with it set EL2 is a host OS's EL (FEAT_VHE), the
# EL2&0 regime: TCR_EL2 takes TCR_EL1's layout, TTBR1_EL2 maps the upper half and EL0 runs
# under it, with EL1&0's permission rules.
E2H = 1 << 34
TCR_EL1_LAYOUT = 16 | 16 << 16 | 0b10 << 30 | 0b101 << 32  # T0SZ=T1SZ=16, TG1=4K, IPS=48-bit


def test_vhe_el2_regime_has_two_ranges_and_an_el0(image):
    upper_va, upper_pa = 0xFFFF_0000_4020_3000, 0x4020_3000
    lower_va, lower_pa = 0x40_1000, 0x4030_1000
    user_rw = 0b01 << 6  # AP = 01: read/write at EL2 and EL0
    upper = four_level(image, upper_va, upper_pa | PAGE | AF | NORMAL)  # AP = 00: EL2 only
    lower = four_level(image, lower_va, lower_pa | PAGE | AF | NORMAL | user_rw)
    image.registers(cpsr=pstate(2), HCR_EL2=E2H, TCR_EL2=TCR_EL1_LAYOUT, SCTLR_EL2=1, MAIR_EL2=MAIR,
                    TTBR0_EL2=lower, TTBR1_EL2=upper, TCR_EL1=0, SCTLR=0, MAIR_EL1=0, TTBR0_EL1=0, TTBR1_EL1=0)
    regime = TranslationRegime.from_target(image.target)
    assert (regime.el, regime.vhe, regime.name) == (2, True, "EL2&0")
    assert regime.va_range(1).input_bits == 48 and regime.va_range(1).root_table == upper
    walker = Translator(image.target, regime)
    assert walker.translate(upper_va | 0x18) == upper_pa | 0x18
    assert walker.translate(lower_va) == lower_pa
    # AP = 00, UXN = 0: no data access at EL0, yet EL0 may execute it (as under EL1&0)
    assert walker.walk(upper_va).mapping.attrs.perms.describe() == "EL2:RWX EL0:--X"
    # writable at EL0, hence never executable at the privileged EL (as at EL1)
    assert walker.walk(lower_va).mapping.attrs.perms.describe() == "EL2:RW- EL0:RWX"
    assert "TTBR1=" in regime.describe()


@pytest.mark.parametrize(("hcr", "name"), [(E2H | 1 << 27, "EL2&0"), (E2H, "EL1&0")])
def test_el0_of_a_vhe_host_runs_under_el2_and_0_only_with_tge(image, hcr, name):
    """HCR_EL2.{E2H,TGE} = {1,1}: EL0 is the host's user space, under the EL2&0 regime;
    with TGE clear EL0 belongs to a guest's EL1&0."""
    image.registers(cpsr=pstate(0), HCR_EL2=hcr, TCR_EL2=TCR_EL1_LAYOUT, SCTLR_EL2=1, MAIR_EL2=MAIR,
                    TTBR0_EL2=0x4300_0000, TTBR1_EL2=0x4400_0000, TCR_EL1=TCR_EL1_LAYOUT, SCTLR=1,
                    MAIR_EL1=MAIR, TTBR0_EL1=0x4500_0000, TTBR1_EL1=0x4600_0000)
    regime = TranslationRegime.from_target(image.target)
    assert regime.name == name
    assert regime.ttbr0 == (0x4300_0000 if name == "EL2&0" else 0x4500_0000)


def test_without_e2h_el2_has_one_range_and_says_how_its_tcr_is_shown(image):
    root = four_level(image, 0x4020_0000, 0x4020_0000 | PAGE | AF | NORMAL)
    image.registers(cpsr=pstate(2), HCR_EL2=0, TCR_EL2=tcr_el2(), SCTLR_EL2=1, MAIR_EL2=MAIR, TTBR0_EL2=root)
    regime = TranslationRegime.from_target(image.target)
    assert (regime.vhe, regime.name) == (False, "EL2")
    assert "shown in TCR_EL1's layout" in regime.describe()
    with pytest.raises(TranslationError, match="one VA range"):
        regime.va_range(1)


def test_el3_regime_with_mmu_off_is_flat_and_el1_is_still_reachable(image):
    image.registers(cpsr=pstate(3), TCR_EL3=tcr_el2(), SCTLR_EL3=0, MAIR_EL3=0, TTBR0_EL3=0,
                    TCR_EL1=0, SCTLR=1, MAIR_EL1=MAIR, TTBR0_EL1=0, TTBR1_EL1=0)
    regime = TranslationRegime.from_target(image.target)
    assert (regime.el, regime.mmu_enabled) == (3, False)
    assert Translator(image.target, regime).walk(0x4008_1234).pa == 0x4008_1234
    assert TranslationRegime.from_target(image.target, el=1).el == 1  # pt --regime el1


def test_el1_regime_at_el0_uses_the_el1_registers(image):
    image.registers(cpsr=pstate(0), TCR_EL1=16 | 16 << 16 | 0b10 << 30, SCTLR=1, MAIR_EL1=MAIR,
                    TTBR0_EL1=0x1000, TTBR1_EL1=0x2000)
    regime = TranslationRegime.from_target(image.target)
    assert (regime.el, regime.ttbr0, regime.ttbr1) == (1, 0x1000, 0x2000)


def test_epd1_disables_the_upper_half(image):
    # TCR_EL1.EPD1 (bit 23): a TTBR1 walk faults at level 0 without touching a table.
    image.registers(cpsr=pstate(1), TCR_EL1=16 | 16 << 16 | 0b10 << 30 | 1 << 23, SCTLR=1,
                    MAIR_EL1=MAIR, TTBR0_EL1=0, TTBR1_EL1=0x4800_0000)
    walk = Translator(image.target).walk(KERNEL_VA)
    assert walk.pa is None and walk.fault.kind is FaultKind.TRANSLATION and "EPD1" in walk.fault.message


# -- kernel statics, read physically -------------------------------------------------------

IMAGE = ImageMap((LoadSegment(KERNEL_VA, KERNEL_PA, 0x10_0000),))


def with_static(image, data: bytes) -> None:
    image.target.write_physical(KERNEL_PA + 0x1000, data)


def test_mmu_off_reads_statics_at_their_load_address(image):
    with_static(image, b"manager!")
    image.registers(cpsr=pstate(1), TCR_EL1=0, SCTLR=0, MAIR_EL1=0, TTBR0_EL1=0, TTBR1_EL1=0)
    memory = TranslatedTarget(image.target, IMAGE)
    assert not memory.mmu_on
    assert memory.read_virtual(KERNEL_VA + 0x1000, 8) == b"manager!"
    image.target.write_physical(0x4040_0000, b"flat")
    assert memory.read_virtual(0x4040_0000, 4) == b"flat"  # outside the image: VA = PA


def test_at_el0_statics_are_read_through_the_kernel_tables_not_the_cpu(image):
    # The CPU is at EL0 with a process's TTBR0 live; the kernel's TTBR1 maps the image.
    with_static(image, b"manager!")
    root = four_level(image, KERNEL_VA + 0x1000, (KERNEL_PA + 0x1000) | PAGE | AF | NORMAL)
    image.registers(cpsr=pstate(0), TCR_EL1=16 | 16 << 16 | 0b10 << 30, SCTLR=1, MAIR_EL1=MAIR,
                    TTBR0_EL1=0x4090_0000 | 3 << 48, TTBR1_EL1=root)
    memory = TranslatedTarget(image.target, IMAGE)
    assert memory.mmu_on
    assert memory.read_virtual(KERNEL_VA + 0x1000, 8) == b"manager!"


def test_a_kernel_that_maps_itself_elsewhere_is_read_through_its_tables(image):
    moved = 0x4100_0000
    image.target.write_physical(moved, b"moved...")
    root = four_level(image, KERNEL_VA + 0x1000, moved | PAGE | AF | NORMAL)
    image.registers(cpsr=pstate(1), TCR_EL1=16 | 16 << 16 | 0b10 << 30, SCTLR=1, MAIR_EL1=MAIR,
                    TTBR0_EL1=0, TTBR1_EL1=root)
    assert TranslatedTarget(image.target, IMAGE).read_virtual(KERNEL_VA + 0x1000, 8) == b"moved..."


def test_a_range_across_pages_is_joined_from_each_page_frame(image):
    # Two consecutive VAs outside the image mapped to non-adjacent frames.
    va = 0xFFFF_0000_5000_0000
    root = image.table()
    image.target.write_physical(0x4200_0FFC, b"abcd")
    image.target.write_physical(0x4300_0000, b"efgh")
    tables = [root] + [image.table() for _ in range(3)]
    for page, frame in ((va, 0x4200_0000), (va + 0x1000, 0x4300_0000)):
        for level, shift in enumerate((39, 30, 21, 12)):
            index = (page >> shift) & 0x1FF
            image.set(tables[level], index, frame | PAGE | AF | NORMAL if level == 3 else tables[level + 1] | TABLE | AF)
    image.registers(cpsr=pstate(1), TCR_EL1=16 | 16 << 16 | 0b10 << 30, SCTLR=1, MAIR_EL1=MAIR,
                    TTBR0_EL1=0, TTBR1_EL1=root)
    memory = TranslatedTarget(image.target, IMAGE)
    assert memory.read_virtual(va + 0xFFC, 8) == b"abcdefgh"
    assert memory.physical_runs(va + 0xFFC, 8) == [(0x4200_0FFC, 4), (0x4300_0000, 4)]
    with pytest.raises(MemoryReadError, match="cannot read"):
        memory.read_virtual(va + 0x2000, 4)  # the third page is not mapped


@pytest.mark.parametrize(("bits", "expected"), [
    (0, "EL2:RWX"),                         # AP[2]=0: read/write; no XN
    (1 << 54, "EL2:RW-"),                   # bit 54 is XN in a one-range regime
    (0b10 << 6, "EL2:R-X"),                 # AP[2]=1: read-only
    (1 << 53 | 0b01 << 6, "EL2:RWX"),       # PXN (bit 53) and AP[1] are RES0 there: no effect
])
def test_el2_permissions_follow_its_own_rules(image, bits, expected):
    va, pa = 0x4020_0000, 0x4020_0000
    root = four_level(image, va, pa | PAGE | AF | NORMAL | bits)
    image.registers(cpsr=pstate(2), TCR_EL2=tcr_el2(), SCTLR_EL2=1, MAIR_EL2=MAIR, TTBR0_EL2=root)
    walk = Translator(image.target).walk(va)
    perms = walk.mapping.attrs.perms
    assert perms.describe() == expected
    assert not (perms.el0_read or perms.el0_write or perms.el0_exec)
