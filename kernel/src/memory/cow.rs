//! Copy-on-write bookkeeping: which physical frames are shared copy-on-write, by which
//! (virtual address, process id) mappings, and the statistics about them.
//!
//! This module is pure bookkeeping: it never touches page tables, the TLB or frame
//! contents (the fault path in `crate::process::cow_fault` does, holding `COW_MANAGER`
//! once for the whole decision). Names and shapes follow upstream TinyOS so a TinyOS
//! developer recognises them and the debugger decodes them from DWARF:
//! `CowManager`, `CowPage`, `SimpleVec`, `ProcessIdArray`, `RegionType`, `CowStatistics`.
//!
//! Invariants, true whenever `COW_MANAGER` is unlocked (checked by `CowManager::verify`):
//! - a `CowPage`'s `ref_count` equals its number of live mappings
//!   (`virtual_addresses.len == process_ids.len == ref_count`, never 0 for a tracked page);
//!   mapping `i` is the pair (`virtual_addresses[i]`, `process_ids[i]`), pairs are unique;
//! - `cow_pages[i]` is `Some` only for the frame at `COW_RAM_BASE + i * COW_PAGE_SIZE`
//!   (the table is indexed by frame number, so lookup by physical address is O(1) and the
//!   table can never be full for a RAM frame);
//! - `active_pages == statistics.cow_pages_count ==` number of `Some` entries;
//!   `statistics.memory_saved_bytes == Σ (ref_count − 1) × 4096`;
//!   `statistics.metadata_memory_bytes == size_of::<CowManager>()`;
//!   `statistics.peak_cow_pages` is the largest `cow_pages_count` seen.
//! Every mutating method either succeeds completely or returns a `CowError` and changes
//! nothing.

use core::fmt;

use crate::sync::SpinLock;

/// Bytes per frame and per page (4 KiB granule).
pub const COW_PAGE_SIZE: u64 = 4096;
/// First physical address the table covers: the start of RAM on QEMU `virt`.
pub const COW_RAM_BASE: u64 = 0x4000_0000;
/// One slot per frame of the 128 MiB of RAM, so every shareable frame has its own slot.
pub const MAX_COW_PAGES: usize = 128 * 1024 * 1024 / COW_PAGE_SIZE as usize;
/// Capacity of a `SimpleVec`: at most this many mappings share one frame.
pub const SIMPLE_VEC_CAPACITY: usize = 8;

/// The global copy-on-write manager. The debugger reads `locked` to know whether the
/// data is mid-update. Take it once per operation; never call code that takes it while
/// holding it (no path in the kernel does).
pub static COW_MANAGER: SpinLock<CowManager> = SpinLock::new(CowManager::new());

/// A fixed-capacity vector: the first `len` elements of `data` are live; the rest are
/// kept zeroed so a debugger dump shows nothing stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimpleVec<T> {
    pub data: [T; SIMPLE_VEC_CAPACITY],
    pub len: usize,
}

/// Process ids of a frame's mappings, parallel to `CowPage::virtual_addresses`.
pub type ProcessIdArray = SimpleVec<usize>;

impl<T: Copy + PartialEq> SimpleVec<T> {
    /// An empty vector whose unused slots hold `blank`.
    pub const fn new(blank: T) -> Self {
        Self { data: [blank; SIMPLE_VEC_CAPACITY], len: 0 }
    }

    pub const fn len(&self) -> usize {
        self.len
    }

    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub const fn is_full(&self) -> bool {
        self.len == SIMPLE_VEC_CAPACITY
    }

    pub fn as_slice(&self) -> &[T] {
        &self.data[..self.len]
    }

    /// Appends `value`; gives it back when the vector is full.
    pub fn push(&mut self, value: T) -> Result<(), T> {
        if self.is_full() {
            return Err(value);
        }
        self.data[self.len] = value;
        self.len += 1;
        Ok(())
    }

    /// Removes the element at `index` keeping the order of the others (parallel vectors
    /// stay aligned), and blanks the freed slot with `blank`.
    pub fn remove(&mut self, index: usize, blank: T) -> Option<T> {
        if index >= self.len {
            return None;
        }
        let value = self.data[index];
        self.data.copy_within(index + 1..self.len, index);
        self.len -= 1;
        self.data[self.len] = blank;
        Some(value)
    }
}

/// What a page was before copy-on-write protection (upstream's region kinds).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionType {
    KernelCode,
    KernelData,
    UserCode,
    UserData,
    Device,
    Shared,
}

/// One frame shared copy-on-write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CowPage {
    pub physical_addr: u64,
    /// Number of live mappings of the frame (== `virtual_addresses.len`).
    pub ref_count: usize,
    /// Always true for a tracked page: every mapping is read-only and a write copies.
    pub is_cow: bool,
    /// What the mappings were before protection (writable user data for fork).
    pub original_permissions: RegionType,
    pub virtual_addresses: SimpleVec<u64>,
    pub process_ids: ProcessIdArray,
}

impl CowPage {
    /// Index of the mapping (`va`, `pid`), if present.
    pub fn mapping_index(&self, va: u64, pid: usize) -> Option<usize> {
        (0..self.ref_count)
            .find(|&i| self.virtual_addresses.data[i] == va && self.process_ids.data[i] == pid)
    }

    /// The live mappings as (va, pid) pairs.
    pub fn mappings(&self) -> impl Iterator<Item = (u64, usize)> + '_ {
        self.virtual_addresses.as_slice().iter().copied().zip(self.process_ids.as_slice().iter().copied())
    }
}

/// Counters about copy-on-write, all kept true at every unlock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CowStatistics {
    /// Frames currently tracked.
    pub cow_pages_count: usize,
    /// Write faults on copy-on-write pages resolved (copies plus reuses).
    pub cow_faults_handled: usize,
    /// Of those, the faults that copied the frame.
    pub pages_duplicated: usize,
    /// Σ over tracked frames of (ref_count − 1) × 4096: memory not spent thanks to sharing.
    pub memory_saved_bytes: u64,
    /// size_of::<CowManager>(): what the bookkeeping costs.
    pub metadata_memory_bytes: u64,
    /// Largest `cow_pages_count` ever reached.
    pub peak_cow_pages: usize,
}

/// How a write fault on a tracked page was resolved; recorded by `CowManager::record_fault`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultResolution {
    /// The page was copied into a new frame for the writer.
    Duplicated,
    /// The writer was the last sharer: its mapping became writable in place.
    Reused,
}

/// Why a bookkeeping request was refused. Nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CowError {
    /// The address is not a page-aligned frame inside the RAM the table covers.
    NotRamFrame(u64),
    /// The frame is not tracked.
    NotTracked(u64),
    /// The frame is tracked but has no such (va, pid) mapping.
    MappingNotFound { pa: u64, va: u64, pid: usize },
    /// The (va, pid) mapping is already recorded for the frame.
    MappingExists { pa: u64, va: u64, pid: usize },
    /// The frame already has `SIMPLE_VEC_CAPACITY` mappings.
    TooManyMappings(u64),
    /// The mapping is recorded for a different frame already.
    MappedElsewhere { va: u64, pid: usize, pa: u64 },
}

impl fmt::Display for CowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CowError::NotRamFrame(pa) => write!(f, "0x{pa:X} is not a page-aligned RAM frame"),
            CowError::NotTracked(pa) => write!(f, "frame 0x{pa:X} is not a copy-on-write page"),
            CowError::MappingNotFound { pa, va, pid } => {
                write!(f, "frame 0x{pa:X} has no mapping at 0x{va:X} in pid {pid}")
            }
            CowError::MappingExists { pa, va, pid } => {
                write!(f, "frame 0x{pa:X} is already mapped at 0x{va:X} in pid {pid}")
            }
            CowError::TooManyMappings(pa) => {
                write!(f, "frame 0x{pa:X} already has {SIMPLE_VEC_CAPACITY} mappings")
            }
            CowError::MappedElsewhere { va, pid, pa } => {
                write!(f, "0x{va:X} in pid {pid} is already recorded for frame 0x{pa:X}")
            }
        }
    }
}

/// The copy-on-write manager: a frame-indexed table of shared pages plus statistics.
pub struct CowManager {
    /// `cow_pages[i]` describes the frame at `COW_RAM_BASE + i * 4096` when shared.
    pub cow_pages: [Option<CowPage>; MAX_COW_PAGES],
    /// Number of `Some` entries in `cow_pages`.
    pub active_pages: usize,
    pub statistics: CowStatistics,
    /// Kernel virtual address of the frame allocator that owns the tracked frames
    /// (`tinyos::memory::frame::FRAME_ALLOCATOR`), 0 until `attach` — a plain address so
    /// any debugger can read it.
    pub memory_manager: usize,
    /// The next process id to hand out (pids start at 1; 0 is the kernel).
    pub next_process_id: usize,
}

// SAFETY: the manager holds only plain data; `memory_manager` is an address, never
// dereferenced here.
unsafe impl Send for CowManager {}

impl Default for CowManager {
    fn default() -> Self {
        Self::new()
    }
}

impl CowManager {
    /// An empty manager. Large (one slot per RAM frame): build it in a static, never on
    /// a kernel stack.
    pub const fn new() -> Self {
        Self {
            cow_pages: [None; MAX_COW_PAGES],
            active_pages: 0,
            statistics: CowStatistics {
                cow_pages_count: 0,
                cow_faults_handled: 0,
                pages_duplicated: 0,
                memory_saved_bytes: 0,
                metadata_memory_bytes: core::mem::size_of::<CowManager>() as u64,
                peak_cow_pages: 0,
            },
            memory_manager: 0,
            next_process_id: 1,
        }
    }

    /// Records which frame allocator owns the tracked frames (its address).
    pub fn attach(&mut self, memory_manager: usize) {
        self.memory_manager = memory_manager;
    }

    /// Hands out a fresh process id.
    pub fn allocate_process_id(&mut self) -> usize {
        let pid = self.next_process_id;
        self.next_process_id += 1;
        pid
    }

    /// The table slot of frame `pa`.
    pub fn slot_of(pa: u64) -> Result<usize, CowError> {
        let in_ram = pa >= COW_RAM_BASE && pa < COW_RAM_BASE + MAX_COW_PAGES as u64 * COW_PAGE_SIZE;
        if !in_ram || pa % COW_PAGE_SIZE != 0 {
            return Err(CowError::NotRamFrame(pa));
        }
        Ok(((pa - COW_RAM_BASE) / COW_PAGE_SIZE) as usize)
    }

    /// The tracked page for frame `pa`, if any.
    pub fn find_by_pa(&self, pa: u64) -> Option<&CowPage> {
        Self::slot_of(pa).ok().and_then(|slot| self.cow_pages[slot].as_ref())
    }

    /// The tracked page that has the mapping (`va`, `pid`), if any (a scan of the table).
    pub fn find_by_mapping(&self, pid: usize, va: u64) -> Option<&CowPage> {
        self.pages().find(|page| page.mapping_index(va, pid).is_some())
    }

    /// Every tracked page, in physical-address order.
    pub fn pages(&self) -> impl Iterator<Item = &CowPage> + '_ {
        self.cow_pages.iter().filter_map(Option::as_ref)
    }

    /// Records that frame `pa`, mapped at `owner` = (va, pid), is now also mapped at
    /// `sharer` = (va, pid), both read-only. Starts tracking the frame (with `owner`
    /// as its first mapping) if it was not tracked; otherwise `owner` must already be
    /// one of its mappings. Returns the frame's new `ref_count`. All or nothing.
    pub fn share(
        &mut self,
        pa: u64,
        original_permissions: RegionType,
        owner: (u64, usize),
        sharer: (u64, usize),
    ) -> Result<usize, CowError> {
        let slot = Self::slot_of(pa)?;
        let (sharer_va, sharer_pid) = sharer;
        if owner == sharer {
            return Err(CowError::MappingExists { pa, va: sharer_va, pid: sharer_pid });
        }
        match &self.cow_pages[slot] {
            Some(page) => {
                if page.mapping_index(owner.0, owner.1).is_none() {
                    return Err(CowError::MappingNotFound { pa, va: owner.0, pid: owner.1 });
                }
                self.add_mapping(pa, sharer_va, sharer_pid)
            }
            None => {
                let mut page = CowPage {
                    physical_addr: pa,
                    ref_count: 0,
                    is_cow: true,
                    original_permissions,
                    virtual_addresses: SimpleVec::new(0),
                    process_ids: SimpleVec::new(0),
                };
                for (va, pid) in [owner, sharer] {
                    // Capacity is at least 2: these pushes cannot fail.
                    let _ = page.virtual_addresses.push(va);
                    let _ = page.process_ids.push(pid);
                    page.ref_count += 1;
                }
                self.cow_pages[slot] = Some(page);
                self.active_pages += 1;
                self.statistics.memory_saved_bytes += COW_PAGE_SIZE;
                self.sync_page_counts();
                Ok(2)
            }
        }
    }

    /// Starts tracking frame `pa` with the single mapping (`va`, `pid`) (a page protected
    /// by hand: its owner's next write reuses it in place). Returns the new `ref_count`.
    pub fn protect_single(
        &mut self,
        pa: u64,
        original_permissions: RegionType,
        va: u64,
        pid: usize,
    ) -> Result<usize, CowError> {
        let slot = Self::slot_of(pa)?;
        if let Some(page) = &self.cow_pages[slot] {
            return Err(match page.mapping_index(va, pid) {
                Some(_) => CowError::MappingExists { pa, va, pid },
                None => CowError::MappedElsewhere { va, pid, pa },
            });
        }
        self.refuse_if_recorded_elsewhere(va, pid)?;
        let mut page = CowPage {
            physical_addr: pa,
            ref_count: 1,
            is_cow: true,
            original_permissions,
            virtual_addresses: SimpleVec::new(0),
            process_ids: SimpleVec::new(0),
        };
        let _ = page.virtual_addresses.push(va);
        let _ = page.process_ids.push(pid);
        self.cow_pages[slot] = Some(page);
        self.active_pages += 1;
        self.sync_page_counts();
        Ok(1)
    }

    /// Adds the mapping (`va`, `pid`) to the already tracked frame `pa`. Returns the new
    /// `ref_count`.
    pub fn add_mapping(&mut self, pa: u64, va: u64, pid: usize) -> Result<usize, CowError> {
        let slot = Self::slot_of(pa)?;
        let Some(page) = &self.cow_pages[slot] else {
            return Err(CowError::NotTracked(pa));
        };
        if page.mapping_index(va, pid).is_some() {
            return Err(CowError::MappingExists { pa, va, pid });
        }
        if page.virtual_addresses.is_full() || page.process_ids.is_full() {
            return Err(CowError::TooManyMappings(pa));
        }
        let Some(page) = self.cow_pages[slot].as_mut() else {
            return Err(CowError::NotTracked(pa));
        };
        let _ = page.virtual_addresses.push(va);
        let _ = page.process_ids.push(pid);
        page.ref_count += 1;
        let refs = page.ref_count;
        self.statistics.memory_saved_bytes += COW_PAGE_SIZE;
        Ok(refs)
    }

    /// Removes the mapping (`va`, `pid`) of frame `pa`. Returns the frame's remaining
    /// `ref_count`; at 0 the frame is no longer tracked. Refuses (changing nothing) when
    /// the frame or the mapping is unknown.
    pub fn remove_mapping(&mut self, pa: u64, va: u64, pid: usize) -> Result<usize, CowError> {
        let slot = Self::slot_of(pa)?;
        let Some(page) = self.cow_pages[slot].as_mut() else {
            return Err(CowError::NotTracked(pa));
        };
        let Some(index) = page.mapping_index(va, pid) else {
            return Err(CowError::MappingNotFound { pa, va, pid });
        };
        page.virtual_addresses.remove(index, 0);
        page.process_ids.remove(index, 0);
        page.ref_count -= 1;
        let refs = page.ref_count;
        if refs > 0 {
            self.statistics.memory_saved_bytes -= COW_PAGE_SIZE;
        } else {
            self.cow_pages[slot] = None;
            self.active_pages -= 1;
            self.sync_page_counts();
        }
        Ok(refs)
    }

    /// Removes every mapping of a process `alive` says is gone (a debugger call abandoned
    /// while its processes shared pages leaves them behind, possibly half way through an
    /// update: `ref_count` and the two vectors may disagree). Each page keeps the mappings
    /// of live processes present in both vectors, its `ref_count` their number; a page
    /// left with none is no longer tracked; the derived figures are recomputed. Returns
    /// how many mappings were removed.
    pub fn forget_dead(&mut self, alive: &dyn Fn(usize) -> bool) -> usize {
        let mut removed = 0;
        for entry in self.cow_pages.iter_mut() {
            let Some(page) = entry.as_mut() else { continue };
            let len = page.virtual_addresses.len.min(page.process_ids.len).min(SIMPLE_VEC_CAPACITY);
            let intact = len == page.ref_count && len == page.virtual_addresses.len && len == page.process_ids.len;
            if intact && page.mappings().all(|(_, pid)| alive(pid)) {
                continue;
            }
            let pairs = page.as_pairs();
            let mut kept = 0;
            for &(va, pid) in pairs.iter().take(len).filter(|&&(_, pid)| alive(pid)) {
                page.virtual_addresses.data[kept] = va;
                page.process_ids.data[kept] = pid;
                kept += 1;
            }
            removed += page.ref_count.saturating_sub(kept).max(len - kept);
            for i in kept..SIMPLE_VEC_CAPACITY {
                page.virtual_addresses.data[i] = 0;
                page.process_ids.data[i] = 0;
            }
            (page.virtual_addresses.len, page.process_ids.len, page.ref_count) = (kept, kept, kept);
            if kept == 0 {
                *entry = None;
            }
        }
        let (pages, saved) = self.pages().fold((0, 0), |(n, saved), page| (n + 1, saved + (page.ref_count as u64 - 1) * COW_PAGE_SIZE));
        self.active_pages = pages;
        self.statistics.memory_saved_bytes = saved;
        self.sync_page_counts();
        removed
    }

    /// Stops tracking frame `pa` only if it has exactly one mapping left; returns that
    /// mapping. Used to unprotect a page by hand; a shared page is refused.
    pub fn untrack_sole(&mut self, pa: u64) -> Result<(u64, usize), CowError> {
        let slot = Self::slot_of(pa)?;
        let Some(page) = &self.cow_pages[slot] else {
            return Err(CowError::NotTracked(pa));
        };
        if page.ref_count != 1 {
            return Err(CowError::TooManyMappings(pa));
        }
        let mapping = (page.virtual_addresses.data[0], page.process_ids.data[0]);
        self.remove_mapping(pa, mapping.0, mapping.1)?;
        Ok(mapping)
    }

    /// Counts a resolved copy-on-write write fault.
    pub fn record_fault(&mut self, resolution: FaultResolution) {
        self.statistics.cow_faults_handled += 1;
        if resolution == FaultResolution::Duplicated {
            self.statistics.pages_duplicated += 1;
        }
    }

    /// Total number of mappings over all tracked frames.
    pub fn total_mappings(&self) -> usize {
        self.pages().map(|page| page.ref_count).sum()
    }

    /// Share of mapped bytes that sharing saves, in percent: Σ(ref−1) / Σ ref × 100
    /// (0 when nothing is tracked).
    pub fn memory_efficiency_percent(&self) -> u64 {
        let mapped = self.total_mappings() as u64 * COW_PAGE_SIZE;
        if mapped == 0 { 0 } else { self.statistics.memory_saved_bytes * 100 / mapped }
    }

    /// Recomputes every derived figure from the table and compares it with what is
    /// stored; returns the first broken invariant.
    pub fn verify(&self) -> Result<(), InvariantError> {
        let mut pages = 0usize;
        let mut saved = 0u64;
        for (slot, entry) in self.cow_pages.iter().enumerate() {
            let Some(page) = entry else { continue };
            let pa = page.physical_addr;
            if Self::slot_of(pa) != Ok(slot) {
                return Err(InvariantError::WrongSlot { slot, pa });
            }
            let consistent = page.ref_count > 0
                && page.ref_count == page.virtual_addresses.len
                && page.ref_count == page.process_ids.len
                && page.is_cow;
            if !consistent {
                return Err(InvariantError::BadRefCount { pa, ref_count: page.ref_count });
            }
            let mappings = page.as_pairs();
            for (i, m) in mappings.iter().take(page.ref_count).enumerate() {
                if mappings[..i].contains(m) {
                    return Err(InvariantError::DuplicateMapping { pa, va: m.0, pid: m.1 });
                }
            }
            pages += 1;
            saved += (page.ref_count as u64 - 1) * COW_PAGE_SIZE;
        }
        let stats = &self.statistics;
        let expected = [
            ("active_pages", self.active_pages as u64, pages as u64),
            ("cow_pages_count", stats.cow_pages_count as u64, pages as u64),
            ("memory_saved_bytes", stats.memory_saved_bytes, saved),
            ("metadata_memory_bytes", stats.metadata_memory_bytes, core::mem::size_of::<CowManager>() as u64),
        ];
        for (field, stored, computed) in expected {
            if stored != computed {
                return Err(InvariantError::WrongFigure { field, stored, computed });
            }
        }
        if stats.peak_cow_pages < pages {
            let (stored, computed) = (stats.peak_cow_pages as u64, pages as u64);
            return Err(InvariantError::WrongFigure { field: "peak_cow_pages", stored, computed });
        }
        if stats.pages_duplicated > stats.cow_faults_handled {
            let (stored, computed) = (stats.pages_duplicated as u64, stats.cow_faults_handled as u64);
            return Err(InvariantError::WrongFigure { field: "pages_duplicated", stored, computed });
        }
        Ok(())
    }

    fn refuse_if_recorded_elsewhere(&self, va: u64, pid: usize) -> Result<(), CowError> {
        match self.find_by_mapping(pid, va) {
            Some(page) => Err(CowError::MappedElsewhere { va, pid, pa: page.physical_addr }),
            None => Ok(()),
        }
    }

    fn sync_page_counts(&mut self) {
        self.statistics.cow_pages_count = self.active_pages;
        if self.active_pages > self.statistics.peak_cow_pages {
            self.statistics.peak_cow_pages = self.active_pages;
        }
    }
}

impl CowPage {
    fn as_pairs(&self) -> [(u64, usize); SIMPLE_VEC_CAPACITY] {
        core::array::from_fn(|i| (self.virtual_addresses.data[i], self.process_ids.data[i]))
    }
}

/// A broken invariant found by `CowManager::verify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvariantError {
    WrongSlot { slot: usize, pa: u64 },
    BadRefCount { pa: u64, ref_count: usize },
    DuplicateMapping { pa: u64, va: u64, pid: usize },
    WrongFigure { field: &'static str, stored: u64, computed: u64 },
}

impl fmt::Display for InvariantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            InvariantError::WrongSlot { slot, pa } => write!(f, "slot {slot} holds frame 0x{pa:X}"),
            InvariantError::BadRefCount { pa, ref_count } => {
                write!(f, "frame 0x{pa:X}: ref_count {ref_count} does not match its mappings")
            }
            InvariantError::DuplicateMapping { pa, va, pid } => {
                write!(f, "frame 0x{pa:X}: mapping 0x{va:X}/pid {pid} recorded twice")
            }
            InvariantError::WrongFigure { field, stored, computed } => {
                write!(f, "{field} is {stored} but the table gives {computed}")
            }
        }
    }
}
