//! AArch64: boot, exception vectors and the saved register frame, the kernel's
//! translation tables, TLB maintenance, context switching and system-register access.
pub mod boot;
pub mod context;
pub mod exception;
pub mod fault_probe;
pub mod gic;
pub mod mmu;
pub mod stacks;
pub mod sysreg;
pub mod timer;
pub mod tlb;

/// Stops this CPU for good: interrupts masked, waiting for events forever.
pub fn halt() -> ! {
    // SAFETY: masking interrupts and waiting has no memory effects.
    unsafe { core::arch::asm!("msr daifset, #0xf", options(nomem, nostack)) };
    loop {
        // SAFETY: `wfe` only waits.
        unsafe { core::arch::asm!("wfe", options(nomem, nostack)) };
    }
}
