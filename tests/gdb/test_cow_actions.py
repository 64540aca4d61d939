"""cow-create / cow-protect / cow-unprotect / cow-test through gdb (inferior calls into the
kernel's debugger contract), each confirmed by the kernel's own shell (`~1` after the
command) and by the decoded state; and the refusals: a held lock (written into memory),
a running target, a stop that is not a safe point, a process on the CPU, bad addresses.

Expected values come from the kernel's rules (kernel/src/process/cow_fault.rs, issue 3):
`~3`'s defaults are the heap's first page 0x10000000 of the oldest live process shared
at 0x30000000 with the newest; a shared COW page has refs 2 and both PTEs read-only
with the COW bit; `~4` tracks a private writable page with 1 ref; `~5` is refused while
2 mappings share the frame. Physical addresses are read from the shell's `~1`/`~4`."""

from __future__ import annotations

import re

import pytest
from elftools.elf.elffile import ELFFile

from gdb_tinyos.testing import DebugEvent
from gdb_tinyos.testing.shell import CowPage, parse_cow_statistics, parse_cow_status, parse_mem

HEAP, SHARED_VA, DATA_VA = 0x1000_0000, 0x3000_0000, 0x80_0000


def cow_pages(s) -> dict[int, CowPage]:
    """The kernel's own `~1` (run with the kernel running): its pages by PA."""
    return parse_cow_status(s.shell("~1")).pages


def page(pa: int, refs: int, *sharers: tuple[int, int]) -> CowPage:
    return CowPage(pa, refs, True, frozenset(sharers))


@pytest.fixture
def booted(tinyos_booted):
    """The kernel at its prompt with two idle processes (pids 1 and 2), running."""
    s = tinyos_booted
    assert "process 1 (idle) started" in s.shell("run idle")
    assert "process 2 (idle) started" in s.shell("run idle")
    return s


def mapping(page: dict, pid: int, va: int) -> dict:
    return next(m for m in page["mappings"] if m["pid"] == pid and int(m["va"], 16) == va)


def test_cow_create_with_the_shells_defaults(booted):
    s = booted
    s.interrupt_at_prompt()  # the shell waits for input: a safe point
    result = s.gdb.cli_json("cow-create --json")
    assert result["call"] == f"tinyos_cow_create(1, {HEAP:#x}, 2, {SHARED_VA:#x})"
    before, after = result["before"], result["after"]
    pa = int(before["pa"], 16)  # JSON addresses are hex strings
    assert not before["tracked"] and before["frame_refs"] == 1
    assert mapping(before, 1, HEAP)["writable"] and mapping(before, 2, SHARED_VA)["pa"] is None
    assert (after["tracked"], after["refs"], after["is_cow"], after["frame_refs"]) == (True, 2, True, 2)
    for pid, va in ((1, HEAP), (2, SHARED_VA)):
        pte = mapping(after, pid, va)
        assert int(pte["pa"], 16) == pa and not pte["writable"] and pte["cow_bit"]
        assert "EL0:R--" in pte["perms"]
    s.gdb.resume()
    assert cow_pages(s) == {pa: page(pa, 2, (HEAP, 1), (SHARED_VA, 2))}


def test_cow_protect_then_unprotect_confirmed_by_the_shell(booted):
    s = booted
    s.interrupt_at_prompt()
    protected = s.gdb.cli_json(f"cow-protect {DATA_VA:#x} --pid 1 --json")
    pa = int(protected["after"]["pa"], 16)
    assert protected["before"]["tracked"] is False and mapping(protected["before"], 1, DATA_VA)["writable"]
    assert (protected["after"]["refs"], protected["after"]["is_cow"]) == (1, True)
    pte = mapping(protected["after"], 1, DATA_VA)
    assert (int(pte["pa"], 16), pte["writable"], pte["cow_bit"]) == (pa, False, True)
    s.gdb.resume()
    assert cow_pages(s) == {pa: page(pa, 1, (DATA_VA, 1))}

    s.interrupt_at_prompt()
    text = s.gdb.cli(f"cow-unprotect {pa:#x}")  # by physical address this time
    assert text.startswith(f"COW protection removed from page {pa:#x}")
    state = s.gdb.cli_json(f"cow-protect {pa:#x} --json")["before"]  # protect again: before = unprotected
    assert state["tracked"] is False and mapping(state, 1, DATA_VA)["writable"] and not mapping(state, 1, DATA_VA)["cow_bit"]
    s.gdb.resume()
    assert cow_pages(s) == {pa: page(pa, 1, (DATA_VA, 1))}


def test_refusals_carry_the_kernels_reason(booted):
    s = booted
    s.interrupt_at_prompt()
    s.gdb.cli("cow-create")
    shared = s.gdb.expect_one_line_error(f"cow-unprotect {HEAP:#x} --pid 1")
    assert shared.startswith("cow-unprotect: refused: page 0x") and "is shared by 2 mappings" in shared
    again = s.gdb.expect_one_line_error(f"cow-create {HEAP:#x} {SHARED_VA:#x} --src-pid 1 --dst-pid 2")
    assert again == f"cow-create: refused: 0x{SHARED_VA:X} is already mapped in pid 2"
    unaligned = s.gdb.expect_one_line_error(f"cow-create {HEAP + 8:#x} 0x40000000 --src-pid 1 --dst-pid 2")
    assert unaligned == f"cow-create: bad argument: 0x{HEAP + 8:X} is not a page-aligned user address"
    no_process = s.gdb.expect_one_line_error("cow-protect 0x800000 --pid 9")
    assert no_process == "cow-protect: bad argument: no live process with pid 9"
    usage = s.gdb.expect_one_line_error("cow-create 0x10000000")
    assert usage.startswith("cow-create: give both SRC_VA and DST_VA")
    # Nothing changed: the shared page is as cow-create left it.
    s.gdb.resume()
    pages = cow_pages(s)
    assert [(p.refs, p.cow, p.sharers) for p in pages.values()] == [(2, True, {(HEAP, 1), (SHARED_VA, 2)})]


def lock_address(s, static: str) -> int:
    out = s.gdb.cli(
        "python from gdb_tinyos.gdb.session import session; "
        f"print(session().debuginfo().static({static!r}).member('locked')[0])")
    return int(out.strip().splitlines()[-1])


def poke(s, address: int, byte: int) -> None:
    s.gdb.cli(f"python gdb.selected_inferior().write_memory({address:#x}, bytes([{byte}]))")


def test_a_held_lock_is_refused_before_any_call_and_nothing_changes(booted):
    s = booted
    s.interrupt_at_prompt()
    for static, name in (("COW_MANAGER", "COW_MANAGER"), ("process::PROCESSES", "PROCESSES")):
        lock = lock_address(s, static)
        poke(s, lock, 1)
        message = s.gdb.expect_one_line_error(f"cow-protect {DATA_VA:#x} --pid 1")
        assert message.startswith(f"cow-protect: {name} is locked: the kernel was stopped inside an update")
        poke(s, lock, 0)
    assert s.gdb.cli_json(f"cow-protect {DATA_VA:#x} --pid 1 --json")["after"]["refs"] == 1
    s.gdb.resume()
    assert [p.refs for p in cow_pages(s).values()] == [1]


def test_running_target_and_unsafe_stops_are_refused_and_gdb_stays_usable(booted):
    s = booted
    assert s.gdb.expect_one_line_error("cow-test") == "cow-test: the target is running: interrupt it first (Ctrl-C or `interrupt`)"
    s.gdb.interrupt()  # gdb still works
    # A stop inside the kernel that is not a quiet place: the fault handler's entry.
    s.gdb.resume()
    stop = s.gdb.run_to(s.location("cow_fault::handle_write_fault"),
                        action=lambda: s.console.send_line("run forkwrite"), timeout=30)
    assert stop.func == "tinyos::process::cow_fault::handle_write_fault"
    message = s.gdb.expect_one_line_error("cow-protect 0x800000 --pid 1")
    assert message.startswith("cow-protect: not at a safe point for a kernel call: the CPU is stopped in "
                              "tinyos::process::cow_fault::handle_write_fault")
    # The hook while a process is on the CPU (the child's exit): a quiet place, but not the
    # shell's context.
    s.run_to_event(DebugEvent.PROCESS_EXIT, timeout=30)
    message = s.gdb.expect_one_line_error("cow-protect 0x800000 --pid 1")
    assert re.fullmatch(r"cow-protect: process \d+ \(forkwrite\) is on the CPU: the kernel changes mappings from the "
                        r"shell's context only.*", message)
    s.gdb.resume()
    s.console.read_until_prompt(timeout=30)  # the prompt after the typed command's output
    assert "process 3 (forkwrite) exited with status 0" in s.console.transcript


def user_entry(kernel, program: str) -> int:
    """A program's first instruction at EL0: its offset in the user image, at 0x400000."""
    with open(kernel, "rb") as f:
        symbols = ELFFile(f).get_section_by_name(".symtab")
        address = {name: symbols.get_symbol_by_name(name)[0]["st_value"]
                   for name in (f"tinyos_user_{program}", "tinyos_user_image_start")}
    return 0x40_0000 + address[f"tinyos_user_{program}"] - address["tinyos_user_image_start"]


def test_at_el0_the_call_is_refused(booted, tinyos_kernel):
    s = booted
    s.gdb.run_to(f"*{user_entry(tinyos_kernel, 'hello'):#x}", action=lambda: s.console.send_line("run hello"), timeout=30)
    assert s.gdb.read_register("cpsr") & 0b1100 == 0
    message = s.gdb.expect_one_line_error("cow-create")
    assert message.startswith("cow-create: the CPU is stopped at EL0 (a process's user code)")
    s.gdb.resume()
    s.console.read_until_prompt(timeout=30)  # the prompt after the typed command's output


def test_cow_test_runs_the_suite_without_deadlock(booted):
    s = booted
    s.shell("mem")
    s.interrupt_at_prompt()
    result = s.gdb.cli_json("cow-test --json", timeout=600)
    assert result["failed"] == 0
    assert result["before"]["free_frames"] == result["after"]["free_frames"]
    assert result["after"]["locks_free"] is True
    s.gdb.resume()
    summary = re.search(r"Test Summary:\nPassed: (\d+)\nFailed: (\d+)", s.console.transcript.replace("\r\n", "\n"))
    assert summary is not None and int(summary.group(1)) > 0 and summary.group(2) == "0"
    assert parse_mem(s.shell("mem")).free == result["after"]["free_frames"]
    faults = parse_cow_statistics(s.shell("~2")).total_cow_faults
    assert faults == result["after"]["statistics"]["cow_faults_handled"] > 0


def test_mi_commands_return_the_same_model(booted):
    s = booted
    s.interrupt_at_prompt()
    payload = s.gdb.mi(f"-cow-protect {DATA_VA:#x} --pid 2")["result"]
    assert payload["after"]["refs"] == "1" and payload["after"]["is_cow"] == "true"
    assert payload["call"] == f"tinyos_cow_protect({DATA_VA:#x}, 2)"


def test_a_call_that_does_not_return_in_time_is_unwound(booted):
    s = booted
    s.interrupt_at_prompt()
    pc = s.gdb.read_register("pc")
    message = s.gdb.expect_one_line_error("cow-test --timeout 0.3", timeout=60)
    assert message.startswith("cow-test: tinyos_cow_run_test did not return within 0.3 s")
    assert "restored the registers from before the call" in message
    assert s.gdb.read_register("pc") == pc  # back where the call started
    assert s.gdb.cli("show language").strip().endswith('"auto; currently rust".')
    assert "off" in s.gdb.cli("show unwindonsignal")
    s.gdb.resume()
    assert "  PID" in s.shell("ps")  # the shell still answers
