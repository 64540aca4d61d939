"""`tinyos-gdb --core FILE` (issue 10): gdb-multiarch on the kernel ELF with no QEMU, the
plugin reading a `tinyos-dump` core; the read-only commands answer what the live session
answered at the stop the dump was taken, acting commands refuse in one line.

The stop: `run forkwrite` (kernel/src/process/user_programs.S) at its first COW fault
event (16: the child, pid 2, wrote its data page 0x800000 and got its own frame). The
live answers are the reference: the same JSON, field for field, must come out of the dump;
the child's data page is also checked against QEMU's own translation (`gva2gpa`, with the
child's tables live on the CPU at that event) and the `cow_refs` of its old frame
against the kernel's `~1` typed after the dump."""

from __future__ import annotations

import json

from cli_runner import tinyos_gdb as run_tinyos_gdb

from gdb_tinyos.core.schemas import check
from gdb_tinyos.testing import DebugEvent
from gdb_tinyos.testing.shell import cow_status

DATA = 0x80_0000
SEPARATOR = "@@@"
READ_ONLY = ("cow-status --json", "cow-check --json", "pt --pid 2 --json", "pt --pid 1 --json",
             f"va2pa {DATA:#x} --pid 2 --json", "cow-stats --json")


def offline_run(kernel, core, *commands: str, fails: bool = False) -> tuple[list[str], str]:
    """Each command's output from `tinyos-gdb --core` (gdb in batch mode), and stderr;
    gdb's status is 1 when the last command failed (``fails``), else 0."""
    gdb_args = ["-batch"]
    for command in commands:
        gdb_args += ["-ex", f"echo {SEPARATOR}\\n", "-ex", command]
    run = run_tinyos_gdb("--core", str(core), "--kernel", str(kernel), "--", *gdb_args, timeout=120)
    assert run.returncode == (1 if fails else 0), run.stdout + run.stderr
    return run.stdout.split(f"{SEPARATOR}\n")[1:], run.stderr


def test_a_dump_answers_as_the_live_session_did(tinyos_booted, tinyos_kernel, tmp_path):
    s = tinyos_booted
    s.run_to_event(DebugEvent.COW_FAULT, action=lambda: s.console.send_line("run forkwrite"))
    assert (s.gdb.read_register("x1"), s.gdb.read_register("x2")) == (2, DATA)
    live = {command: s.gdb.cli_json(command, timeout=60) for command in READ_ONLY}
    child_page = s.gva2gpa(DATA)
    core = tmp_path / "forkwrite.core"
    s.gdb.cli(f"tinyos-dump {core}", timeout=60)
    s.gdb.cli("delete")
    s.gdb.resume()
    s.console.wait_for_prompt(timeout=60)  # forkwrite finished; the dump keeps the fault's state
    outputs, stderr = offline_run(tinyos_kernel, core, *READ_ONLY, "tinyos-info --json")
    offline = dict(zip(READ_ONLY, (json.loads(out) for out in outputs)))

    for command in READ_ONLY:
        assert offline[command] == live[command], command
    opened = json.loads(offline_run(tinyos_kernel, core, "tinyos-core --json " + str(core))[0][0])
    check("tinyos-core", opened)  # the live answers were checked by cli_json
    assert (opened["core"], opened["cpus"], opened["ram"]) == (str(core), 1, [["0x40000000", "0x48000000"]])
    # not two empty answers: the child owns a new frame (QEMU's translation), its old one is
    # tracked and shared no more, and the check is clean
    assert offline[f"va2pa {DATA:#x} --pid 2 --json"]["mapping"]["pa"] == hex(child_page)
    assert live["cow-check --json"]["ok"] is True and live["cow-status --json"]["pages"]
    info = json.loads(outputs[-1])
    assert (info["target"], info["connection"], info["build_id_check"]) == ("core", str(core), "match")
    assert "Traceback" not in stderr


def test_functions_on_a_dump_and_acting_commands_refused(tinyos_booted, tinyos_kernel, tmp_path):
    s = tinyos_booted
    s.run_to_event(DebugEvent.FORK, action=lambda: s.console.send_line("run forkpause 1"))
    core = tmp_path / "fork.core"
    s.gdb.cli(f"tinyos-dump {core}", timeout=60)
    s.gdb.cli("delete")
    s.gdb.resume()
    s.console.wait_for_prompt(timeout=60)
    kernel = cow_status(s.console)  # forkpause paused after its fork: the same sharing as at the event
    heap = kernel.sharer(0x1000_0000, 1)

    refused = ("cow-create", "cow-protect 0x10000000 --pid 1", "cow-unprotect 0x10000000 --pid 1", "cow-test",
               "cow-trace on", f"tinyos-dump {tmp_path / 'again.core'}", "tinyos-break fork")
    outputs, stderr = offline_run(tinyos_kernel, core, f"print $cow_refs({heap.pa:#x})",
                                  "print $cow_pa(0x10000000, 2)", *refused, fails=True)
    assert outputs[0].strip().endswith(f"= {heap.refs}") and heap.refs == 2
    assert int(outputs[1].split("=")[1]) == heap.pa  # the child still shares the parent's frame
    errors = [line for line in stderr.splitlines() if "core dump" in line]
    assert errors == [f"{command.split()[0]}: the session reads the core dump {core}, not a running kernel; "
                      "this needs a live one (tinyos-gdb without --core)" for command in refused]
    assert not (tmp_path / "again.core").exists()



def test_bad_cores_and_a_live_session_are_one_line(tinyos_gdb, tinyos_kernel, tmp_path):
    missing = run_tinyos_gdb("--core", str(tmp_path / "none.core"), "--kernel", str(tinyos_kernel))
    assert missing.returncode == 2
    assert missing.stderr.strip() == (f"tinyos-gdb: --core: no file {tmp_path / 'none.core'} "
                                      "(write one with `tinyos-dump FILE` in a live session)")
    _, stderr = offline_run(tinyos_kernel, tinyos_kernel, "cow-status", fails=True)  # an ELF, not a core
    assert [line for line in stderr.splitlines() if line.startswith("tinyos-core:")] == [
        f"tinyos-core: {tinyos_kernel} is not an AArch64 core file (ET_EXEC, EM_AARCH64)"]
    assert tinyos_gdb.gdb.expect_one_line_error(f"tinyos-core {tinyos_kernel}") == (
        "tinyos-core: gdb is connected to a live target: `disconnect` first, or open the core "
        "in another gdb (tinyos-gdb --core FILE)")


def test_a_live_target_connected_after_a_dump_replaces_it(tinyos_gdb, tmp_path):
    """Open a dump in a disconnected gdb, then connect to the live kernel: the session reads
    the live target from the first stop on, and says so in one line."""
    s = tinyos_gdb
    core = tmp_path / "reset.core"
    s.gdb.cli(f"tinyos-dump {core}", timeout=60)
    s.gdb.cli("disconnect")
    s.gdb.cli(f"tinyos-core {core}")
    assert s.gdb.cli_json("tinyos-info --json")["target"] == "core"
    s.gdb.cli(f"target remote 127.0.0.1:{s.machine.gdb_port}")
    info = s.gdb.cli_json("tinyos-info --json")
    assert info["target"] == "stopped" and info["connection"] != str(core)
    assert s.gdb.cli("cow-status").count("\n") > 3  # answered from the live kernel
    # and an acting command is no longer refused as "reads the core dump"
    assert "core dump" not in s.gdb.expect_one_line_error("cow-test")
