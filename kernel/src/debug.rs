//! The debugger contract: the kernel API the gdb plugin relies on besides DWARF — the
//! event hook, the contract's constants, and the refusal record. A leaf module: it
//! imports nothing from the kernel, so any layer may raise an event (arch code does so
//! through the hook it is given at boot, `exception::set_event_hook`). The C-ABI entry
//! points the debugger calls live in `crate::entry_points`.
//!
//! **The constants, once** ([`TINYOS_DEBUG_CONTRACT`], ELF symbol
//! `TINYOS_DEBUG_CONTRACT`, a `#[repr(C)]` struct of plain integers the debugger reads
//! from the ELF or from memory by its DWARF field names): `version` (1), every event
//! kind `event_<name>`, every status `status_<name>`, `cow_pte_sw_bit` (55: the software
//! bit marking a copy-on-write PTE), `killed_status` (137), the user layout
//! (`user_code_va`, `user_data_va`, `user_data_pages`, `user_heap_start`,
//! `user_heap_limit`, `user_stack_top`, `user_stack_pages`, `user_page_size`) and the
//! bookkeeping conventions of `COW_MANAGER`: `cow_refs_count_owner` (0: `ref_count`
//! counts mappings only), `cow_pids_parallel` (1: `process_ids[i]` is the pid of
//! `virtual_addresses[i]`), `cow_stats_maintained` (bit 0 `cow_pages_count`, 1
//! `cow_faults_handled`, 2 `pages_duplicated`, 3 `memory_saved_bytes`, 4
//! `metadata_memory_bytes`, 5 `peak_cow_pages`: the statistics the kernel keeps true).
//! The kernel's own `EVENT_*`/`STATUS_*`/`KILLED_STATUS`/user-layout constants are
//! read from the one [`CONTRACT`] value, so the two cannot differ.
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
//! - `tinyos_debug_recover()`: after the debugger unwound an entry-point call it
//!   interrupted (a watchdog, a signal), puts the kernel back in the shell's idle state:
//!   kills and reaps every process the interrupted call created (their memory freed),
//!   releases the locks it held, takes any process off the CPU and stops the tick.
//!   It also frees every frame the allocator handed out during the call that no survivor
//!   owns (the allocator logs them while a call is pending, one bit per frame, so the log
//!   cannot overflow: a frame taken and not yet mapped when the call was cut is not
//!   lost), drops the dead processes' copy-on-write mappings from `COW_MANAGER`, and
//!   recounts `free_frames`; `TINYOS_RECOVERED_FRAMES` holds how many frames it freed.
//!   Returns how many processes it cleaned up, 0 when no call was pending (then it
//!   changes nothing). Only [`STATUS_IN_PROCESS`] refuses it (a process stopped on the
//!   CPU outside any call: nothing to recover from).
//!
//! The data the debugger decodes (paths as DWARF names them; layouts from DWARF, also
//! printed by `layout`): `tinyos::memory::cow::COW_MANAGER` (`SpinLock<CowManager>`: lock
//! word `locked`, then `data`), `tinyos::memory::frame::FRAME_ALLOCATOR` (`SpinLock<Frames>`),
//! `tinyos::process::PROCESSES` (`SpinLock<[Process; 16]>`), `tinyos::process::CURRENT`
//! (slot index, usize::MAX = none), `tinyos::arch::aarch64::mmu::KERNEL_L0`. A
//! copy-on-write PTE is read-only with software bit 55 set
//! (`process::cow_fault::SW_COW`).

/// The contract's values, defined once; the static below and every `EVENT_*`/`STATUS_*`
/// constant of the kernel are read from here.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DebugContract {
    pub version: u32,
    pub event_shell_command: u32,
    pub event_shell_done: u32,
    pub event_fault_recovered: u32,
    pub event_halt: u32,
    pub event_cow_fault: u32,
    pub event_page_duplicated: u32,
    pub event_page_reused: u32,
    pub event_fork: u32,
    pub event_process_exit: u32,
    pub event_process_killed: u32,
    pub cow_pte_sw_bit: u32,
    pub killed_status: u32,
    pub cow_refs_count_owner: u32,
    pub cow_pids_parallel: u32,
    pub cow_stats_maintained: u32,
    pub status_busy: i64,
    pub status_bad_argument: i64,
    pub status_refused: i64,
    pub status_in_process: i64,
    pub user_code_va: u64,
    pub user_data_va: u64,
    pub user_data_pages: u64,
    pub user_heap_start: u64,
    pub user_heap_limit: u64,
    pub user_stack_top: u64,
    pub user_stack_pages: u64,
    pub user_page_size: u64,
}

/// The one definition of the contract's values.
pub const CONTRACT: DebugContract = DebugContract {
    version: 1,
    event_shell_command: 1,
    event_shell_done: 2,
    event_fault_recovered: 3,
    event_halt: 4,
    event_cow_fault: 16,
    event_page_duplicated: 17,
    event_page_reused: 18,
    event_fork: 19,
    event_process_exit: 20,
    event_process_killed: 21,
    cow_pte_sw_bit: 55,
    killed_status: 137,
    cow_refs_count_owner: 0,
    cow_pids_parallel: 1,
    cow_stats_maintained: 0b11_1111,
    status_busy: -1,
    status_bad_argument: -2,
    status_refused: -3,
    status_in_process: -4,
    user_code_va: 0x0040_0000,
    user_data_va: 0x0080_0000,
    user_data_pages: 1,
    user_heap_start: 0x1000_0000,
    user_heap_limit: 0x3000_0000,
    user_stack_top: 0x0000_7FFF_FFFF_0000,
    user_stack_pages: 2,
    user_page_size: 4096,
};

/// The contract in the ELF and in memory, for the debugger (never read by the kernel).
#[unsafe(no_mangle)]
#[used]
pub static TINYOS_DEBUG_CONTRACT: DebugContract = CONTRACT;

/// A shell command is about to run (`a` = line VA, `b` = length).
pub const EVENT_SHELL_COMMAND: u32 = CONTRACT.event_shell_command;
/// A shell command finished (`a` = line VA, `b` = length).
pub const EVENT_SHELL_DONE: u32 = CONTRACT.event_shell_done;
/// A fault probe's exception was recovered (`a` = ESR, `b` = ELR).
pub const EVENT_FAULT_RECOVERED: u32 = CONTRACT.event_fault_recovered;
/// An unexpected exception; the kernel halts next (`a` = ESR, `b` = ELR).
pub const EVENT_HALT: u32 = CONTRACT.event_halt;
/// A copy-on-write write fault was resolved (`a` = pid, `b` = fault address).
pub const EVENT_COW_FAULT: u32 = CONTRACT.event_cow_fault;
/// A shared page was copied for the writer (`a` = page VA, `b` = new frame PA).
pub const EVENT_PAGE_DUPLICATED: u32 = CONTRACT.event_page_duplicated;
/// The last sharer's page was made writable in place (`a` = page VA, `b` = frame PA).
pub const EVENT_PAGE_REUSED: u32 = CONTRACT.event_page_reused;
/// A fork completed (`a` = parent pid, `b` = child pid).
pub const EVENT_FORK: u32 = CONTRACT.event_fork;
/// A process exited and its memory was freed (`a` = pid, `b` = exit status).
pub const EVENT_PROCESS_EXIT: u32 = CONTRACT.event_process_exit;
/// The kernel is killing a process (`a` = pid); `EVENT_PROCESS_EXIT` follows.
pub const EVENT_PROCESS_KILLED: u32 = CONTRACT.event_process_killed;

/// The breakpoint target for every debugger event. Does nothing.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tinyos_debug_event(kind: u32, a: u64, b: u64) {
    core::hint::black_box((kind, a, b));
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// Status: `COW_MANAGER` or `PROCESSES` is locked, or the frame allocator busy; nothing was done.
pub const STATUS_BUSY: i64 = CONTRACT.status_busy;
/// Status: an argument is not a valid address or pid.
pub const STATUS_BAD_ARGUMENT: i64 = CONTRACT.status_bad_argument;
/// Status: the operation was refused as unsafe or impossible (reason on the console).
pub const STATUS_REFUSED: i64 = CONTRACT.status_refused;
/// Status: a process is on the CPU (stopped inside it); call from the shell's context.
pub const STATUS_IN_PROCESS: i64 = CONTRACT.status_in_process;

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
pub fn record_refusal(reason: core::fmt::Arguments<'_>) {
    LAST_REFUSAL.len.store(0, core::sync::atomic::Ordering::Relaxed);
    let _ = core::fmt::Write::write_fmt(&mut &LAST_REFUSAL, reason);
}

