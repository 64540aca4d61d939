"""`set tinyos ...` / `show tinyos ...`: the symbols of the kernel's pieces and its
bookkeeping conventions, as a user overrides them. Expected answers come from the kernel's
own shell at the same stop (`~1`) and from the override's meaning."""

from __future__ import annotations

import pytest

from gdb_tinyos.testing import DebugEvent
from gdb_tinyos.testing.shell import parse_cow_status


@pytest.fixture
def forked(tinyos_booted):
    """Stopped at the fork of `run forkpause 1`: every tracked frame shared by 2 mappings."""
    s = tinyos_booted
    s.run_to_event(DebugEvent.FORK, action=lambda: s.console.send_line("run forkpause 1"))
    return s


def test_a_piece_named_by_the_user_and_a_missing_one(forked):
    s = forked
    full = s.gdb.cli_json("cow-status --json")
    assert all(x["pte"] != "-" for p in full["pages"] for x in p["sharers"])
    s.gdb.cli("set tinyos process-table NO_SUCH_TABLE")
    assert "NO_SUCH_TABLE" in s.gdb.cli("show tinyos process-table")
    reduced = s.gdb.cli_json("cow-status --json")
    assert any("live PTE: no process table in this kernel" in n and "NO_SUCH_TABLE" in n for n in reduced["notes"])
    assert [p["refs"] for p in reduced["pages"]] == [p["refs"] for p in full["pages"]]
    assert all(x["pte"] == "-" for p in reduced["pages"] for x in p["sharers"])
    assert "no process table in this kernel" in s.gdb.expect_one_line_error("pt --pid 1")
    s.gdb.cli("set tinyos process-table process::PROCESSES")  # a suffix names it again
    assert s.gdb.cli_json("cow-status --json")["pages"] == full["pages"]
    s.gdb.cli("set tinyos process-table")  # empty: back to the default suffix
    assert s.gdb.cli_json("cow-status --json")["notes"] == full["notes"]


def test_a_convention_set_by_hand_is_the_one_checked(forked):
    s = forked
    assert s.gdb.cli("cow-check").splitlines()[-1].startswith("cow-check: OK")
    s.gdb.cli("set tinyos cow-refs owner")  # wrong for this kernel: refs 2 would mean 1 mapping
    message = s.gdb.expect_one_line_error("cow-check")
    assert message.startswith("cow-check: ") and "violation" in message
    info = s.gdb.cli_json("tinyos-info --json")
    assert any("owner" in c and "[parameter]" in c for c in info["kernel"]["conventions"])
    s.gdb.cli("set tinyos cow-refs auto")  # back to the kernel's contract
    assert s.gdb.cli("cow-check").splitlines()[-1].startswith("cow-check: OK")


def test_a_refused_value_changes_nothing(forked):
    s = forked
    s.gdb.cli("set tinyos cow-stats-maintained cow_pages_count,peak_cow_pages")
    message = s.gdb.expect_one_line_error("set tinyos cow-stats-maintained bogus")
    assert "unknown statistic(s) bogus" in message
    assert "cow_pages_count,peak_cow_pages" in s.gdb.cli("show tinyos cow-stats-maintained")
    stats = s.gdb.cli_json("cow-stats --json")
    assert any("memory_saved_bytes" in n for n in stats["notes"])  # not cross-checked now
    s.gdb.resume()
    shell = parse_cow_status(s.shell("~1"))
    assert stats["total_cow_pages"] == shell.cow_pages
