"""Guard pages below every kernel stack, as the CPU sees them (QEMU's own translation,
``monitor gva2gpa``, with the kernel's live TTBR1): the boot (shell) stack has one
unmapped page below it, each process's kernel stack 16 KiB; the stack pages above them
are mapped to their linear-map PA.

Layout from the kernel's design (kernel/src/arch/aarch64/stacks.rs): 16 slots of 32 KiB
from ``tinyos_kernel_stacks``, the guard in the lower 16 KiB of each, the stack above.
"""

from __future__ import annotations

from elftools.elf.elffile import ELFFile

PAGE = 4096
LINEAR = 0xFFFF_0000_0000_0000  # kernel VA = PA + KERNEL_OFFSET
SLOTS, SLOT, GUARD = 16, 32 * 1024, 16 * 1024
BOOT_GUARD = PAGE


def symbol(kernel, name: str) -> int:
    with open(kernel, "rb") as f:
        (sym,) = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)
        return sym["st_value"]


def translation(s, va: int) -> int | None:
    reply = s.monitor(f"gva2gpa {va:#x}")
    if "gpa:" in reply:
        return int(reply.split("gpa:")[1].split()[0], 16)
    assert "Unmapped" in reply, reply
    return None


def test_every_kernel_stack_has_an_unmapped_guard_below_it(tinyos_booted, tinyos_kernel):
    s = tinyos_booted
    s.gdb.interrupt()
    boot = symbol(tinyos_kernel, "tinyos_boot_stack_guard")
    stacks = symbol(tinyos_kernel, "tinyos_kernel_stacks")
    assert stacks % SLOT == 0
    guards = [(boot, BOOT_GUARD)] + [(stacks + i * SLOT, GUARD) for i in range(SLOTS)]
    for start, size in guards:
        for va in range(start, start + size, PAGE):
            assert translation(s, va) is None, f"guard page {va:#x} is mapped"
        above = start + size
        assert translation(s, above) == above - LINEAR, f"stack page {above:#x} is not linearly mapped"
