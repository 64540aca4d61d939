"""cow-trace: a fork and the child's write are logged while the kernel runs on (the shell
commands complete without gdb stopping), with the exact pids, VA and frames checked
against the kernel's `~1` and `ps` and the decoded page tables; on/off idempotent; `file`
reload keeps it working; --stop stops; a kernel without the hook is one error line.

The program is `forkpause 1` (kernel/src/process/user_programs.S): step 1 maps one heap
page at 0x10000000, forks, both pause (the heap page shared, refs 2); `cont` runs step 2:
the child writes heap page 0 — a copy into a new frame — then both pause again."""

from __future__ import annotations

import re
import subprocess

import pytest

from gdb_tinyos.testing.shell import cow_status, processes, run

HEAP = 0x1000_0000


def tracked(console) -> dict[tuple[int, int], tuple[int, int]]:
    """The kernel's `~1` as (va, pid) -> (pa, refs)."""
    return {sharer: (page.pa, page.refs) for sharer, page in cow_status(console).sharers.items()}


def trace(s, last: int = 50) -> dict:
    return s.gdb.cli_json(f"cow-trace --last {last} --json")


@pytest.fixture
def traced(tinyos_debug_factory):
    s = tinyos_debug_factory()
    s.gdb.run_to("*kernel_main", timeout=30)
    assert s.gdb.cli("cow-trace on").startswith("cow-trace on: breakpoint on tinyos_debug_event at *0x")
    assert s.gdb.cli("cow-trace on").startswith("cow-trace already on")  # idempotent
    s.boot_to_prompt(timeout=30)
    return s


def test_fork_and_child_copy_are_logged_without_stopping(traced):
    s = traced
    parent = run(s.console, "run forkpause 1", timeout=30).pid  # completes: gdb never stopped the kernel
    shared = tracked(s.console)
    child = next(pid for (va, pid) in shared if va == HEAP and pid != parent)
    old_frame, refs = shared[(HEAP, parent)]
    assert refs == 2 and shared[(HEAP, child)] == (old_frame, 2)

    s.console.command("cont", timeout=30)  # step 2: the child writes its heap page
    after = tracked(s.console)
    child_row = processes(s.console)[child]
    assert child_row.ppid == parent
    child_ttbr0 = child_row.ttbr0
    assert after[(HEAP, parent)] == (old_frame, 1) and (HEAP, child) not in after

    s.gdb.interrupt()
    events = trace(s)["events"]
    forks = [e for e in events if e["name"] == "fork"]
    assert [(e["pid"], e["child"]) for e in forks] == [(parent, child)]
    copies = [e for e in events if e["name"] == "copy"]
    assert len(copies) == 1
    copy = copies[0]
    assert (copy["pid"], copy["va"], copy["old_frame"]) == (child, hex(HEAP), hex(old_frame))
    # The new frame is what the child's tables map now (walked from the TTBR0 `ps` shows).
    walk = s.gdb.cli(f"va2pa {HEAP:#x} --root {child_ttbr0:#x}")
    assert int(re.search(r"-> pa (0x[0-9a-f]+)", walk).group(1), 16) == int(copy["new_frame"], 16) != old_frame
    fault = events[events.index(copy) + 1]
    assert (fault["name"], fault["pid"], fault["resolution"]) == ("fault", child, "copy")
    assert int(fault["va"], 16) & ~0xFFF == HEAP
    commands = [e["text"] for e in events if e["name"] == "command"]
    assert commands == ["run forkpause 1", "~1", "cont", "~1", "ps"]
    assert trace(s)["decode_errors"] == 0


def test_text_log_lines_name_pid_va_and_frames(traced):
    s = traced
    out = s.console.command("run forkwrite", timeout=30)
    assert "exited with status 0" in out
    s.gdb.interrupt()
    text = s.gdb.cli("cow-trace --last 20")
    assert text.splitlines()[0].startswith("cow-trace is on (not stopping at each event)")
    assert re.search(r"copy +pid (\d+) va 0x800000: frame 0x[0-9a-f]+ -> 0x[0-9a-f]+ \(copied\)", text)
    assert re.search(r"reuse +pid \d+ va 0x800000: frame 0x[0-9a-f]+ reused in place \(last sharer\)", text)
    assert re.search(r"exit +pid \d+ exited with status 0", text)


def test_off_is_idempotent_and_stop_mode_stops(traced):
    s = traced
    s.gdb.interrupt()
    assert s.gdb.cli("cow-trace off").startswith("cow-trace off")
    assert s.gdb.cli("cow-trace off").startswith("cow-trace was already off")
    seen = trace(s)["events_seen"]
    s.gdb.resume()
    s.console.command("run hello", timeout=30)
    s.gdb.interrupt()
    assert trace(s)["events_seen"] == seen  # off: nothing logged
    s.gdb.cli("cow-trace on --stop")
    s.gdb.execute('-interpreter-exec console "continue"')  # typed at the prompt: gdb prints the stop
    s.console.send_line("ps")
    stop = s.gdb.wait_for_stop(timeout=30)
    assert s.gdb.read_register("pc") == int(trace(s, 1)["hook"], 16)
    assert trace(s, 1)["events"][0]["text"] == "ps"
    # As gdb's own breakpoints: the event line, then gdb's "Breakpoint N, <frame>" and the
    # source line; MI gets the frame in its *stopped record (kind 1: a command starts).
    assert stop.reason == "breakpoint-hit" and stop.func == "tinyos::debug::tinyos_debug_event"
    frame_line = re.search(r"^cow-trace: #\d+ +command 'ps'\n\nBreakpoint -?\d+, "
                           r"tinyos::debug::tinyos_debug_event \(kind=1, a=\d+, b=2\) at src/debug\.rs:(\d+)\n\1\t",
                           stop.console, re.M)
    assert frame_line, stop.console
    s.gdb.cli("cow-trace on")  # back to logging only: silent again
    s.gdb.resume()
    s.console.command("run hello", timeout=30)
    s.gdb.interrupt()
    assert trace(s, 1)["events"][0]["name"] == "done"


def test_file_reload_keeps_tracing(traced, tinyos_kernel):
    s = traced
    s.gdb.interrupt()
    s.gdb.cli(f"file {tinyos_kernel}")
    s.gdb.resume()
    s.console.command("run hello", timeout=30)
    s.gdb.interrupt()
    log = trace(s)  # all of it: a failure shows every event and any decode error
    assert [e["name"] for e in log["events"]][-3:] == ["command", "exit", "done"], log
    assert log["decode_errors"] == 0, log


def test_missing_hook_or_debug_info_is_one_error_line(tinyos_debug_factory, tinyos_kernel, tmp_path, monkeypatch):
    # A fresh debug-info cache: it is keyed by build-id, which objcopy keeps.
    monkeypatch.setenv("TINYOS_CACHE_DIR", str(tmp_path / "cache"))
    s = tinyos_debug_factory()
    # The kernel without the hook's symbol (DWARF kept): nothing to break on.
    no_hook = tmp_path / "tinyos-no-hook"
    subprocess.run(["llvm-objcopy", "--strip-symbol=tinyos_debug_event", str(tinyos_kernel), str(no_hook)], check=True)
    s.gdb.cli(f"file {no_hook}")
    assert s.gdb.expect_one_line_error("cow-trace on") == (
        f"cow-trace: the kernel ELF {no_hook} has no tinyos_debug_event (not a TinyOS kernel with the "
        "debugger contract, or a stripped ELF)")
    assert s.gdb.cli("cow-trace").startswith("cow-trace is off")
    # A stripped copy: no debug info at all.
    stripped = tmp_path / "tinyos-stripped"
    subprocess.run(["llvm-strip", "-o", str(stripped), str(tinyos_kernel)], check=True)
    s.gdb.cli(f"file {stripped}")
    assert s.gdb.expect_one_line_error("cow-trace on") == (
        f"cow-trace: {stripped} has no DWARF debug info (stripped, or built without debug info): load the unstripped kernel ELF")
