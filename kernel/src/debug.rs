//! The debugger contract: the kernel API the gdb plugin relies on besides DWARF.
//!
//! [`tinyos_debug_event`] is a stable, never-inlined C-ABI function the kernel calls at
//! interesting moments; the debugger sets a breakpoint on it and reads `kind`, `a`, `b`
//! from x0, x1, x2. Its body is a compiler fence so it is never optimised away.
//!
//! Event kinds (`kind`, then the meaning of `a` and `b`):
//! - [`EVENT_SHELL_COMMAND`] = 1: a shell command is about to run; `a` = VA of the
//!   command line bytes (UTF-8, not NUL-terminated), `b` = its length.
//! - [`EVENT_SHELL_DONE`] = 2: the command finished; `a` = VA, `b` = length, as above.
//! - [`EVENT_FAULT_RECOVERED`] = 3: a `fault` probe's exception was reported and
//!   recovered; `a` = ESR, `b` = ELR.
//! - [`EVENT_HALT`] = 4: an unexpected exception, about to halt; `a` = ESR, `b` = ELR.
//! - [`EVENT_COW_FAULT`] = 16: a copy-on-write write fault (EL0 write, or a kernel write
//!   into a user page) was resolved; `a` = pid, `b` = fault address. Emitted after the
//!   page tables, the TLB and `COW_MANAGER` are consistent and the lock is released.
//! - [`EVENT_PAGE_DUPLICATED`] = 17: the faulting mapping got a private copy; `a` = page
//!   VA, `b` = PA of the new frame (emitted just before the matching event 16).
//! - [`EVENT_PAGE_REUSED`] = 18: the last sharer's mapping became writable in place (no
//!   copy); `a` = page VA, `b` = PA of the frame (before the matching event 16).
//! - [`EVENT_FORK`] = 19: fork completed; `a` = parent pid, `b` = child pid.
//! - [`EVENT_PROCESS_EXIT`] = 20: a process exited and its memory was freed (a zombie
//!   now); `a` = pid, `b` = exit status (137 = killed by the kernel).
//! - [`EVENT_PROCESS_KILLED`] = 21: the kernel is killing the running process; `a` =
//!   pid (event 20 follows).
//!
//! Entry points for inferior calls (`call tinyos_cow_protect(0x10000000, 1)`), all
//! `extern "C"`, returning an `i64`: a value >= 0 means success, a negative value is one
//! of the `STATUS_*` codes below. Each one refuses with [`STATUS_BUSY`] when
//! `COW_MANAGER` or `PROCESSES` is locked or the frame allocator is mid-operation (the
//! kernel was stopped inside an update: a call would dead-lock or see half a change),
//! and the ones that change mappings refuse with [`STATUS_IN_PROCESS`] unless the kernel
//! was stopped in the shell (no process on the CPU). Reasons for a refusal are also printed on the console, and kept for the
//! debugger in [`LAST_REFUSAL`] (`tinyos::debug::LAST_REFUSAL`: `len` bytes of UTF-8 in
//! `text`; emptied at the start of every entry-point call).
//! - `tinyos_cow_create(src_pid, src_va, dst_pid, dst_va)`: `~3` — share the page at
//!   `src_va` of `src_pid` with `dst_pid` at `dst_va` (unmapped there); returns the
//!   frame's new ref_count.
//! - `tinyos_cow_protect(addr, pid)`: `~4` — `addr` a RAM PA, or a user VA looked up in
//!   `pid` (0 = every live process); returns 1 (the page's ref_count).
//! - `tinyos_cow_unprotect(addr, pid)`: `~5` — returns 0, or [`STATUS_REFUSED`] when the
//!   frame is still shared (the sharers would see each other's writes).
//! - `tinyos_cow_run_test()`: `~6` — runs the self-test suite; returns the number of
//!   failed tests (0 = all passed).
//! - `tinyos_layout_info()`: prints the `layout` report on the console; returns the number
//!   of lines.
//!
//! The data the debugger decodes (paths as DWARF names them; layouts from DWARF, also
//! printed by `layout`): `tinyos::memory::cow::COW_MANAGER` (`SpinLock<CowManager>`: lock
//! word `locked`, then `data`), `tinyos::memory::frame::FRAME_ALLOCATOR`,
//! `tinyos::process::PROCESSES` (`SpinLock<[Process; 16]>`), `tinyos::process::CURRENT`
//! (slot index, usize::MAX = none), `tinyos::arch::aarch64::mmu::KERNEL_L0`. A
//! copy-on-write PTE is read-only with software bit 55 set
//! (`process::cow_fault::SW_COW`).

use crate::memory::PhysAddr;
use crate::process::{self, cow_fault, cow_selftest};
use crate::println;

/// A shell command is about to run (`a` = line VA, `b` = length).
pub const EVENT_SHELL_COMMAND: u32 = 1;
/// A shell command finished (`a` = line VA, `b` = length).
pub const EVENT_SHELL_DONE: u32 = 2;
/// A fault probe's exception was recovered (`a` = ESR, `b` = ELR).
pub const EVENT_FAULT_RECOVERED: u32 = 3;
/// An unexpected exception; the kernel halts next (`a` = ESR, `b` = ELR).
pub const EVENT_HALT: u32 = 4;

/// A copy-on-write write fault was resolved (`a` = pid, `b` = fault address).
pub const EVENT_COW_FAULT: u32 = 16;
/// A shared page was copied for the writer (`a` = page VA, `b` = new frame PA).
pub const EVENT_PAGE_DUPLICATED: u32 = 17;
/// The last sharer's page was made writable in place (`a` = page VA, `b` = frame PA).
pub const EVENT_PAGE_REUSED: u32 = 18;
/// A fork completed (`a` = parent pid, `b` = child pid).
pub const EVENT_FORK: u32 = 19;
/// A process exited and its memory was freed (`a` = pid, `b` = exit status).
pub const EVENT_PROCESS_EXIT: u32 = 20;
/// The kernel is killing a process (`a` = pid); `EVENT_PROCESS_EXIT` follows.
pub const EVENT_PROCESS_KILLED: u32 = 21;

/// The breakpoint target for every debugger event. Does nothing.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tinyos_debug_event(kind: u32, a: u64, b: u64) {
    core::hint::black_box((kind, a, b));
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// Status: `COW_MANAGER` or `PROCESSES` is locked, or the frame allocator busy; nothing was done.
pub const STATUS_BUSY: i64 = -1;
/// Status: an argument is not a valid address or pid.
pub const STATUS_BAD_ARGUMENT: i64 = -2;
/// Status: the operation was refused as unsafe or impossible (reason on the console).
pub const STATUS_REFUSED: i64 = -3;
/// Status: a process is on the CPU (stopped inside it); call from the shell's context.
pub const STATUS_IN_PROCESS: i64 = -4;

/// `STATUS_BUSY` when a lock is held, `STATUS_IN_PROCESS` when a process runs.
fn refusal(needs_shell: bool) -> Option<i64> {
    record_refusal(format_args!(""));
    let locked = crate::memory::cow::COW_MANAGER.is_locked() || process::PROCESSES.is_locked();
    if locked || crate::memory::frame::is_busy() {
        return Some(STATUS_BUSY);
    }
    if needs_shell && process::current_slot().is_some() {
        return Some(STATUS_IN_PROCESS);
    }
    None
}

/// Bytes of [`LAST_REFUSAL`]'s text (longer reasons are cut).
pub const REFUSAL_CAPACITY: usize = 192;

/// Why the last entry-point call was refused, for the debugger (which has no console):
/// `len` bytes of UTF-8 in `text`, the sentence the console shows without the operation
/// name. Written only by the entry points (one CPU, the debugger calls one at a time).
pub struct Refusal {
    pub len: core::sync::atomic::AtomicUsize,
    pub text: core::cell::UnsafeCell<[u8; REFUSAL_CAPACITY]>,
}

// SAFETY: `text` is written only by the entry points, which run one at a time on the
// single CPU (called by the debugger); readers are the debugger while the CPU is stopped.
unsafe impl Sync for Refusal {}

/// The reason for the last refused entry-point call (empty after a success).
pub static LAST_REFUSAL: Refusal =
    Refusal { len: core::sync::atomic::AtomicUsize::new(0), text: core::cell::UnsafeCell::new([0; REFUSAL_CAPACITY]) };

impl core::fmt::Write for &Refusal {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        use core::sync::atomic::Ordering;
        let len = self.len.load(Ordering::Relaxed);
        let take = s.len().min(REFUSAL_CAPACITY - len);
        // SAFETY: see `Refusal`'s Sync: no other writer or reader runs meanwhile.
        unsafe { (&mut *self.text.get())[len..len + take].copy_from_slice(&s.as_bytes()[..take]) };
        self.len.store(len + take, Ordering::Relaxed);
        Ok(())
    }
}

/// Replaces the recorded reason by `reason` (empty: none).
fn record_refusal(reason: core::fmt::Arguments<'_>) {
    LAST_REFUSAL.len.store(0, core::sync::atomic::Ordering::Relaxed);
    let _ = core::fmt::Write::write_fmt(&mut &LAST_REFUSAL, reason);
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
    cow_selftest::run_suite().failed as i64
}

/// The `layout` report on the console, for the debugger: see the module doc.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tinyos_layout_info() -> i64 {
    if let Some(status) = refusal(false) {
        return status;
    }
    let mut lines = 0;
    crate::layout::report(&mut |line| {
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
}

pub static ENTRY_POINTS: EntryPoints = EntryPoints {
    create: tinyos_cow_create,
    protect: tinyos_cow_protect,
    unprotect: tinyos_cow_unprotect,
    run_test: tinyos_cow_run_test,
    layout_info: tinyos_layout_info,
};

/// Makes sure the entry points are linked (called once at boot).
pub fn retain_entry_points() {
    core::hint::black_box(&ENTRY_POINTS);
}

/// Layouts of the copy-on-write types (for the `layout` command).
pub fn cow_layout(out: &mut dyn FnMut(crate::layout::Line)) {
    use crate::layout::{Line, fields};
    use crate::memory::cow::{CowManager, CowPage, CowStatistics, RegionType, SimpleVec};
    use crate::sync::SpinLock;
    use core::mem::{align_of, size_of};
    type Lock = SpinLock<CowManager>;
    out(Line::Type { name: "SpinLock<CowManager>", size: size_of::<Lock>(), align: align_of::<Lock>() });
    out(Line::Field { ty: "SpinLock<CowManager>", field: "locked", offset: Lock::LOCKED_OFFSET, size: 1 });
    let data = Lock::DATA_OFFSET;
    out(Line::Field { ty: "SpinLock<CowManager>", field: "data", offset: data, size: size_of::<CowManager>() });
    fields!(out, CowManager, cow_pages, active_pages, statistics, memory_manager, next_process_id);
    out(Line::Type { name: "Option<CowPage>", size: size_of::<Option<CowPage>>(), align: align_of::<Option<CowPage>>() });
    fields!(out, CowPage, physical_addr, ref_count, is_cow, original_permissions, virtual_addresses, process_ids);
    macro_rules! simple_vec {
        ($name:literal, $ty:ty) => {{
            out(Line::Type { name: $name, size: size_of::<$ty>(), align: align_of::<$ty>() });
            let data = core::mem::offset_of!($ty, data);
            let len = core::mem::offset_of!($ty, len);
            out(Line::Field { ty: $name, field: "data", offset: data, size: size_of::<[u64; 8]>() });
            out(Line::Field { ty: $name, field: "len", offset: len, size: size_of::<usize>() });
        }};
    }
    simple_vec!("SimpleVec<u64>", SimpleVec<u64>);
    simple_vec!("SimpleVec<usize>", SimpleVec<usize>);
    fields!(
        out,
        CowStatistics,
        cow_pages_count,
        cow_faults_handled,
        pages_duplicated,
        memory_saved_bytes,
        metadata_memory_bytes,
        peak_cow_pages
    );
    out(Line::Type { name: "RegionType", size: size_of::<RegionType>(), align: align_of::<RegionType>() });
}
