//! The cooperative scheduler. The shell is the scheduler's home: `run_until_idle` saves
//! the shell's kernel context and enters the first ready process; from then on every
//! trap from EL0 returns the `TrapFrame` of the process to resume (the same one, or the
//! next ready one, round robin), and when no process is ready the trap path switches
//! back to the shell's saved context. A process gives the CPU up only in a syscall
//! (`yield`, `wait`, `pause`, `exit`) or when it is killed.
//!
//! Each process's frame sits at the top of its own kernel stack, so resuming a process
//! is "restore that frame and eret" on that stack; the stack a switch leaves is never
//! needed again (its process's state is entirely in its frame).

use core::cell::UnsafeCell;
use core::sync::atomic::Ordering;

use super::{CURRENT, MAX_PROCESSES, NO_PROCESS, PROCESSES, ProcessState, current_slot, frame_of};
use crate::arch::aarch64::context::{CpuContext, switch_context};
use crate::arch::aarch64::exception::TrapFrame;
use crate::arch::aarch64::mmu;
use crate::memory::PhysAddr;

struct ContextCell(UnsafeCell<CpuContext>);

// SAFETY: one CPU; only the scheduler touches these, never re-entrantly.
unsafe impl Sync for ContextCell {}

/// The shell's kernel context while processes run.
static SHELL_CONTEXT: ContextCell = ContextCell(UnsafeCell::new(CpuContext {
    x19_x28: [0; 10],
    fp: 0,
    lr: 0,
    sp: 0,
}));
/// Where the abandoned process stack's registers go when switching back to the shell.
static DISCARDED_CONTEXT: ContextCell = ContextCell(UnsafeCell::new(CpuContext {
    x19_x28: [0; 10],
    fp: 0,
    lr: 0,
    sp: 0,
}));

core::arch::global_asm!(
    r#"
.section .text, "ax"
// First instructions of a process entered from the shell: SP is its frame.
.global tinyos_enter_process
tinyos_enter_process:
    mov     x0, sp
    b       tinyos_trap_return
"#
);

unsafe extern "C" {
    fn tinyos_enter_process();
}

/// Runs ready processes until none is ready (all exited, waiting or paused). Called by
/// the shell only, never from a process.
pub fn run_until_idle() {
    assert!(current_slot().is_none(), "run_until_idle from a process");
    let Some(slot) = pick_next(None) else { return };
    activate(slot);
    let entry = CpuContext {
        x19_x28: [0; 10],
        fp: 0,
        lr: tinyos_enter_process as *const () as u64,
        sp: frame_of(slot) as u64,
    };
    // SAFETY: `entry` starts on slot's kernel stack at its complete frame (`activate`
    // selected its tables); the shell context stays valid in its static until
    // `return_to_shell` resumes it.
    unsafe { switch_context(&mut *SHELL_CONTEXT.0.get(), &entry) };
    // Back here once nothing is ready (see `return_to_shell`), on the shell's stack: only
    // now is no process's kernel stack in use (the debugger's entry points check CURRENT).
    CURRENT.store(NO_PROCESS, Ordering::Relaxed);
}

/// The frame to resume after the current process gave up the CPU (or died): the next
/// ready process's, round robin after the current slot. Switches back to the shell when
/// none is ready.
pub fn switch_away() -> *mut TrapFrame {
    match pick_next(current_slot()) {
        Some(slot) => {
            activate(slot);
            frame_of(slot)
        }
        None => return_to_shell(),
    }
}

/// The first Ready slot after `after` (wrapping, `after` itself last).
fn pick_next(after: Option<usize>) -> Option<usize> {
    let start = after.map_or(0, |s| s + 1);
    let table = PROCESSES.lock();
    (0..MAX_PROCESSES).map(|i| (start + i) % MAX_PROCESSES).find(|&s| table[s].state == ProcessState::Ready)
}

/// Makes `slot` the running process: state, CURRENT and TTBR0 (its L0 and ASID).
fn activate(slot: usize) {
    let (l0, asid) = {
        let mut table = PROCESSES.lock();
        table[slot].state = ProcessState::Running;
        (table[slot].ttbr0, table[slot].asid)
    };
    CURRENT.store(slot, Ordering::Relaxed);
    mmu::set_user_table(PhysAddr::new(l0), asid);
}

/// Leaves process context for good until the next `run_until_idle`. CURRENT keeps the
/// slot until the shell's side clears it: this code still runs on that process's stack.
fn return_to_shell() -> ! {
    mmu::clear_user_table();
    // SAFETY: the shell context was saved by `run_until_idle`; the current (process)
    // stack is abandoned, its registers go to a scratch context nobody resumes.
    unsafe { switch_context(&mut *DISCARDED_CONTEXT.0.get(), &*SHELL_CONTEXT.0.get()) };
    unreachable!("the discarded context is never resumed")
}

/// Takes the current process off the CPU's address space (TTBR0 = the empty table) so
/// its tables can be freed while the kernel still runs on its kernel stack.
pub fn detach_current_space() {
    mmu::clear_user_table();
}
