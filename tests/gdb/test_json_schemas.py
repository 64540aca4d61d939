"""Every command's --json matches its documented schema (gdb_tinyos/core/schemas.py,
docs/json-schemas.md), on real output: each command once at stops of `run forkpause 1`
(at the child's COW fault: pages shared and one copied) and at the shell prompt for the
acting commands. `GdbSession.cli_json` checks each answer (so every other scenario's
--json is checked too); here every command is run at least once, and every command the
plugin registers has a schema."""

from __future__ import annotations

from gdb_tinyos.core.schemas import SCHEMAS
from gdb_tinyos.testing import DebugEvent

HEAP = 0x1000_0000


def test_every_registered_command_has_a_schema(tinyos_gdb):
    names = tinyos_gdb.gdb.python_value(
        "[c for c in __import__('gdb_tinyos.gdb.registry', fromlist=['x']).registered_names() if not c.startswith('$')]")
    commands = {n for n in names if n.startswith(("cow-", "tinyos-", "pt", "va2pa"))}
    assert commands and commands <= set(SCHEMAS), sorted(commands - set(SCHEMAS))


def test_every_command_answers_in_its_schema(tinyos_gdb, tmp_path):
    s = tinyos_gdb
    g = s.gdb
    seen = {}

    def answer(command: str, timeout: float = 60):
        seen[command.split()[0]] = g.cli_json(command + " --json", timeout=timeout)  # validated by cli_json
        return seen[command.split()[0]]

    assert answer("tinyos-info")["target"] == "stopped"
    assert answer("tinyos-break fork --temporary")["kind_number"] == s.event_number(DebugEvent.FORK)
    g.cli("delete")
    s.boot_to_prompt()
    g.interrupt()
    answer("cow-trace on")
    answer("cow-snapshot start")
    g.resume()
    s.run_to_event(DebugEvent.COW_FAULT,
                   action=lambda: (s.console.send_line("run forkpause 1"), s.console.send_line("cont")))
    assert answer("cow-status")["pages"] and answer("cow-check")["ok"] is True
    answer("cow-stats")
    assert answer("pt --pid 2 --u64 0 --limit 1")["search"] is not None
    assert answer("pt --pid 2")["process"]["pid"] == 2
    assert answer(f"va2pa {HEAP:#x} --pid 2")["mapping"] is not None
    answer("cow-trace")
    answer("cow-diff start")
    answer("cow-snapshot --list")
    answer(f"cow-graph --dot {tmp_path / 'g.dot'}")
    answer(f"tinyos-dump {tmp_path / 'fault.core'}")
    g.cli("cow-trace off")
    g.cli("delete")
    g.resume()
    s.console.wait_for_prompt(timeout=60)
    s.interrupt_at_prompt()
    answer(f"cow-protect {HEAP:#x} --pid 2")  # its status is the kernel's business; the shape is ours
    answer(f"cow-unprotect {HEAP:#x} --pid 2")
    answer("cow-create")
    answer("cow-test", timeout=300)
    assert set(seen) == set(SCHEMAS) - {"cow-history", "cow-blame", "tinyos-core"}  # replays, offline: in their scenarios
