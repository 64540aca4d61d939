//! `fork`: a child with the parent's registers (x0 = 0) and the parent's pages shared
//! without copying — every writable page becomes copy-on-write in both (read-only,
//! tracked by the `CowManager` with both mappings), read-only pages (code) are shared
//! untracked. A failure part-way tears the child down again, which leaves the parent's
//! already protected pages tracked with the parent alone (its next write reuses them).

use super::cow_fault::share_for_fork;
use super::{
    PROCESSES, ProcessState, SpawnError, frame_of, new_space, release_slot, reserve_slot, snapshot, teardown,
};
use crate::arch::aarch64::exception::TrapFrame;
use crate::debug::{self, tinyos_debug_event};
use crate::memory::address_space::AddressSpace;
use crate::memory::cow::COW_MANAGER;

/// Forks the process in `parent_slot` whose saved registers are `parent_frame`.
/// Returns the child's pid; the child is Ready and resumes with x0 = 0.
#[inline(never)]
pub fn fork(parent_slot: usize, parent_frame: &TrapFrame) -> Result<usize, SpawnError> {
    let parent = snapshot(parent_slot);
    let (slot, pid) = reserve_slot(parent.name, parent.pid)?;
    let child_space = match new_space(slot) {
        Ok(space) => space,
        Err(err) => {
            release_slot(slot);
            return Err(err);
        }
    };
    if let Err(err) = share_all(&parent.space(), parent.pid, &child_space.view(), pid) {
        teardown(child_space, pid);
        release_slot(slot);
        return Err(err);
    }
    let mut frame = *parent_frame;
    frame.x[0] = 0;
    // SAFETY: the slot is reserved for the child: its kernel stack is unused.
    unsafe { frame_of(slot).write(frame) };
    {
        let mut table = PROCESSES.lock();
        let child = &mut table[slot];
        child.ttbr0 = child_space.l0().as_u64();
        child.heap_start = parent.heap_start;
        child.brk = parent.brk;
        child.state = ProcessState::Ready;
    }
    tinyos_debug_event(debug::EVENT_FORK, parent.pid as u64, pid as u64);
    Ok(pid)
}

/// Shares every page of `parent` with `child`, holding the manager once for the walk.
#[inline(never)]
fn share_all(parent: &AddressSpace<'_>, ppid: usize, child: &AddressSpace<'_>, cpid: usize) -> Result<(), SpawnError> {
    let mut cow = COW_MANAGER.lock();
    let mut result = Ok(());
    parent.for_each_page(&mut |va, desc| {
        if result.is_ok() {
            result = share_for_fork(&mut cow, parent, ppid, child, cpid, va, desc).map_err(SpawnError::from);
        }
    });
    result
}
