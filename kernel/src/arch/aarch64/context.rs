//! Kernel context switching between kernel stacks (callee-saved registers only), for a
//! scheduler that keeps one kernel thread per process or switches between the shell and
//! a process loop: `switch_context(&mut from, &to)` saves x19-x29, LR and SP into
//! `from` and resumes `to` where it last called `switch_context` (or at `lr` with `sp`
//! for a fresh context). Register layout asserted like the trap frame's.

use core::mem::{offset_of, size_of};

/// The callee-saved state of a suspended kernel context.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct CpuContext {
    /// x19..x28.
    pub x19_x28: [u64; 10],
    /// Frame pointer (x29).
    pub fp: u64,
    /// Where the context resumes (x30).
    pub lr: u64,
    /// Its kernel stack pointer.
    pub sp: u64,
}

const REGS: usize = offset_of!(CpuContext, x19_x28);
const FP: usize = offset_of!(CpuContext, fp);
const SP: usize = offset_of!(CpuContext, sp);
const _: () = assert!(REGS == 0 && FP == 80 && offset_of!(CpuContext, lr) == FP + 8 && SP == FP + 16);
const _: () = assert!(size_of::<CpuContext>() == 13 * 8);

core::arch::global_asm!(
    r#"
.section .text, "ax"
.global tinyos_switch_context
tinyos_switch_context:
    stp     x19, x20, [x0, #({regs} + 16 * 0)]
    stp     x21, x22, [x0, #({regs} + 16 * 1)]
    stp     x23, x24, [x0, #({regs} + 16 * 2)]
    stp     x25, x26, [x0, #({regs} + 16 * 3)]
    stp     x27, x28, [x0, #({regs} + 16 * 4)]
    stp     x29, x30, [x0, #{fp}]
    mov     x2, sp
    str     x2, [x0, #{sp}]
    ldp     x19, x20, [x1, #({regs} + 16 * 0)]
    ldp     x21, x22, [x1, #({regs} + 16 * 1)]
    ldp     x23, x24, [x1, #({regs} + 16 * 2)]
    ldp     x25, x26, [x1, #({regs} + 16 * 3)]
    ldp     x27, x28, [x1, #({regs} + 16 * 4)]
    ldp     x29, x30, [x1, #{fp}]
    ldr     x2, [x1, #{sp}]
    mov     sp, x2
    ret
"#,
    regs = const REGS,
    fp = const FP,
    sp = const SP,
);

unsafe extern "C" {
    fn tinyos_switch_context(from: *mut CpuContext, to: *const CpuContext);
}

/// Suspends the current kernel context into `from` and resumes `to`.
///
/// # Safety
/// `to` must hold a context saved by this function, or a fresh one whose `sp` is the
/// 16-byte aligned top of an otherwise unused kernel stack and whose `lr` is a function
/// that never returns; both contexts must stay valid until resumed.
pub unsafe fn switch_context(from: &mut CpuContext, to: &CpuContext) {
    // SAFETY: forwarded to the caller.
    unsafe { tinyos_switch_context(from, to) }
}

/// Struct layouts the debugger decodes (for the `layout` command).
pub fn layout(out: &mut dyn FnMut(crate::layout::Line)) {
    crate::layout::fields!(out, CpuContext, x19_x28, fp, lr, sp);
}
