"""Every read-only command answers wherever the CPU stopped, and answers the same at stops
between which the kernel's COW state did not change.

Stops on the shipped kernel: reset (first instruction, EL1, MMU off), boot code before the
MMU is on, kernel_main (MMU on, higher half), user code at EL0 (the child's faulting `str`
of `forkpause`, reached by a hardware breakpoint at its user VA), the exception vector
entry reached by `stepi` from it and by a breakpoint, and `resolve_locked` in the fault
path. The faulting pc is not assumed: it is ELR_EL1 at the first pair's vector entry."""

from __future__ import annotations

import re

from gdb_tinyos.testing.shell import processes

HEAP = 0x1000_0000  # forkpause's first heap page
SYNC_LOWER_EL = 0x400  # VBAR_EL1 offset: synchronous exception from a lower EL, AArch64 (Arm ARM D1.10.2)
COW = ("cow-status --json", "cow-stats --json", "cow-check --json")
STOP_DEPENDENT = {"notes", "warnings", "lock_held", "skipped", "running"}


def el(s) -> int:
    return (s.gdb.read_register("cpsr") >> 2) & 3


def mmu_on(s) -> bool:
    return bool(s.gdb.read_register("SCTLR") & 1)  # SCTLR_EL1.M; QEMU names the register SCTLR


def stable(value):
    """A command's JSON without what legitimately depends on the stop itself (whether the
    MMU is on, whether a lock is held right now, which process is on the CPU)."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in STOP_DEPENDENT}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def answers(s, pid: int | None = None) -> dict:
    out = {command: stable(s.gdb.cli_json(command)) for command in COW}
    if pid is not None:
        out["pt"] = stable(s.gdb.cli_json(f"pt --pid {pid} --json"))
        walk = s.gdb.cli_json(f"va2pa {HEAP:#x} --pid {pid} --json")
        out["va2pa"] = walk
        frame = int(walk["mapping"]["pa"], 16) & ~0xFFF
        out["refs"] = s.gdb.python_value(f"int(gdb.parse_and_eval('$cow_refs({frame:#x})'))")
    return out


def test_reset_boot_and_kernel_stops(tinyos_debug_factory):
    s = tinyos_debug_factory(timeout=60)
    assert (el(s), mmu_on(s)) == (1, False)
    reset_pc = s.gdb.read_register("pc")
    at_reset = answers(s)
    status = s.gdb.cli_json("cow-status --json")
    assert any(n.startswith("MMU off") for n in status["notes"])
    assert s.gdb.cli("pt").startswith("MMU off (EL1&0 regime, SCTLR_EL1.M=0)")
    assert s.gdb.cli_json("va2pa 0x40081000 --json")["mmu_enabled"] is False  # flat: PA = VA
    assert s.gdb.python_value("int(gdb.parse_and_eval('$va2pa(0x40081000)'))") == 0x40081000
    assert s.gdb.expect_one_line_error("pt --pid 1").endswith("live pids: none")
    assert s.gdb.python_value("int(gdb.parse_and_eval('$cow_refs(0x40001000)'))") == 0

    s.gdb.cli("stepi 16")  # boot code: still EL1, MMU still off, further on
    assert s.gdb.read_register("pc") != reset_pc and (el(s), mmu_on(s)) == (1, False)
    assert answers(s) == at_reset

    s.gdb.run_to(s.location("kernel_main"), hardware=True, timeout=60)
    assert (el(s), mmu_on(s)) == (1, True)
    assert answers(s) == at_reset  # nothing was shared yet
    assert not any(n.startswith("MMU off") for n in s.gdb.cli_json("cow-status --json")["notes"])


def start_pair(s) -> tuple[int, int]:
    """`run forkpause 1`: (parent, child) pids once both have paused after the fork."""
    assert re.search(r"process \d+ \(forkpause\) started", s.shell("run forkpause 1", timeout=30))
    table = processes(s.console, timeout=30)
    parent = next(pid for pid, p in table.items() if p.ppid == 0 and p.state != "Zombie")
    child = next(pid for pid, p in table.items() if p.ppid == parent)
    return child, table[child].asid


def asid_is(asid: int) -> str:
    return f"(($TTBR0_EL1 >> 48) & 0xffff) == {asid}"


def test_user_vector_and_fault_path_stops_agree(tinyos_debug_factory):
    s = tinyos_debug_factory(timeout=60)
    s.boot_to_prompt(timeout=60)
    s.interrupt_at_prompt()
    vector = s.gdb.read_register("VBAR") + SYNC_LOWER_EL

    # Pair 1: the child's write traps; its vector entry and resolve_locked see one state.
    child, asid = start_pair(s)
    s.gdb.run_to(f"*{vector:#x}", condition=asid_is(asid), hardware=True,
                 action=lambda: s.console.send_line("cont"), timeout=60)
    user_pc = s.gdb.read_register("ELR_EL1")
    at_vector = answers(s, child)
    s.gdb.run_to(s.location("cow_fault::resolve_locked"), condition=f"$x1 == {child}", timeout=60)
    assert answers(s, child) == at_vector
    assert at_vector["refs"] == 2  # the heap frame, shared by parent and child
    s.gdb.resume()
    s.shell("cont", timeout=30)   # step 3: the parent's write (reuse), the child exits
    s.shell("cont", timeout=30)   # step 4: the parent reaps and exits

    # Pair 2: stop at EL0 on the same store, then stepi into the vector, then the fault path.
    child, asid = start_pair(s)
    s.gdb.run_to(f"*{user_pc:#x}", condition=asid_is(asid), hardware=True,
                 action=lambda: s.console.send_line("cont"), timeout=60)
    assert el(s) == 0 and s.gdb.read_register("pc") == user_pc
    at_user = answers(s, child)
    assert at_user["refs"] == 2
    s.gdb.mi("-exec-step-instruction")
    s.gdb.wait_for_stop(30)
    assert (el(s), s.gdb.read_register("pc")) == (1, vector)
    assert answers(s, child) == at_user
    s.gdb.run_to(s.location("cow_fault::resolve_locked"), condition=f"$x1 == {child}", timeout=60)
    assert answers(s, child) == at_user


DECODES = "dict(__import__('gdb_tinyos.gdb.session', fromlist=['session']).session().state().decodes)"


def test_one_decode_per_stop_shared_by_every_face(tinyos_debug_factory):
    s = tinyos_debug_factory(timeout=60)
    s.boot_to_prompt(timeout=60)
    child, _ = start_pair(s)
    s.interrupt_at_prompt()
    for command in ("cow-status", "cow-stats --json", "cow-check", "pt --pid 1", f"va2pa {HEAP:#x} --pid {child}",
                    "print tinyos::memory::cow::COW_MANAGER"):
        s.gdb.cli(command)
    s.gdb.mi("-cow-status")
    s.gdb.python_value("int(gdb.parse_and_eval('$cow_refs(0x40001000)'))")
    decodes = s.gdb.python_value(DECODES)
    assert decodes["cow-bytes"] == decodes["processes"] == decodes["mappings"] == 1, decodes
    assert all(count == 1 for count in decodes.values()), decodes
    s.gdb.cli("stepi")  # a new stop: a new state, decoded afresh on demand
    assert s.gdb.python_value(DECODES) == {}
    s.gdb.cli("cow-stats")  # totals from columns: no page decoded
    decodes = s.gdb.python_value(DECODES)
    assert decodes["cow-bytes"] == decodes["cow-summary"] == 1 and "cow" not in decodes, decodes
