//! Address spaces: a four-level table rooted at an L0 physical address plus the ASID its
//! non-global entries are tagged with, and the operations on it — `map`, `unmap`,
//! `protect`, `remap`, `translate` — used for the kernel's own tables (global entries)
//! and for each process's TTBR0 tables (nG entries, tables from the frame allocator).
//!
//! Rules every operation follows:
//! - entries are written with volatile stores (the hardware walker reads them);
//! - a live valid entry is never replaced by another valid one directly: it is made
//!   invalid, its TLB entry invalidated (VA + ASID), and only then is the new entry
//!   written (break-before-make);
//! - every change returns a `#[must_use]` [`TlbFlush`] for the final invalidation.
//!
//! Ownership is in the types: [`UserAddressSpace`] owns a process's tables (not `Copy`,
//! created by [`UserAddressSpace::new`], freed only by [`UserAddressSpace::free_tables`],
//! which consumes it, so no copy can free them twice); [`AddressSpace`] is a `Copy` view
//! of some tables that cannot outlive the owner it was borrowed from. A view of tables
//! whose owner the type system cannot see (the kernel's static TTBR1 tables, a process's
//! tables recorded in the process table, the live TTBR registers) is made with the
//! `unsafe` [`AddressSpace::from_raw`], whose caller promises they stay allocated.

use super::descriptor::{Attributes, Descriptor, Kind};
use super::walk::{self, LEVELS, Walk, entry_ptr, level_size, read_entry};
use super::{Asid, PAGE_SIZE, PhysAddr, VirtAddr, frame};
use crate::arch::aarch64::tlb::{TlbFlush, invalidate_page};
use core::fmt;
use core::marker::PhantomData;

/// Source of 4 KiB frames for new translation tables.
///
/// # Safety
/// Every frame `alloc_table` returns must be page aligned, in RAM (linearly mapped),
/// zeroed (all entries invalid: the hardware walker may read it as soon as it is linked
/// in) and used by nothing else for as long as the table it becomes exists; it must never
/// return the same frame twice while the first table lives.
pub unsafe trait TableAllocator {
    fn alloc_table(&mut self) -> Option<PhysAddr>;
}

/// Takes table frames from the physical frame allocator (process tables).
pub struct FrameTables;

// SAFETY: `frame::alloc` returns a zeroed RAM frame with reference count 1 that no one
// else holds until it is freed.
unsafe impl TableAllocator for FrameTables {
    fn alloc_table(&mut self) -> Option<PhysAddr> { frame::alloc() }
}

/// Why a mapping operation was refused. Nothing is changed when an error is returned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MapError {
    /// No frame for a new table.
    OutOfFrames,
    /// A leaf already maps the VA (use `protect`/`remap` for live changes).
    AlreadyMapped(VirtAddr),
    /// No leaf maps the VA.
    NotMapped(VirtAddr),
    /// VA or PA not aligned to the mapping size.
    Misaligned(VirtAddr),
    /// The VA is in the wrong half for this address space, or a user mapping is global.
    WrongHalf(VirtAddr),
    /// A larger block covers the VA where a table is needed (or vice versa).
    BlockInTheWay(VirtAddr),
    /// A table address outside RAM.
    BadTable(PhysAddr),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::OutOfFrames => f.write_str("out of frames for a translation table"),
            MapError::AlreadyMapped(va) => write!(f, "{va:#x} is already mapped"),
            MapError::NotMapped(va) => write!(f, "{va:#x} is not mapped"),
            MapError::Misaligned(va) => write!(f, "{va:#x} is not aligned to the mapping size"),
            MapError::WrongHalf(va) => write!(f, "{va:#x} does not belong to this address space"),
            MapError::BlockInTheWay(va) => write!(f, "a block mapping covers {va:#x}"),
            MapError::BadTable(pa) => write!(f, "translation table at {pa:#x} is outside RAM"),
        }
    }
}

/// A view of a translation regime: L0 table PA and ASID (`None` = the kernel's global
/// TTBR1 tables), valid for `'a` (the tables are not freed while it lives). `Copy`: it
/// owns nothing; [`UserAddressSpace`] owns a process's tables.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AddressSpace<'a> {
    l0: PhysAddr,
    asid: Option<Asid>,
    tables: PhantomData<&'a ()>,
}

/// The owner of a user address space's translation tables (L0 to L3, all from the frame
/// allocator). Not `Copy` or `Clone`: the tables are freed once, by [`Self::free_tables`],
/// which consumes it. Views for the mapping operations come from [`Self::view`].
#[derive(PartialEq, Eq, Debug)]
pub struct UserAddressSpace {
    l0: PhysAddr,
    asid: Asid,
}

impl UserAddressSpace {
    /// A new, empty user address space with its L0 table from the frame allocator.
    pub fn new(asid: Asid) -> Result<Self, MapError> {
        let l0 = frame::alloc().ok_or(MapError::OutOfFrames)?;
        Ok(Self { l0, asid })
    }

    /// Takes ownership of user tables whose owner only memory recorded (a process's
    /// `ttbr0` in the process table, when it exits).
    ///
    /// # Safety
    /// `l0` must be the root of user tables built by a `UserAddressSpace` with `asid`
    /// (every table from the frame allocator, every entry non-global), not freed yet, and
    /// no other owner of them may exist or be made: the returned value is their only
    /// owner (the caller forgets the record it came from once it is consumed).
    pub const unsafe fn from_raw(l0: PhysAddr, asid: Asid) -> Self { Self { l0, asid } }

    /// A view for the mapping operations, valid while `self` is not consumed.
    pub fn view(&self) -> AddressSpace<'_> {
        AddressSpace { l0: self.l0, asid: Some(self.asid), tables: PhantomData }
    }

    pub const fn l0(&self) -> PhysAddr { self.l0 }
    pub const fn asid(&self) -> Asid { self.asid }

    /// Frees every translation table (L0 included) back to the frame allocator. Returns
    /// how many pages were still mapped: their frames are NOT freed (unmap and release them
    /// first; a non-zero result means a leak).
    pub fn free_tables(self) -> usize {
        let mut still_mapped = 0;
        self.view().for_each_page(&mut |_, _| still_mapped += 1);
        free_table(self.l0, 0);
        still_mapped
    }
}

impl<'a> AddressSpace<'a> {
    /// A view of existing tables (the kernel's L0, a process's recorded TTBR0, a live
    /// TTBR register) for `'a`, which the caller chooses.
    ///
    /// # Safety
    /// `l0` must be the physical address of a level-0 translation table in RAM whose table
    /// descriptors lead to tables in RAM; with `asid: None` they must be the kernel's
    /// TTBR1 tables (global entries, the upper half), with `Some(asid)` user tables whose
    /// entries are tagged non-global with `asid`. They must stay allocated (not freed,
    /// not reused) for all of `'a`: every mapping operation through the view writes them.
    pub const unsafe fn from_raw(l0: PhysAddr, asid: Option<Asid>) -> Self {
        Self { l0, asid, tables: PhantomData }
    }

    pub const fn l0(&self) -> PhysAddr { self.l0 }
    pub const fn asid(&self) -> Option<Asid> { self.asid }

    /// The TTBR0_EL1 value selecting this address space: ASID in [63:48], L0 PA below.
    pub const fn ttbr0(&self) -> u64 { Self::ttbr0_value(self.l0, self.asid) }

    /// The TTBR value for tables at `l0` with `asid`.
    pub const fn ttbr0_value(l0: PhysAddr, asid: Option<Asid>) -> u64 {
        let asid = match asid { Some(a) => a as u64, None => 0 };
        (asid << 48) | l0.as_u64()
    }

    /// The full software walk of `va` (what the `pt` command prints).
    pub fn walk(&self, va: VirtAddr) -> Walk { walk::walk(self.l0, va) }

    /// PA and attributes of `va`, if mapped.
    pub fn translate(&self, va: VirtAddr) -> Option<(PhysAddr, Attributes)> {
        self.walk(va).translation()
    }

    fn check_half(&self, va: VirtAddr, attrs: Option<Attributes>) -> Result<(), MapError> {
        let ok = match self.asid {
            Some(_) => va.is_user() && attrs.is_none_or(|a| a.not_global),
            None => va.is_kernel() && attrs.is_none_or(|a| !a.not_global),
        };
        if ok { Ok(()) } else { Err(MapError::WrongHalf(va)) }
    }

    /// Maps one 4 KiB page `va -> pa`, allocating tables from the frame allocator.
    pub fn map(&self, va: VirtAddr, pa: PhysAddr, attrs: Attributes) -> Result<TlbFlush, MapError> {
        self.map_with(va, pa, 3, attrs, &mut FrameTables)
    }

    /// Maps a leaf at `level` (3 = 4 KiB page, 2 = 2 MiB block, 1 = 1 GiB block).
    /// Refuses (changing nothing except possibly adding empty tables) when something
    /// already maps the VA.
    pub fn map_with(
        &self,
        va: VirtAddr,
        pa: PhysAddr,
        level: usize,
        attrs: Attributes,
        tables: &mut dyn TableAllocator,
    ) -> Result<TlbFlush, MapError> {
        self.check_half(va, Some(attrs))?;
        let size = level_size(level);
        if !(1..LEVELS).contains(&level) || !va.is_aligned(size) || !pa.is_aligned(size) {
            return Err(MapError::Misaligned(va));
        }
        let table = self.table_for(va, level, Some(tables))?;
        let index = va.table_index(level);
        // SAFETY: `table_for` returned a RAM table at `level`.
        let slot = unsafe { entry_ptr(table, index) };
        // SAFETY: as above.
        if unsafe { slot.read_volatile() }.is_valid() {
            return Err(MapError::AlreadyMapped(va));
        }
        // SAFETY: the slot is invalid, so no TLB entry or walk depends on it.
        unsafe { slot.write_volatile(Descriptor::leaf(pa, level, attrs)) };
        Ok(TlbFlush::new(va, self.asid))
    }

    /// Removes the 4 KiB page mapping `va`; returns the frame it mapped.
    pub fn unmap(&self, va: VirtAddr) -> Result<(PhysAddr, TlbFlush), MapError> {
        let slot = self.page_slot(va)?;
        // SAFETY: `page_slot` returned a valid level-3 entry.
        let old = unsafe { slot.read_volatile() };
        // SAFETY: invalidating an entry is always allowed; the token flushes the TLB.
        unsafe { slot.write_volatile(Descriptor::INVALID) };
        Ok((old.address(), TlbFlush::new(va, self.asid)))
    }

    /// Changes the attributes of the live page at `va` (break-before-make).
    pub fn protect(&self, va: VirtAddr, attrs: Attributes) -> Result<TlbFlush, MapError> {
        self.check_half(va, Some(attrs))?;
        let slot = self.page_slot(va)?;
        // SAFETY: a valid level-3 entry.
        let pa = unsafe { slot.read_volatile() }.address();
        // SAFETY: `slot` is the live level-3 entry for `va`.
        unsafe { self.break_before_make(slot, va, Descriptor::leaf(pa, 3, attrs)) };
        Ok(TlbFlush::new(va, self.asid))
    }

    /// Points the live page at `va` to another frame with `attrs` (break-before-make);
    /// returns the old frame. The caller drops the old frame's reference only after
    /// flushing (Linux's order for COW).
    pub fn remap(&self, va: VirtAddr, pa: PhysAddr, attrs: Attributes) -> Result<(PhysAddr, TlbFlush), MapError> {
        self.check_half(va, Some(attrs))?;
        if !pa.is_aligned(PAGE_SIZE) {
            return Err(MapError::Misaligned(va));
        }
        let slot = self.page_slot(va)?;
        // SAFETY: a valid level-3 entry.
        let old = unsafe { slot.read_volatile() }.address();
        // SAFETY: `slot` is the live level-3 entry for `va`.
        unsafe { self.break_before_make(slot, va, Descriptor::leaf(pa, 3, attrs)) };
        Ok((old, TlbFlush::new(va, self.asid)))
    }

    /// The level-3 descriptor mapping `va`, if a page maps it.
    pub fn page(&self, va: VirtAddr) -> Option<Descriptor> {
        // SAFETY: `page_slot` returns a valid level-3 entry.
        self.page_slot(va).ok().map(|slot| unsafe { slot.read_volatile() })
    }

    /// Calls `f(va, descriptor)` for every valid 4 KiB page of this address space, in VA
    /// order (fork and exit walk user spaces with it). Blocks are skipped.
    pub fn for_each_page(&self, f: &mut dyn FnMut(VirtAddr, Descriptor)) {
        let base = if self.asid.is_some() { 0 } else { crate::memory::KERNEL_OFFSET };
        visit(self.l0, 0, base, f);
    }

    /// Calls `f(pa)` for every frame this address space holds: each translation table
    /// (L0 included) and each 4 KiB page's frame (recovery keeps what survivors own).
    pub fn for_each_frame(&self, f: &mut dyn FnMut(PhysAddr)) {
        visit_tables(self.l0, 0, f);
        self.for_each_page(&mut |_, desc| f(desc.address()));
    }

    /// The table at `level` on the way to `va`, creating missing tables when `tables` is given.
    fn table_for(
        &self,
        va: VirtAddr,
        level: usize,
        mut tables: Option<&mut dyn TableAllocator>,
    ) -> Result<PhysAddr, MapError> {
        let mut table = self.l0;
        for current in 0..level {
            if !table.is_ram() {
                return Err(MapError::BadTable(table));
            }
            let index = va.table_index(current);
            // SAFETY: `table` is a RAM translation table at level `current`.
            let desc = unsafe { read_entry(table, index) };
            table = match desc.kind(current) {
                Kind::Table => desc.address(),
                Kind::Block | Kind::Page | Kind::Reserved => return Err(MapError::BlockInTheWay(va)),
                Kind::Invalid => {
                    let Some(alloc) = tables.as_deref_mut() else {
                        return Err(MapError::NotMapped(va));
                    };
                    let new = alloc.alloc_table().ok_or(MapError::OutOfFrames)?;
                    // SAFETY: the slot was invalid; the new table is zeroed (all invalid).
                    unsafe { entry_ptr(table, index).write_volatile(Descriptor::table(new)) };
                    new
                }
            };
        }
        if table.is_ram() { Ok(table) } else { Err(MapError::BadTable(table)) }
    }

    /// The live level-3 entry mapping `va` (never allocates).
    fn page_slot(&self, va: VirtAddr) -> Result<*mut Descriptor, MapError> {
        self.check_half(va, None)?;
        if !va.is_aligned(PAGE_SIZE) {
            return Err(MapError::Misaligned(va));
        }
        let table = self.table_for(va, 3, None)?;
        // SAFETY: a RAM table at level 3.
        let slot = unsafe { entry_ptr(table, va.table_index(3)) };
        // SAFETY: as above.
        match unsafe { slot.read_volatile() }.kind(3) {
            Kind::Page => Ok(slot),
            _ => Err(MapError::NotMapped(va)),
        }
    }

    /// Replaces a live entry: invalid, TLB invalidate (VA + ASID), then the new entry.
    ///
    /// # Safety
    /// `slot` must be the live entry translating `va` in this address space.
    unsafe fn break_before_make(&self, slot: *mut Descriptor, va: VirtAddr, new: Descriptor) {
        // SAFETY: forwarded; the invalidation completes before the new entry is written.
        unsafe {
            slot.write_volatile(Descriptor::INVALID);
            invalidate_page(va, self.asid);
            slot.write_volatile(new);
        }
    }
}

fn visit(table: PhysAddr, level: usize, base: u64, f: &mut dyn FnMut(VirtAddr, Descriptor)) {
    for index in 0..super::descriptor::ENTRIES {
        // SAFETY: `table` is a RAM table reached from a valid table descriptor.
        let desc = unsafe { read_entry(table, index) };
        let va = base + index as u64 * level_size(level);
        match desc.kind(level) {
            Kind::Table if desc.address().is_ram() => visit(desc.address(), level + 1, va, f),
            Kind::Page => f(VirtAddr::new(va), desc),
            _ => {}
        }
    }
}

fn visit_tables(table: PhysAddr, level: usize, f: &mut dyn FnMut(PhysAddr)) {
    f(table);
    if level < 3 {
        for index in 0..super::descriptor::ENTRIES {
            // SAFETY: `table` is a RAM table reached from a valid table descriptor.
            let desc = unsafe { read_entry(table, index) };
            if desc.kind(level) == Kind::Table && desc.address().is_ram() {
                visit_tables(desc.address(), level + 1, f);
            }
        }
    }
}

fn free_table(table: PhysAddr, level: usize) {
    if level < 3 {
        for index in 0..super::descriptor::ENTRIES {
            // SAFETY: `table` is a RAM table of this address space.
            let desc = unsafe { read_entry(table, index) };
            if desc.kind(level) == Kind::Table && desc.address().is_ram() {
                free_table(desc.address(), level + 1);
            }
        }
    }
    let _ = frame::free(table);
}
