//! The physical frame allocator: 4 KiB frames of RAM not used by the kernel image (which
//! includes .bss, the boot and kernel translation tables and the boot stack).
//!
//! State lives in one static, [`FRAME_ALLOCATOR`], a `SpinLock<Frames>` like every other
//! shared kernel state (lock word `locked`, then `data`), laid out so a debugger can
//! decode it from memory without running code: `FRAME_ALLOCATOR.data.value` is a
//! [`Frames`] with the base PA, the number of RAM frames, the number managed, the free count and a
//! per-frame `u16` reference count (0 = free, [`RESERVED`] = kernel image, never handed
//! out). Frame `i` is the PA `base_pa + i * 4096`.
//!
//! While the debugger's call of an entry point is pending (`crate::entry_points`), every
//! frame handed out is also marked in `call_log` (one bit per RAM frame, so the log is
//! bounded and cannot overflow), in the same critical section as the allocation: if the
//! debugger abandons the call, `tinyos_debug_recover` frees the marked frames no
//! surviving owner reaches (e.g. one allocated and not mapped yet when the call was cut).
//!
//! Errors never corrupt the state: a free of a frame that is not allocated (double
//! free), a PA outside RAM or inside the image, or a reference-count overflow is
//! refused with a [`FrameError`] and logged on the console.

use super::{PAGE_SIZE, PhysAddr, RAM_SIZE, RAM_START};
use crate::sync::SpinLock;
use core::fmt;

/// Frames of RAM covered by the reference-count array.
pub const MAX_FRAMES: usize = (RAM_SIZE / PAGE_SIZE) as usize;
/// Reference count of a frame that belongs to the kernel image.
pub const RESERVED: u16 = u16::MAX;
/// The largest count a frame may reach (below [`RESERVED`]).
pub const MAX_REFS: u16 = u16::MAX - 1;

/// The allocator's decodable state.
#[repr(C)]
pub struct Frames {
    /// PA of frame 0 (the start of RAM).
    pub base_pa: u64,
    /// Frames covered by `ref_counts` (all of RAM).
    pub frame_count: usize,
    /// Frames the allocator manages: `frame_count` minus the kernel image.
    pub total_frames: usize,
    /// Managed frames whose count is 0.
    pub free_frames: usize,
    /// Where the next search for a free frame starts.
    pub next_hint: usize,
    /// Per-frame reference count: 0 = free, `RESERVED` = kernel image.
    pub ref_counts: [u16; MAX_FRAMES],
    /// The frames handed out while a debugger call is pending.
    pub call_log: CallLog,
}

/// Words of [`CallLog::frames`]: one bit per RAM frame.
pub const CALL_LOG_WORDS: usize = MAX_FRAMES.div_ceil(64);

/// The frames allocated during a pending debugger call: bit `i % 64` of word `i / 64`
/// is frame `i`. A bit stays set when the frame is freed again (recovery skips free
/// frames), so the log covers every frame however often it is recycled.
#[repr(C)]
pub struct CallLog {
    /// 1 while a call is pending (allocations are logged).
    pub active: u8,
    pub frames: [u64; CALL_LOG_WORDS],
}

impl CallLog {
    fn mark(&mut self, index: usize) { self.frames[index / 64] |= 1 << (index % 64); }
    fn unmark(&mut self, index: usize) { self.frames[index / 64] &= !(1 << (index % 64)); }
    fn marked(&self, index: usize) -> bool { self.frames[index / 64] & (1 << (index % 64)) != 0 }
}

/// Why a frame operation was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameError {
    /// The PA is not page aligned or not in RAM.
    BadAddress(PhysAddr),
    /// The frame belongs to the kernel image.
    Reserved(PhysAddr),
    /// The frame is free (a double free or a reference to a free frame).
    NotAllocated(PhysAddr),
    /// `free` of a frame that other mappings still reference.
    StillShared(PhysAddr, u16),
    /// The count would exceed [`MAX_REFS`].
    TooManyReferences(PhysAddr),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::BadAddress(pa) => write!(f, "{pa:#x} is not a page-aligned RAM address"),
            FrameError::Reserved(pa) => write!(f, "{pa:#x} belongs to the kernel image"),
            FrameError::NotAllocated(pa) => write!(f, "{pa:#x} is not allocated (double free?)"),
            FrameError::StillShared(pa, n) => write!(f, "{pa:#x} still has {n} references"),
            FrameError::TooManyReferences(pa) => write!(f, "{pa:#x} reference count would overflow"),
        }
    }
}

/// Counts for `mem` and for tests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FrameStats {
    pub total: usize,
    pub free: usize,
}

impl FrameStats {
    pub const fn used(&self) -> usize { self.total - self.free }
}

/// The kernel's frame allocator. Its lock is held (IRQs masked) for one operation at a
/// time and never across a call out of this module; taking it again while held (a
/// re-entry, e.g. from a fault inside an operation) panics instead of hanging.
pub static FRAME_ALLOCATOR: SpinLock<Frames> = SpinLock::new(Frames {
    // Zero until `init` so the static lives in .bss, not in the ELF file.
    base_pa: 0,
    frame_count: 0,
    total_frames: 0,
    free_frames: 0,
    next_hint: 0,
    ref_counts: [0; MAX_FRAMES],
    call_log: CallLog { active: 0, frames: [0; CALL_LOG_WORDS] },
});

/// Runs `f` with the allocator's state, holding its lock.
#[track_caller]
fn with<R>(f: impl FnOnce(&mut Frames) -> R) -> R {
    f(&mut FRAME_ALLOCATOR.lock())
}

impl Frames {
    fn index(&self, pa: PhysAddr) -> Result<usize, FrameError> {
        let offset = pa.as_u64().wrapping_sub(self.base_pa);
        if !pa.is_aligned(PAGE_SIZE) || pa.as_u64() < self.base_pa || offset / PAGE_SIZE >= self.frame_count as u64 {
            return Err(FrameError::BadAddress(pa));
        }
        let index = (offset / PAGE_SIZE) as usize;
        match self.ref_counts[index] {
            RESERVED => Err(FrameError::Reserved(pa)),
            0 => Err(FrameError::NotAllocated(pa)),
            _ => Ok(index),
        }
    }

    fn pa(&self, index: usize) -> PhysAddr {
        PhysAddr::new(self.base_pa + index as u64 * PAGE_SIZE)
    }
}

/// Sets up the allocator over all of RAM, reserving the kernel image [`image_start`,
/// `image_end`) (physical, page aligned). Called once at boot.
pub fn init(image_start: PhysAddr, image_end: PhysAddr) {
    with(|s| {
        s.base_pa = RAM_START;
        s.frame_count = MAX_FRAMES;
        let mut reserved = 0;
        for (i, count) in s.ref_counts.iter_mut().enumerate() {
            let pa = RAM_START + i as u64 * PAGE_SIZE;
            let in_image = pa >= image_start.as_u64() && pa < image_end.as_u64();
            *count = if in_image { RESERVED } else { 0 };
            reserved += in_image as usize;
        }
        s.total_frames = MAX_FRAMES - reserved;
        s.free_frames = s.total_frames;
        s.next_hint = 0;
    });
}

/// Allocates one zeroed frame with reference count 1, or `None` when RAM is exhausted.
pub fn alloc() -> Option<PhysAddr> {
    let pa = with(|s| {
        if s.free_frames == 0 {
            return None;
        }
        let n = s.frame_count;
        let index = (0..n).map(|i| (s.next_hint + i) % n).find(|&i| s.ref_counts[i] == 0)?;
        // Logged before it is taken: a debugger stop between the two steps leaves a
        // logged free frame (skipped by recovery), never an unlogged allocated one.
        if s.call_log.active != 0 {
            s.call_log.mark(index);
        }
        s.ref_counts[index] = 1;
        s.free_frames -= 1;
        s.next_hint = (index + 1) % n;
        Some(s.pa(index))
    })?;
    // SAFETY: the frame was free, so nothing else uses it; RAM is linearly mapped RW.
    unsafe { core::ptr::write_bytes(pa.as_ptr::<u8>(), 0, PAGE_SIZE as usize) };
    Some(pa)
}

/// Adds a reference to an allocated frame (a new mapping of it); returns the new count.
pub fn inc_ref(pa: PhysAddr) -> Result<u16, FrameError> {
    logged("inc_ref", with(|s| {
        let i = s.index(pa)?;
        if s.ref_counts[i] >= MAX_REFS {
            return Err(FrameError::TooManyReferences(pa));
        }
        s.ref_counts[i] += 1;
        Ok(s.ref_counts[i])
    }))
}

/// Drops a reference; the frame becomes free when the count reaches 0. Returns the new count.
pub fn dec_ref(pa: PhysAddr) -> Result<u16, FrameError> {
    logged("dec_ref", with(|s| {
        let i = s.index(pa)?;
        s.ref_counts[i] -= 1;
        if s.ref_counts[i] == 0 {
            s.free_frames += 1;
        }
        Ok(s.ref_counts[i])
    }))
}

/// Frees a frame held by exactly one reference. A double free, a shared frame or a
/// bad address is refused (and logged) without changing anything.
pub fn free(pa: PhysAddr) -> Result<(), FrameError> {
    logged("free", with(|s| {
        let i = s.index(pa)?;
        if s.ref_counts[i] != 1 {
            return Err(FrameError::StillShared(pa, s.ref_counts[i]));
        }
        s.ref_counts[i] = 0;
        s.free_frames += 1;
        Ok(())
    }))
}

/// The reference count of a frame (0 = free, [`RESERVED`] = image), `None` outside RAM.
pub fn ref_count(pa: PhysAddr) -> Option<u16> {
    with(|s| {
        let offset = pa.as_u64().checked_sub(s.base_pa)? / PAGE_SIZE;
        s.ref_counts.get(offset as usize).copied().filter(|_| (offset as usize) < s.frame_count)
    })
}

/// Total and free managed frames.
pub fn stats() -> FrameStats {
    with(|s| FrameStats { total: s.total_frames, free: s.free_frames })
}

/// Starts logging allocations for a debugger call (forgets an earlier call's log).
pub fn begin_call_log() {
    with(|s| {
        s.call_log.frames = [0; CALL_LOG_WORDS];
        s.call_log.active = 1;
    });
}

/// Stops logging allocations; the log is kept for [`reclaim_call_log`].
pub fn end_call_log() {
    with(|s| s.call_log.active = 0);
}

/// Takes `pa` out of the call log: a surviving owner holds it, recovery must not free it.
pub fn keep(pa: PhysAddr) {
    with(|s| {
        let offset = pa.as_u64().wrapping_sub(s.base_pa) / PAGE_SIZE;
        if pa.as_u64() >= s.base_pa && (offset as usize) < s.frame_count {
            s.call_log.unmark(offset as usize);
        }
    });
}

/// Frees every frame of the call log still allocated (its owners are gone: the caller
/// kept the surviving ones with [`keep`]), empties the log and recounts `free_frames`
/// from the reference counts (a debugger stop inside an allocation may have left the
/// count one off). Returns how many frames it freed.
pub fn reclaim_call_log() -> usize {
    with(|s| {
        s.call_log.active = 0;
        let mut freed = 0;
        for index in 0..s.frame_count {
            if s.call_log.marked(index) && s.ref_counts[index] != 0 && s.ref_counts[index] != RESERVED {
                s.ref_counts[index] = 0;
                freed += 1;
            }
        }
        s.call_log.frames = [0; CALL_LOG_WORDS];
        s.free_frames = s.ref_counts[..s.frame_count].iter().filter(|&&count| count == 0).count();
        freed
    })
}

fn logged<T>(op: &str, result: Result<T, FrameError>) -> Result<T, FrameError> {
    if let Err(err) = &result {
        crate::println!("frame allocator: refused {op}: {err}");
    }
    result
}

/// Struct layouts the debugger decodes (for the `layout` command).
pub fn layout(out: &mut dyn FnMut(crate::layout::Line)) {
    use crate::layout::Line;
    use core::mem::{align_of, size_of};
    type Lock = SpinLock<Frames>;
    const NAME: &str = "SpinLock<Frames>";
    out(Line::Type { name: NAME, size: size_of::<Lock>(), align: align_of::<Lock>() });
    out(Line::Field { ty: NAME, field: "locked", offset: Lock::LOCKED_OFFSET, size: 1 });
    out(Line::Field { ty: NAME, field: "data", offset: Lock::DATA_OFFSET, size: size_of::<Frames>() });
    crate::layout::fields!(out, Frames, base_pa, frame_count, total_frames, free_frames, next_hint, ref_counts, call_log);
    crate::layout::fields!(out, CallLog, active, frames);
}
