"""Copy-on-write under preemption, checked by the debugger: while `forkrace` runs (a
parent and its children writing shared pages, the timer preempting them), the kernel is
stopped again and again at the tick path (`scheduler::interrupt`, entered with the
interrupted process's state saved) and at the write-fault path (`handle_write_fault`,
entered before anything changes), picked at random with random skips, and `cow-check`
must find nothing wrong at every stop. Afterwards the program must have passed its own
checks and every frame must be back (the shell's `mem`)."""

from __future__ import annotations

import random

from gdb_tinyos.testing.shell import parse_mem, parse_ps, parse_run

TICK = "tinyos::process::scheduler::interrupt"
FAULT = "tinyos::process::cow_fault::handle_write_fault"
STOPS = 30


def test_cow_check_stays_clean_at_random_stops_during_forkrace(tinyos_booted) -> None:
    s = tinyos_booted
    rng = random.Random(12)
    free = parse_mem(s.shell("mem")).free
    s.gdb.interrupt()
    # At the functions' first instruction (`*`): gdb's prologue skipping can land outside a
    # function of an optimised build (seen: handle_write_fault's breakpoint put in `create`).
    numbers = {TICK: s.gdb.break_insert(f"*{TICK}"), FAULT: s.gdb.break_insert(f"*{FAULT}")}
    s.console.send_line("run forkrace 8")
    seen = {TICK: 0, FAULT: 0}
    for _ in range(STOPS):
        # Interleave: each stop is at one of the two paths, chosen at random, after a
        # random number of hits is let through.
        wanted = rng.choice((TICK, FAULT))
        for location, number in numbers.items():
            s.gdb.cli(f"{'enable' if location == wanted else 'disable'} {number}")
        s.gdb.cli(f"ignore {numbers[wanted]} {rng.randrange(2)}")
        stop = s.gdb.continue_and_wait_stop(timeout=60)
        assert stop.reason == "breakpoint-hit", stop.payload
        assert stop.bkptno == numbers[wanted], (stop.payload, wanted)
        seen[wanted] += 1
        report = s.gdb.mi("-cow-check")["result"]
        assert report["violations"] == [], (wanted, report)
    assert seen[TICK] > 0 and seen[FAULT] > 0, seen
    for number in numbers.values():
        s.gdb.cli(f"delete {number}")
    s.gdb.resume()
    out = s.console.read_until_prompt(timeout=120)
    assert "FAIL" not in out, out
    assert "forkrace: every process read back only its own values" in out
    result = parse_run(out[out.index("process "):])
    assert result.statuses == {result.pid: 0}, out
    assert parse_ps(s.shell("ps")) == []
    assert parse_mem(s.shell("mem")).free == free
