"""Acting commands are transactional (issue 10 items 1, 2, 6): a watchdog's timeout is
validated; cow-trace's and the user's breakpoints are suspended during the plugin's own
kernel calls and restored after; cow-trace is refused on a build-id mismatch; and a call
the watchdog cut short is rolled back by the kernel (`tinyos_debug_recover`), so the shell
shows no phantom process, no leaked frame, and the next program runs.

Expected values come from the kernel's own shell (`ps`, `mem`, `run`) and from gdb's
`info breakpoints`, not from the plugin."""

from __future__ import annotations

from pathlib import Path

import re

import pytest
from test_errors import build_id_changed  # noqa: E402 - tests/gdb is on sys.path (rootdir)

from gdb_tinyos.testing.shell import mem, ps, run


@pytest.fixture
def at_prompt(tinyos_booted):
    tinyos_booted.interrupt_at_prompt()
    return tinyos_booted


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e9", "soon"])
def test_bad_timeouts_are_refused_in_one_line(at_prompt, value):
    for command in ("cow-test", "cow-protect 0x800000 --pid 1"):
        message = at_prompt.gdb.expect_one_line_error(f"{command} --timeout {value}")
        name = command.split()[0]
        assert message.startswith(f"{name}: --timeout: ") and "more than 0 and at most 3600" in message, message


def hook_address(s) -> int:
    out = s.gdb.cli("python from gdb_tinyos.gdb.session import session; "
                    "print(session().debuginfo().symbol('tinyos_debug_event').address)")
    return int(out.strip().splitlines()[-1])


def breakpoint_rows(s) -> list[str]:
    return [line for line in s.gdb.cli("info breakpoints").splitlines() if line[:1].isdigit()]


def test_trace_and_user_breakpoints_are_suspended_during_a_call(at_prompt):
    s = at_prompt
    s.gdb.cli("cow-trace on")
    s.gdb.cli(f"break *{hook_address(s):#x}")
    seen = s.gdb.cli_json("cow-trace --json")["events_seen"]
    result = s.gdb.cli_json("cow-test --json")  # forks, faults, exits: dozens of events inside
    assert result["failed"] == 0
    # Neither breakpoint fired inside the call: no event logged, no hit counted.
    assert s.gdb.cli_json("cow-trace --json")["events_seen"] == seen
    (row,) = breakpoint_rows(s)
    assert row.split()[3] == "y" and "already hit" not in s.gdb.cli("info breakpoints")
    # Both are armed again afterwards: the next shell command stops at the user's and is traced.
    s.gdb.cli("delete")
    s.shell("version")
    s.gdb.interrupt()
    trace = s.gdb.cli_json("cow-trace --last 5 --json")
    assert trace["active"] and "version" in [e["text"] for e in trace["events"]]


def test_cow_trace_is_refused_on_a_build_id_mismatch(at_prompt, tinyos_kernel, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYOS_CACHE_DIR", str(tmp_path / "cache"))
    s = at_prompt
    other = tmp_path / "other-build"
    new_id = build_id_changed(Path(tinyos_kernel), other, tmp_path)
    s.gdb.cli(f"file {other}")
    message = s.gdb.expect_one_line_error("cow-trace on")
    assert message.startswith("cow-trace: refusing to place breakpoints:") and new_id.hex() in message
    assert s.gdb.cli("cow-trace").startswith("cow-trace is off")
    assert breakpoint_rows(s) == []


def test_cow_trace_from_the_reset_stop(tinyos_gdb):
    """The build-id check reads the note physically while the MMU is off: no false refusal."""
    assert tinyos_gdb.gdb.cli("cow-trace on").startswith("cow-trace on: breakpoint on tinyos_debug_event")


def test_an_interrupted_cow_test_is_rolled_back(at_prompt):
    """`cow-test --timeout T` at the prompt: the plugin's watchdog unwinds the call and
    the plugin has the kernel roll it back (tinyos_debug_recover): no phantom process,
    exactly the frames of before, and the next program runs. The self-test takes ~1 s;
    where T lands in it depends on the machine's load (a loaded one may still be in the
    tests that make no process at 0.3 s, so nothing is rolled back), so T grows until an
    interruption finds processes to clean up; every interruption must leave the same."""
    s = at_prompt
    s.gdb.resume()
    free = mem(s.console).free
    for timeout in (0.3, 0.5, 0.7):
        s.interrupt_at_prompt()
        message = s.gdb.expect_one_line_error(f"cow-test --timeout {timeout}")
        assert message.startswith(f"cow-test: tinyos_cow_run_test did not return within {timeout} s"), message
        rolled = re.search(r"the kernel rolled the interrupted operation back \(tinyos_debug_recover returned (\d+)", message)
        assert rolled, message
        s.gdb.resume()
        assert ps(s.console, timeout=30) == []  # no phantom process
        # Every frame comes back, exactly, including one allocated and not yet mapped when
        # the watchdog landed (the allocator's call log; tests/gdb/test_debug_recover.py).
        assert mem(s.console).free == free
        if int(rolled.group(1)) > 0:
            break
    else:
        pytest.fail("no interruption landed while the self-test had processes to clean up")
    result = run(s.console, "run forkwrite", timeout=60)
    assert list(result.statuses.values()) == [0], result.output
    assert mem(s.console).free == free
