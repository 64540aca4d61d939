"""GdbTarget against QEMU: physical reads, the physical-mode switch, register names, state
errors, cache invalidation, and the page-table commands against QEMU's own translation.

Independent references: QEMU's monitor (`xp` reads physical memory, `gva2gpa` translates),
gdb's own register values ($SCTLR...), the kernel ELF's bytes, and the stub's answer to
`qqemu.PhyMemMode`."""

from __future__ import annotations

import json

import pytest
from elftools.elf.elffile import ELFFile


SHELL_LOOP = "tinyos::shell::run"
TARGET = "__import__('gdb_tinyos.gdb.session', fromlist=['x']).session()"


@pytest.fixture
def live(tinyos_debug_factory):
    """The kernel stopped in its shell loop: MMU on, upper-half kernel, plugin loaded."""
    s = tinyos_debug_factory()
    s.gdb.run_to(SHELL_LOOP, timeout=30)
    return s


def script(s, tmp_path, code: str) -> str:
    """Run a Python snippet inside gdb (sourced from a file); what it printed."""
    path = tmp_path / f"snippet{len(list(tmp_path.iterdir()))}.py"
    path.write_text(code)
    return s.gdb.source(path)


def sp(s) -> int:
    return s.gdb.python_value("int(gdb.parse_and_eval('$sp')) & (2**64 - 1)")


def phy_mem_mode(s) -> str:
    return s.gdb.cli("maint packet qqemu.PhyMemMode").strip().splitlines()[-1]


def kernel_text_pa(elf_path) -> int:
    with open(elf_path, "rb") as f:
        return next(seg["p_paddr"] for seg in ELFFile(f).iter_segments() if seg["p_type"] == "PT_LOAD")


def test_physical_reads_equal_qemu_xp(live, tinyos_kernel):
    pa = kernel_text_pa(tinyos_kernel)
    data = bytes.fromhex(live.gdb.python_value(f"{TARGET}.target.read_physical({pa}, 32).hex()"))
    words = [int.from_bytes(data[i : i + 8], "little") for i in range(0, 32, 8)]
    assert words == live.xp(pa, 4)
    assert phy_mem_mode(live) == 'received: "0"'


def test_physical_mode_is_switched_back_when_a_read_fails(live, tmp_path):
    # Make the read inside physical mode fail the way gdb reports it (gdb.MemoryError).
    inject = tmp_path / "inject.py"
    inject.write_text(
        "import gdb\n"
        "import gdb_tinyos.gdb.target as t\n"
        "class FailingInferior:\n"
        "    def __init__(self, real): self.real = real\n"
        "    def __getattr__(self, name): return getattr(self.real, name)\n"
        "    def read_memory(self, address, size): raise gdb.MemoryError(f'Cannot access memory at address {address:#x}')\n"
        "class FailingGdb:\n"
        "    def __getattr__(self, name): return getattr(gdb, name)\n"
        "    def selected_inferior(self): return FailingInferior(gdb.selected_inferior())\n"
        "t.gdb = FailingGdb()\n"
    )
    live.gdb.source(inject)
    out = script(live, tmp_path, f"""
from gdb_tinyos.core.errors import MemoryReadError
try:
    {TARGET}.gdb_target.read_physical(0x40080000, 16)
except MemoryReadError as e:
    print("caught:", e, e.address, e.size)
""")
    assert out.strip() == f"caught: cannot read 16 bytes of physical memory at 0x40080000 {0x40080000} 16"
    assert phy_mem_mode(live) == 'received: "0"'


def test_canonical_register_names_reach_gdbs_spelling(live):
    for canonical, gdb_name in [("SCTLR_EL1", "SCTLR"), ("VBAR_EL1", "VBAR"), ("TTBR1_EL1", "TTBR1_EL1"),
                                ("TCR_EL1", "TCR_EL1"), ("PSTATE", "cpsr")]:
        value = live.gdb.python_value(f"{TARGET}.target.read_register({canonical!r})")
        assert value == live.gdb.read_register(gdb_name), canonical
    assert live.gdb.python_value(f"{TARGET}.target.read_register('SCTLR_EL1')") & 1 == 1  # M: the kernel runs with the MMU on


def test_unknown_registers_are_typed_errors(live, tmp_path):
    out = script(live, tmp_path, f"""
from gdb_tinyos.core.errors import RegisterError
try:
    {TARGET}.target.read_register("NOPE_EL1")
except RegisterError as e:
    print("caught:", e)
""")
    assert out.strip().startswith("caught: register NOPE_EL1 is not available on this target")


def test_a_running_target_is_refused_in_one_line(live):
    live.gdb.resume()
    message = live.gdb.expect_one_line_error("pt --kernel")
    assert message == "pt: the target is running: interrupt it first (Ctrl-C or `interrupt`)"
    live.gdb.interrupt()


def test_reads_are_cached_until_memory_changes(live):
    va = sp(live) - 64  # below the live stack: free to scribble on
    read = f"{TARGET}.target.read_virtual({va}, 8).hex()"
    live.gdb.python_value(read)
    reads = live.gdb.python_value(f"{TARGET}.target.stats.reads")
    live.gdb.python_value(read)
    assert live.gdb.python_value(f"{TARGET}.target.stats.reads") == reads  # second read served from the cache
    live.gdb.cli(f"set *({va:#x} as *mut u64) = 0x1122334455667788")  # Rust syntax: the frame is Rust
    assert live.gdb.python_value(read) == "8877665544332211"  # memory_changed dropped the cache


def test_fallback_without_physical_mode_reads_through_the_linear_map_and_says_so(live, tinyos_kernel):
    pa = kernel_text_pa(tinyos_kernel)
    expected = live.xp(pa, 2)
    out = live.gdb.cli(
        f"python t = {TARGET}.gdb_target; c = gdb.selected_inferior().connection; t._phys_probe = (c.num, False); "
        f"print(t.read_physical({pa}, 16).hex()); t.read_physical({pa}, 8); print(t.physical_fallback)"
    )
    lines = out.strip().splitlines()
    assert lines[0] == (
        "tinyos: this gdbstub has no physical-memory mode; physical reads go through "
        "the kernel linear map (VA = PA + 0xffff000000000000)"
    )  # said once although two reads used it
    data = bytes.fromhex(lines[1])
    assert [int.from_bytes(data[i : i + 8], "little") for i in (0, 8)] == expected
    assert lines[2] == "kernel linear map (VA = PA + 0xffff000000000000)"


def test_va2pa_agrees_with_qemu_gva2gpa(live):
    for va in (0xFFFF_0000_4008_0000, 0xFFFF_0000_0900_0000, sp(live)):
        walk = json.loads(live.gdb.cli(f"va2pa {va:#x} --json"))
        assert walk["mapping"]["pa"] == hex(live.gva2gpa(va)), va


def test_pt_kernel_ranges_match_the_contract(live):
    spaces = json.loads(live.gdb.cli("pt --kernel --json"))["spaces"]
    ranges = spaces[0]["ranges"]  # addresses are "0x..." strings in JSON
    uart = [r for r in ranges if int(r["va_start"], 16) <= 0xFFFF_0000_0900_0000 < int(r["va_end"], 16)]
    assert uart and int(uart[0]["pa_start"], 16) == 0x0900_0000 + (int(uart[0]["va_start"], 16) - 0xFFFF_0000_0900_0000)
    assert uart[0]["attrs"]["memory"]["kind"] == "device"
    wx = json.loads(live.gdb.cli("pt --kernel --filter writable executable --json"))["spaces"][0]["ranges"]
    assert wx == []  # least privilege: nothing in the kernel is both writable and executable
