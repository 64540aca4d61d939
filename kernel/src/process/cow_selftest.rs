//! The copy-on-write self-test suite (`~6`, and `tinyos_cow_run_test` for the debugger):
//! real EL0 programs that fork and write, checked from outside — exit status (each
//! program checks its own memory contents and reference counts), the statistics' deltas
//! derived from the program's structure, the free-frame count (everything given back),
//! the manager's invariants and the lock being free.
//!
//! Never holds `COW_MANAGER` while programs run (upstream's `~6` deadlocked doing so):
//! each figure is read in a short critical section before and after.

use super::cow_fault::{self, Target};
use super::user::{KILLED_STATUS, Program, USER_HEAP_START};
use super::{Outcome, kill, run_program, slot_of_pid, snapshot};
use crate::memory::cow::{COW_MANAGER, CowStatistics};
use crate::memory::{PhysAddr, frame};
use crate::println;

/// Counts of a suite run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
}

/// What the suite compares before and after a test.
#[derive(Clone, Copy)]
struct Figures {
    free: usize,
    stats: CowStatistics,
    active: usize,
}

fn figures() -> Figures {
    let free = frame::stats().free;
    let cow = COW_MANAGER.lock();
    Figures { free, stats: cow.statistics, active: cow.active_pages }
}

/// The expected effect of one program run.
struct Expect {
    status: i64,
    /// Exact increase of `cow_faults_handled` / `pages_duplicated`, when known.
    faults: Option<usize>,
    duplicated: Option<usize>,
}

type Check = Result<(), &'static str>;

fn run_checked(name: &str, arg: u64, expect: Expect) -> Check {
    let program = Program::find(name).ok_or("program missing from the image")?;
    let before = figures();
    let (pid, outcome) = run_program(program, arg).map_err(|_| "could not start the program")?;
    let after = figures();
    match outcome {
        Outcome::Exited(status) if status == expect.status => {}
        Outcome::Exited(status) if status == KILLED_STATUS => return Err("the program was killed"),
        Outcome::Exited(_) => return Err("wrong exit status"),
        Outcome::Alive => {
            kill(pid);
            return Err("the program did not finish");
        }
    }
    if after.free != before.free {
        return Err("free frames differ before and after (leak or double free)");
    }
    if after.active != before.active || after.stats.memory_saved_bytes != before.stats.memory_saved_bytes {
        return Err("copy-on-write pages left tracked after every process exited");
    }
    let faults = after.stats.cow_faults_handled - before.stats.cow_faults_handled;
    let duplicated = after.stats.pages_duplicated - before.stats.pages_duplicated;
    if expect.faults.is_some_and(|n| n != faults) {
        return Err("cow_faults_handled changed by an unexpected amount");
    }
    if expect.duplicated.is_some_and(|n| n != duplicated) {
        return Err("pages_duplicated changed by an unexpected amount");
    }
    check_manager()
}

fn check_manager() -> Check {
    if COW_MANAGER.is_locked() {
        return Err("COW_MANAGER is still locked");
    }
    COW_MANAGER.lock().verify().map_err(|_| "the manager's invariants are broken")
}

/// forkwrite: the child's write copies the data page (1 copy); the parent's wait status
/// store then reuses its page as the last sharer (1 reuse).
fn fork_then_write() -> Check {
    run_checked("forkwrite", 0, Expect { status: 0, faults: Some(2), duplicated: Some(1) })
}

/// reuse: the child exits without writing; the parent's one write reuses (no copy).
fn last_writer_reuses() -> Check {
    run_checked("reuse", 0, Expect { status: 0, faults: Some(1), duplicated: Some(0) })
}

/// bigfork: holding 2/3 of the free frames, fork twice; the child writes nothing, so
/// nothing may be copied.
fn big_fork_twice() -> Check {
    run_checked("bigfork", 0, Expect { status: 0, faults: None, duplicated: Some(0) })
}

fn three_processes() -> Check {
    run_checked("threeshare", 0, Expect { status: 0, faults: None, duplicated: None })
}

fn syscall_write_does_not_leak() -> Check {
    run_checked("waitbuf", 0, Expect { status: 0, faults: None, duplicated: None })
}

fn out_of_frames_kills_cleanly() -> Check {
    run_checked("oom", 0, Expect { status: 0, faults: None, duplicated: None })
}

/// rowrite: a write to the code page is not copy-on-write: killed, nothing resolved.
fn read_only_write_kills() -> Check {
    run_checked("rowrite", 0, Expect { status: KILLED_STATUS, faults: Some(0), duplicated: Some(0) })
}

/// forkcycle 200: each child writes the data page and a heap page while the parent
/// still maps them: 2 copies per cycle.
fn fork_cycles() -> Check {
    run_checked("forkcycle", 200, Expect { status: 0, faults: Some(400), duplicated: Some(400) })
}

/// sbrktest: heap pages come zero-filled and go back to the allocator; no copy-on-write.
fn heap_grows_and_shrinks() -> Check {
    run_checked("sbrktest", 0, Expect { status: 0, faults: Some(0), duplicated: Some(0) })
}

/// forkfail: a fork that runs out of frames part-way rolls back; the parent then writes
/// all its pages without a single copy.
fn failed_fork_rolls_back() -> Check {
    run_checked("forkfail", 0, Expect { status: 0, faults: None, duplicated: Some(0) })
}

/// `~4`/`~5`/`~3` semantics on two idle processes: protect a private page (1 ref),
/// unprotect it, share it (2 refs), unprotect refused while shared, then kill both.
fn protect_unprotect_share() -> Check {
    let before = figures();
    let idle = Program::find("idle").ok_or("idle missing")?;
    let a = run_program(idle, 0).map_err(|_| "could not start idle")?.0;
    let b = run_program(idle, 0).map_err(|_| "could not start idle")?.0;
    let result = protect_steps(a, b);
    kill(a);
    kill(b);
    super::reap_shell_children(&mut |_, _, _| {});
    result?;
    let after = figures();
    if after.free != before.free || after.active != before.active {
        return Err("frames or tracked pages not restored after killing the idle processes");
    }
    check_manager()
}

fn protect_steps(a: usize, b: usize) -> Check {
    let ta = cow_fault::target(a).map_err(|_| "idle process gone")?;
    let tb = cow_fault::target(b).map_err(|_| "idle process gone")?;
    let pa = cow_fault::resolve_frame(USER_HEAP_START, Some(a)).map_err(|_| "heap page missing")?;
    let refs = |pa: PhysAddr| COW_MANAGER.lock().find_by_pa(pa.as_u64()).map_or(0, |p| p.ref_count);
    if cow_fault::protect(pa) != Ok(1) || refs(pa) != 1 {
        return Err("~4 on a private page did not track it with one reference");
    }
    if cow_fault::protect(pa).is_ok() {
        return Err("~4 twice was accepted");
    }
    if cow_fault::unprotect(pa).is_err() || refs(pa) != 0 {
        return Err("~5 on a sole-owner page did not untrack it");
    }
    let shared_va = 0x3000_0000;
    let created = cow_fault::create(ta, USER_HEAP_START, tb, shared_va).map_err(|_| "~3 failed")?;
    if created.refs != 2 || refs(pa) != 2 {
        return Err("~3 did not give the frame two references");
    }
    if !matches!(cow_fault::unprotect(pa), Err(cow_fault::CowOpError::Shared { refs: 2, .. })) {
        return Err("~5 on a shared page was not refused");
    }
    let code = cow_fault::resolve_frame(super::user::USER_CODE_VA, Some(a)).map_err(|_| "code page missing")?;
    if cow_fault::protect(code).is_ok() {
        return Err("~4 on a code page was accepted");
    }
    check_alive(ta)?;
    check_alive(tb)
}

fn check_alive(t: Target) -> Check {
    let slot = slot_of_pid(t.pid).ok_or("idle process vanished")?;
    if snapshot(slot).is_live() { Ok(()) } else { Err("idle process died") }
}

/// Runs every test, printing `Test <n>: <what> ... PASS` / `FAIL (<reason>)` and the
/// summary.
pub fn run_suite() -> Summary {
    const TESTS: &[(&str, fn() -> Check)] = &[
        ("fork, child writes: isolated contents, refs and statistics", fork_then_write),
        ("last sharer's write reuses the page (no copy)", last_writer_reuses),
        ("fork holding 2/3 of free memory, twice", big_fork_twice),
        ("three processes share 1/4 of memory, each reads its own values", three_processes),
        ("syscall writing a shared buffer does not leak to the parent", syscall_write_does_not_leak),
        ("out of frames during a copy kills the child only", out_of_frames_kills_cleanly),
        ("write to a read-only page that is not COW kills", read_only_write_kills),
        ("200 fork/write/exit cycles give every frame back", fork_cycles),
        ("sbrk grows zero-filled pages and shrinks freeing them", heap_grows_and_shrinks),
        ("fork out of frames part-way rolls back cleanly", failed_fork_rolls_back),
        ("~3/~4/~5: protect, unprotect, share, refuse unsafe unprotect", protect_unprotect_share),
    ];
    println!("=== COW Self-Test ===");
    let mut summary = Summary::default();
    for (n, (what, test)) in TESTS.iter().enumerate() {
        println!("Test {}: {what}", n + 1);
        match test() {
            Ok(()) => {
                summary.passed += 1;
                println!("Test {}: PASS", n + 1);
            }
            Err(reason) => {
                summary.failed += 1;
                println!("Test {}: FAIL ({reason})", n + 1);
            }
        }
    }
    println!();
    println!("Test Summary:");
    println!("Passed: {}", summary.passed);
    println!("Failed: {}", summary.failed);
    summary
}
