"""System register decoders, against raw values composed from the Arm ARM field positions."""

from __future__ import annotations

import pytest

from gdb_tinyos.aarch64.sysregs import ESR, MAIR, SCTLR, TCR, Field, fault_status_name

# TCR_EL1 field positions (Arm ARM, TCR_EL1): T0SZ[5:0] EPD0[7] IRGN0[9:8] ORGN0[11:10]
# SH0[13:12] TG0[15:14] T1SZ[21:16] A1[22] EPD1[23] IRGN1[25:24] ORGN1[27:26] SH1[29:28]
# TG1[31:30] IPS[34:32] AS[36] TBI0[37] TBI1[38] HA[39] HD[40] HPD0[41] HPD1[42].


def test_tcr_fields_at_their_positions():
    raw = (
        25
        | 1 << 7
        | 0b01 << 8
        | 0b11 << 10
        | 0b11 << 12
        | 0b10 << 14  # TG0=16K
        | 17 << 16
        | 1 << 22
        | 0b01 << 24
        | 0b10 << 26
        | 0b10 << 28
        | 0b11 << 30  # TG1=64K
        | 0b010 << 32  # 40-bit
        | 1 << 36
        | 1 << 38
        | 1 << 41
    )
    tcr = TCR.decode(raw)
    assert (tcr.t0sz, tcr.t1sz) == (25, 17)
    assert tcr.epd0 and not tcr.epd1
    assert (tcr.irgn0, tcr.orgn0, tcr.sh0) == (1, 3, 3)
    assert (tcr.irgn1, tcr.orgn1, tcr.sh1) == (1, 2, 2)
    assert tcr.granule0.name == "16K" and tcr.granule1.name == "64K"
    assert tcr.ips_bits == 40
    assert tcr.a1 and tcr.asid16
    assert not tcr.tbi0 and tcr.tbi1
    assert tcr.hpd0 and not tcr.hpd1 and not tcr.ha


@pytest.mark.parametrize(
    ("tg0", "tg1", "g0", "g1"),
    [
        # TG0: 00=4K 01=64K 10=16K; TG1: 01=16K 10=4K 11=64K (different encodings!)
        (0b00, 0b10, "4K", "4K"),
        (0b01, 0b11, "64K", "64K"),
        (0b10, 0b01, "16K", "16K"),
        (0b01, 0b01, "64K", "16K"),
        (0b11, 0b00, None, None),  # both reserved
    ],
)
def test_tg0_and_tg1_use_different_encodings(tg0, tg1, g0, g1):
    tcr = TCR.decode(tg0 << 14 | tg1 << 30)
    assert (tcr.granule0.name if tcr.granule0 else None) == g0
    assert (tcr.granule1.name if tcr.granule1 else None) == g1


@pytest.mark.parametrize(("ips", "bits"), [(0, 32), (1, 36), (2, 40), (3, 42), (4, 44), (5, 48), (6, 52), (7, None)])
def test_tcr_ips(ips, bits):
    assert TCR.decode(ips << 32).ips_bits == bits


def test_tcr_describe_names_fields():
    text = TCR.decode(16 | 16 << 16 | 0b10 << 30 | 5 << 32).describe()
    assert "T0SZ=16" in text and "TG0=4K" in text and "TG1=4K" in text and "IPS=48-bit" in text


def test_sctlr_bits():
    # M[0] A[1] C[2] SA[3] I[12] WXN[19] EE[25]
    s = SCTLR.decode(1 | 1 << 2 | 1 << 12 | 1 << 19)
    assert s.mmu and s.dcache and s.icache and s.wxn
    assert not s.alignment_check and not s.sp_alignment and not s.big_endian
    s = SCTLR.decode(1 << 1 | 1 << 3 | 1 << 25)
    assert not s.mmu and s.alignment_check and s.sp_alignment and s.big_endian and not s.wxn
    assert "M=0" in s.describe() and "EE=1" in s.describe()


def test_mair_attributes():
    # Attr0=0x00 Device-nGnRnE, Attr1=0x04 Device-nGnRE, Attr2=0x08 nGRE, Attr3=0x0C GRE,
    # Attr4=0xFF Normal WB non-transient RA WA both, Attr5=0x44 Normal NC both,
    # Attr6=0xBB Normal WT non-transient RA WA (0b1011), Attr7=0x4F inner WB RA WA, outer NC.
    raw = 0x00 | 0x04 << 8 | 0x08 << 16 | 0x0C << 24 | 0xFF << 32 | 0x44 << 40 | 0xBB << 48 | 0x4F << 56
    m = MAIR.decode(raw)
    assert [a.name for a in m.attrs[:4]] == ["Device-nGnRnE", "Device-nGnRE", "Device-nGRE", "Device-GRE"]
    assert all(a.is_device for a in m.attrs[:4])
    wb = m[4]
    assert wb.kind == "normal" and wb.inner == wb.outer
    assert (wb.inner.policy, wb.inner.transient, wb.inner.read_allocate, wb.inner.write_allocate) == ("WB", False, True, True)
    assert m[5].kind == "normal" and m[5].inner.policy == "NC" and m[5].outer.policy == "NC"
    assert m[6].inner.policy == "WT" and not m[6].inner.transient
    assert m[7].inner.policy == "WB" and m[7].outer.policy == "NC"
    assert "inner WB" in m[7].name and "outer NC" in m[7].name


def test_mair_transient_and_reserved_encodings():
    # 0x11: outer 0b0001 / inner 0b0001 = Write-Through transient, write-allocate only.
    t = MAIR.decode(0x11)[0]
    assert t.kind == "normal" and t.inner.policy == "WT" and t.inner.transient and t.inner.write_allocate
    assert not t.inner.read_allocate
    # 0x70: Write-Back transient RA WA outer; inner 0b0000 is UNPREDICTABLE -> reserved.
    assert MAIR.decode(0x70)[0].kind == "reserved"
    # Device with bits[1:0] != 0 is not a defined encoding.
    assert MAIR.decode(0x01)[0].kind == "reserved"


def test_esr_data_abort_write_translation_level3():
    # EC=0x25 (data abort, same EL) << 26 | IL << 25 | WnR << 6 | DFSC=0b000111 (translation, L3)
    esr = ESR.decode(0x25 << 26 | 1 << 25 | 1 << 6 | 0b000111)
    assert esr.raw == 0x9600_0047
    assert esr.ec == 0x25 and esr.il
    assert esr.fault_name == "Translation fault, level 3"
    assert esr.write is True
    assert "Data Abort" in esr.describe() and "(write)" in esr.describe()


def test_esr_instruction_abort_has_no_wnr():
    esr = ESR.decode(0x20 << 26 | 1 << 25 | 1 << 6 | 0b001111)  # bit 6 is not WnR for IABT
    assert esr.fault_name == "Permission fault, level 3"
    assert esr.write is None


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (0b000000, "Address size fault, level 0"),
        (0b000101, "Translation fault, level 1"),
        (0b001010, "Access flag fault, level 2"),
        (0b001101, "Permission fault, level 1"),
        (0b010110, "Synchronous External abort on translation table walk, level 2"),
        (0b100001, "Alignment fault"),
        (0b110000, "TLB conflict abort"),
    ],
)
def test_fault_status_names(code, name):
    assert fault_status_name(code) == name


def test_esr_svc_and_brk_immediates():
    svc = ESR.decode(0x15 << 26 | 1 << 25 | 0x42)
    assert svc.ec_name == "SVC in AArch64" and svc.imm16 == 0x42 and svc.fault_name is None
    brk = ESR.decode(0x3C << 26 | 1 << 25 | 0xF000)
    assert brk.imm16 == 0xF000 and "BRK" in brk.describe()


def test_esr_unknown_ec_is_named_not_crashing():
    assert "reserved EC" in ESR.decode(0x3F << 26).ec_name


def test_field_extract_and_names():
    f = Field("X", 4, 3, {5: "five"})
    assert f.extract(0b101_0000) == 5
    assert f.describe(0b101_0000) == "X=five"
    assert f.describe(0b011_0000) == "X=3"
