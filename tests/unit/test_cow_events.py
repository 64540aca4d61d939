"""The debugger events decoded into log lines, by construction from a contract written
here (kind numbers chosen unlike the kernel's, so nothing can depend on them) — no kernel
needed."""

from __future__ import annotations

import pytest

from gdb_tinyos.core.errors import MissingCapability
from gdb_tinyos.tinyos.events import EventKinds, EventLog

CONTRACT = {"event_shell_command": 101, "event_cow_fault": 116, "event_page_duplicated": 117,
            "event_page_reused": 118, "event_fork": 119, "event_process_exit": 120, "killed_status": 137}
KINDS = EventKinds.from_contract(CONTRACT)
COPY, REUSE, FAULT, FORK, EXIT, COMMAND = 117, 118, 116, 119, 120, 101


def new_log(capacity=256) -> EventLog:
    return EventLog(KINDS, capacity=capacity)


def test_kinds_come_from_the_contract_only():
    assert (KINDS.number("fork"), KINDS.name(119), KINDS.name(19)) == (119, "fork", None)
    with pytest.raises(MissingCapability, match="no debugger contract"):
        EventKinds.from_contract({})
    with pytest.raises(MissingCapability, match="no 'halt' event"):
        KINDS.number("halt")


def test_copy_takes_the_old_frame_recorded_at_the_fault_handlers_entry():
    log = new_log()
    log.before_fault(pid=2, va=0x1000_0008, old_frame=0x4000_D000)
    copy = log.record(COPY, 0x1000_0000, 0x4001_E000, pid=2)
    fault = log.record(FAULT, 2, 0x1000_0008)
    assert (copy.pid, copy.va, copy.old_frame, copy.new_frame) == (2, 0x1000_0000, 0x4000_D000, 0x4001_E000)
    assert copy.describe() == "#1     copy   pid 2 va 0x10000000: frame 0x4000d000 -> 0x4001e000 (copied)"
    assert (fault.pid, fault.va, fault.resolution) == (2, 0x1000_0008, "copy")


def test_a_pending_fault_for_another_page_gives_no_old_frame():
    log = new_log()
    log.before_fault(pid=2, va=0x80_0000, old_frame=0x4000_6000)
    assert log.record(COPY, 0x1000_0000, 0x4001_E000, pid=2).old_frame is None


def test_reuse_fork_exit_kill_and_shell_lines():
    log = new_log()
    assert log.record(FORK, 1, 2).describe().endswith("fork   pid 1 forked child 2")
    assert log.record(REUSE, 0x80_0000, 0x4000_6000, pid=1).describe().endswith(
        "pid 1 va 0x800000: frame 0x40006000 reused in place (last sharer)")
    assert log.record(FAULT, 1, 0x80_0008).resolution == "reuse"
    assert log.record(FAULT, 1, 0x80_0008).resolution == "none"  # no copy/reuse before it: already writable
    assert log.record(EXIT, 3, 137).describe().endswith("pid 3 exited with status 137 (killed)")
    assert log.record(EXIT, 3, 2**64 - 1).status == -1
    assert log.record(COMMAND, 0xFFFF_0000_4000_0000, 2, text="~1").describe().endswith("command '~1'")


def test_the_ring_buffer_keeps_the_last_events_numbered_from_one():
    log = new_log(capacity=3)
    for pid in range(5):
        log.record(EXIT, pid, 0)
    assert [e.seq for e in log.events] == [3, 4, 5] and log.seen == 5
    assert [e.pid for e in log.last(2)] == [3, 4]
    assert log.last(0) == []
    log.clear()
    assert log.seen == 0 and not log.events
