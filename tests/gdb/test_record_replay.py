"""Record and replay: a short session recorded (boot + `run forkwrite` typed on the console),
replayed under gdb with reverse execution.

Independent references: the console output of the recorded run (the replay prints it
again without anyone typing), QEMU's own instruction count (`monitor info replay`: a replay
is deterministic, so the same breakpoint is reached at the same count every time), the
debugger contract's event arguments (fork: x1 = parent 1, x2 = child 2), and the COW
fault counter (0 before the child's fault, 1 after)."""

from __future__ import annotations

import json
import shutil

import pytest

from gdb_tinyos.launcher.record import RecordingError
from gdb_tinyos.testing import QemuMachine
from gdb_tinyos.testing.session import DEBUG_EVENT, DebugEvent

RESOLVE = "cow_fault::resolve_locked"  # a symbol suffix: s.location() resolves it from the ELF
FORKWRITE_DONE = "forkwrite: parent still sees 0x1111, child exited 0"


@pytest.fixture(scope="module")
def recording(tinyos_kernel, tmp_path_factory):
    """boot + `run forkwrite`, recorded under gdb (as `tinyos-gdb --record` does)."""
    path = tmp_path_factory.mktemp("rr") / "forkwrite.rr"
    from gdb_tinyos.testing.session import debug_session  # noqa: PLC0415

    with debug_session(tinyos_kernel, record=path) as s:
        s.boot_to_prompt()
        assert FORKWRITE_DONE in s.shell("run forkwrite")
    return path


def faults(s) -> int:
    return s.gdb.cli_json("cow-stats --json")["total_cow_faults"]


def test_a_recording_is_three_files_naming_the_kernel(recording, tinyos_kernel):
    sidecar = json.loads(recording.with_name(recording.name + ".json").read_text())
    assert sidecar["format"] == "tinyos-record/1"
    assert sidecar["kernel"] == str(tinyos_kernel.resolve())
    assert (sidecar["el"], sidecar["memory"]) == (1, "128M")
    assert recording.stat().st_size > 0
    assert recording.with_name(recording.name + ".qcow2").stat().st_size > 0


def test_replay_reruns_the_console_input_and_runs_backwards(recording, tinyos_debug_factory):
    s = tinyos_debug_factory(replay=recording)
    assert s.replay_position() == 0
    s.gdb.run_to("tinyos::shell::run", timeout=60)  # Rust code: breakpoints by path from here

    # Forward to the child's COW fault: nobody types, the recorded `run forkwrite` runs.
    stop = s.gdb.run_to(s.location(RESOLVE), timeout=60)
    assert stop.func == "tinyos::process::cow_fault::resolve_locked"
    assert s.gdb.read_register("x1") == 2  # pid of the faulting child
    at_fault = s.replay_position()
    assert at_fault > 0

    # On to "fault resolved" (event 16): one fault handled.
    s.gdb.run_to(DEBUG_EVENT, condition=s.event_condition(DebugEvent.COW_FAULT), timeout=60)
    assert faults(s) == 1
    resolved = s.replay_position()
    assert resolved > at_fault

    # Backwards to the fork event: the plugin decodes the earlier state (no stale cache).
    number = s.gdb.break_insert(DEBUG_EVENT, condition=s.event_condition(DebugEvent.FORK))
    stop = s.gdb.reverse_continue(timeout=60)
    assert stop.bkptno == number, stop.payload
    assert (s.gdb.read_register("x0") & 0xFFFFFFFF, s.gdb.read_register("x1"), s.gdb.read_register("x2")) == (19, 1, 2)
    assert faults(s) == 0
    at_fork = s.replay_position()
    assert at_fork < at_fault

    # One instruction back: the call into the hook; the count goes down by one.
    pc = s.gdb.read_register("pc")
    s.gdb.reverse_stepi(timeout=30)
    assert s.gdb.read_register("pc") != pc
    assert s.replay_position() == at_fork - 1

    # Forward again to the fault: deterministic, the very same instruction count.
    s.gdb.mi(f"-break-delete {number}")
    s.gdb.run_to(s.location(RESOLVE), timeout=60)
    assert s.replay_position() == at_fault
    s.gdb.resume()
    s.console.expect(FORKWRITE_DONE, timeout=60)


def test_replay_refuses_another_kernel(recording, tinyos_kernel, tmp_path):
    other = tmp_path / "tinyos-changed"
    shutil.copyfile(tinyos_kernel, other)
    with open(other, "ab") as f:
        f.write(b"\0")
    with pytest.raises(RecordingError, match="recorded with another kernel"):
        with QemuMachine(kernel=other, gdb=True, replay=recording):
            pass
