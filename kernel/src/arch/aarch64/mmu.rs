//! The kernel's final translation tables (TTBR1) and TTBR0 switching.
//!
//! `init` builds, in static tables inside the image (so they are part of the reserved
//! image, not frame-allocator memory), the linear map of all RAM at KERNEL_OFFSET + PA
//! with least privilege: kernel text RX (EL1 only), rodata R, data/bss/stacks/tables RW
//! except the kernel stacks' guard pages (not mapped at all, see `stacks`),
//! the rest of RAM RW, all of it UXN and everything but text PXN; 2 MiB blocks where a
//! 2 MiB region lies outside the image, 4 KiB pages around it; the PL011 page as
//! Device-nGnRnE. Then it moves TTBR1 to [`KERNEL_L0`] through an identity-mapped
//! trampoline, empties TTBR0 (ASID 0) and turns on SCTLR_EL1.WXN.

use super::boot::SCTLR_WXN;
use super::sysreg;
use super::tlb;
use crate::memory::address_space::{AddressSpace, MapError, TableAllocator};
use crate::memory::descriptor::{Attributes, PageTable};
use crate::memory::{Asid, BLOCK_2M, PAGE_SIZE, PhysAddr, RAM_END, RAM_START, UART_PA, VirtAddr, image};
use core::cell::UnsafeCell;

/// A translation table in the kernel image.
#[repr(transparent)]
pub struct TableCell(UnsafeCell<PageTable>);

// SAFETY: the tables are written only during single-threaded boot (`init`).
unsafe impl Sync for TableCell {}

impl TableCell {
    const fn new() -> Self { Self(UnsafeCell::new(PageTable::EMPTY)) }
    /// Physical address of the table (it lives in the linearly mapped image).
    pub fn pa(&self) -> PhysAddr { VirtAddr::new(self.0.get() as u64).to_phys() }
}

/// The kernel's level-0 table: TTBR1_EL1 after `init`.
pub static KERNEL_L0: TableCell = TableCell::new();

/// Tables for levels 1-3 of the kernel map: L1, L2 for the device GiB and for RAM, an L3
/// for the UART page, one for the GIC's two pages and L3s for the 2 MiB regions the image
/// overlaps.
const POOL_TABLES: usize = 14;
static KERNEL_TABLE_POOL: [TableCell; POOL_TABLES] = [const { TableCell::new() }; POOL_TABLES];

struct Pool {
    next: usize,
}

// SAFETY: each pool table is a distinct page-aligned static in the image (RAM, linearly
// mapped), zero in .bss until handed out once (`next` only grows), and used only as the
// kernel's translation table it becomes.
unsafe impl TableAllocator for Pool {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        let table = KERNEL_TABLE_POOL.get(self.next)?;
        self.next += 1;
        Some(table.pa())
    }
}

unsafe extern "C" {
    static tinyos_empty_l0: u8;
    fn tinyos_switch_ttbr1(l0: u64);
}

/// The kernel's address space (global entries in the TTBR1 half).
pub fn kernel_space() -> AddressSpace<'static> {
    // SAFETY: KERNEL_L0 and the pool tables linked below it are statics of the image,
    // never freed; the kernel's tables hold global upper-half entries only.
    unsafe { AddressSpace::from_raw(KERNEL_L0.pa(), None) }
}

/// PA of the all-invalid table TTBR0 holds when no process runs.
pub fn empty_table() -> PhysAddr { VirtAddr::new(&raw const tinyos_empty_l0 as u64).to_phys() }

/// Builds the final kernel map and switches to it. Called once, first thing in
/// `kernel_main`, while the boot tables (identity + 1 GiB blocks) are live.
pub fn init() -> Result<(), MapError> {
    let space = kernel_space();
    let mut pool = Pool { next: 0 };
    let (image_start, image_end) = image::physical();
    let regions = [
        (image::text(), Attributes::KERNEL_TEXT),
        (image::rodata(), Attributes::KERNEL_RODATA),
        (image::data(), Attributes::KERNEL_DATA),
    ];
    for ((start, end), attrs) in regions {
        map_pages(&space, start.to_phys(), end.to_phys(), attrs, &mut pool)?;
    }
    // The rest of RAM: 2 MiB blocks where the whole block lies outside the image.
    let mut pa = RAM_START;
    while pa < RAM_END {
        let block_end = pa + BLOCK_2M;
        let overlaps = pa < image_end.as_u64() && image_start.as_u64() < block_end;
        if overlaps {
            map_pages(&space, PhysAddr::new(pa), image_start.min(PhysAddr::new(block_end)), Attributes::KERNEL_DATA, &mut pool)?;
            map_pages(&space, image_end.max(PhysAddr::new(pa)), PhysAddr::new(block_end), Attributes::KERNEL_DATA, &mut pool)?;
        } else {
            let va = PhysAddr::new(pa).to_virt();
            space.map_with(va, PhysAddr::new(pa), 2, Attributes::KERNEL_DATA, &mut pool)?.flush();
        }
        pa = block_end;
    }
    for device in [UART_PA, super::gic::GICD_PA, super::gic::GICC_PA] {
        let pa = PhysAddr::new(device);
        space.map_with(pa.to_virt(), pa, 3, Attributes::DEVICE, &mut pool)?.flush();
    }
    // The kernel stacks' guard pages: unmapped, so running off a stack faults.
    for (_, start, end) in super::stacks::guards() {
        for va in (start..end).step_by(PAGE_SIZE as usize) {
            space.unmap(VirtAddr::new(va as u64))?.1.flush();
        }
    }

    // SAFETY: the new tables map the running code, stack and UART at the same VAs as
    // the boot tables; the trampoline switches from the identity map.
    unsafe { tinyos_switch_ttbr1(KERNEL_L0.pa().as_u64()) };
    clear_user_table();
    let sctlr = sysreg::read!("sctlr_el1");
    // SAFETY: no mapping of the final tables is both writable and executable.
    unsafe { sysreg::write!("sctlr_el1", sctlr | SCTLR_WXN) };
    // WXN may be cached in TLB entries: the write must take effect (isb) before the
    // invalidation, or a walk in between could cache an entry under the old value.
    sysreg::isb();
    tlb::invalidate_all();
    Ok(())
}

fn map_pages(space: &AddressSpace<'_>, start: PhysAddr, end: PhysAddr, attrs: Attributes, pool: &mut Pool) -> Result<(), MapError> {
    let mut pa = start.as_u64();
    while pa < end.as_u64() {
        let frame = PhysAddr::new(pa);
        space.map_with(frame.to_virt(), frame, 3, attrs, pool)?.flush();
        pa += PAGE_SIZE;
    }
    Ok(())
}

/// Selects a process's tables: TTBR0 = (asid << 48) | l0. No TLB flush is needed
/// (entries are tagged with the ASID); the ASID must not be reused without
/// `tlb::invalidate_asid`.
pub fn set_user_table(l0: PhysAddr, asid: Asid) {
    // SAFETY: TTBR0 only translates user VAs; the kernel runs from TTBR1.
    unsafe { sysreg::write!("ttbr0_el1", AddressSpace::ttbr0_value(l0, Some(asid))) };
    sysreg::isb();
}

/// TTBR0 = the empty table with ASID 0 (no process), then drop every non-global entry
/// the identity map or earlier processes may have left in the TLB.
pub fn clear_user_table() {
    // SAFETY: as above.
    unsafe { sysreg::write!("ttbr0_el1", empty_table().as_u64()) };
    sysreg::isb();
    tlb::invalidate_all();
}

/// The TTBR for a VA: TTBR1 for the kernel half, TTBR0 for the user half. Calls `f`
/// with a view of the live tables (L0 PA, with the ASID from TTBR0); `None` for a
/// non-canonical VA. The view lives only for the call: TTBR0's tables belong to a
/// process that may exit afterwards.
pub fn with_live_space<R>(va: VirtAddr, f: impl FnOnce(&AddressSpace<'_>) -> R) -> Option<R> {
    const L0_MASK: u64 = 0x0000_FFFF_FFFF_FFFE;
    let (l0, asid) = if va.is_kernel() {
        (sysreg::read!("ttbr1_el1") & L0_MASK, None)
    } else if va.is_user() {
        let ttbr0 = sysreg::read!("ttbr0_el1");
        (ttbr0 & L0_MASK, Some((ttbr0 >> 48) as Asid))
    } else {
        return None;
    };
    // SAFETY: the TTBRs hold the kernel's static tables or the tables of the process the
    // CPU runs (or the static empty table), which nothing frees while the kernel runs
    // this call (one CPU, no preemption at EL1).
    let space = unsafe { AddressSpace::from_raw(PhysAddr::new(l0), asid) };
    Some(f(&space))
}
