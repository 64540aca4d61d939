//! System-register access: `read!`/`write!` wrappers around `mrs`/`msr`, and the
//! few registers the rest of the kernel asks about by name.

/// Reads a system register by its assembler name: `sysreg::read!("ttbr1_el1")`.
macro_rules! read {
    ($name:literal) => {{
        let value: u64;
        // SAFETY: reading a system register has no side effects on memory.
        unsafe { core::arch::asm!(concat!("mrs {}, ", $name), out(reg) value, options(nomem, nostack)) };
        value
    }};
}

/// Writes a system register by its assembler name. Unsafe: the caller guarantees the
/// value is valid for the register and the change keeps the kernel running (e.g. a
/// translation-table base that maps the code being executed).
macro_rules! write {
    ($name:literal, $value:expr) => {{
        let value: u64 = $value;
        core::arch::asm!(concat!("msr ", $name, ", {}"), in(reg) value, options(nostack))
    }};
}

pub(crate) use read;
pub(crate) use write;

/// The exception level the CPU runs at now (0..=3).
pub fn current_el() -> u64 {
    (read!("CurrentEL") >> 2) & 3
}

/// Whether stage-1 translation is enabled at EL1 (SCTLR_EL1.M).
pub fn mmu_enabled() -> bool {
    read!("sctlr_el1") & 1 != 0
}

/// Instruction synchronisation barrier.
pub fn isb() {
    // SAFETY: a barrier has no memory effects of its own.
    unsafe { core::arch::asm!("isb", options(nostack)) };
}
