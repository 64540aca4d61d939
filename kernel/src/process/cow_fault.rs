//! The copy-on-write fault path and the page-table side of copy-on-write: resolving a
//! write to a shared page (EL0 write, EC 0x24, or a kernel write into a user page,
//! EC 0x25), and the shell's/debugger's create/protect/unprotect operations.
//!
//! A fault takes `COW_MANAGER` once, does the whole decision and every page-table change
//! under it, and releases it before emitting debugger events; no path takes it while
//! holding it or while holding `PROCESSES`. The
//! rules (Linux `do_wp_page`):
//! - the page is tracked and has other sharers: allocate a frame, copy 4 KiB, remap the
//!   faulting VA writable to the copy (break-before-make: invalid entry, `tlbi vae1is`
//!   by VA + ASID, `dsb ish`, `isb`, new entry, invalidate again), and only then drop
//!   the old frame's reference and this mapping from the manager;
//! - the faulting process is the last sharer: the entry becomes writable in place (no
//!   copy) and the frame leaves the manager;
//! - a read-only page that is not tracked (code) is not copy-on-write: the caller kills.
//! A copy-on-write PTE is read-only and carries the software bit [`SW_COW`] (bit 55),
//! so the tables alone show which entries the manager should know about.

use crate::debug::{self, tinyos_debug_event};
use crate::memory::address_space::{AddressSpace, MapError};
use crate::memory::cow::{COW_MANAGER, CowError, CowManager, FaultResolution, RegionType};
use crate::memory::descriptor::{Ap, Attributes, Descriptor};
use crate::memory::{PAGE_SIZE, PhysAddr, RAM_END, RAM_START, VirtAddr, frame};

use super::{PROCESSES, Process};

/// Descriptor software bit (of bits [58:55]) marking a copy-on-write entry.
pub const SW_COW: u8 = 0b0001;
// The software field is PTE bits [58:55]: SW_COW is the contract's bit.
const _: () = assert!((SW_COW as u64) << 55 == 1 << crate::debug::CONTRACT.cow_pte_sw_bit);

/// Why a write fault is not a resolvable copy-on-write fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteFaultError {
    /// No page maps the address.
    NotMapped,
    /// The page is read-only and not copy-on-write (e.g. code).
    ReadOnly,
    /// No frame is left for the copy.
    OutOfFrames,
    /// The tables and the manager disagree (reported, nothing changed).
    Inconsistent,
}

impl WriteFaultError {
    pub const fn reason(self) -> &'static str {
        match self {
            WriteFaultError::NotMapped => "write to an unmapped address",
            WriteFaultError::ReadOnly => "write to a read-only page that is not copy-on-write",
            WriteFaultError::OutOfFrames => "out of frames while copying a copy-on-write page",
            WriteFaultError::Inconsistent => "copy-on-write tables and manager disagree",
        }
    }
}

/// How a fault was resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Copied into `new`; `old` lost one reference.
    Duplicated { old: u64, new: u64 },
    /// Made writable in place (last sharer).
    Reused { pa: u64 },
    /// Already writable (a stale TLB entry): nothing to do, retry.
    AlreadyWritable,
}

/// The attributes of a copy-on-write entry made from `attrs`.
pub const fn cow_attributes(attrs: Attributes) -> Attributes {
    Attributes { software: attrs.software | SW_COW, ..attrs.read_only() }
}

/// The attributes of a private writable entry made from a copy-on-write one.
pub const fn private_attributes(attrs: Attributes) -> Attributes {
    Attributes { software: attrs.software & !SW_COW, ..attrs.writable() }
}

/// Whether an entry is (meant to be) writable: writable now, or copy-on-write.
pub const fn writable_by_design(desc: Descriptor) -> bool {
    desc.ap().writable() || desc.software() & SW_COW != 0
}

/// Resolves a write by process `pid` (address space `space`) to `far`.
#[inline(never)]
pub fn handle_write_fault(pid: usize, space: &AddressSpace<'_>, far: u64) -> Result<Resolution, WriteFaultError> {
    let va = VirtAddr::new(far & !(PAGE_SIZE - 1));
    let desc = space.page(va).ok_or(WriteFaultError::NotMapped)?;
    if desc.ap() == Ap::El1RwEl0Rw {
        return Ok(Resolution::AlreadyWritable);
    }
    let resolution = {
        let mut cow = COW_MANAGER.lock();
        resolve_locked(&mut cow, pid, space, va, desc)?
    };
    match resolution {
        Resolution::Duplicated { new, .. } => {
            tinyos_debug_event(debug::EVENT_PAGE_DUPLICATED, va.as_u64(), new);
        }
        Resolution::Reused { pa } => tinyos_debug_event(debug::EVENT_PAGE_REUSED, va.as_u64(), pa),
        Resolution::AlreadyWritable => {}
    }
    tinyos_debug_event(debug::EVENT_COW_FAULT, pid as u64, far);
    Ok(resolution)
}

#[inline(never)]
fn resolve_locked(
    cow: &mut CowManager,
    pid: usize,
    space: &AddressSpace<'_>,
    va: VirtAddr,
    desc: Descriptor,
) -> Result<Resolution, WriteFaultError> {
    let pa = desc.address();
    let Some(page) = cow.find_by_pa(pa.as_u64()) else {
        return Err(if desc.software() & SW_COW != 0 {
            WriteFaultError::Inconsistent
        } else {
            WriteFaultError::ReadOnly
        });
    };
    if page.mapping_index(va.as_u64(), pid).is_none() {
        return Err(WriteFaultError::Inconsistent);
    }
    let writable = private_attributes(desc.attributes());
    if page.ref_count == 1 {
        space.protect(va, writable).map_err(|_| WriteFaultError::Inconsistent)?.flush();
        cow.remove_mapping(pa.as_u64(), va.as_u64(), pid).map_err(|_| WriteFaultError::Inconsistent)?;
        cow.record_fault(FaultResolution::Reused);
        return Ok(Resolution::Reused { pa: pa.as_u64() });
    }
    let new = frame::alloc().ok_or(WriteFaultError::OutOfFrames)?;
    // SAFETY: both frames are RAM in the linear map; `new` is fresh and private.
    unsafe { core::ptr::copy_nonoverlapping(pa.as_ptr::<u8>(), new.as_ptr::<u8>(), PAGE_SIZE as usize) };
    match space.remap(va, new, writable) {
        Ok((_, flush)) => flush.flush(),
        Err(_) => {
            let _ = frame::free(new);
            return Err(WriteFaultError::Inconsistent);
        }
    }
    // Only now, with the new entry installed and the TLB flushed, may another sharer
    // see the old frame's count drop.
    let _ = cow.remove_mapping(pa.as_u64(), va.as_u64(), pid);
    let _ = frame::dec_ref(pa);
    cow.record_fault(FaultResolution::Duplicated);
    Ok(Resolution::Duplicated { old: pa.as_u64(), new: new.as_u64() })
}

/// Shares the page at `va` of `parent` (pid `ppid`) with `child` (pid `cpid`) at the
/// same VA during fork, with `cow` held: a page read-only by design is shared without
/// tracking; a writable or copy-on-write page becomes copy-on-write in both (tracked);
/// a frame that already has the most mappings the manager records is copied for the
/// child instead. On error nothing of this page changed.
#[inline(never)]
pub fn share_for_fork(
    cow: &mut CowManager,
    parent: &AddressSpace<'_>,
    ppid: usize,
    child: &AddressSpace<'_>,
    cpid: usize,
    va: VirtAddr,
    desc: Descriptor,
) -> Result<(), MapError> {
    let pa = desc.address();
    let attrs = desc.attributes();
    if !writable_by_design(desc) {
        frame::inc_ref(pa).map_err(|_| MapError::OutOfFrames)?;
        return match child.map(va, pa, attrs) {
            Ok(flush) => Ok(flush.flush()),
            Err(err) => {
                let _ = frame::dec_ref(pa);
                Err(err)
            }
        };
    }
    share_cow(cow, (parent, ppid, va), (child, cpid, va), pa, attrs)
}

/// Makes frame `pa`, mapped at `owner`, copy-on-write shared with `sharer` (mapping it
/// there read-only); copies instead when the frame has too many mappings. All or nothing.
fn share_cow(
    cow: &mut CowManager,
    owner: (&AddressSpace<'_>, usize, VirtAddr),
    sharer: (&AddressSpace<'_>, usize, VirtAddr),
    pa: PhysAddr,
    attrs: Attributes,
) -> Result<(), MapError> {
    let (owner_space, owner_pid, owner_va) = owner;
    let (sharer_space, sharer_pid, sharer_va) = sharer;
    let was_tracked = cow.find_by_pa(pa.as_u64()).is_some();
    let shared_attrs = cow_attributes(attrs);
    match cow.share(pa.as_u64(), RegionType::UserData, (owner_va.as_u64(), owner_pid), (sharer_va.as_u64(), sharer_pid)) {
        Ok(_) => {}
        Err(CowError::TooManyMappings(_)) => return copy_for(sharer_space, sharer_va, pa, attrs),
        Err(_) => return Err(MapError::NotMapped(owner_va)),
    }
    let undo = |cow: &mut CowManager| {
        let _ = cow.remove_mapping(pa.as_u64(), sharer_va.as_u64(), sharer_pid);
        if !was_tracked {
            let _ = cow.remove_mapping(pa.as_u64(), owner_va.as_u64(), owner_pid);
        }
    };
    if frame::inc_ref(pa).is_err() {
        undo(cow);
        return Err(MapError::OutOfFrames);
    }
    match sharer_space.map(sharer_va, pa, shared_attrs) {
        Ok(flush) => flush.flush(),
        Err(err) => {
            let _ = frame::dec_ref(pa);
            undo(cow);
            return Err(err);
        }
    }
    if attrs.ap.writable() {
        owner_space.protect(owner_va, shared_attrs)?.flush();
    }
    Ok(())
}

/// Gives `space` a private writable copy of frame `pa` at `va`.
fn copy_for(space: &AddressSpace<'_>, va: VirtAddr, pa: PhysAddr, attrs: Attributes) -> Result<(), MapError> {
    let new = frame::alloc().ok_or(MapError::OutOfFrames)?;
    // SAFETY: RAM frames in the linear map; `new` is fresh.
    unsafe { core::ptr::copy_nonoverlapping(pa.as_ptr::<u8>(), new.as_ptr::<u8>(), PAGE_SIZE as usize) };
    match space.map(va, new, private_attributes(attrs)) {
        Ok(flush) => Ok(flush.flush()),
        Err(err) => {
            let _ = frame::free(new);
            Err(err)
        }
    }
}

/// Removes the page at `va` from process `pid`'s `space` (sbrk shrink, exit): its
/// copy-on-write mapping leaves the manager and its frame loses a reference (freed when
/// nobody maps it). The TLB entry is invalidated.
#[inline(never)]
pub fn release_page(cow: &mut CowManager, space: &AddressSpace<'_>, pid: usize, va: VirtAddr) {
    let Ok((pa, flush)) = space.unmap(va) else { return };
    flush.flush();
    if cow.find_by_pa(pa.as_u64()).is_some_and(|p| p.mapping_index(va.as_u64(), pid).is_some()) {
        let _ = cow.remove_mapping(pa.as_u64(), va.as_u64(), pid);
    }
    let _ = frame::dec_ref(pa);
}

// ------------------------------------------------------------------ shell operations

/// Why a shell/debugger copy-on-write operation was refused (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CowOpError {
    NoSuchProcess(usize),
    NeedTwoProcesses,
    NotMapped { pid: usize, va: u64 },
    NotMappedAnywhere(u64),
    AlreadyMapped { pid: usize, va: u64 },
    ReadOnlyByDesign(u64),
    AlreadyProtected(u64),
    NotProtected(u64),
    Shared { pa: u64, refs: usize },
    Ambiguous(u64),
    SamePage,
    BadAddress(u64),
    Manager(CowError),
    Map(MapError),
}

impl core::fmt::Display for CowOpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            CowOpError::NoSuchProcess(pid) => write!(f, "no live process with pid {pid}"),
            CowOpError::NeedTwoProcesses => f.write_str("need two live processes"),
            CowOpError::NotMapped { pid, va } => write!(f, "0x{va:X} is not mapped in pid {pid}"),
            CowOpError::NotMappedAnywhere(addr) => write!(f, "0x{addr:X} is not mapped by any process"),
            CowOpError::AlreadyMapped { pid, va } => write!(f, "0x{va:X} is already mapped in pid {pid}"),
            CowOpError::ReadOnlyByDesign(pa) => {
                write!(f, "page 0x{pa:X} is read-only by design (code), not copy-on-write")
            }
            CowOpError::AlreadyProtected(pa) => write!(f, "page 0x{pa:X} is already copy-on-write"),
            CowOpError::NotProtected(pa) => write!(f, "page 0x{pa:X} is not a copy-on-write page"),
            CowOpError::Shared { pa, refs } => write!(
                f,
                "page 0x{pa:X} is shared by {refs} mappings: making it writable would let one \
                 process's writes appear in the others"
            ),
            CowOpError::Ambiguous(va) => {
                write!(f, "0x{va:X} maps different frames in several processes: give the pid")
            }
            CowOpError::SamePage => f.write_str("source and destination are the same mapping"),
            CowOpError::BadAddress(addr) => write!(f, "0x{addr:X} is not a page-aligned user address"),
            CowOpError::Manager(err) => write!(f, "{err}"),
            CowOpError::Map(err) => write!(f, "{err}"),
        }
    }
}

/// A live process (a snapshot of its slot): its pid and a view of its address space.
#[derive(Clone, Copy)]
pub struct Target {
    pub pid: usize,
    process: Process,
}

impl Target {
    pub fn space(&self) -> AddressSpace<'_> { self.process.space() }
}

fn live_processes() -> [Option<Process>; super::MAX_PROCESSES] {
    let table = PROCESSES.lock();
    core::array::from_fn(|i| Some(table[i]).filter(Process::is_live))
}

/// The live process `pid`.
pub fn target(pid: usize) -> Result<Target, CowOpError> {
    live_processes()
        .iter()
        .flatten()
        .find(|p| p.pid == pid)
        .map(|p| Target { pid: p.pid, process: *p })
        .ok_or(CowOpError::NoSuchProcess(pid))
}

/// The oldest and the newest live processes (for `~3` without pids).
pub fn default_pair() -> Result<(Target, Target), CowOpError> {
    let live = live_processes();
    let mut pids = live.iter().flatten().map(|p| p.pid);
    let first = pids.clone().min().ok_or(CowOpError::NeedTwoProcesses)?;
    let last = pids.by_ref().max().filter(|&p| p != first).ok_or(CowOpError::NeedTwoProcesses)?;
    Ok((target(first)?, target(last)?))
}

fn user_page(va: u64) -> Result<VirtAddr, CowOpError> {
    let v = VirtAddr::new(va);
    if v.is_user() && v.is_aligned(PAGE_SIZE) { Ok(v) } else { Err(CowOpError::BadAddress(va)) }
}

/// What `create` did.
#[derive(Clone, Copy, Debug)]
pub struct Created {
    pub pa: u64,
    pub refs: usize,
}

/// Shares the page at `src_va` of `src` with `dst` at `dst_va` (which must be
/// unmapped), copy-on-write: both read-only, tracked.
pub fn create(src: Target, src_va: u64, dst: Target, dst_va: u64) -> Result<Created, CowOpError> {
    let (src_va, dst_va) = (user_page(src_va)?, user_page(dst_va)?);
    if src.pid == dst.pid && src_va == dst_va {
        return Err(CowOpError::SamePage);
    }
    let desc = src.space().page(src_va).ok_or(CowOpError::NotMapped { pid: src.pid, va: src_va.as_u64() })?;
    if !writable_by_design(desc) {
        return Err(CowOpError::ReadOnlyByDesign(desc.address().as_u64()));
    }
    if dst.space().translate(dst_va).is_some() {
        return Err(CowOpError::AlreadyMapped { pid: dst.pid, va: dst_va.as_u64() });
    }
    let pa = desc.address();
    let refs = {
        let mut cow = COW_MANAGER.lock();
        // `share_cow` gives a sharer a private copy when the frame is full (what fork
        // needs); a share asked for by name must be refused instead.
        if cow.find_by_pa(pa.as_u64()).is_some_and(|p| p.virtual_addresses.is_full()) {
            return Err(CowOpError::Manager(CowError::TooManyMappings(pa.as_u64())));
        }
        share_cow(&mut cow, (&src.space(), src.pid, src_va), (&dst.space(), dst.pid, dst_va), pa, desc.attributes())
            .map_err(CowOpError::Map)?;
        cow.find_by_pa(pa.as_u64()).map_or(0, |p| p.ref_count)
    };
    Ok(Created { pa: pa.as_u64(), refs })
}

/// The frame a `~4`/`~5` argument names: a RAM PA as is, or a user VA resolved in
/// process `pid` (or in every live process, which must agree).
pub fn resolve_frame(addr: u64, pid: Option<usize>) -> Result<PhysAddr, CowOpError> {
    if (RAM_START..RAM_END).contains(&addr) {
        let pa = PhysAddr::new(addr & !(PAGE_SIZE - 1));
        return Ok(pa);
    }
    let va = user_page(addr & !(PAGE_SIZE - 1))?;
    if let Some(pid) = pid {
        let t = target(pid)?;
        return t.space().page(va).map(|d| d.address()).ok_or(CowOpError::NotMapped { pid, va: va.as_u64() });
    }
    let mut found: Option<PhysAddr> = None;
    for p in live_processes().iter().flatten() {
        if let Some(desc) = p.space().page(va) {
            match found {
                Some(pa) if pa != desc.address() => return Err(CowOpError::Ambiguous(addr)),
                _ => found = Some(desc.address()),
            }
        }
    }
    found.ok_or(CowOpError::NotMappedAnywhere(addr))
}

/// Every (process, va, descriptor) mapping frame `pa` among live processes.
fn mappings_of(pa: PhysAddr, out: &mut dyn FnMut(&Process, VirtAddr, Descriptor)) {
    for p in live_processes().iter().flatten() {
        p.space().for_each_page(&mut |va, desc| {
            if desc.address() == pa {
                out(p, va, desc);
            }
        });
    }
}

/// `~4`: makes the frame `pa` copy-on-write. It must be mapped writable by exactly one
/// process (a private page); it is then tracked with one reference, and its owner's
/// next write reuses it in place.
pub fn protect(pa: PhysAddr) -> Result<usize, CowOpError> {
    if COW_MANAGER.lock().find_by_pa(pa.as_u64()).is_some() {
        return Err(CowOpError::AlreadyProtected(pa.as_u64()));
    }
    let mut owner: Option<(Process, VirtAddr, Descriptor)> = None;
    let mut count = 0;
    mappings_of(pa, &mut |p, va, desc| {
        count += 1;
        owner = Some((*p, va, desc));
    });
    let Some((process, va, desc)) = owner else {
        return Err(CowOpError::NotMappedAnywhere(pa.as_u64()));
    };
    if count > 1 || !desc.ap().writable() {
        return Err(CowOpError::ReadOnlyByDesign(pa.as_u64()));
    }
    let mut cow = COW_MANAGER.lock();
    let pid = process.pid;
    cow.protect_single(pa.as_u64(), RegionType::UserData, va.as_u64(), pid).map_err(CowOpError::Manager)?;
    match process.space().protect(va, cow_attributes(desc.attributes())) {
        Ok(flush) => flush.flush(),
        Err(err) => {
            let _ = cow.remove_mapping(pa.as_u64(), va.as_u64(), pid);
            return Err(CowOpError::Map(err));
        }
    }
    Ok(1)
}

/// `~5`: makes a copy-on-write frame writable again — only when a single mapping is
/// left (otherwise the sharers would see each other's writes).
pub fn unprotect(pa: PhysAddr) -> Result<(), CowOpError> {
    let (va, pid) = {
        let cow = COW_MANAGER.lock();
        let Some(page) = cow.find_by_pa(pa.as_u64()) else {
            return Err(CowOpError::NotProtected(pa.as_u64()));
        };
        if page.ref_count != 1 {
            return Err(CowOpError::Shared { pa: pa.as_u64(), refs: page.ref_count });
        }
        (page.virtual_addresses.data[0], page.process_ids.data[0])
    };
    let t = target(pid)?;
    let va = VirtAddr::new(va);
    let desc = t.space().page(va).ok_or(CowOpError::NotMapped { pid, va: va.as_u64() })?;
    let mut cow = COW_MANAGER.lock();
    cow.untrack_sole(pa.as_u64()).map_err(CowOpError::Manager)?;
    t.space().protect(va, private_attributes(desc.attributes())).map_err(CowOpError::Map)?.flush();
    Ok(())
}
