//! The debugger's entry points: the C-ABI functions the gdb plugin calls by inferior
//! calls (their contract, statuses and refusal record are documented in
//! [`crate::debug`]), and their transaction record: an entry point that runs processes
//! (`tinyos_cow_run_test`) notes the first pid it may create; if the debugger abandons
//! the call half way, `tinyos_debug_recover` uses that note to clean up, and the frame
//! allocator's call log (every frame handed out while the call was pending) to free the
//! frames no survivor owns.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::debug::{STATUS_BAD_ARGUMENT, STATUS_BUSY, STATUS_IN_PROCESS, STATUS_REFUSED, record_refusal};
use crate::memory::PhysAddr;
use crate::memory::cow::COW_MANAGER;
use crate::memory::address_space::AddressSpace;
use crate::memory::frame::{self, FRAME_ALLOCATOR};
use crate::process::{self, cow_fault, cow_selftest};
use crate::println;

/// `STATUS_BUSY` when a lock is held, `STATUS_IN_PROCESS` when a process runs.
fn refusal(needs_shell: bool) -> Option<i64> {
    crate::arch::aarch64::exception::debugger_call_started();
    record_refusal(format_args!(""));
    let locked = COW_MANAGER.is_locked() || process::PROCESSES.is_locked() || FRAME_ALLOCATOR.is_locked();
    if locked {
        return Some(STATUS_BUSY);
    }
    if needs_shell && process::current_slot().is_some() {
        return Some(STATUS_IN_PROCESS);
    }
    None
}

fn status_of(err: cow_fault::CowOpError, operation: &str) -> i64 {
    use cow_fault::CowOpError as E;
    println!("{operation}: {err}");
    record_refusal(format_args!("{err}"));
    match err {
        E::NoSuchProcess(_) | E::BadAddress(_) | E::NotMapped { .. } | E::NotMappedAnywhere(_) | E::Ambiguous(_) => {
            STATUS_BAD_ARGUMENT
        }
        _ => STATUS_REFUSED,
    }
}

fn frame_for(addr: u64, pid: u64) -> Result<PhysAddr, cow_fault::CowOpError> {
    cow_fault::resolve_frame(addr, (pid != 0).then_some(pid as usize))
}

/// `~3` for the debugger: see the module doc.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tinyos_cow_create(src_pid: u64, src_va: u64, dst_pid: u64, dst_va: u64) -> i64 {
    if let Some(status) = refusal(true) {
        return status;
    }
    let result = cow_fault::target(src_pid as usize)
        .and_then(|src| Ok((src, cow_fault::target(dst_pid as usize)?)))
        .and_then(|(src, dst)| cow_fault::create(src, src_va, dst, dst_va));
    match result {
        Ok(created) => created.refs as i64,
        Err(err) => status_of(err, "tinyos_cow_create"),
    }
}

/// `~4` for the debugger: see the module doc.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tinyos_cow_protect(addr: u64, pid: u64) -> i64 {
    if let Some(status) = refusal(true) {
        return status;
    }
    match frame_for(addr, pid).and_then(cow_fault::protect) {
        Ok(refs) => refs as i64,
        Err(err) => status_of(err, "tinyos_cow_protect"),
    }
}

/// `~5` for the debugger: see the module doc.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tinyos_cow_unprotect(addr: u64, pid: u64) -> i64 {
    if let Some(status) = refusal(true) {
        return status;
    }
    match frame_for(addr, pid).and_then(cow_fault::unprotect) {
        Ok(()) => 0,
        Err(err) => status_of(err, "tinyos_cow_unprotect"),
    }
}

/// `~6` for the debugger: see the module doc.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tinyos_cow_run_test() -> i64 {
    if let Some(status) = refusal(true) {
        return status;
    }
    begin_transaction();
    let failed = cow_selftest::run_suite().failed as i64;
    PENDING.store(false, Ordering::Release);
    frame::end_call_log();
    failed
}

/// An entry point that may create processes is running: nothing abandoned it yet.
static PENDING: AtomicBool = AtomicBool::new(false);
/// The first pid the pending call may have created (pids only grow).
static FIRST_PID: AtomicUsize = AtomicUsize::new(0);

/// Frames the last `tinyos_debug_recover` freed from the call log, for the debugger
/// (never read by the kernel; the symbol is kept for it).
#[unsafe(no_mangle)]
#[used]
pub static TINYOS_RECOVERED_FRAMES: AtomicUsize = AtomicUsize::new(0);

fn begin_transaction() {
    FIRST_PID.store(COW_MANAGER.lock().next_process_id, Ordering::Relaxed);
    frame::begin_call_log();
    PENDING.store(true, Ordering::Release);
}

/// Takes every frame a surviving owner holds out of the call log: the tables and pages
/// of every process left in the table (the ones from before the call; they may have
/// run during it and taken frames) and every frame `COW_MANAGER` tracks once the dead
/// processes' mappings are out of it (a frame it still names for them would otherwise
/// be kept, and leak, or freed while tracked). Nothing else in the kernel keeps frames
/// across a call (the kernel's own tables are in the image).
fn keep_survivors() {
    let survivors: [Option<usize>; process::MAX_PROCESSES] = core::array::from_fn(|slot| {
        let p = process::snapshot(slot);
        (p.state != process::ProcessState::Unused).then_some(p.pid)
    });
    let dropped = COW_MANAGER.lock().forget_dead(&|pid| survivors.contains(&Some(pid)));
    if dropped > 0 {
        println!("tinyos_debug_recover: {dropped} copy-on-write mappings of dead processes untracked");
    }
    for slot in 0..process::MAX_PROCESSES {
        let p = process::snapshot(slot);
        if p.ttbr0 == 0 {
            continue;
        }
        // SAFETY: a recorded `ttbr0` is the root of the user tables `new_space` built for
        // the slot's ASID; the abandoned call's processes were torn down already, so the
        // remaining ones are intact, and nothing frees them while this view lives (one CPU,
        // no process runs during recovery). The view only reads them.
        let space = unsafe { AddressSpace::from_raw(PhysAddr::new(p.ttbr0), Some(p.asid)) };
        space.for_each_frame(&mut frame::keep);
    }
    // The allocator's lock nests inside COW_MANAGER's (it never calls out while held).
    COW_MANAGER.lock().pages().for_each(|page| frame::keep(PhysAddr::new(page.physical_addr)));
}

/// Cleans up after an entry-point call the debugger abandoned: see `crate::debug`.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tinyos_debug_recover() -> i64 {
    crate::arch::aarch64::exception::debugger_call_started();
    record_refusal(format_args!(""));
    if !PENDING.load(Ordering::Acquire) {
        if process::current_slot().is_some() && !process::PROCESSES.is_locked() {
            record_refusal(format_args!("a process is on the CPU and no debugger call is pending"));
            return STATUS_IN_PROCESS;
        }
        return 0;
    }
    // SAFETY: the call that held these locks was abandoned by the debugger (its stack and
    // registers are gone, restored to the shell's), and nothing else runs on this CPU, so
    // no guard of them is alive any more.
    unsafe {
        COW_MANAGER.force_unlock();
        process::PROCESSES.force_unlock();
        FRAME_ALLOCATOR.force_unlock();
    }
    frame::end_call_log();
    let cleaned = process::scheduler::abandon_run(FIRST_PID.load(Ordering::Relaxed));
    keep_survivors();
    let frames = frame::reclaim_call_log();
    TINYOS_RECOVERED_FRAMES.store(frames, Ordering::Relaxed);
    println!("tinyos_debug_recover: {cleaned} processes cleaned up, {frames} unowned frames freed");
    PENDING.store(false, Ordering::Release);
    cleaned as i64
}

/// The `layout` report on the console, for the debugger: see the module doc.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tinyos_layout_info() -> i64 {
    if let Some(status) = refusal(false) {
        return status;
    }
    let mut lines = 0;
    crate::shell::commands::layout::report(&mut |line| {
        println!("{line}");
        lines += 1;
    });
    lines
}



/// The entry points nothing in the kernel calls, referenced here so the linker keeps them.
pub struct EntryPoints {
    pub create: extern "C" fn(u64, u64, u64, u64) -> i64,
    pub protect: extern "C" fn(u64, u64) -> i64,
    pub unprotect: extern "C" fn(u64, u64) -> i64,
    pub run_test: extern "C" fn() -> i64,
    pub layout_info: extern "C" fn() -> i64,
    pub recover: extern "C" fn() -> i64,
}

pub static ENTRY_POINTS: EntryPoints = EntryPoints {
    create: tinyos_cow_create,
    protect: tinyos_cow_protect,
    unprotect: tinyos_cow_unprotect,
    run_test: tinyos_cow_run_test,
    layout_info: tinyos_layout_info,
    recover: tinyos_debug_recover,
};

/// Makes sure the entry points (and the contract static) are linked (called once at boot).
pub fn retain_entry_points() {
    core::hint::black_box(&ENTRY_POINTS);
    core::hint::black_box(&crate::debug::TINYOS_DEBUG_CONTRACT);
}
