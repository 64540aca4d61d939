//! The GICv2 of QEMU `virt` (`-M virt`, gic-version 2 by default: distributor at PA
//! 0x0800_0000, CPU interface at 0x0801_0000), used at its linear-map VA.
//!
//! Only what a one-CPU kernel with a timer tick needs: enable the distributor and the
//! CPU interface, enable one private interrupt with a priority, acknowledge and end an
//! interrupt. With the security extensions (`secure=on`) the boot code's EL3 path puts
//! the private interrupts in group 1 first, so this non-secure code may use them.

use crate::memory::KERNEL_OFFSET;

/// Physical base of the distributor.
pub const GICD_PA: u64 = 0x0800_0000;
/// Physical base of the CPU interface.
pub const GICC_PA: u64 = 0x0801_0000;

const GICD_CTLR: usize = 0x000;
const GICD_ISENABLER: usize = 0x100;
const GICD_IPRIORITYR: usize = 0x400;
const GICC_CTLR: usize = 0x000;
const GICC_PMR: usize = 0x004;
const GICC_IAR: usize = 0x00c;
const GICC_EOIR: usize = 0x010;

/// INTID the CPU interface answers when nothing is pending (or it was taken already).
pub const SPURIOUS: u32 = 1023;

fn write(base_pa: u64, offset: usize, value: u32) {
    let reg = (KERNEL_OFFSET + base_pa) as usize + offset;
    // SAFETY: `mmu::init` maps both GIC pages Device-nGnRnE at their linear VAs, and
    // every offset used here is a 32-bit register inside the mapped page.
    unsafe { (reg as *mut u32).write_volatile(value) }
}

fn read(base_pa: u64, offset: usize) -> u32 {
    let reg = (KERNEL_OFFSET + base_pa) as usize + offset;
    // SAFETY: as in `write`.
    unsafe { (reg as *const u32).read_volatile() }
}

/// Turns on the distributor and this CPU's interface, letting every priority through.
pub fn init() {
    write(GICD_PA, GICD_CTLR, 1);
    write(GICC_PA, GICC_PMR, 0xff);
    write(GICC_PA, GICC_CTLR, 1);
}

/// Enables interrupt `intid` (an SGI/PPI of this CPU, or an SPI) at `priority`.
pub fn enable(intid: u32, priority: u8) {
    let byte = (KERNEL_OFFSET + GICD_PA) as usize + GICD_IPRIORITYR + intid as usize;
    // SAFETY: the priority registers are byte-accessible (GICv2 architecture) and lie in
    // the mapped distributor page for every INTID below 1020.
    unsafe { (byte as *mut u8).write_volatile(priority) };
    write(GICD_PA, GICD_ISENABLER + 4 * (intid as usize / 32), 1 << (intid % 32));
}

/// Acknowledges the highest-priority pending interrupt: its INTID, or [`SPURIOUS`].
pub fn acknowledge() -> u32 {
    read(GICC_PA, GICC_IAR) & 0x3ff
}

/// Ends the handling of `intid` (the value [`acknowledge`] returned).
pub fn end_of_interrupt(intid: u32) {
    write(GICC_PA, GICC_EOIR, intid);
}
