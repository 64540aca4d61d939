//! Fault probes for the `fault` shell command: tiny assembly routines that take one
//! exception at an instruction whose address is a global symbol (so a test knows ELR
//! in advance from the ELF symbol table), and the recovery that lets the shell go on.
//!
//! Each probe returns 0 when no exception happened and 1 when it faulted. The exception
//! handler recognises a probe fault (ELR at a probe instruction, or for `exec` the link
//! register pointing just after the probe's `blr`), prints the full report and resumes at
//! the probe's recovery label instead of halting. Any other EL1 exception still halts.

use super::exception::{self, TrapFrame, Vector};
use super::exception::{ArchEvent, raise_event};
use crate::println;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// While set, probe faults are recovered without the console report (self-tests).
static QUIET: AtomicBool = AtomicBool::new(false);
/// ESR of the last recovered probe fault (0 = none yet).
static LAST_ESR: AtomicU64 = AtomicU64::new(0);

core::arch::global_asm!(
    r#"
.section .text, "ax"
.balign 4
.global tinyos_probe_read
tinyos_probe_read:
.global tinyos_probe_read_insn
tinyos_probe_read_insn:
    ldr     x1, [x0]
    mov     x0, #0
    ret

.global tinyos_probe_write
tinyos_probe_write:
.global tinyos_probe_write_insn
tinyos_probe_write_insn:
    str     x1, [x0]
    mov     x0, #0
    ret

.global tinyos_probe_exec
tinyos_probe_exec:
    stp     x29, x30, [sp, #-16]!
    blr     x0
.global tinyos_probe_exec_ret
tinyos_probe_exec_ret:
    ldp     x29, x30, [sp], #16
    mov     x0, #0
    ret

.global tinyos_probe_brk
tinyos_probe_brk:
.global tinyos_probe_brk_insn
tinyos_probe_brk_insn:
    brk     #0x7e1
    mov     x0, #0
    ret

.global tinyos_probe_undef
tinyos_probe_undef:
.global tinyos_probe_undef_insn
tinyos_probe_undef_insn:
    udf     #0
    mov     x0, #0
    ret

tinyos_probe_recover:
    mov     x0, #1
    ret

tinyos_probe_exec_recover:
    ldp     x29, x30, [sp], #16
    mov     x0, #1
    ret

.section .rodata.tinyos_fault_rodata_target, "a"
.balign 8
// Read-only data the `fault rodata` command writes to (a permission fault).
.global tinyos_fault_rodata_target
tinyos_fault_rodata_target:
    .quad 0x0123456789abcdef

.section .data.tinyos_fault_exec_target, "aw"
.balign 8
// Writable data holding a `ret`: `fault exec` branches here (an execute-never fault).
.global tinyos_fault_exec_target
tinyos_fault_exec_target:
    .word 0xd65f03c0
    .word 0
"#
);

unsafe extern "C" {
    fn tinyos_probe_read(address: u64) -> u64;
    fn tinyos_probe_write(address: u64, value: u64) -> u64;
    fn tinyos_probe_exec(address: u64) -> u64;
    fn tinyos_probe_brk() -> u64;
    fn tinyos_probe_undef() -> u64;
    static tinyos_probe_read_insn: u8;
    static tinyos_probe_write_insn: u8;
    static tinyos_probe_exec_ret: u8;
    static tinyos_probe_brk_insn: u8;
    static tinyos_probe_undef_insn: u8;
    static tinyos_probe_recover: u8;
    static tinyos_probe_exec_recover: u8;
    static tinyos_fault_rodata_target: u8;
    static tinyos_fault_exec_target: u8;
}

/// Reads a u64 at `address`; true if that took an exception (reported and recovered).
pub fn read(address: u64) -> bool {
    // SAFETY: a faulting access is recovered by `recover`; a succeeding one only reads.
    unsafe { tinyos_probe_read(address) != 0 }
}

/// Writes `value` at `address`; true if that took an exception.
///
/// # Safety
/// If the write succeeds it changes memory: only for addresses expected to fault.
pub unsafe fn write(address: u64, value: u64) -> bool {
    // SAFETY: forwarded to the caller.
    unsafe { tinyos_probe_write(address, value) != 0 }
}

/// Branches to `address`; true if that took an exception.
///
/// # Safety
/// If the address is executable, the code there runs: only for execute-never targets
/// or code that simply returns.
pub unsafe fn exec(address: u64) -> bool {
    // SAFETY: forwarded to the caller.
    unsafe { tinyos_probe_exec(address) != 0 }
}

/// Executes `brk #0x7e1`; true when the exception was taken.
pub fn brk() -> bool {
    // SAFETY: the exception is recovered.
    unsafe { tinyos_probe_brk() != 0 }
}

/// Executes `udf #0`; true when the exception was taken.
pub fn undef() -> bool {
    // SAFETY: the exception is recovered.
    unsafe { tinyos_probe_undef() != 0 }
}

/// A read-only kernel data address (`.rodata`).
pub fn rodata_target() -> u64 { &raw const tinyos_fault_rodata_target as u64 }
/// A writable, execute-never kernel data address holding a `ret`.
pub fn exec_target() -> u64 { &raw const tinyos_fault_exec_target as u64 }
/// A kernel text address (the read probe itself).
pub fn text_target() -> u64 { tinyos_probe_read as *const () as u64 }

/// If `frame` is a fault taken by a probe, reports it, redirects the return address to
/// the probe's recovery code and returns true.
pub fn recover(frame: &mut TrapFrame) -> bool {
    let at = |symbol: &u8| symbol as *const u8 as u64;
    let faulting_probe = [
        &raw const tinyos_probe_read_insn,
        &raw const tinyos_probe_write_insn,
        &raw const tinyos_probe_brk_insn,
        &raw const tinyos_probe_undef_insn,
    ]
    .iter()
    .any(|&insn| insn as u64 == frame.elr);
    // SAFETY: taking addresses of linker symbols only.
    let (exec_ret, recover, exec_recover) =
        unsafe { (at(&tinyos_probe_exec_ret), at(&tinyos_probe_recover), at(&tinyos_probe_exec_recover)) };
    let exec_fault = frame.x[30] == exec_ret && frame.elr == frame.far;
    if !faulting_probe && !exec_fault {
        return false;
    }
    LAST_ESR.store(frame.esr, Ordering::Relaxed);
    if !QUIET.load(Ordering::Relaxed) {
        exception::report(frame, Vector::CURRENT_SYNC);
        println!("recovered: the fault probe returns to the shell");
    }
    raise_event(ArchEvent::FaultRecovered, frame.esr, frame.elr);
    frame.elr = if exec_fault { exec_recover } else { recover };
    true
}

/// Runs `f` with probe faults recovered silently; returns `f`'s result.
pub fn quietly<R>(f: impl FnOnce() -> R) -> R {
    let was = QUIET.swap(true, Ordering::Relaxed);
    let result = f();
    QUIET.store(was, Ordering::Relaxed);
    result
}

/// ESR of the most recent recovered probe fault.
pub fn last_esr() -> u64 {
    LAST_ESR.load(Ordering::Relaxed)
}
