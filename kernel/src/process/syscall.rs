//! System calls (`svc #0`): x8 = number, x0..x5 = arguments, the result in x0 (negative
//! = error). Numbers match `user_programs.S`:
//!
//! | x8 | call | arguments | result |
//! |----|------|-----------|--------|
//! | 0 | write | fd (1, 2), buffer, length | bytes written |
//! | 1 | getpid | | pid |
//! | 2 | fork | | child pid in the parent, 0 in the child |
//! | 3 | exit | status | does not return |
//! | 4 | wait | status pointer (0: none) | reaped child's pid; its status stored (8 bytes) |
//! | 5 | yield | | 0 |
//! | 6 | sbrk | increment (signed bytes) | the old break, -1 on failure |
//! | 7 | pause | | 0, once the shell's `cont` (or `~6`) wakes it |
//! | 8 | freeframes | | free frames in the allocator |
//! | 9 | cowrefs | user VA | ref_count of its copy-on-write frame for this mapping, 0 if not tracked |
//!
//! Blocking calls (`wait` with live children, `pause`, `yield`) give the CPU away by
//! returning another process's frame; `wait` is restarted (ELR moved back onto the
//! `svc`) so it runs again in the waiter's own address space when a child exits.

use super::cow_fault::{self, release_page};
use super::uaccess::{UserCopyError, copy_from_user, copy_to_user};
use super::user::{USER_HEAP_LIMIT, KILLED_STATUS};
use super::{PROCESSES, ProcessState, exit, fork, map_zeroed, reap_child, scheduler, snapshot};
use crate::arch::aarch64::exception::TrapFrame;
use crate::memory::cow::COW_MANAGER;
use crate::memory::descriptor::Attributes;
use crate::memory::{PAGE_SIZE, VirtAddr, align_up, frame};
use crate::{print, println};

pub const SYS_WRITE: u64 = 0;
pub const SYS_GETPID: u64 = 1;
pub const SYS_FORK: u64 = 2;
pub const SYS_EXIT: u64 = 3;
pub const SYS_WAIT: u64 = 4;
pub const SYS_YIELD: u64 = 5;
pub const SYS_SBRK: u64 = 6;
pub const SYS_PAUSE: u64 = 7;
pub const SYS_FREEFRAMES: u64 = 8;
pub const SYS_COWREFS: u64 = 9;

/// Error results (negated errno values).
const EFAULT: i64 = -14;
const ENOMEM: i64 = -12;
const ECHILD: i64 = -10;
const EBADF: i64 = -9;
const ENOSYS: i64 = -38;

/// Bytes `write` prints per syscall at most.
const WRITE_LIMIT: usize = 4096;

/// Handles the syscall in `frame` of the process in `slot`; returns the frame to resume.
pub fn dispatch(slot: usize, frame: &mut TrapFrame) -> *mut TrapFrame {
    let args = [frame.x[0], frame.x[1], frame.x[2]];
    let result = match frame.x[8] {
        SYS_WRITE => write(args[0], args[1], args[2] as usize),
        SYS_GETPID => snapshot(slot).pid as i64,
        SYS_FORK => fork::fork(slot, frame).map_or(ENOMEM, |pid| pid as i64),
        SYS_EXIT => return exit_current(slot, args[0] as i64),
        SYS_WAIT => return wait(slot, frame, args[0]),
        SYS_YIELD => return block(slot, frame, ProcessState::Ready),
        SYS_SBRK => sbrk(slot, args[0] as i64),
        SYS_PAUSE => return block(slot, frame, ProcessState::Paused),
        SYS_FREEFRAMES => frame::stats().free as i64,
        SYS_COWREFS => cow_refs(slot, args[0]),
        _ => ENOSYS,
    };
    frame.x[0] = result as u64;
    frame
}

/// Ends the current process and runs the next one.
pub fn exit_current(slot: usize, status: i64) -> *mut TrapFrame {
    scheduler::detach_current_space();
    exit(slot, status);
    scheduler::switch_away()
}

/// Kills the current process (the kernel keeps running) and runs the next one.
pub fn kill_current(slot: usize, reason: &str) -> *mut TrapFrame {
    let p = snapshot(slot);
    println!("process {} ({}) killed: {}", p.pid, p.name, reason);
    crate::debug::tinyos_debug_event(crate::debug::EVENT_PROCESS_KILLED, p.pid as u64, 0);
    exit_current(slot, KILLED_STATUS)
}

/// Gives up the CPU in `state` (Ready = yield); x0 = 0 when it resumes.
fn block(slot: usize, frame: &mut TrapFrame, state: ProcessState) -> *mut TrapFrame {
    frame.x[0] = 0;
    PROCESSES.lock()[slot].state = state;
    scheduler::switch_away()
}

fn write(fd: u64, buffer: u64, len: usize) -> i64 {
    if fd != 1 && fd != 2 {
        return EBADF;
    }
    let len = len.min(WRITE_LIMIT);
    let mut chunk = [0u8; 128];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len());
        if copy_from_user(&mut chunk[..n], buffer + done as u64).is_err() {
            return if done == 0 { EFAULT } else { done as i64 };
        }
        for &byte in &chunk[..n] {
            // The console turns "\n" into "\r\n"; other bytes go out as they are.
            print!("{}", byte as char);
        }
        done += n;
    }
    len as i64
}

fn wait(slot: usize, frame: &mut TrapFrame, status_ptr: u64) -> *mut TrapFrame {
    let pid = snapshot(slot).pid;
    match reap_child(pid, 0) {
        Ok((child, status)) => {
            if status_ptr != 0 {
                match copy_to_user(status_ptr, &status.to_le_bytes()) {
                    Ok(()) => {}
                    Err(UserCopyError::OutOfFrames) => {
                        return kill_current(slot, cow_fault::WriteFaultError::OutOfFrames.reason());
                    }
                    Err(UserCopyError::BadAddress) => {
                        frame.x[0] = EFAULT as u64;
                        return frame;
                    }
                }
            }
            frame.x[0] = child as u64;
            frame
        }
        Err(true) => {
            // Run `svc` again when woken: the retry reaps in this process's own space.
            frame.elr -= 4;
            PROCESSES.lock()[slot].state = ProcessState::Waiting;
            scheduler::switch_away()
        }
        Err(false) => {
            frame.x[0] = ECHILD as u64;
            frame
        }
    }
}

/// Moves the break by `increment` bytes: new pages are zero-filled and writable,
/// released pages drop their frames (and copy-on-write mappings). All or nothing.
fn sbrk(slot: usize, increment: i64) -> i64 {
    let p = snapshot(slot);
    let old = p.brk;
    let Some(new) = old.checked_add_signed(increment).filter(|&b| b >= p.heap_start && b <= USER_HEAP_LIMIT) else {
        return -1;
    };
    let space = p.space();
    let (old_top, new_top) = (align_up(old, PAGE_SIZE), align_up(new, PAGE_SIZE));
    if new_top > old_top {
        let mut va = old_top;
        while va < new_top {
            if map_zeroed(&space, va, Attributes::USER_DATA).is_err() {
                release_range(p.pid, &space, old_top, va);
                return -1;
            }
            va += PAGE_SIZE;
        }
    } else {
        release_range(p.pid, &space, new_top, old_top);
    }
    PROCESSES.lock()[slot].brk = new;
    old as i64
}

fn release_range(pid: usize, space: &crate::memory::address_space::AddressSpace<'_>, start: u64, end: u64) {
    let mut cow = COW_MANAGER.lock();
    for va in (start..end).step_by(PAGE_SIZE as usize) {
        release_page(&mut cow, space, pid, VirtAddr::new(va));
    }
}

fn cow_refs(slot: usize, va: u64) -> i64 {
    let p = snapshot(slot);
    let page = VirtAddr::new(va & !(PAGE_SIZE - 1));
    let Some(desc) = p.space().page(page) else { return 0 };
    let cow = COW_MANAGER.lock();
    cow.find_by_pa(desc.address().as_u64())
        .filter(|page_info| page_info.mapping_index(page.as_u64(), p.pid).is_some())
        .map_or(0, |page_info| page_info.ref_count as i64)
}
