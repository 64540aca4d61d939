//! `fault <kind>`: takes a deliberate exception whose ESR, FAR and ELR a test can know in
//! advance, prints them (with the registers) and recovers to the prompt — except `halt`,
//! which shows what any unexpected exception does: report and halt.
//!
//! Kinds and what they prove:
//! - `read` / `write`: a data abort (translation fault, level 0) on the unmapped user VA
//!   0xdead0000 (TTBR0 is empty); ELR = `tinyos_probe_read_insn` / `..._write_insn`;
//! - `rodata`: a write to `tinyos_fault_rodata_target` (a permission fault: rodata is R);
//! - `text`: a write to kernel text (a permission fault: text is never writable);
//! - `exec`: a branch to `tinyos_fault_exec_target` in .data (an instruction abort:
//!   data is execute-never); ELR = FAR = the target;
//! - `brk`, `undef`: a BRK #0x7e1 and an undefined instruction;
//! - `halt`: a read of 0xdead0000 from outside the probes, which halts the kernel;
//! - `stack`: unbounded recursion on the shell's stack until it runs into its guard page:
//!   reported as `kernel stack overflow (shell)`, then the kernel halts.

use super::Command;
use crate::arch::aarch64::fault_probe;
use crate::println;

pub const COMMANDS: &[Command] = &[Command {
    name: "fault",
    description: "<read|write|rodata|text|exec|brk|undef|halt|stack>: take a deliberate exception",
    run: fault,
}];

/// The unmapped VA the `read`, `write` and `halt` faults access.
pub const UNMAPPED_VA: u64 = 0xdead_0000;

fn fault(args: &str) {
    let faulted = match args {
        "read" => fault_probe::read(UNMAPPED_VA),
        // SAFETY: TTBR0 is empty while the shell runs: the write faults and is recovered.
        "write" => unsafe { fault_probe::write(UNMAPPED_VA, 0x600d) },
        // SAFETY: .rodata is mapped read-only: the write faults; were it writable, it
        // would change a word nothing else reads.
        "rodata" => unsafe { fault_probe::write(fault_probe::rodata_target(), 0) },
        // SAFETY: text is never writable (WXN): the write faults and is recovered.
        "text" => unsafe { fault_probe::write(fault_probe::text_target(), 0) },
        // SAFETY: .data is execute-never: the branch faults; were it executable, the
        // target is a bare `ret`.
        "exec" => unsafe { fault_probe::exec(fault_probe::exec_target()) },
        "brk" => fault_probe::brk(),
        "undef" => fault_probe::undef(),
        "halt" => {
            // SAFETY: deliberately faults; the kernel halts in the exception handler.
            let value = unsafe { (UNMAPPED_VA as *const u64).read_volatile() };
            println!("fault halt: read {value:#x} without an exception");
            return;
        }
        "stack" => {
            let depth = recurse(0);
            println!("fault stack: returned from depth {depth} without an exception");
            return;
        }
        _ => {
            println!("error: unknown fault kind '{args}' (read, write, rodata, text, exec, brk, undef, halt, stack)");
            return;
        }
    };
    if !faulted {
        println!("error: fault {args}: no exception was taken");
    }
}

/// Recurses with a 256-byte frame until the stack runs out (the guard page faults). The
/// bound is opaque to the compiler, so the recursion is neither removed nor turned into a
/// loop.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut pad = [0u8; 256];
    pad[0] = depth as u8;
    core::hint::black_box(&mut pad);
    if depth == core::hint::black_box(u64::MAX) {
        return depth;
    }
    recurse(depth + 1) + u64::from(pad[0])
}
