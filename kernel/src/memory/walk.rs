//! The software translation-table walker, shared by the `pt` shell command and the
//! mapping code: reads the live tables through the kernel linear map, one level at a
//! time, and records every step (level, index, table PA, descriptor).

use super::descriptor::{Attributes, Descriptor, Kind};
use super::{PhysAddr, VirtAddr};

/// Number of translation levels with the 4 KiB granule and 48-bit VAs.
pub const LEVELS: usize = 4;

/// Bytes mapped by one leaf entry at `level` (1 GiB, 2 MiB or 4 KiB).
pub const fn level_size(level: usize) -> u64 {
    1 << (12 + 9 * (3 - level))
}

/// One level of a walk.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    pub level: usize,
    pub index: usize,
    pub table: PhysAddr,
    pub desc: Descriptor,
}

impl Step {
    pub const fn kind(&self) -> Kind { self.desc.kind(self.level) }
}

/// Where a walk ended.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    /// A block or page maps the VA.
    Mapped { pa: PhysAddr, attrs: Attributes, level: usize },
    /// An invalid or reserved descriptor at `level`: the CPU would take a translation fault there.
    NotMapped { level: usize },
    /// A table address outside RAM: the walker refuses to follow it.
    BadTable { level: usize, table: PhysAddr },
}

/// The full record of one walk.
#[derive(Clone, Copy, Debug)]
pub struct Walk {
    pub va: VirtAddr,
    steps: [Option<Step>; LEVELS],
    pub outcome: Outcome,
}

impl Walk {
    /// The levels visited, in order.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().flatten()
    }
    /// The physical address and attributes, if mapped.
    pub fn translation(&self) -> Option<(PhysAddr, Attributes)> {
        match self.outcome {
            Outcome::Mapped { pa, attrs, .. } => Some((pa, attrs)),
            _ => None,
        }
    }
}

/// Pointer to entry `index` of the table at `table` through the linear map.
///
/// # Safety
/// `table` must be the PA of a translation table in RAM and `index < 512`.
pub unsafe fn entry_ptr(table: PhysAddr, index: usize) -> *mut Descriptor {
    debug_assert!(index < super::descriptor::ENTRIES);
    // SAFETY: the caller guarantees the table lies in RAM, which is linearly mapped.
    unsafe { table.as_ptr::<Descriptor>().add(index) }
}

/// Reads one entry of a live table (volatile: the hardware walker shares it).
///
/// # Safety
/// As for [`entry_ptr`].
pub unsafe fn read_entry(table: PhysAddr, index: usize) -> Descriptor {
    // SAFETY: forwarded to the caller.
    unsafe { entry_ptr(table, index).read_volatile() }
}

/// Walks `va` through the four-level table rooted at `l0`.
pub fn walk(l0: PhysAddr, va: VirtAddr) -> Walk {
    let mut result = Walk { va, steps: [None; LEVELS], outcome: Outcome::NotMapped { level: 0 } };
    let mut table = l0;
    for level in 0..LEVELS {
        if !table.is_ram() || !table.is_aligned(4096) {
            result.outcome = Outcome::BadTable { level, table };
            return result;
        }
        let index = va.table_index(level);
        // SAFETY: `table` is a page-aligned RAM address reached from a translation table.
        let desc = unsafe { read_entry(table, index) };
        let step = Step { level, index, table, desc };
        result.steps[level] = Some(step);
        match step.kind() {
            Kind::Table => table = desc.address(),
            Kind::Block | Kind::Page => {
                let offset = va.as_u64() & (level_size(level) - 1);
                let pa = PhysAddr::new(desc.address().as_u64() + offset);
                result.outcome = Outcome::Mapped { pa, attrs: desc.attributes(), level };
                return result;
            }
            Kind::Invalid | Kind::Reserved => {
                result.outcome = Outcome::NotMapped { level };
                return result;
            }
        }
    }
    result
}
