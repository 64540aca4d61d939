"""The exception path end to end: deliberate faults whose ESR, FAR and ELR are known in
advance — ESR from the architecture's encoding, ELR and FAR from the ELF symbol table —
must come back exactly, with the saved registers in their right slots (which proves
the assembly frame and the Rust TrapFrame agree), and the shell must go on. An exception
outside the probes must be reported and halt the kernel."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from elf_facts import KernelImage

from gdb_tinyos.testing import QemuMachine
from gdb_tinyos.testing.errors import ConsoleTimeout

IL = 1 << 25  # 32-bit instruction
WNR = 1 << 6  # data abort on a write


def esr(ec: int, iss: int) -> int:
    return (ec << 26) | IL | iss


DABT_EL1, IABT_EL1, BRK64, UNKNOWN = 0x25, 0x21, 0x3C, 0x00
TRANSLATION_L0, PERMISSION_L3 = 0b000100, 0b001111
UNMAPPED = 0xDEAD0000
PAGE = 4096
FRAME_BYTES = 36 * 8  # TrapFrame: x0-x30, sp_el0, elr, spsr, esr, far


def fault(machine: QemuMachine, kind: str) -> tuple[dict[str, int], dict[str, int], str]:
    """Runs `fault <kind>`; returns (ESR/FAR/ELR, registers, output)."""
    out = machine.console.command(f"fault {kind}")
    m = re.search(r"^exception: .+ ESR=0x([0-9a-f]+) FAR=0x([0-9a-f]+) ELR=0x([0-9a-f]+)$", out, re.MULTILINE)
    assert m, out
    syndrome = dict(zip(("ESR", "FAR", "ELR"), (int(g, 16) for g in m.groups())))
    regs = {name: int(value, 16) for name, value in re.findall(r"\b(x\d+|sp_el0|spsr) ?=0x([0-9a-f]+)", out)}
    return syndrome, regs, out


@pytest.mark.parametrize(
    ("kind", "expected_esr", "far_symbol", "elr_symbol"),
    [
        ("read", esr(DABT_EL1, TRANSLATION_L0), None, "tinyos_probe_read_insn"),
        ("write", esr(DABT_EL1, WNR | TRANSLATION_L0), None, "tinyos_probe_write_insn"),
        ("rodata", esr(DABT_EL1, WNR | PERMISSION_L3), "tinyos_fault_rodata_target", "tinyos_probe_write_insn"),
        ("text", esr(DABT_EL1, WNR | PERMISSION_L3), "tinyos_probe_read", "tinyos_probe_write_insn"),
        ("exec", esr(IABT_EL1, PERMISSION_L3), "tinyos_fault_exec_target", "tinyos_fault_exec_target"),
        ("brk", esr(BRK64, 0x7E1), None, "tinyos_probe_brk_insn"),
        ("undef", esr(UNKNOWN, 0), None, "tinyos_probe_undef_insn"),
    ],
)
def test_fault_reports_the_syndrome_known_in_advance_and_recovers(
    shared_machine: QemuMachine,
    kernel_image: KernelImage,
    kind: str,
    expected_esr: int,
    far_symbol: str | None,
    elr_symbol: str,
) -> None:
    syndrome, regs, out = fault(shared_machine, kind)
    assert syndrome["ESR"] == expected_esr
    assert syndrome["ELR"] == kernel_image.symbol(elr_symbol)
    if kind in ("read", "write"):
        assert syndrome["FAR"] == UNMAPPED
    elif far_symbol:
        assert syndrome["FAR"] == kernel_image.symbol(far_symbol)
    assert len([r for r in regs if r.startswith("x")]) == 31
    # SPSR: taken from EL1h (M = 0b0101) with interrupts masked as the shell runs them.
    assert regs["spsr"] & 0xF == 0b0101
    assert "recovered" in out
    # The shell is alive and the kernel's state intact.
    assert shared_machine.console.command("mem").startswith("frames: total=")


def test_saved_registers_are_in_their_frame_slots(shared_machine: QemuMachine, kernel_image: KernelImage) -> None:
    # The write probe is `str x1, [x0]`: x0 = the address, x1 = the value the shell
    # passes (0x600d); the exec probe branched with `blr`, so x30 is the instruction after it.
    _, regs, _ = fault(shared_machine, "write")
    assert (regs["x0"], regs["x1"]) == (UNMAPPED, 0x600D)
    syndrome, regs, _ = fault(shared_machine, "exec")
    assert regs["x0"] == syndrome["FAR"]
    assert regs["x30"] == kernel_image.symbol("tinyos_probe_exec_ret")


def test_unknown_fault_kind_is_an_error(shared_machine: QemuMachine) -> None:
    out = shared_machine.console.command("fault sideways")
    assert out.startswith("error: unknown fault kind 'sideways'") and out.count("\n") == 1


def test_unexpected_exception_is_reported_and_halts(
    tinyos_qemu_factory: Callable[..., QemuMachine], kernel_image: KernelImage
) -> None:
    machine = tinyos_qemu_factory()
    console = machine.console
    console.send_line("fault halt")
    m = console.expect(r"exception: .+ ESR=0x([0-9a-f]+) FAR=0x([0-9a-f]+) ELR=0x([0-9a-f]+)\r\n")
    assert int(m[1], 16) == esr(DABT_EL1, TRANSLATION_L0)
    assert int(m[2], 16) == UNMAPPED
    elr = int(m[3], 16)
    text = kernel_image.section_of(elr)
    assert text is not None and text.executable
    console.expect(r"halted: unexpected exception\r\n")
    # Halted for good: no prompt comes back and typing gets no answer.
    console.send_line("help")
    with pytest.raises(ConsoleTimeout):
        console.expect("tinyos> ", timeout=2)


def test_kernel_stack_overflow_is_reported_as_such_and_halts(
    tinyos_qemu_factory: Callable[..., QemuMachine], kernel_image: KernelImage
) -> None:
    """`fault stack` recurses on the shell's (boot) stack: the first push below the stack
    lands on its guard page, which must be unmapped, and the exception entry must notice
    that its own frame would land there too, report an overflow and halt (not recurse on
    the guard, nor write below it)."""
    guard = kernel_image.symbol("tinyos_boot_stack_guard")
    machine = tinyos_qemu_factory()
    console = machine.console
    console.send_line("fault stack")
    console.expect(r"kernel stack overflow \(shell\)\r\n")
    sp = int(console.expect(r"SP=0x([0-9a-f]+) ran into the guard page below the stack\r\n")[1], 16)
    m = console.expect(r"exception: .+ ESR=0x([0-9a-f]+) FAR=0x([0-9a-f]+) ELR=0x([0-9a-f]+)\r\n")
    syndrome, far = int(m[1], 16), int(m[2], 16)
    # A translation fault (any level) on a data access at EL1, inside the guard page.
    assert syndrome >> 26 == DABT_EL1 and syndrome & 0b111100 == TRANSLATION_L0, hex(syndrome)
    assert guard <= far < guard + PAGE, (hex(far), hex(guard))
    # The frame the entry would have pushed ([SP - frame, SP)) reaches into the guard.
    assert guard < sp <= guard + PAGE + FRAME_BYTES, (hex(sp), hex(guard))
    console.expect(r"halted: kernel stack overflow\r\n")
    console.send_line("help")
    with pytest.raises(ConsoleTimeout):
        console.expect("tinyos> ", timeout=2)
