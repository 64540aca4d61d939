//! Exception vectors (VBAR_EL1, all 16 entries), the saved register frame and the
//! dispatch of every exception.
//!
//! Entry: each vector reserves a [`TrapFrame`] on the current stack (SP_EL1), saves
//! x0-x30, SP_EL0, ELR, SPSR, ESR and FAR, and calls [`tinyos_trap`] with the frame and
//! the vector number. The assembly offsets are *generated* from the Rust struct
//! (`const` operands from `offset_of!`), and `const` assertions prove the pairs stored
//! with `stp` are adjacent, so the two cannot drift apart.
//!
//! Return: `tinyos_trap` returns the frame to resume — the same one, or another
//! process's (a context switch). The exit path sets SP to that frame, restores it and
//! `eret`s, leaving SP_EL1 just above the frame. Design rule for processes (issue 3):
//! keep each process's `TrapFrame` at the top of its own kernel stack; a trap from EL0
//! then always saves the frame at exactly that place, and returning another process's
//! frame switches kernel stack, registers, ELR/SPSR (EL0t) and SP_EL0 in one step.
//! TTBR0 (the address space) is switched by the scheduler before it returns the frame.
//!
//! Policy: EL0 exceptions go to the hook set with [`set_user_handler`] (syscalls,
//! faults); EL1 synchronous exceptions first go to the `fault` command's probes
//! ([`super::fault_probe`]), then to the hook set with [`set_kernel_fault_handler`] (COW
//! breaks on kernel writes to user pages); anything else prints the exception name, ESR,
//! FAR, ELR and all registers, and halts.

use super::stacks::{self, Owner};
use super::{fault_probe, halt};
use crate::println;
use core::fmt;
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Registers saved on every exception, in the order the assembly stores them.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct TrapFrame {
    /// General-purpose registers x0..x30 (x30 = link register).
    pub x: [u64; 31],
    /// The EL0 stack pointer.
    pub sp_el0: u64,
    /// Exception link register: where `eret` resumes.
    pub elr: u64,
    /// Saved PSTATE: `eret` restores it (its M field chooses EL0t or EL1h).
    pub spsr: u64,
    /// Exception syndrome (EC, IL, ISS) — informational, not restored.
    pub esr: u64,
    /// Fault address — informational, not restored.
    pub far: u64,
}

/// Bytes reserved on the stack per exception.
pub const FRAME_SIZE: usize = size_of::<TrapFrame>();
const X0: usize = offset_of!(TrapFrame, x);
const X30: usize = X0 + 30 * 8;
const SP_EL0: usize = offset_of!(TrapFrame, sp_el0);
const ELR: usize = offset_of!(TrapFrame, elr);
const SPSR: usize = offset_of!(TrapFrame, spsr);
const ESR: usize = offset_of!(TrapFrame, esr);
const FAR: usize = offset_of!(TrapFrame, far);

// The assembly stores (x30, sp_el0), (elr, spsr) and (esr, far) as stp pairs, x0..x29 as
// consecutive pairs, and SP must stay 16-byte aligned.
const _: () = assert!(X0 == 0 && size_of::<[u64; 31]>() == 31 * 8);
const _: () = assert!(SP_EL0 == X30 + 8);
const _: () = assert!(SPSR == ELR + 8);
const _: () = assert!(FAR == ESR + 8);
const _: () = assert!(FRAME_SIZE % 16 == 0 && FRAME_SIZE <= 504, "stp immediates reach 504");
const _: () = assert!(FRAME_SIZE == FAR + 8, "no padding the assembly would not know about");

/// SPSR.M value for EL0t (a process); `SPSR_EL1_EL0T` with DAIF clear.
pub const SPSR_EL0T: u64 = 0b0000;

core::arch::global_asm!(
    r#"
.macro TINYOS_VENTRY kind
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #{x0}]
    mov     x1, #\kind
    b       tinyos_trap_entry
.endm

// An exception taken at EL1 on SP_EL1: before pushing the frame, check that it would not
// land in a kernel stack's guard (see stacks.rs), using TPIDR_EL1 (unused otherwise) to
// free x0. If it would, the stack overflowed: switch to the overflow stack, push the
// interrupted SP, then the frame, and enter the handler as kind 16 + \kind.
.macro TINYOS_VENTRY_EL1H kind
    .balign 0x80
0:  msr     tpidr_el1, x0
    adrp    x0, tinyos_kernel_stacks
    sub     x0, sp, x0                  // offset of SP in the stacks area (wraps below it)
    sub     x0, x0, #{frame}            // ... of the frame about to be pushed
    cmp     x0, #{area}
    b.hs    1f
    and     x0, x0, #({slot} - 1)
    cmp     x0, #{guard}
    b.lo    9f
1:  adrp    x0, tinyos_boot_stack_guard
    sub     x0, sp, x0
    sub     x0, x0, #{frame}
    cmp     x0, #{boot_guard}
    b.lo    9f
    mrs     x0, tpidr_el1
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #{x0}]
    mov     x1, #\kind
    b       tinyos_trap_entry
9:  adrp    x0, tinyos_overflow_stack_top
    add     sp, sp, x0                  // swap SP and x0 without a third register
    sub     x0, sp, x0
    sub     sp, sp, x0
    str     x0, [sp, #-16]!             // the overflowing SP, just above the frame
    sub     sp, sp, #{frame}
    mrs     x0, tpidr_el1
    stp     x0, x1, [sp, #{x0}]
    mov     x1, #(16 + \kind)
    b       tinyos_trap_entry
.if (. - 0b) > 0x80
.error "TINYOS_VENTRY_EL1H does not fit its 0x80-byte vector"
.endif
.endm

.section .text.vectors, "ax"
.balign 2048
.global tinyos_vectors
tinyos_vectors:
    TINYOS_VENTRY 0
    TINYOS_VENTRY 1
    TINYOS_VENTRY 2
    TINYOS_VENTRY 3
    TINYOS_VENTRY_EL1H 4
    TINYOS_VENTRY_EL1H 5
    TINYOS_VENTRY_EL1H 6
    TINYOS_VENTRY_EL1H 7
    TINYOS_VENTRY 8
    TINYOS_VENTRY 9
    TINYOS_VENTRY 10
    TINYOS_VENTRY 11
    TINYOS_VENTRY 12
    TINYOS_VENTRY 13
    TINYOS_VENTRY 14
    TINYOS_VENTRY 15

tinyos_trap_entry:
    stp     x2, x3, [sp, #({x0} + 16 * 1)]
    stp     x4, x5, [sp, #({x0} + 16 * 2)]
    stp     x6, x7, [sp, #({x0} + 16 * 3)]
    stp     x8, x9, [sp, #({x0} + 16 * 4)]
    stp     x10, x11, [sp, #({x0} + 16 * 5)]
    stp     x12, x13, [sp, #({x0} + 16 * 6)]
    stp     x14, x15, [sp, #({x0} + 16 * 7)]
    stp     x16, x17, [sp, #({x0} + 16 * 8)]
    stp     x18, x19, [sp, #({x0} + 16 * 9)]
    stp     x20, x21, [sp, #({x0} + 16 * 10)]
    stp     x22, x23, [sp, #({x0} + 16 * 11)]
    stp     x24, x25, [sp, #({x0} + 16 * 12)]
    stp     x26, x27, [sp, #({x0} + 16 * 13)]
    stp     x28, x29, [sp, #({x0} + 16 * 14)]
    mrs     x2, sp_el0
    stp     x30, x2, [sp, #{x30}]
    mrs     x2, elr_el1
    mrs     x3, spsr_el1
    stp     x2, x3, [sp, #{elr}]
    mrs     x2, esr_el1
    mrs     x3, far_el1
    stp     x2, x3, [sp, #{esr}]
    mov     x0, sp
    mov     x29, xzr                    // end of the frame-pointer chain for backtraces
    bl      tinyos_trap
    // fall through: x0 = the frame to resume

// Restores the frame at x0 and returns from the exception (also the first entry to EL0).
.global tinyos_trap_return
tinyos_trap_return:
    mov     sp, x0
    ldp     x2, x3, [sp, #{elr}]
    msr     elr_el1, x2
    msr     spsr_el1, x3
    ldp     x30, x2, [sp, #{x30}]
    msr     sp_el0, x2
    ldp     x0, x1, [sp, #({x0} + 16 * 0)]
    ldp     x2, x3, [sp, #({x0} + 16 * 1)]
    ldp     x4, x5, [sp, #({x0} + 16 * 2)]
    ldp     x6, x7, [sp, #({x0} + 16 * 3)]
    ldp     x8, x9, [sp, #({x0} + 16 * 4)]
    ldp     x10, x11, [sp, #({x0} + 16 * 5)]
    ldp     x12, x13, [sp, #({x0} + 16 * 6)]
    ldp     x14, x15, [sp, #({x0} + 16 * 7)]
    ldp     x16, x17, [sp, #({x0} + 16 * 8)]
    ldp     x18, x19, [sp, #({x0} + 16 * 9)]
    ldp     x20, x21, [sp, #({x0} + 16 * 10)]
    ldp     x22, x23, [sp, #({x0} + 16 * 11)]
    ldp     x24, x25, [sp, #({x0} + 16 * 12)]
    ldp     x26, x27, [sp, #({x0} + 16 * 13)]
    ldp     x28, x29, [sp, #({x0} + 16 * 14)]
    add     sp, sp, #{frame}
    eret
"#,
    frame = const FRAME_SIZE,
    x0 = const X0,
    x30 = const X30,
    elr = const ELR,
    esr = const ESR,
    area = const stacks::AREA_SIZE,
    slot = const stacks::SLOT_SIZE,
    guard = const stacks::GUARD_SIZE,
    boot_guard = const stacks::BOOT_GUARD_SIZE,
);

unsafe extern "C" {
    /// Restores `frame` and `eret`s; SP_EL1 ends just above the frame.
    fn tinyos_trap_return(frame: *mut TrapFrame) -> !;
}

/// Resumes execution from a saved frame: the first entry of a process into EL0 (SPSR =
/// [`SPSR_EL0T`], ELR = entry point, SP_EL0 = user stack) or any switch outside a trap.
///
/// # Safety
/// `frame` must be a complete, valid frame placed where the kernel stack of the resumed
/// context should end (at the top of that process's kernel stack), TTBR0 must already
/// select the frame's address space, and nothing on the current stack may be needed
/// again.
pub unsafe fn enter_frame(frame: *mut TrapFrame) -> ! {
    // SAFETY: forwarded to the caller.
    unsafe { tinyos_trap_return(frame) }
}

/// Which of the 16 vectors was taken.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Vector(pub u64);

impl Vector {
    /// Synchronous exception from EL0 (AArch64): syscalls and user faults.
    pub const LOWER_SYNC: Vector = Vector(8);
    /// IRQ from EL0 (AArch64).
    pub const LOWER_IRQ: Vector = Vector(9);
    /// Synchronous exception at EL1 using SP_EL1.
    pub const CURRENT_SYNC: Vector = Vector(4);
    /// IRQ at EL1 using SP_EL1.
    pub const CURRENT_IRQ: Vector = Vector(5);

    pub const fn is_lower_el(self) -> bool { self.0 >= 8 }
    pub const fn is_sync(self) -> bool { self.0 % 4 == 0 }
    pub fn name(self) -> &'static str {
        ["synchronous", "IRQ", "FIQ", "SError"][(self.0 % 4) as usize]
    }
    pub fn origin(self) -> &'static str {
        ["EL1t", "EL1h", "EL0 (AArch64)", "EL0 (AArch32)"][(self.0 / 4) as usize % 4]
    }
}

/// ESR_EL1 fields.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Esr(pub u64);

impl Esr {
    /// Exception class, ESR[31:26].
    pub const fn ec(self) -> u64 { (self.0 >> 26) & 0x3f }
    /// Instruction-specific syndrome, ESR[24:0].
    pub const fn iss(self) -> u64 { self.0 & 0x1ff_ffff }
    /// Data/instruction fault status code, ISS[5:0].
    pub const fn fsc(self) -> u64 { self.0 & 0x3f }
    /// Data aborts: the access was a write (ISS.WnR).
    pub const fn is_write(self) -> bool { self.0 & (1 << 6) != 0 }
    /// A permission fault (FSC 0b0011LL).
    pub const fn is_permission_fault(self) -> bool { self.fsc() & 0b111100 == 0b001100 }
    /// A translation fault (FSC 0b0001LL).
    pub const fn is_translation_fault(self) -> bool { self.fsc() & 0b111100 == 0b000100 }

    pub const EC_UNKNOWN: u64 = 0x00;
    pub const EC_SVC64: u64 = 0x15;
    pub const EC_IABT_LOWER: u64 = 0x20;
    pub const EC_IABT_CURRENT: u64 = 0x21;
    pub const EC_DABT_LOWER: u64 = 0x24;
    pub const EC_DABT_CURRENT: u64 = 0x25;
    pub const EC_BRK64: u64 = 0x3c;

    /// The exception class in words.
    pub fn class_name(self) -> &'static str {
        match self.ec() {
            0x00 => "unknown reason (undefined instruction)",
            0x01 => "trapped WFI/WFE",
            0x07 => "trapped FP/SIMD access",
            0x0e => "illegal execution state",
            0x15 => "SVC (AArch64)",
            0x18 => "trapped MSR/MRS/system instruction",
            0x20 => "instruction abort from EL0",
            0x21 => "instruction abort at EL1",
            0x22 => "PC alignment fault",
            0x24 => "data abort from EL0",
            0x25 => "data abort at EL1",
            0x26 => "SP alignment fault",
            0x2f => "SError",
            0x30 | 0x31 => "breakpoint",
            0x32 | 0x33 => "software step",
            0x34 | 0x35 => "watchpoint",
            0x3c => "BRK instruction",
            _ => "other exception class",
        }
    }

    /// The fault status code in words (aborts only).
    pub fn fault_name(self) -> Option<&'static str> {
        if !matches!(self.ec(), 0x20 | 0x21 | 0x24 | 0x25) {
            return None;
        }
        Some(match self.fsc() & 0b111100 {
            0b000000 => "address size fault",
            0b000100 => "translation fault",
            0b001000 => "access flag fault",
            0b001100 => "permission fault",
            _ if self.fsc() == 0b100001 => "alignment fault",
            _ if self.fsc() == 0b010000 => "synchronous external abort",
            _ => "other fault",
        })
    }
}

impl fmt::Display for TrapFrame {
    /// Registers four per line, then SP_EL0/SPSR.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in self.x.chunks(4).enumerate() {
            let (i, regs) = row;
            f.write_str(" ")?;
            for (j, value) in regs.iter().enumerate() {
                write!(f, " x{:<2}={value:#018x}", i * 4 + j)?;
            }
            f.write_str("\n")?;
        }
        write!(f, "  sp_el0={:#018x} spsr={:#010x}", self.sp_el0, self.spsr)
    }
}

/// Prints `exception: <name> ESR=.. FAR=.. ELR=..`, the decoded syndrome and the registers.
pub fn report(frame: &TrapFrame, vector: Vector) {
    let esr = Esr(frame.esr);
    println!(
        "exception: {} {} from {} ESR={:#x} FAR={:#x} ELR={:#x}",
        vector.name(),
        esr.class_name(),
        vector.origin(),
        frame.esr,
        frame.far,
        frame.elr
    );
    if let Some(fault) = esr.fault_name() {
        let access = if matches!(esr.ec(), 0x24 | 0x25) {
            if esr.is_write() { ", write" } else { ", read" }
        } else {
            ""
        };
        println!("  EC={:#04x} FSC={:#04x}: {fault}, level {}{access}", esr.ec(), esr.fsc(), esr.fsc() & 3);
    } else {
        println!("  EC={:#04x} ISS={:#x}", esr.ec(), esr.iss());
    }
    println!("{frame}");
}

/// Handles an exception from EL0: returns the frame to resume.
pub type UserHandler = fn(&mut TrapFrame, Vector) -> *mut TrapFrame;
/// Handles a synchronous exception at EL1 (e.g. a COW break on a kernel write into a
/// user page): returns true when handled and execution may resume at `frame.elr`.
pub type KernelFaultHandler = fn(&mut TrapFrame) -> bool;

/// Handles an IRQ taken at EL1 (the kernel keeps IRQs masked, so only a kernel path that
/// unmasks them meets one): acknowledges it and returns; the kernel is never switched away
/// from at EL1.
pub type KernelIrqHandler = fn(&mut TrapFrame);

static USER_HANDLER: AtomicUsize = AtomicUsize::new(0);
static KERNEL_FAULT_HANDLER: AtomicUsize = AtomicUsize::new(0);
static KERNEL_IRQ_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Installs the handler for every exception taken from EL0 (issue 3's process layer);
/// returns the one it replaces (self-tests put it back).
pub fn set_user_handler(handler: UserHandler) -> Option<UserHandler> {
    let previous = USER_HANDLER.swap(handler as usize, Ordering::AcqRel);
    // SAFETY: only this function stores into USER_HANDLER, always a UserHandler.
    (previous != 0).then(|| unsafe { core::mem::transmute::<usize, UserHandler>(previous) })
}

/// Removes the EL0 handler (EL0 exceptions then halt as unexpected).
pub fn clear_user_handler() {
    USER_HANDLER.store(0, Ordering::Release);
}

/// Installs the handler consulted for EL1 synchronous exceptions not caused by a probe.
pub fn set_kernel_fault_handler(handler: KernelFaultHandler) {
    KERNEL_FAULT_HANDLER.store(handler as usize, Ordering::Release);
}

/// What the architecture code tells the debugger about (the debugger-contract layer
/// turns it into an event kind: arch code knows nothing of the contract).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ArchEvent {
    /// A `fault` probe's exception was reported and recovered (`a` = ESR, `b` = ELR).
    FaultRecovered,
    /// An unexpected exception; the CPU halts next (`a` = ESR, `b` = ELR).
    Halt,
}

/// Receives [`ArchEvent`]s.
pub type EventHook = fn(ArchEvent, u64, u64);

static EVENT_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Installs the receiver of [`ArchEvent`]s (the debugger hook, at boot).
pub fn set_event_hook(hook: EventHook) {
    EVENT_HOOK.store(hook as usize, Ordering::Release);
}

/// Tells the installed hook about `event` (nothing happens before one is installed).
pub fn raise_event(event: ArchEvent, a: u64, b: u64) {
    let hook = EVENT_HOOK.load(Ordering::Acquire);
    if hook != 0 {
        // SAFETY: only `set_event_hook` stores here, always an EventHook.
        let hook: EventHook = unsafe { core::mem::transmute(hook) };
        hook(event, a, b);
    }
}

/// Names the process whose kernel stack `index` (see `stacks`) is, for the overflow
/// report: its pid, or `None` when the slot is empty.
pub type StackOwnerHook = fn(usize) -> Option<u64>;

static STACK_OWNER_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Installs the namer of kernel stacks' owners (the process layer, at boot).
pub fn set_stack_owner_hook(hook: StackOwnerHook) {
    STACK_OWNER_HOOK.store(hook as usize, Ordering::Release);
}

/// Kind passed by the EL1 vectors when the frame would have landed in a stack guard:
/// 16 + the vector taken (see `TINYOS_VENTRY_EL1H`).
const OVERFLOW_KIND: u64 = 16;

/// Reports a kernel stack overflow (`kernel stack overflow (pid N)`, `(shell)` for the boot
/// stack), the exception and the registers, and halts: the overflowing code may hold any
/// lock and its stack is lost, so nothing can safely resume.
fn stack_overflow(frame: &TrapFrame, vector: Vector, owner: Owner, sp: Option<u64>) -> ! {
    match owner {
        Owner::Boot => println!("kernel stack overflow (shell)"),
        Owner::Slot(index) => {
            let hook = STACK_OWNER_HOOK.load(Ordering::Acquire);
            let pid = (hook != 0).then(|| {
                // SAFETY: only `set_stack_owner_hook` stores here, always a StackOwnerHook.
                let hook: StackOwnerHook = unsafe { core::mem::transmute(hook) };
                hook(index)
            });
            match pid.flatten() {
                Some(pid) => println!("kernel stack overflow (pid {pid})"),
                None => println!("kernel stack overflow (kernel stack {index}, no process)"),
            }
        }
    }
    match sp {
        Some(sp) => println!("  SP={sp:#x} ran into the guard page below the stack"),
        None => println!("  FAR={:#x} is in the guard page below the stack", frame.far),
    }
    report(frame, vector);
    raise_event(ArchEvent::Halt, frame.esr, frame.elr);
    println!("halted: kernel stack overflow");
    halt()
}

/// The address of the last kernel instruction fetch retried by [`stale_regime_fetch`]
/// (0 = none since the last other exception or debugger call).
static RETRIED_FETCH: AtomicUsize = AtomicUsize::new(0);

/// A permission fault on fetching kernel text at EL1 that only a stale translation
/// regime explains: QEMU 7.2's gdbstub does not recompute the CPU's cached exception
/// level when the debugger writes PSTATE, so after gdb unwinds a call it interrupted at
/// EL0 (restoring the shell's EL1 registers) the next call's first instruction is
/// fetched with EL0's permissions and faults. Taking the exception resynchronises the
/// CPU: the instruction is retried once; a second fault at the same address is real.
fn stale_regime_fetch(frame: &TrapFrame) -> bool {
    let esr = Esr(frame.esr);
    let (start, end) = crate::memory::image::text();
    let in_text = (start.as_u64()..end.as_u64()).contains(&frame.elr);
    if esr.ec() != Esr::EC_IABT_CURRENT || !esr.is_permission_fault() || frame.far != frame.elr || !in_text {
        RETRIED_FETCH.store(0, Ordering::Relaxed);
        return false;
    }
    RETRIED_FETCH.swap(frame.elr as usize, Ordering::Relaxed) != frame.elr as usize
}

/// A debugger call starts: a stale-regime fault at its first instruction may be retried
/// again (see [`stale_regime_fetch`]).
pub fn debugger_call_started() {
    RETRIED_FETCH.store(0, Ordering::Relaxed);
}

/// Installs the handler for IRQs taken at EL1.
pub fn set_kernel_irq_handler(handler: KernelIrqHandler) {
    KERNEL_IRQ_HANDLER.store(handler as usize, Ordering::Release);
}

/// The Rust side of every vector.
#[unsafe(no_mangle)]
extern "C" fn tinyos_trap(frame: &mut TrapFrame, kind: u64) -> *mut TrapFrame {
    if kind >= OVERFLOW_KIND {
        let frame_ptr: *const TrapFrame = frame;
        // SAFETY: the overflow entry pushed the overflowing SP in the 16 bytes just above
        // the frame, on the overflow stack.
        let sp = unsafe { frame_ptr.add(1).cast::<u64>().read() };
        let owner = stacks::guard_owner(sp.wrapping_sub(FRAME_SIZE as u64)).unwrap_or(Owner::Boot);
        stack_overflow(frame, Vector(kind - OVERFLOW_KIND), owner, Some(sp));
    }
    let vector = Vector(kind);
    if vector == Vector::CURRENT_SYNC && Esr(frame.esr).ec() == Esr::EC_DABT_CURRENT {
        // An access below a stack with SP still above its guard (e.g. a local array
        // indexed out of bounds downwards).
        if let Some(owner) = stacks::guard_owner(frame.far) {
            stack_overflow(frame, vector, owner, None);
        }
    }
    if vector.is_lower_el() && kind < 12 {
        let handler = USER_HANDLER.load(Ordering::Acquire);
        if handler != 0 {
            // SAFETY: only `set_user_handler` stores into USER_HANDLER, always a UserHandler.
            let handler: UserHandler = unsafe { core::mem::transmute(handler) };
            return handler(frame, vector);
        }
    } else if vector == Vector::CURRENT_SYNC {
        if stale_regime_fetch(frame) {
            return frame;
        }
        if fault_probe::recover(frame) {
            return frame;
        }
        let handler = KERNEL_FAULT_HANDLER.load(Ordering::Acquire);
        if handler != 0 {
            // SAFETY: only `set_kernel_fault_handler` stores here, always a KernelFaultHandler.
            let handler: KernelFaultHandler = unsafe { core::mem::transmute(handler) };
            if handler(frame) {
                return frame;
            }
        }
    } else if vector == Vector::CURRENT_IRQ {
        let handler = KERNEL_IRQ_HANDLER.load(Ordering::Acquire);
        if handler != 0 {
            // SAFETY: only `set_kernel_irq_handler` stores here, always a KernelIrqHandler.
            let handler: KernelIrqHandler = unsafe { core::mem::transmute(handler) };
            handler(frame);
            return frame;
        }
    }
    unexpected(frame, vector)
}

/// Reports an exception nobody handles and halts this CPU.
pub fn unexpected(frame: &TrapFrame, vector: Vector) -> ! {
    report(frame, vector);
    raise_event(ArchEvent::Halt, frame.esr, frame.elr);
    println!("halted: unexpected exception");
    halt()
}

/// Struct layouts the debugger decodes (for the `layout` command).
pub fn layout(out: &mut dyn FnMut(crate::layout::Line)) {
    crate::layout::fields!(out, TrapFrame, x, sp_el0, elr, spsr, esr, far);
}
