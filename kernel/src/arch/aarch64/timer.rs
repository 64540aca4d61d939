//! The scheduler's tick: the EL1 virtual timer (CNTV, private interrupt 27 on QEMU
//! `virt`), programmed one period at a time through CNTV_TVAL_EL0.
//!
//! The virtual timer is used because EL1 may always program it, whichever EL the kernel
//! booted at (the physical one needs CNTHCTL_EL2 to allow it). The tick runs only while
//! processes run ([`start`] when the shell hands them the CPU, [`stop`] when it gets it
//! back): the shell waiting for a line has nothing to time-slice, and a debugger stopping
//! it there finds no interrupt pending.

use super::{gic, sysreg};
use core::sync::atomic::{AtomicU64, Ordering};

/// INTID of the EL1 virtual timer (PPI 11).
pub const VIRTUAL_TIMER_INTID: u32 = 27;
/// Ticks per second.
pub const HZ: u64 = 1000;

/// Counter ticks per timer tick (CNTFRQ_EL0 / HZ), set by [`init`].
static INTERVAL: AtomicU64 = AtomicU64::new(0);
/// Timer interrupts taken since boot (the debugger and `tick` statistics read it).
pub static TICKS: AtomicU64 = AtomicU64::new(0);

const CTL_ENABLE: u64 = 1;

/// Computes the period and enables the timer's interrupt at the GIC (the timer itself
/// stays off until [`start`]).
pub fn init() {
    let frequency = sysreg::read!("cntfrq_el0");
    INTERVAL.store((frequency / HZ).max(1), Ordering::Relaxed);
    stop();
    gic::enable(VIRTUAL_TIMER_INTID, 0x80);
}

/// Starts a fresh period: the next tick comes one period from now.
pub fn start() {
    let interval = INTERVAL.load(Ordering::Relaxed);
    // SAFETY: the virtual timer's registers only control its interrupt line.
    unsafe {
        sysreg::write!("cntv_tval_el0", interval);
        sysreg::write!("cntv_ctl_el0", CTL_ENABLE);
    }
    sysreg::isb();
}

/// Turns the timer off; its interrupt line drops.
pub fn stop() {
    // SAFETY: as in `start`.
    unsafe { sysreg::write!("cntv_ctl_el0", 0) };
    sysreg::isb();
}

/// Handles a tick: counts it and programs the next one (which also drops the line).
pub fn tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    start();
}
