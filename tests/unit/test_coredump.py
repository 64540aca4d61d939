"""CoreTarget on synthetic ELF cores written byte by byte here (the layout QEMU 7.2 writes:
ET_CORE, EM_AARCH64, PT_NOTE with NT_PRSTATUS per CPU, PT_LOADs at physical addresses)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from gdb_tinyos.aarch64.coredump import CoreTarget, linear_map_offset, read_sidecar, write_sidecar
from gdb_tinyos.core.errors import DebugInfoError, MemoryReadError, RegisterError

ET_CORE, ET_EXEC, EM_AARCH64, EM_X86_64 = 4, 2, 183, 62
PT_LOAD, PT_NOTE = 1, 4
NT_PRSTATUS, NT_FPREGSET = 1, 2
EHDR, PHDR = 64, 56


def elf_header(e_type: int, machine: int, phnum: int) -> bytes:
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little-endian, version 1
    return ident + struct.pack("<HHIQQQIHHHHHH", e_type, machine, 1, 0, EHDR, 0, 0, EHDR, PHDR, phnum, 64, 0, 0)


def phdr(p_type: int, offset: int, vaddr: int, paddr: int, filesz: int, memsz: int) -> bytes:
    return struct.pack("<IIQQQQQQ", p_type, 0, offset, vaddr, paddr, filesz, memsz, 0)


def note(n_type: int, desc: bytes, name: bytes = b"CORE\0") -> bytes:
    pad = lambda b: b + bytes(-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(name), len(desc), n_type) + pad(name) + pad(desc)


def prstatus(pid: int, regs: list[int]) -> bytes:
    """struct elf_prstatus (aarch64): pr_pid at 32, pr_reg[34] at 112, pr_fpvalid, pad: 392 bytes."""
    assert len(regs) == 34
    desc = bytearray(392)
    struct.pack_into("<I", desc, 32, pid)
    struct.pack_into("<34Q", desc, 112, *regs)
    return bytes(desc)


def build_elf(e_type: int, machine: int, notes: bytes, loads: list[tuple[int, int, bytes, int]]) -> bytes:
    """``loads``: (vaddr, paddr, file bytes, memsz). Notes first, then the segment data."""
    phnum = len(loads) + (1 if notes else 0)
    offset = EHDR + PHDR * phnum
    headers, data = b"", b""
    if notes:
        headers += phdr(PT_NOTE, offset, 0, 0, len(notes), len(notes))
        data += notes
    for vaddr, paddr, content, memsz in loads:
        headers += phdr(PT_LOAD, offset + len(data), vaddr, paddr, len(content), memsz)
        data += content
    return elf_header(e_type, machine, phnum) + headers + data


def regs_for(cpu: int) -> list[int]:
    # x0..x30 = 0x<cpu>000 + i, sp, pc, pstate: distinct, recognisable values.
    return [(cpu << 12) + i for i in range(31)] + [0x4010_0000 + cpu, 0x4008_002C + cpu, 0x3C5]


RAM_A = bytes(range(256)) * 32  # 0x2000 bytes at PA 0x4000_0000
RAM_B = b"\xAB" * 0x1000  # adjacent, at PA 0x4000_2000
HIGH = b"\x5A" * 0x100  # at PA 0x5000_0000, of which only 0x100 of 0x1000 saved


def write_core(tmp_path: Path, cpus: int = 1, machine: int = EM_AARCH64, e_type: int = ET_CORE) -> Path:
    notes = b"".join(note(NT_PRSTATUS, prstatus(c + 1, regs_for(c))) + note(NT_FPREGSET, bytes(528)) for c in range(cpus))
    loads = [
        (0x4000_0000, 0x4000_0000, RAM_A, len(RAM_A)),
        (0x4000_2000, 0x4000_2000, RAM_B, len(RAM_B)),
        (0x5000_0000, 0x5000_0000, HIGH, 0x1000),
    ]
    path = tmp_path / "guest.core"
    path.write_bytes(build_elf(e_type, machine, notes, loads))
    return path


def write_kernel(tmp_path: Path, pairs: list[tuple[int, int]]) -> Path:
    path = tmp_path / "kernel.elf"
    path.write_bytes(build_elf(ET_EXEC, EM_AARCH64, b"", [(v, p, b"\0" * 16, 16) for v, p in pairs]))
    return path


# -- registers ------------------------------------------------------------------------


def test_general_registers_come_from_prstatus(tmp_path):
    with CoreTarget(write_core(tmp_path)) as core:
        assert core.read_register("x0") == 0
        assert core.read_register("x30") == 30
        assert core.read_register("sp") == 0x4010_0000
        assert core.read_register("pc") == 0x4008_002C
        assert core.read_register("cpsr") == 0x3C5
        assert core.read_register("PSTATE") == 0x3C5  # canonical name of gdb's cpsr


def test_cpu_selects_its_own_note(tmp_path):
    path = write_core(tmp_path, cpus=2)
    with CoreTarget(path, cpu=1) as core:
        assert core.read_register("x7") == 0x1007
        assert core.read_register("pc") == 0x4008_002D
        assert [c.pid for c in core.cpus] == [1, 2]
    with pytest.raises(DebugInfoError, match="no CPU 2"):
        CoreTarget(path, cpu=2)


def test_system_registers_missing_without_sidecar_say_why(tmp_path):
    with CoreTarget(write_core(tmp_path)) as core:
        with pytest.raises(RegisterError, match="TTBR1_EL1.*sidecar"):
            core.read_register("TTBR1_EL1")


def test_sidecar_beside_the_core_supplies_system_registers(tmp_path):
    path = write_core(tmp_path)
    sysregs = {"TTBR1_EL1": 0x4009_1000, "SCTLR_EL1": 0xC5_183D, "TCR_EL1": 0xFFFF_FFFF_FFFF_FFFF}
    write_sidecar(tmp_path / "guest.core.sysregs.json", sysregs)
    with CoreTarget(path) as core:
        assert core.read_register("TTBR1_EL1") == 0x4009_1000
        assert core.read_register("SCTLR") == 0xC5_183D  # QEMU's gdbstub spelling
        assert core.read_register("TCR_EL1") == (1 << 64) - 1  # 64 bits survive JSON


def test_sidecar_values_are_hex_strings_with_a_format_tag(tmp_path):
    side = tmp_path / "s.json"
    write_sidecar(side, {"SCTLR": 5}, kernel_elf="/k")
    doc = json.loads(side.read_text())
    assert doc["format"] == "tinyos-sysregs/1" and doc["kernel_elf"] == "/k"
    assert doc["registers"] == {"SCTLR": "0x5"}
    assert read_sidecar(side) == {"SCTLR_EL1": 5}


def test_malformed_sidecar_is_a_typed_error(tmp_path):
    side = tmp_path / "bad.json"
    side.write_text('{"format": "something-else"}')
    with pytest.raises(DebugInfoError, match="not a tinyos-sysregs/1"):
        read_sidecar(side)
    side.write_text('{"format": "tinyos-sysregs/1", "registers": {"TCR_EL1": "zz"}}')
    with pytest.raises(DebugInfoError, match="malformed"):
        read_sidecar(side)


# -- physical memory --------------------------------------------------------------------


def test_physical_reads_come_from_the_covering_load(tmp_path):
    with CoreTarget(write_core(tmp_path)) as core:
        assert core.read_physical(0x4000_0000, 4) == bytes([0, 1, 2, 3])
        assert core.read_physical(0x4000_01FE, 4) == bytes([0xFE, 0xFF, 0, 1])
        assert core.read_physical(0x4000_2FFF, 1) == b"\xAB"
        assert core.read_physical(0x5000_0000, 0x100) == HIGH


def test_a_read_may_span_adjacent_loads(tmp_path):
    with CoreTarget(write_core(tmp_path)) as core:
        assert core.read_physical(0x4000_1FFE, 4) == bytes([0xFE, 0xFF, 0xAB, 0xAB])


def test_reads_outside_saved_ram_name_the_address(tmp_path):
    with CoreTarget(write_core(tmp_path)) as core:
        with pytest.raises(MemoryReadError, match="0x40003000 is not in the core's RAM") as err:
            core.read_physical(0x4000_2FF0, 0x20)  # runs off the end of RAM_B
        assert (err.value.address, err.value.size) == (0x4000_2FF0, 0x20)
        with pytest.raises(MemoryReadError, match="0x3fffffff"):
            core.read_physical(0x3FFF_FFFF, 1)
        with pytest.raises(MemoryReadError, match="not saved"):
            core.read_physical(0x5000_00F0, 0x20)  # memsz > filesz: the tail was not saved


def test_reads_are_counted(tmp_path):
    with CoreTarget(write_core(tmp_path)) as core:
        core.read_physical(0x4000_0000, 16)
        core.read_physical(0x4000_0010, 8)
        assert (core.stats.reads, core.stats.bytes) == (2, 24)


# -- virtual memory ---------------------------------------------------------------------


def test_virtual_reads_use_the_kernel_linear_map_from_the_elf(tmp_path):
    kernel = write_kernel(tmp_path, [(0xFFFF_0000_4008_0000, 0x4008_0000), (0xFFFF_0000_4009_0000, 0x4009_0000)])
    with CoreTarget(write_core(tmp_path), kernel_elf=kernel) as core:
        assert core.linear_offset == 0xFFFF_0000_0000_0000
        assert core.read_virtual(0xFFFF_0000_4000_0010, 2) == bytes([0x10, 0x11])


def test_linear_offset_follows_the_elf_not_a_constant(tmp_path):
    kernel = write_kernel(tmp_path, [(0xFFFF_8000_4008_0000, 0x4008_0000)])
    with CoreTarget(write_core(tmp_path), kernel_elf=kernel) as core:
        assert core.read_virtual(0xFFFF_8000_4000_0020, 1) == bytes([0x20])


def test_user_addresses_need_page_tables(tmp_path):
    with CoreTarget(write_core(tmp_path), linear_offset=0xFFFF_0000_0000_0000) as core:
        with pytest.raises(MemoryReadError, match="tinyos-dump"):
            core.read_virtual(0x40_0000, 4)


def test_mmu_off_means_identity(tmp_path):
    path = write_core(tmp_path)
    with CoreTarget(path, sysregs={"SCTLR_EL1": 0xC5_0838}) as core:  # M (bit 0) clear
        assert core.read_virtual(0x4000_0005, 1) == bytes([5])


def test_page_tables_are_used_when_registers_and_a_walker_exist(tmp_path):
    walked = []

    def translate(target, va):
        walked.append((target.read_register("TTBR1_EL1"), va))
        return 0x4000_0100 + (va & 0xF)

    sysregs = {"SCTLR_EL1": 1, "TTBR1_EL1": 0x4009_1000, "TCR_EL1": 0}
    with CoreTarget(write_core(tmp_path), sysregs=sysregs, translate=translate) as core:
        assert core.read_virtual(0x40_0003, 1) == bytes([3])
    assert walked == [(0x4009_1000, 0x40_0003)]


def page_table_core(tmp_path: Path) -> Path:
    """Four-level 4 KiB tables (built from the ARM ARM descriptor formats) mapping user VA
    0x40_0000 -> PA 0x4000_5000 and 0x40_1000 -> PA 0x4000_4000: VA-adjacent pages that
    are physically in the opposite order."""
    ram = bytearray(0x6000)
    table, page = 0b11, 0b11
    leaf = (1 << 10) | (1 << 6) | (1 << 2)  # AF, AP=01 (EL0 RW), AttrIndx 1
    struct.pack_into("<Q", ram, 0x0000 + 8 * 0, 0x4000_1000 | table)  # L0[0]
    struct.pack_into("<Q", ram, 0x1000 + 8 * 0, 0x4000_2000 | table)  # L1[0]
    struct.pack_into("<Q", ram, 0x2000 + 8 * 2, 0x4000_3000 | table)  # L2[2]: VA bits 29:21 = 2
    struct.pack_into("<Q", ram, 0x3000 + 8 * 0, 0x4000_5000 | leaf | page)  # L3[0]
    struct.pack_into("<Q", ram, 0x3000 + 8 * 1, 0x4000_4000 | leaf | page)  # L3[1]
    ram[0x4000:0x5000] = b"\x44" * 0x1000
    ram[0x5000:0x6000] = b"\x55" * 0x1000
    notes = note(NT_PRSTATUS, prstatus(1, regs_for(0)))
    path = tmp_path / "tables.core"
    path.write_bytes(build_elf(ET_CORE, EM_AARCH64, notes, [(0x4000_0000, 0x4000_0000, bytes(ram), len(ram))]))
    return path


# TCR_EL1: T0SZ=16, TG0=4K (0b00), T1SZ=16, TG1=4K (0b10), IPS=48 bits (0b101).
TCR_4K_48 = 16 | (16 << 16) | (0b10 << 30) | (0b101 << 32)
TABLE_REGS = {"SCTLR_EL1": 1, "TCR_EL1": TCR_4K_48, "TTBR0_EL1": 0x4000_0000, "TTBR1_EL1": 0x4000_0000,
              "MAIR_EL1": 0xFF00}


def test_virtual_reads_walk_the_page_tables_page_by_page(tmp_path):
    with CoreTarget(page_table_core(tmp_path), sysregs=TABLE_REGS) as core:
        assert core.virtual_to_physical(0x40_0123) == 0x4000_5123
        assert core.read_virtual(0x40_0FFE, 4) == b"\x55\x55\x44\x44"


def test_unmapped_virtual_addresses_are_memory_errors(tmp_path):
    with CoreTarget(page_table_core(tmp_path), sysregs=TABLE_REGS) as core:
        with pytest.raises(MemoryReadError, match="0x402000"):
            core.read_virtual(0x40_2000, 8)


def test_linear_map_offset_of_elfs(tmp_path):
    assert linear_map_offset(write_kernel(tmp_path, [(0x4008_0000, 0x4008_0000)])) is None
    mixed = write_kernel(tmp_path, [(0xFFFF_0000_4008_0000, 0x4008_0000), (0xFFFF_8000_4009_0000, 0x4009_0000)])
    with pytest.raises(DebugInfoError, match="different VA-PA offsets"):
        linear_map_offset(mixed)


# -- not a usable core ---------------------------------------------------------------------


def test_other_architectures_are_refused(tmp_path):
    with pytest.raises(DebugInfoError, match="not an AArch64 core"):
        CoreTarget(write_core(tmp_path, machine=EM_X86_64))


def test_an_executable_is_not_a_core(tmp_path):
    with pytest.raises(DebugInfoError, match="not an AArch64 core"):
        CoreTarget(write_core(tmp_path, e_type=ET_EXEC))


def test_a_core_without_cpu_notes_is_refused(tmp_path):
    path = tmp_path / "empty.core"
    path.write_bytes(build_elf(ET_CORE, EM_AARCH64, b"", [(0x4000_0000, 0x4000_0000, b"\0" * 16, 16)]))
    with pytest.raises(DebugInfoError, match="no NT_PRSTATUS"):
        CoreTarget(path)


def test_garbage_is_a_typed_error(tmp_path):
    path = tmp_path / "junk.core"
    path.write_bytes(b"not an elf at all" * 10)
    with pytest.raises(DebugInfoError):
        CoreTarget(path)


def test_an_empty_file_is_a_typed_error(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with pytest.raises(DebugInfoError, match="empty"):
        CoreTarget(path)


def test_one_translator_per_core_reads_each_table_once(tmp_path):
    with CoreTarget(page_table_core(tmp_path), sysregs=TABLE_REGS) as core:
        core.stats.reads = 0
        for _ in range(2):
            assert core.read_virtual(0x40_0000, 0x2000) == b"\x55" * 0x1000 + b"\x44" * 0x1000
        # the four tables (L0..L3) once for the core's life, then one read per page per call
        assert core.stats.reads == 4 + 2 * 2
