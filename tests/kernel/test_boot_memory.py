"""`mem` and `pt` through the serial shell, checked against facts derived independently:
the image bounds from the ELF program headers, the VA -> table indices and descriptor
bits from the VMSAv8-64 rules (4 KiB granule, four levels), the permissions each section
must have (least privilege, nothing writable and executable)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from gdb_tinyos.testing import QemuMachine
from gdb_tinyos.testing.shell import mem

from elf_facts import KERNEL_OFFSET, PAGE, KernelImage

RAM_START, RAM_SIZE = 0x4000_0000, 128 * 1024 * 1024
UART_PA = 0x0900_0000

# Descriptor bits (ARM ARM D8.3).
AP_SHIFT, PXN, UXN, AF = 6, 1 << 53, 1 << 54, 1 << 10
ADDRESS_MASK = 0x0000_FFFF_FFFF_F000


@dataclass
class Walk:
    steps: list[tuple[int, int, int, int, str]]  # level, index, table, desc, kind
    final: str


def pt(machine: QemuMachine, va: int | str) -> Walk:
    arg = f"{va:#x}" if isinstance(va, int) else va
    lines = machine.console.command(f"pt {arg}").splitlines()
    steps = []
    for line in lines[:-1]:
        m = re.fullmatch(r"L(\d) index=(\d+) table=0x([0-9a-f]+) desc=0x([0-9a-f]{16}) (\w+)", line)
        assert m, f"unexpected pt line {line!r}"
        steps.append((int(m[1]), int(m[2]), int(m[3], 16), int(m[4], 16), m[5]))
    return Walk(steps, lines[-1])


def indices(va: int) -> list[int]:
    return [(va >> (39 - 9 * level)) & 0x1FF for level in range(4)]


def test_mem_counts_all_ram_except_the_image(shared_machine: QemuMachine, kernel_image: KernelImage) -> None:
    report = mem(shared_machine.console)
    assert report.frame_bytes == PAGE
    image_frames = (kernel_image.phys_end - kernel_image.phys_start) // PAGE
    assert report.total == RAM_SIZE // PAGE - image_frames
    # Nothing is allocated before the shell starts.
    assert (report.free, report.used) == (report.total, 0)
    assert report.ram == (RAM_START, RAM_START + RAM_SIZE)
    assert report.image == (kernel_image.phys_start, kernel_image.phys_end)


def test_pt_kernel_text_is_read_only_executable_at_el1_only(shared_machine: QemuMachine, kernel_image: KernelImage) -> None:
    va = kernel_image.symbol("tinyos_probe_read") + 4
    walk = pt(shared_machine, va)
    assert [s[0] for s in walk.steps] == [0, 1, 2, 3]
    assert [s[1] for s in walk.steps] == indices(va)
    assert [s[4] for s in walk.steps] == ["table", "table", "table", "page"]
    # The root is the table TTBR1 holds; each table descriptor points at the next table.
    for (_, _, _, desc, _), nxt in zip(walk.steps, walk.steps[1:]):
        assert desc & ADDRESS_MASK == nxt[2]
    desc = walk.steps[3][3]
    pa = va - KERNEL_OFFSET
    assert desc & ADDRESS_MASK == pa & ~(PAGE - 1)
    assert (desc >> AP_SHIFT) & 3 == 0b10  # EL1 read-only, EL0 none
    assert desc & UXN and not desc & PXN and desc & AF
    assert walk.final == f"va {va:#x} -> pa {pa:#x} EL1:R- EL0:-- UXN normal"


def test_pt_kernel_data_is_writable_and_never_executable(shared_machine: QemuMachine, kernel_image: KernelImage) -> None:
    va = kernel_image.symbol("tinyos_fault_exec_target")
    assert kernel_image.section_of(va).name == ".data"
    walk = pt(shared_machine, va)
    desc = walk.steps[-1][3]
    assert walk.steps[-1][4] == "page"
    assert (desc >> AP_SHIFT) & 3 == 0b00 and desc & PXN and desc & UXN
    assert walk.final == f"va {va:#x} -> pa {va - KERNEL_OFFSET:#x} EL1:RW EL0:-- PXN UXN normal"


def test_pt_uart_is_device_memory_never_executable(shared_machine: QemuMachine) -> None:
    walk = pt(shared_machine, UART_PA + KERNEL_OFFSET)
    assert walk.final == f"va {UART_PA + KERNEL_OFFSET:#x} -> pa {UART_PA:#x} EL1:RW EL0:-- PXN UXN device"
    assert (walk.steps[-1][3] >> 2) & 7 == 0  # AttrIndx 0 = Device-nGnRnE in MAIR


def test_pt_ram_far_from_the_image_uses_2mib_blocks(shared_machine: QemuMachine) -> None:
    pa = RAM_START + RAM_SIZE - 0x1234
    walk = pt(shared_machine, pa + KERNEL_OFFSET)
    assert [s[4] for s in walk.steps] == ["table", "table", "block"]
    assert walk.steps[-1][3] & ADDRESS_MASK == pa & ~(2 * 1024 * 1024 - 1)
    assert walk.final == f"va {pa + KERNEL_OFFSET:#x} -> pa {pa:#x} EL1:RW EL0:-- PXN UXN normal"


def test_pt_beyond_ram_and_unmapped_user_space_fault(shared_machine: QemuMachine) -> None:
    beyond = RAM_START + RAM_SIZE + KERNEL_OFFSET
    walk = pt(shared_machine, beyond)
    assert walk.final == f"va {beyond:#x}: not mapped (fault at level 2)"
    assert walk.steps[-1][3:] == (0, "invalid")
    # No process runs: TTBR0 holds an empty table.
    walk = pt(shared_machine, "dead0000")
    assert walk.steps == [(0, 0, walk.steps[0][2], 0, "invalid")]
    assert walk.final == "va 0xdead0000: not mapped (fault at level 0)"


@pytest.mark.parametrize("arg", ["xyz", "0x", "12345678901234567", "0xfffg", "0x1234000000000000", ""])
def test_pt_bad_input_is_one_error_line(shared_machine: QemuMachine, arg: str) -> None:
    out = shared_machine.console.command(f"pt {arg}".strip())
    assert out.count("\n") == 1 and out.startswith("error: ")


def guard_pages(image: KernelImage) -> set[int]:
    """The guard pages the kernel's design leaves unmapped (kernel/src/arch/aarch64/stacks.rs):
    one page at `tinyos_boot_stack_guard`, and the lower 16 KiB of each of the 16 32-KiB
    slots from `tinyos_kernel_stacks`."""
    slots, slot, guard = 16, 32 * 1024, 16 * 1024
    boot = image.symbol("tinyos_boot_stack_guard")
    stacks = image.symbol("tinyos_kernel_stacks")
    pages = {boot}
    for i in range(slots):
        pages.update(range(stacks + i * slot, stacks + i * slot + guard, PAGE))
    return pages


def test_no_image_page_is_writable_and_executable(shared_machine: QemuMachine, kernel_image: KernelImage) -> None:
    """Every page of the image has its section's least privilege: text R-X, rodata R, the
    rest (data, bss, stacks, tables) RW without execute; the kernel stacks' guard pages
    are not mapped at all."""
    start = kernel_image.phys_start + KERNEL_OFFSET
    end = kernel_image.phys_end + KERNEL_OFFSET
    guards = guard_pages(kernel_image)
    for va in range(start, end, PAGE):
        section = kernel_image.section_of(va)
        final = pt(shared_machine, va).final
        if va in guards:
            assert final == f"va {va:#x}: not mapped (fault at level 3)", final
            continue
        assert final.startswith(f"va {va:#x} -> pa {va - KERNEL_OFFSET:#x} "), final
        attrs = final.split(" ", 5)[5].split()
        where = f"page {va:#x} ({section.name if section else 'padding'})"
        assert "UXN" in attrs and "EL0:--" in attrs, where
        if section is not None and section.executable:
            assert "EL1:R-" in attrs and "PXN" not in attrs, where
        elif section is not None and not section.writable:
            assert "EL1:R-" in attrs and "PXN" in attrs, where
        else:
            assert "PXN" in attrs, where


def test_selftest_of_allocator_and_page_table_updates_passes(shared_machine: QemuMachine) -> None:
    before = mem(shared_machine.console)
    out = shared_machine.console.command("selftest", timeout=30)
    assert "FAIL" not in out, out
    m = re.search(r"^selftest: passed=(\d+) failed=(\d+)$", out, re.MULTILINE)
    assert m and int(m[1]) >= 20 and m[2] == "0", out
    assert mem(shared_machine.console) == before
