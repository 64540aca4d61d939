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
//! - 16 and up: reserved for processes and copy-on-write (issue 3), documented here when
//!   added.
//!
//! Issue 3 adds the `extern "C"` entry points (`tinyos_cow_create`, `tinyos_cow_protect`,
//! `tinyos_cow_unprotect`, `tinyos_cow_run_test`, `tinyos_layout_info`) with their status
//! codes to this file.

/// A shell command is about to run (`a` = line VA, `b` = length).
pub const EVENT_SHELL_COMMAND: u32 = 1;
/// A shell command finished (`a` = line VA, `b` = length).
pub const EVENT_SHELL_DONE: u32 = 2;
/// A fault probe's exception was recovered (`a` = ESR, `b` = ELR).
pub const EVENT_FAULT_RECOVERED: u32 = 3;
/// An unexpected exception; the kernel halts next (`a` = ESR, `b` = ELR).
pub const EVENT_HALT: u32 = 4;

/// The breakpoint target for every debugger event. Does nothing.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn tinyos_debug_event(kind: u32, a: u64, b: u64) {
    core::hint::black_box((kind, a, b));
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}
