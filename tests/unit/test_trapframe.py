"""The saved exception frame: its layout from the shipped kernel's DWARF, decoding, the
interrupted context per SPSR mode, and the BL check of the entry's call site.

Expected values come from the Rust definition (``#[repr(C)] struct TrapFrame { x: [u64; 31],
sp_el0, elr, spsr, esr, far: u64 }``: C layout, no padding between 8-byte fields), the Arm
ARM (SPSR.M encodings, the BL encoding) and the ELF's own bytes read with pyelftools."""

from __future__ import annotations

import struct

import pytest
from elftools.elf.elffile import ELFFile

from gdb_tinyos.core.errors import LayoutError, SymbolError
from gdb_tinyos.debuginfo import ArrayType, BaseType, DebugInfo, Member, StructType
from gdb_tinyos.tinyos.trapframe import TrapFrameLayout, TrapSite, bl_target

U64 = BaseType("u64", 8, 8, "unsigned")
FRAME = 0xFFFF_0000_405F_5FB0


@pytest.fixture(scope="module")
def info(tinyos_kernel):
    with DebugInfo.open(tinyos_kernel, cache_dir=None) as opened:
        yield opened


def test_layout_from_the_kernels_dwarf_is_the_repr_c_layout(info):
    layout = TrapFrameLayout.from_debuginfo(info)
    assert (layout.x_offset, layout.x_count) == (0, 31)
    assert layout.offsets == {"sp_el0": 31 * 8, "elr": 32 * 8, "spsr": 33 * 8, "esr": 34 * 8, "far": 35 * 8}
    assert layout.size == 36 * 8


def frame_bytes(x, sp_el0, elr, spsr, esr, far) -> bytes:
    return struct.pack("<31Q5Q", *x, sp_el0, elr, spsr, esr, far)


def repr_c_layout() -> TrapFrameLayout:
    members = [Member("x", 0, ArrayType("[u64; 31]", 248, 8, U64, (31,)))]
    members += [Member(name, 248 + 8 * i, U64) for i, name in enumerate(("sp_el0", "elr", "spsr", "esr", "far"))]
    return TrapFrameLayout.from_struct(StructType("TrapFrame", 288, 8, tuple(members)))


X = [0x1000 + i for i in range(31)]


def test_a_frame_from_el0_resumes_on_sp_el0():
    raw = frame_bytes(X, 0x7FFF_FFFF_0000, 0x40020C, 0x6000_0000, 0x9200_004F, 0x80_0000)
    frame = repr_c_layout().decode(raw, FRAME)
    regs = frame.registers()
    assert frame.mode == "EL0t" and frame.origin_el == 0
    assert [regs[f"x{i}"] for i in range(31)] == X
    assert regs["sp"] == 0x7FFF_FFFF_0000 and regs["pc"] == 0x40020C and regs["cpsr"] == 0x6000_0000
    assert (frame.esr, frame.far) == (0x9200_004F, 0x80_0000)


def test_a_frame_from_el1h_resumes_above_the_frame():
    # M = 0b0101: EL1 with SP_EL1; the vector had done `sub sp, sp, #288`.
    frame = repr_c_layout().decode(frame_bytes(X, 0x1234, 0xFFFF_0000_4008_02A8, 0x2000_03C5, 0, 0), FRAME)
    assert frame.mode == "EL1h" and frame.origin_el == 1
    assert frame.registers()["sp"] == FRAME + 288


def test_a_frame_from_el1t_resumes_on_sp_el0():
    frame = repr_c_layout().decode(frame_bytes(X, 0x5550, 0, 0x3C4, 0, 0), FRAME)
    assert frame.mode == "EL1t" and frame.registers()["sp"] == 0x5550


def test_cpsr_is_the_low_32_bits_of_spsr():
    frame = repr_c_layout().decode(frame_bytes(X, 0, 0, (0xAB << 32) | 0x3C5, 0, 0), FRAME)
    assert frame.registers()["cpsr"] == 0x3C5


def test_an_unknown_mode_is_named_not_guessed():
    frame = repr_c_layout().decode(frame_bytes(X, 0, 0, 0b1001, 0, 0), FRAME)
    assert frame.origin_el is None and frame.mode == "M=0b1001"


def test_short_data_and_wrong_shapes_are_layout_errors():
    with pytest.raises(LayoutError, match="288 bytes"):
        repr_c_layout().decode(b"\0" * 100, FRAME)
    with pytest.raises(LayoutError, match="lacks member.*elr"):
        TrapFrameLayout.from_struct(StructType("TrapFrame", 16, 8, (Member("x", 0, U64), Member("sp_el0", 8, U64))))
    narrow = (Member("x", 0, ArrayType("[u32; 31]", 124, 4, BaseType("u32", 4, 4, "unsigned"), (31,))),)
    narrow += tuple(Member(n, 128 + 8 * i, U64) for i, n in enumerate(("sp_el0", "elr", "spsr", "esr", "far")))
    with pytest.raises(LayoutError, match="64-bit registers"):
        TrapFrameLayout.from_struct(StructType("TrapFrame", 168, 8, narrow))


def test_bl_targets_by_the_encoding():
    assert bl_target(0x9400_0002, 0x1000) == 0x1008  # BL +8: imm26 = 2
    assert bl_target(0x97FF_FFFF, 0x1000) == 0x0FFC  # BL -4: imm26 all ones
    assert bl_target(0x1400_0002, 0x1000) is None  # B, not BL
    assert bl_target(0xD503_201F, 0x1000) is None  # NOP


def elf_word(path, va: int) -> int:
    """4 bytes at ``va`` from the ELF's loaded segments, read here with pyelftools."""
    with open(path, "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= va < seg["p_vaddr"] + seg["p_filesz"]:
                return struct.unpack_from("<I", seg.data(), va - seg["p_vaddr"])[0]
    raise AssertionError(f"{va:#x} is not in a loaded segment")


def test_the_kernels_trap_site_is_the_return_from_bl_tinyos_trap(info, tinyos_kernel):
    site = TrapSite.from_debuginfo(info, lambda va: elf_word(tinyos_kernel, va))
    assert site.return_address == info.symbol("tinyos_trap_return").address
    assert site.entry == info.symbol("tinyos_trap_entry").address < site.return_address
    word = elf_word(tinyos_kernel, site.return_address - 4)
    assert word >> 26 == 0b100101  # BL


def test_a_kernel_without_that_call_is_refused(info):
    with pytest.raises(SymbolError, match="not `bl tinyos_trap`"):
        TrapSite.from_debuginfo(info, lambda va: 0xD503_201F)
