"""The foreign kernel under gdb: it starts at its ELF entry at EL2 and runs there with the
MMU off (SCTLR_EL2.M = 0) the whole time; and the plugin-loaded fixtures the plugin's
scenarios on this kernel build on (tests/foreign/conftest.py) boot and drive its shell."""

from __future__ import annotations

from foreign_support import stop_at_prompt
from elftools.elf.elffile import ELFFile

from gdb_tinyos.testing.shell import parse_cow_status

EL2H = 0b1001  # PSTATE.M[3:0]: EL2 with SP_EL2


def entry(path) -> int:
    with path.open("rb") as f:
        return ELFFile(f).header["e_entry"]


def assert_el2_mmu_off(s) -> None:
    cpsr = s.gdb.read_register("cpsr")
    assert (cpsr >> 2) & 3 == 2 and cpsr & 0xF == EL2H, hex(cpsr)
    assert s.gdb.read_register("SCTLR_EL2") & 1 == 0


def test_el2_with_the_mmu_off_at_reset_and_at_the_prompt(foreign_debug_factory, foreign_kernel):
    s = foreign_debug_factory(plugin=None)
    assert s.gdb.read_register("pc") == entry(foreign_kernel)
    assert_el2_mmu_off(s)
    s.boot_to_prompt()
    s.shell("~3 0x1000 0x2000")
    stop_at_prompt(s)
    assert_el2_mmu_off(s)


def test_plugin_fixture_at_reset(foreign_gdb, foreign_kernel):
    assert foreign_gdb.gdb.read_register("pc") == entry(foreign_kernel)


def test_plugin_fixture_booted_stops_and_resumes(foreign_booted):
    s = foreign_booted
    s.shell("~3 0x1000 0x2000 1 1")
    stop_at_prompt(s)
    assert_el2_mmu_off(s)
    status = parse_cow_status(s.shell("~1"))  # resumes the kernel first
    assert [(p.refs, p.cow) for p in status.pages.values()] == [(3, True)]
