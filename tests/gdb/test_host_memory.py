"""Guest RAM read at memory speed: the same stop decoded over every physical-memory path.

The harness starts QEMU with its RAM in a shared file (unlinked once QEMU holds it); the
plugin finds it by itself, verifies it and maps it. References independent of the fast
path: the gdbstub path's decoding of the same stop, QEMU's own `xp`, gdb's /proc maps."""

from __future__ import annotations

import os
import re

import pytest

from gdb_tinyos.testing.session import DebugEvent

TARGET = "__import__('gdb_tinyos.gdb.session', fromlist=['x']).session().gdb_target"


def gdbstub_reads(s) -> int:
    return s.gdb.python_value(f"{TARGET}.gdbstub_stats.reads")


def ram_mappings(s) -> list[str]:
    """gdb's own mappings of a QEMU RAM file (the launcher names it <session dir>/ram)."""
    with open(f"/proc/{s.gdb._controller.gdb_process.pid}/maps") as f:
        return [line for line in f if re.search(r"/ram \(deleted\)$", line.strip())]


def models(s) -> tuple[object, object, object]:
    return (
        s.gdb.cli_json("cow-status --limit 0 --json"),
        s.gdb.cli_json("cow-stats --json"),
        s.gdb.cli_json("pt --pid 1 --json"),
    )


@pytest.fixture
def at_fork(tinyos_debug_factory):
    """Stopped at the fork event of `run forkwrite`: pages shared by pids 1 and 2."""
    s = tinyos_debug_factory()
    s.boot_to_prompt()
    s.run_to_event(DebugEvent.FORK, action=lambda: s.console.send_line("run forkwrite"))
    return s


def test_every_path_decodes_the_same_stop_and_the_fast_one_uses_no_gdbstub_read(at_fork):
    s = at_fork
    info = s.gdb.cli_json("tinyos-info --json")  # also finds and verifies the RAM file
    assert info["physical_path"] == "shared-ram", info["physical_memory"]
    assert f"QEMU pid {s.machine.pid}" in info["physical_memory"]
    assert len(ram_mappings(s)) == 1

    before = gdbstub_reads(s)
    fast = models(s)
    assert gdbstub_reads(s) == before, "the shared-RAM path went over the gdbstub"
    assert fast[0]["pages"], "the stop has tracked pages"

    s.gdb.cli("set tinyos physical-memory proc-mem")
    assert s.gdb.cli_json("tinyos-info --json")["physical_path"] == "proc-mem"
    assert ram_mappings(s) == []  # the mapping went with the path
    before = gdbstub_reads(s)
    assert models(s) == fast
    assert gdbstub_reads(s) == before

    s.gdb.cli("set tinyos physical-memory gdbstub")
    assert s.gdb.cli_json("tinyos-info --json")["physical_path"] == "gdbstub"
    before = gdbstub_reads(s)
    assert models(s) == fast
    assert gdbstub_reads(s) > before

    s.gdb.cli("set tinyos physical-memory auto")
    assert s.gdb.cli_json("tinyos-info --json")["physical_path"] == "shared-ram"


def test_shared_ram_reads_equal_qemu_xp_and_follow_the_guest(at_fork):
    s = at_fork
    pa = 0x4008_0000  # the kernel image's first words
    read = lambda: bytes.fromhex(s.gdb.python_value(f"{TARGET}.read_physical({pa:#x}, 16).hex()"))  # noqa: E731
    assert [int.from_bytes(read()[i : i + 8], "little") for i in (0, 8)] == s.xp(pa, 2)
    assert s.gdb.python_value(f"{TARGET}.physical_access") == "shared-ram"
    # A write (always through gdb) is seen at once by the next read of the mapping.
    s.gdb.cli("set language c")
    s.gdb.cli(f"set *(unsigned long *){0xFFFF_0000_0000_0000 + 0x4700_0000:#x} = 0x1122334455667788")
    value = s.gdb.python_value(f"{TARGET}.read_physical({0x4700_0000:#x}, 8).hex()")
    assert int.from_bytes(bytes.fromhex(value), "little") == 0x1122334455667788 == s.xp(0x4700_0000)[0]


def test_nothing_of_the_session_outlives_it(tinyos_debug_factory):
    with_session = tinyos_debug_factory()
    session_dir = with_session.machine.session.path
    assert oct(os.stat(session_dir).st_mode & 0o777) == "0o700"
    assert not (session_dir / "ram").exists()  # unlinked as soon as QEMU held it
    with_session.gdb.cli("tinyos-info")
    assert len(ram_mappings(with_session)) == 1
    with_session.gdb.cli("disconnect")
    assert ram_mappings(with_session) == []  # released with the connection
    with_session.gdb.close()
    with_session.machine.close()
    assert not session_dir.exists()


def test_the_bench_replays_exactly_what_a_command_read(at_fork):
    """scripts/bench --live's figures: the reads a command issued (registers first) and their
    replay at another stop, counted by the gdbstub path's own counter."""
    s = at_fork
    measure = "__import__('gdb_tinyos.gdb.measure', fromlist=['x'])"
    s.gdb.cli("set tinyos physical-memory gdbstub")
    s.gdb.cli("stepi")  # a fresh stop: the session cache starts empty
    before = gdbstub_reads(s)
    row = s.gdb.python_value(f"{measure}.measure('cow-stats')")
    memory = [r for r in row["issued"] if r[0] != "r"]
    assert row["error"] is None and row["lines"] > 10
    assert row["reads"] == len(memory) and row["bytes"] == sum(size for _, _, size in memory)
    assert gdbstub_reads(s) - before == 2 * len(memory)  # the command's reads, then the replay right after
    registers = [name for kind, name, _ in row["issued"] if kind == "r"]
    assert "TTBR1_EL1" in registers and row["issued"][: len(registers)] == [["r", n, 0] for n in registers]
    s.gdb.cli("stepi")
    before = gdbstub_reads(s)
    assert s.gdb.python_value(f"{measure}.replay({row['issued']!r})") > 0
    assert gdbstub_reads(s) - before == len(memory)  # the replay at a stop of its own, uncached
    s.gdb.cli("stepi")
    before = gdbstub_reads(s)
    alone = s.gdb.python_value(f"{measure}.measure('cow-stats', floor=False)")  # what the bench calls
    assert alone["floor_ms"] is None and alone["reads"] > 0
    assert gdbstub_reads(s) - before == alone["reads"]  # the command's reads only


def phy_mem_mode(s) -> str:
    """The stub's own answer: "1" in physical mode, "0" in virtual."""
    return s.gdb.cli("maint packet qqemu.PhyMemMode").strip().splitlines()[-1].split('"')[1]


def test_over_the_gdbstub_a_command_switches_physical_mode_once_and_gdb_never_reads_in_it(at_fork, tmp_path):
    s = at_fork
    shared = s.gdb.cli("pt --pid 1")
    s.gdb.cli("set tinyos physical-memory gdbstub")
    s.gdb.cli("python import gdb_tinyos.gdb.target as switched; switched.SWITCHES = []; "
              "switched._enter = switched.enter_physical_mode; "
              "switched.enter_physical_mode = lambda c: (switched.SWITCHES.append(1), switched._enter(c))[1]")
    s.gdb.python_value(f"{TARGET.rsplit('.', 1)[0]}.invalidate()")
    before = gdbstub_reads(s)
    assert s.gdb.cli("pt --pid 1") == shared
    reads = gdbstub_reads(s) - before
    switches = s.gdb.python_value("len(__import__('gdb_tinyos.gdb.target', fromlist=['x']).SWITCHES)")
    decodes = s.gdb.python_value(f"sum({TARGET.rsplit('.', 1)[0]}.state().decodes.values())")
    assert switches == 1 < decodes < reads, (switches, decodes, reads)  # its decodes share one switch
    assert phy_mem_mode(s) == "0"

    # The switches keep gdb's frames: none is built again once the command is done (the
    # unwinders, ours included, are asked only when gdb builds a frame).
    s.gdb.cli("python import gdb_tinyos.gdb.unwinder as u; u.SNIFFS = []; u._call = u.TrapUnwinder.__call__; "
              "u.TrapUnwinder.__call__ = lambda self, p: (u.SNIFFS.append(1), u._call(self, p))[1]")
    s.gdb.python_value("gdb.selected_frame().pc()")  # frame 0 built
    s.gdb.python_value(f"{TARGET.rsplit('.', 1)[0]}.invalidate()")
    s.gdb.cli("python __import__('gdb_tinyos.gdb.unwinder', fromlist=['x']).SNIFFS.clear()")
    assert s.gdb.cli("pt --pid 1") == shared
    s.gdb.python_value("gdb.selected_frame().pc()")
    assert s.gdb.python_value("len(__import__('gdb_tinyos.gdb.unwinder', fromlist=['x']).SNIFFS)") == 0
    assert phy_mem_mode(s) == "0"

    # Inside a batch: on at the first physical read, off before a register or a virtual read
    # reaches gdb (its frame or its read would be physical), off when the batch ends.
    script = tmp_path / "batch.py"
    script.write_text(f"""
import gdb
target = {TARGET}
c = gdb.selected_inferior().connection
mode = lambda: c.send_packet("qqemu.PhyMemMode").decode()
seen = []
with target.batch():
    first = target.read_physical(0x40080000, 16); seen.append(mode())
    target.read_register("cpsr"); seen.append(mode())
    again = target.read_physical(0x40080000, 16); seen.append(mode())
    virtual = target.read_virtual(0xFFFF000040080000, 16); seen.append(mode())
seen.append(mode())
print(" ".join(seen), first == again == virtual)
""")
    assert s.gdb.source(script).strip() == "1 0 1 0 0 True"
