"""A real QEMU core taken with `tinyos-dump` reads back as the live session did at that stop.

The references are the live target's own answers (gdb registers, QEMU physical reads,
`va2pa`) taken at the same stop, and QEMU's core format as documented in coredump.py."""

from __future__ import annotations

import json

import pytest

from gdb_tinyos.aarch64.coredump import CoreTarget
from gdb_tinyos.testing import GdbCommandError

SESSION = "__import__('gdb_tinyos.gdb.session', fromlist=['x']).session()"


def py(s, expression: str):
    out = s.gdb.cli(f"python import json; print(json.dumps({expression}))")
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def dumped(tinyos_debug_factory, tmp_path):
    """(live session stopped in the shell loop, CoreTarget of a dump taken there)."""
    s = tinyos_debug_factory()
    s.gdb.run_to("tinyos::shell::run", timeout=30)
    core_path = tmp_path / "shell.core"
    result = json.loads(s.gdb.cli(f"tinyos-dump {core_path} --json", timeout=60))
    assert result["core"] == str(core_path) and result["missing"] == []
    core = CoreTarget(core_path, kernel_elf=s.machine.kernel)
    yield s, core
    core.close()


def test_general_registers_match_the_live_cpu(dumped):
    s, core = dumped
    for name in ("pc", "sp", "x0", "x30", "cpsr"):
        assert core.read_register(name) == py(s, f"{SESSION}.target.read_register({name!r})"), name


def test_system_registers_come_from_the_sidecar(dumped):
    s, core = dumped
    for name in ("TTBR0_EL1", "TTBR1_EL1", "TCR_EL1", "SCTLR_EL1", "MAIR_EL1"):
        assert core.read_register(name) == py(s, f"{SESSION}.target.read_register({name!r})"), name


def test_physical_and_virtual_memory_match(dumped):
    s, core = dumped
    pc = core.read_register("pc")
    pa = int(json.loads(s.gdb.cli(f"va2pa {pc:#x} --json"))["mapping"]["pa"], 16)
    live_phys = py(s, f"{SESSION}.target.read_physical({pa}, 64).hex()")
    live_virt = py(s, f"{SESSION}.target.read_virtual({pc}, 64).hex()")
    assert core.read_physical(pa, 64).hex() == live_phys
    assert core.read_virtual(pc, 64).hex() == live_virt == live_phys


def test_dump_refuses_to_overwrite_without_force(dumped):
    s, core = dumped
    with pytest.raises(GdbCommandError) as err:
        s.gdb.cli(f"tinyos-dump {core.path}")
    assert err.value.message == f"tinyos-dump: {core.path} exists; pass --force to overwrite it"
