//! The scheduler: round robin, preemptive for EL0. The shell is the scheduler's home:
//! [`run`] saves the shell's kernel context and enters the first ready process; from
//! then on every trap from EL0 returns the `TrapFrame` of the process to resume (the same
//! one, or the next ready one), and when the run's goal is met the trap path switches back
//! to the shell's saved context. A process gives the CPU up in a syscall (`yield`,
//! `wait`, `pause`, `exit`), when it is killed, or at a timer tick (its time slice, one
//! tick, is over and another process is ready).
//!
//! The kernel itself is not preemptible: it runs with IRQs masked (exception entry masks
//! them and nothing unmasks them at EL1), so a tick is only ever taken from EL0, with the
//! interrupted process's whole state in its frame at the top of its kernel stack and no
//! kernel lock held. A tick that falls due while the kernel runs (in a syscall or the
//! copy-on-write fault path) is taken at the `eret` back to EL0.
//!
//! Foreground and background: processes started with `run <program> &` and their
//! descendants are *background* ([`BACKGROUND`], one bit per slot). A run's goal:
//! - [`Mode::Foreground`]: until no foreground process is ready (background ones get
//!   time slices meanwhile): `run`, `cont`, `~6`, the debugger's entry points;
//! - [`Mode::Interactive`]: the same, but a tick that finds console input pending returns
//!   to the shell at once (Ctrl-C, typed-ahead lines);
//! - [`Mode::Background`]: background processes only, until none is ready or console
//!   input is pending: the shell's line reader runs them while it waits for a key.
//!
//! Each process's frame sits at the top of its own kernel stack, so resuming a process
//! is "restore that frame and eret" on that stack; the stack a switch leaves is never
//! needed again (its process's state is entirely in its frame).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::{CURRENT, MAX_PROCESSES, NO_PROCESS, PROCESSES, ProcessState, current_slot, frame_of};
use crate::arch::aarch64::context::{CpuContext, switch_context};
use crate::arch::aarch64::exception::TrapFrame;
use crate::arch::aarch64::{gic, mmu, timer};
use crate::drivers::pl011::UART;
use crate::memory::PhysAddr;

/// What a [`run`] runs and when it hands the CPU back (see the module doc).
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Foreground = 0,
    Interactive = 1,
    Background = 2,
}

/// Why a [`run`] returned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stop {
    /// Its goal is met: nothing it runs is ready.
    Idle,
    /// Console input is waiting (Interactive and Background modes only).
    Input,
}

/// Bit `i` set: slot `i` holds a background process (set at creation, inherited by fork).
static BACKGROUND: AtomicU32 = AtomicU32::new(0);
/// Bit `i` set: slot `i` runs a cooperative program (see `user::Program::preemptible`):
/// a tick does not take the CPU from it for another process, only for console input.
static COOPERATIVE: AtomicU32 = AtomicU32::new(0);
/// The slot a tick took from for console input: the next run resumes it first, so input
/// never reorders a cooperative program's processes.
static RESUME_FIRST: AtomicUsize = AtomicUsize::new(NO_PROCESS);
/// Some background process is ready: the shell's line reader polls this flag (an atomic,
/// so the debugger still finds the reader's frame at the top when it stops there).
pub static BACKGROUND_READY: AtomicBool = AtomicBool::new(false);
/// The goal of the run in progress.
static MODE: AtomicU8 = AtomicU8::new(Mode::Foreground as u8);
/// Ticks that took the CPU from a process for another one (or for the shell): the
/// `sched` command shows them, so a test can tell preemption really happened.
pub static PREEMPTIONS: AtomicU64 = AtomicU64::new(0);
/// The run in progress ended because console input was pending.
static STOPPED_FOR_INPUT: AtomicBool = AtomicBool::new(false);

const _: () = assert!(MAX_PROCESSES <= 32, "BACKGROUND has one bit per slot");

fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        1 => Mode::Interactive,
        2 => Mode::Background,
        _ => Mode::Foreground,
    }
}

/// Whether slot `slot` holds a background process.
pub fn is_background(slot: usize) -> bool {
    BACKGROUND.load(Ordering::Relaxed) & (1 << slot) != 0
}

/// Marks slot `slot` background or foreground (a new process: its parent's kind).
pub fn set_background(slot: usize, background: bool) {
    if background {
        BACKGROUND.fetch_or(1 << slot, Ordering::Relaxed);
    } else {
        BACKGROUND.fetch_and(!(1 << slot), Ordering::Relaxed);
    }
}

/// Whether slot `slot` runs a cooperative program.
pub fn is_cooperative(slot: usize) -> bool {
    COOPERATIVE.load(Ordering::Relaxed) & (1 << slot) != 0
}

/// Marks slot `slot` cooperative or preemptible (a new process: its program's kind, or
/// its parent's).
pub fn set_cooperative(slot: usize, cooperative: bool) {
    if cooperative {
        COOPERATIVE.fetch_or(1 << slot, Ordering::Relaxed);
    } else {
        COOPERATIVE.fetch_and(!(1 << slot), Ordering::Relaxed);
    }
}

/// Recomputes [`BACKGROUND_READY`] from the table (after anything that may have made a
/// background process ready from the shell's side: a command, a run).
pub fn update_background_ready() {
    let background = BACKGROUND.load(Ordering::Relaxed);
    let table = PROCESSES.lock();
    let ready = (0..MAX_PROCESSES).any(|s| background & (1 << s) != 0 && table[s].state == ProcessState::Ready);
    BACKGROUND_READY.store(ready, Ordering::Relaxed);
}

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

/// Runs processes until the goal of `mode` is met. Called by the shell (or a debugger
/// entry point in the shell's context) only, never from a process. The timer ticks only
/// while processes run.
pub fn run(mode: Mode) -> Stop {
    assert!(current_slot().is_none(), "scheduler::run from a process");
    MODE.store(mode as u8, Ordering::Relaxed);
    STOPPED_FOR_INPUT.store(false, Ordering::Relaxed);
    let resume = RESUME_FIRST.swap(NO_PROCESS, Ordering::Relaxed);
    let first = pick_next(None).map(|any| if resume != NO_PROCESS && runnable(resume) { resume } else { any });
    if let Some(slot) = first {
        activate(slot);
        let entry = CpuContext {
            x19_x28: [0; 10],
            fp: 0,
            lr: tinyos_enter_process as *const () as u64,
            sp: frame_of(slot) as u64,
        };
        timer::start();
        // SAFETY: `entry` starts on slot's kernel stack at its complete frame (`activate`
        // selected its tables); the shell context stays valid in its static until
        // `return_to_shell` resumes it.
        unsafe { switch_context(&mut *SHELL_CONTEXT.0.get(), &entry) };
        timer::stop();
        // Back here once the goal is met (see `return_to_shell`), on the shell's stack:
        // only now is no process's kernel stack in use (the debugger's entry points
        // check CURRENT).
        CURRENT.store(NO_PROCESS, Ordering::Relaxed);
    }
    update_background_ready();
    if STOPPED_FOR_INPUT.load(Ordering::Relaxed) { Stop::Input } else { Stop::Idle }
}

/// Runs processes until no foreground process is ready (all exited, waiting or paused).
pub fn run_until_idle() {
    run(Mode::Foreground);
}

/// The frame to resume after the current process gave up the CPU (or died): the next
/// ready process's, round robin after the current slot. Switches back to the shell when
/// the run's goal is met.
pub fn switch_away() -> *mut TrapFrame {
    match pick_next(current_slot()) {
        Some(slot) => {
            activate(slot);
            frame_of(slot)
        }
        None => return_to_shell(),
    }
}

/// The IRQ path of a process (slot `slot`, interrupted at EL0 with `frame`): acknowledge
/// the interrupts; at a tick, hand the CPU to the shell when it waits for pending console
/// input, else end the time slice (the next ready process runs, round robin; the same
/// one when it is the only one). Never inlined: the debugger breaks on it (the tick path).
#[inline(never)]
pub fn interrupt(slot: usize, frame: &mut TrapFrame) -> *mut TrapFrame {
    if !acknowledge_interrupts() {
        return frame;
    }
    PROCESSES.lock()[slot].state = ProcessState::Ready;
    if mode() != Mode::Foreground && UART.has_input() {
        STOPPED_FOR_INPUT.store(true, Ordering::Relaxed);
        RESUME_FIRST.store(slot, Ordering::Relaxed);
        PREEMPTIONS.fetch_add(1, Ordering::Relaxed);
        return_to_shell();
    }
    if is_cooperative(slot) {
        activate(slot);
        return frame;
    }
    let next = switch_away();
    if next != frame_of(slot) {
        PREEMPTIONS.fetch_add(1, Ordering::Relaxed);
    }
    next
}

/// An IRQ taken at EL1: acknowledged, nothing else (the kernel is never preempted).
pub fn kernel_interrupt(_frame: &mut TrapFrame) {
    acknowledge_interrupts();
}

/// Acknowledges and ends every pending interrupt; true when the timer ticked.
fn acknowledge_interrupts() -> bool {
    let mut ticked = false;
    loop {
        let intid = gic::acknowledge();
        if intid == gic::SPURIOUS {
            return ticked;
        }
        if intid == timer::VIRTUAL_TIMER_INTID {
            timer::tick();
            ticked = true;
        }
        gic::end_of_interrupt(intid);
    }
}

/// The first slot to run after `after` (wrapping, `after` itself last), or `None` when
/// the run's goal is met.
fn pick_next(after: Option<usize>) -> Option<usize> {
    let start = after.map_or(0, |s| s + 1);
    let background = BACKGROUND.load(Ordering::Relaxed);
    let table = PROCESSES.lock();
    let ready = |s: usize| table[s].state == ProcessState::Ready;
    let is_bg = |s: usize| background & (1 << s) != 0;
    let order = (0..MAX_PROCESSES).map(|i| (start + i) % MAX_PROCESSES);
    match mode() {
        Mode::Background => order.clone().find(|&s| ready(s) && is_bg(s)),
        Mode::Foreground | Mode::Interactive => {
            if !(0..MAX_PROCESSES).any(|s| ready(s) && !is_bg(s)) {
                return None;
            }
            order.clone().find(|&s| ready(s))
        }
    }
}

/// Puts the scheduler back in the shell's idle state after the debugger abandoned a
/// call that was running processes (see `entry_points::tinyos_debug_recover`): the
/// tick stops, no process is on the CPU, the EL0 hooks are the process layer's again,
/// every process whose pid is `first_pid` or later (created by that call) is killed, its
/// memory freed and its slot emptied, and a process the call left "running" is ready
/// again. Returns how many processes were removed.
pub fn abandon_run(first_pid: usize) -> usize {
    timer::stop();
    mmu::clear_user_table();
    CURRENT.store(NO_PROCESS, Ordering::Relaxed);
    MODE.store(Mode::Foreground as u8, Ordering::Relaxed);
    STOPPED_FOR_INPUT.store(false, Ordering::Relaxed);
    RESUME_FIRST.store(NO_PROCESS, Ordering::Relaxed);
    super::trap::install();
    let mut cleaned = 0;
    for slot in 0..MAX_PROCESSES {
        let p = super::snapshot(slot);
        if p.state == ProcessState::Unused {
            continue;
        }
        if p.pid < first_pid {
            if p.state == ProcessState::Running {
                PROCESSES.lock()[slot].state = ProcessState::Ready;
            }
            continue;
        }
        if p.ttbr0 != 0 {
            super::exit(slot, super::user::KILLED_STATUS);
        }
        PROCESSES.lock()[slot] = super::Process::EMPTY;
        cleaned += 1;
    }
    update_background_ready();
    cleaned
}

/// Whether a run in the current mode may resume slot `slot` now.
fn runnable(slot: usize) -> bool {
    slot < MAX_PROCESSES
        && PROCESSES.lock()[slot].state == ProcessState::Ready
        && (mode() != Mode::Background || is_background(slot))
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

/// Leaves process context for good until the next `run`. CURRENT keeps the
/// slot until the shell's side clears it: this code still runs on that process's stack.
fn return_to_shell() -> ! {
    mmu::clear_user_table();
    // SAFETY: the shell context was saved by `run`; the current (process)
    // stack is abandoned, its registers go to a scratch context nobody resumes.
    unsafe { switch_context(&mut *DISCARDED_CONTEXT.0.get(), &*SHELL_CONTEXT.0.get()) };
    unreachable!("the discarded context is never resumed")
}

/// Takes the current process off the CPU's address space (TTBR0 = the empty table) so
/// its tables can be freed while the kernel still runs on its kernel stack.
pub fn detach_current_space() {
    mmu::clear_user_table();
}
