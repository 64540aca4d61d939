//! Processes: the static process table, creating a process from a built-in program,
//! exit (everything unmapped, copy-on-write references dropped, frames freed), wait and
//! kill. Fork lives in `fork`, the copy-on-write fault path in `cow_fault`, syscalls in
//! `syscall`, the scheduler (round robin, preemptive at EL0, run from the shell) in
//! `scheduler`.
//!
//! Decodable by the debugger without running code:
//! - `tinyos::process::PROCESSES`: `SpinLock<[Process; MAX_PROCESSES]>` (`locked`, `data`);
//!   a slot is free when `state == ProcessState::Unused`;
//! - `tinyos::process::CURRENT`: `AtomicUsize`, the slot index of the running process,
//!   `NO_PROCESS` (usize::MAX) while the shell runs;
//! - per process: `pid`, `state`, `ttbr0` (PA of its L0 table; the register value is
//!   `asid << 48 | ttbr0`), `asid`, `context` (kernel VA of its saved `TrapFrame`, at the
//!   top of its kernel stack), `parent` (pid, 0 = the kernel/shell), `exit_status`,
//!   `heap_start`/`brk`, `name`.
//!
//! Locking: `PROCESSES` and `COW_MANAGER` are never held together and never across a
//! switch to another process; every operation copies what it needs out of the table.

pub mod cow_fault;
pub mod cow_selftest;
pub mod fork;
pub mod scheduler;
pub mod syscall;
pub mod trap;
pub mod uaccess;
pub mod user;

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arch::aarch64::exception::{self, SPSR_EL0T, TrapFrame};
use crate::arch::aarch64::stacks;
use crate::arch::aarch64::tlb;
use crate::memory::address_space::{AddressSpace, MapError, UserAddressSpace};
use crate::memory::cow::COW_MANAGER;
use crate::memory::descriptor::Attributes;
use crate::memory::{Asid, PAGE_SIZE, PhysAddr, VirtAddr, frame};
use crate::sync::SpinLock;
use user::{Program, USER_CODE_VA, USER_DATA_PAGES, USER_DATA_VA, USER_STACK_PAGES, USER_STACK_TOP};

// The COW table is indexed by frame over exactly the RAM the frame allocator manages.
const _: () = assert!(crate::memory::cow::COW_RAM_BASE == crate::memory::RAM_START);
const _: () = assert!(crate::memory::cow::MAX_COW_PAGES as u64 * PAGE_SIZE == crate::memory::RAM_SIZE);

/// Boot-time set-up: exception hooks, and the COW manager learns which allocator owns
/// its frames.
pub fn init() {
    trap::install();
    exception::set_stack_owner_hook(stack_owner);
    crate::entry_points::retain_entry_points();
    COW_MANAGER.lock().attach(&raw const frame::FRAME_ALLOCATOR as usize);
}

/// Slots in the process table (ASIDs 1..=MAX_PROCESSES belong to the slots).
pub const MAX_PROCESSES: usize = 16;
/// Bytes of each process's kernel stack (its `TrapFrame` sits at the top; guard pages
/// below it, see `arch::aarch64::stacks`).
pub const KERNEL_STACK_SIZE: usize = stacks::KERNEL_STACK_SIZE;
// Slot `i` runs on kernel stack `i`.
const _: () = assert!(stacks::COUNT == MAX_PROCESSES);
/// `CURRENT` while no process runs (the shell).
pub const NO_PROCESS: usize = usize::MAX;

/// What a process is doing.
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProcessState {
    /// The slot is free.
    Unused,
    /// Being built by `spawn` or `fork`: not runnable yet.
    Creating,
    /// Runnable, waiting for the CPU.
    Ready,
    /// On the CPU.
    Running,
    /// Blocked in `wait` until a child exits.
    Waiting,
    /// Blocked in `pause` until the shell's `cont`.
    Paused,
    /// Exited; its memory is freed, the slot keeps the status until reaped.
    Zombie,
}

impl ProcessState {
    pub const fn name(self) -> &'static str {
        match self {
            ProcessState::Unused => "unused",
            ProcessState::Creating => "creating",
            ProcessState::Ready => "ready",
            ProcessState::Running => "running",
            ProcessState::Waiting => "waiting",
            ProcessState::Paused => "paused",
            ProcessState::Zombie => "zombie",
        }
    }
}

/// One process-table slot.
#[derive(Clone, Copy, Debug)]
pub struct Process {
    pub pid: usize,
    pub state: ProcessState,
    /// Physical address of the L0 table (0 when the process has no address space).
    pub ttbr0: u64,
    pub asid: u16,
    /// Kernel VA of the saved user registers (at the top of its kernel stack).
    pub context: *mut TrapFrame,
    /// Parent's pid; 0 = started by the shell (or orphaned).
    pub parent: usize,
    /// Exit status once a zombie (`KILLED_STATUS` when the kernel killed it).
    pub exit_status: i64,
    /// First heap address and the current break (`sbrk`).
    pub heap_start: u64,
    pub brk: u64,
    pub name: &'static str,
}

// SAFETY: `context` points into the static kernel stacks; access is serialised by the lock.
unsafe impl Send for Process {}

impl Process {
    pub const EMPTY: Process = Process {
        pid: 0,
        state: ProcessState::Unused,
        ttbr0: 0,
        asid: 0,
        context: core::ptr::null_mut(),
        parent: 0,
        exit_status: 0,
        heap_start: 0,
        brk: 0,
        name: "",
    };

    /// A view of its address space, for as long as this snapshot is borrowed (only
    /// meaningful while it has one: `ttbr0 != 0`).
    pub fn space(&self) -> AddressSpace<'_> {
        // SAFETY: `ttbr0` records the root of tables a `UserAddressSpace` built with this
        // slot's ASID; they are freed only by `teardown` in `exit`, which the kernel never
        // runs while a view taken from a snapshot is in use (one CPU, the kernel is not
        // preempted, and no caller keeps a snapshot across an exit). An empty slot's
        // `ttbr0` is 0, which is not RAM: every walk of it stops at once.
        unsafe { AddressSpace::from_raw(PhysAddr::new(self.ttbr0), Some(self.asid)) }
    }

    /// Alive: has an address space and may run again.
    pub fn is_live(&self) -> bool {
        !matches!(self.state, ProcessState::Unused | ProcessState::Creating | ProcessState::Zombie)
    }
}

/// The process table.
pub static PROCESSES: SpinLock<[Process; MAX_PROCESSES]> = SpinLock::new([Process::EMPTY; MAX_PROCESSES]);
/// Slot of the running process, `NO_PROCESS` while the shell runs.
pub static CURRENT: AtomicUsize = AtomicUsize::new(NO_PROCESS);

/// Where slot `slot`'s `TrapFrame` lives: the top of its kernel stack (stack `slot`, used
/// by nothing but the process in that slot).
pub fn frame_of(slot: usize) -> *mut TrapFrame {
    (stacks::top(slot) - core::mem::size_of::<TrapFrame>()) as *mut TrapFrame
}

/// The pid of the process in slot `slot`, for a kernel stack overflow report.
fn stack_owner(slot: usize) -> Option<u64> {
    let read = |table: &[Process; MAX_PROCESSES]| {
        let p = table.get(slot)?;
        (p.state != ProcessState::Unused).then_some(p.pid as u64)
    };
    match PROCESSES.try_lock() {
        Some(table) => read(&table),
        // SAFETY: the overflowing code held the lock and never resumes (the CPU halts
        // after the report): reading a slot can race with nothing.
        None => read(unsafe { &*PROCESSES.data_ptr() }),
    }
}

/// The ASID of slot `slot` (0 is the kernel's).
pub const fn asid_of(slot: usize) -> Asid {
    (slot + 1) as Asid
}

/// The slot of the running process, if any.
pub fn current_slot() -> Option<usize> {
    let slot = CURRENT.load(Ordering::Relaxed);
    (slot < MAX_PROCESSES).then_some(slot)
}

/// A copy of slot `slot`.
pub fn snapshot(slot: usize) -> Process {
    PROCESSES.lock()[slot]
}

/// The slot of the live or zombie process `pid`.
pub fn slot_of_pid(pid: usize) -> Option<usize> {
    PROCESSES.lock().iter().position(|p| p.pid == pid && p.state != ProcessState::Unused)
}

/// Why a process could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    TableFull,
    OutOfFrames,
    Map(MapError),
}

impl core::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SpawnError::TableFull => f.write_str("the process table is full"),
            SpawnError::OutOfFrames => f.write_str("out of frames"),
            SpawnError::Map(err) => write!(f, "mapping failed: {err}"),
        }
    }
}

impl From<MapError> for SpawnError {
    fn from(err: MapError) -> Self {
        match err {
            MapError::OutOfFrames => SpawnError::OutOfFrames,
            other => SpawnError::Map(other),
        }
    }
}

/// Reserves a free slot (state Ready is set by the caller once the process is built);
/// returns the slot and a fresh pid.
pub(super) fn reserve_slot(name: &'static str, parent: usize) -> Result<(usize, usize), SpawnError> {
    let pid = COW_MANAGER.lock().allocate_process_id();
    let mut table = PROCESSES.lock();
    let slot = table.iter().position(|p| p.state == ProcessState::Unused).ok_or(SpawnError::TableFull)?;
    let parent_slot = table.iter().position(|p| parent != 0 && p.pid == parent && p.state != ProcessState::Unused);
    scheduler::set_background(slot, parent_slot.is_some_and(scheduler::is_background));
    scheduler::set_cooperative(slot, parent_slot.is_some_and(scheduler::is_cooperative));
    table[slot] = Process {
        pid,
        state: ProcessState::Creating,
        asid: asid_of(slot),
        context: frame_of(slot),
        parent,
        name,
        ..Process::EMPTY
    };
    Ok((slot, pid))
}

/// Frees a slot reserved by `reserve_slot` whose process never ran.
pub(super) fn release_slot(slot: usize) {
    PROCESSES.lock()[slot] = Process::EMPTY;
}

/// A new user address space for slot `slot`: its ASID's old TLB entries are dropped
/// first (a previous owner of the slot may have left some).
pub(super) fn new_space(slot: usize) -> Result<UserAddressSpace, SpawnError> {
    let asid = asid_of(slot);
    tlb::invalidate_asid(asid);
    let space = UserAddressSpace::new(asid)?;
    // Recorded while the process is still being built, so a debugger call abandoned
    // half way through a spawn or fork leaves tables `tinyos_debug_recover` can free.
    PROCESSES.lock()[slot].ttbr0 = space.l0().as_u64();
    Ok(space)
}

/// Maps a fresh zeroed frame at `va`.
pub(super) fn map_zeroed(space: &AddressSpace<'_>, va: u64, attrs: Attributes) -> Result<(), SpawnError> {
    let pa = frame::alloc().ok_or(SpawnError::OutOfFrames)?;
    match space.map(VirtAddr::new(va), pa, attrs) {
        Ok(flush) => {
            flush.flush();
            Ok(())
        }
        Err(err) => {
            let _ = frame::free(pa);
            Err(err.into())
        }
    }
}

/// Copies the program image into fresh frames mapped EL0 read + execute at USER_CODE_VA
/// (cleaning the data cache and invalidating the instruction cache so EL0 fetches the
/// copied instructions).
fn map_program_image(space: &AddressSpace<'_>) -> Result<(), SpawnError> {
    let image = user::image();
    for (i, chunk) in image.chunks(PAGE_SIZE as usize).enumerate() {
        let pa = frame::alloc().ok_or(SpawnError::OutOfFrames)?;
        // SAFETY: a fresh frame, linearly mapped; the chunk is at most one page.
        unsafe { core::ptr::copy_nonoverlapping(chunk.as_ptr(), pa.as_ptr::<u8>(), chunk.len()) };
        sync_icache(pa);
        let va = VirtAddr::new(USER_CODE_VA + i as u64 * PAGE_SIZE);
        match space.map(va, pa, Attributes::USER_CODE) {
            Ok(flush) => flush.flush(),
            Err(err) => {
                let _ = frame::free(pa);
                return Err(err.into());
            }
        }
    }
    Ok(())
}

/// Makes instructions written through the linear map at `pa` visible to instruction
/// fetches: clean each data-cache line to the point of unification, then invalidate
/// the instruction caches.
fn sync_icache(pa: PhysAddr) {
    const LINE: u64 = 64;
    let start = pa.to_virt().as_u64();
    for line in (start..start + PAGE_SIZE).step_by(LINE as usize) {
        // SAFETY: cache maintenance on mapped RAM has no other effect.
        unsafe { core::arch::asm!("dc cvau, {}", in(reg) line, options(nostack)) };
    }
    // SAFETY: as above.
    unsafe { core::arch::asm!("dsb ish", "ic ialluis", "dsb ish", "isb", options(nostack)) };
}

/// Creates a process running `program` with `arg` in x0, child of `parent` (0 = the
/// shell). It is Ready; the scheduler runs it. Returns its pid.
#[inline(never)]
pub fn spawn(program: &Program, arg: u64, parent: usize) -> Result<usize, SpawnError> {
    let (slot, pid) = reserve_slot(program.name, parent)?;
    scheduler::set_cooperative(slot, !program.preemptible);
    let built = new_space(slot).and_then(|space| match populate(&space.view()) {
        Ok(()) => Ok(space),
        Err(err) => {
            teardown(space, pid);
            Err(err)
        }
    });
    let space = match built {
        Ok(space) => space,
        Err(err) => {
            release_slot(slot);
            return Err(err);
        }
    };
    let mut frame = TrapFrame::default();
    frame.x[0] = arg;
    frame.elr = program.entry_va();
    frame.spsr = SPSR_EL0T;
    frame.sp_el0 = USER_STACK_TOP;
    // SAFETY: the slot is reserved: its kernel stack and frame belong to nobody else.
    unsafe { frame_of(slot).write(frame) };
    let mut table = PROCESSES.lock();
    let p = &mut table[slot];
    p.ttbr0 = space.l0().as_u64();
    p.heap_start = user::USER_HEAP_START;
    p.brk = user::USER_HEAP_START;
    p.state = ProcessState::Ready;
    Ok(pid)
}

/// Code, data and stack of a new process.
fn populate(space: &AddressSpace<'_>) -> Result<(), SpawnError> {
    map_program_image(space)?;
    for i in 0..USER_DATA_PAGES {
        map_zeroed(space, USER_DATA_VA + i * PAGE_SIZE, Attributes::USER_DATA)?;
    }
    for i in 1..=USER_STACK_PAGES {
        map_zeroed(space, USER_STACK_TOP - i * PAGE_SIZE, Attributes::USER_DATA)?;
    }
    Ok(())
}

/// Unmaps every page of `space` (process `pid`), dropping its copy-on-write mappings
/// from the manager and its frame references (a frame nobody maps any more is freed),
/// then frees the translation tables. The caller has switched TTBR0 away from `space`.
#[inline(never)]
pub fn teardown(space: UserAddressSpace, pid: usize) {
    {
        let mut cow = COW_MANAGER.lock();
        let view = space.view();
        view.for_each_page(&mut |va, _| cow_fault::release_page(&mut cow, &view, pid, va));
    }
    tlb::invalidate_asid(space.asid());
    let leaked = space.free_tables();
    if leaked != 0 {
        crate::println!("process {pid}: {leaked} pages still mapped after teardown");
    }
}

/// Ends the process in `slot` with `status`: frees its memory, makes it a zombie,
/// re-parents its children to the shell and wakes a parent blocked in `wait`.
/// The caller must not be running on `slot`'s address space (TTBR0 switched away).
#[inline(never)]
pub fn exit(slot: usize, status: i64) {
    let (space, pid) = {
        let mut table = PROCESSES.lock();
        let p = &mut table[slot];
        // SAFETY: a live process's `ttbr0` is the root of the tables `new_space` built for
        // its slot's ASID, and the table is their only record: the slot's state is Zombie
        // from here on (so no second exit takes them) and `ttbr0` is cleared once the
        // teardown is complete.
        let space = (p.ttbr0 != 0).then(|| unsafe { UserAddressSpace::from_raw(PhysAddr::new(p.ttbr0), p.asid) });
        // ttbr0 is cleared only once the teardown is complete: a debugger call abandoned
        // half way through it leaves the rest for `tinyos_debug_recover` to free.
        p.state = ProcessState::Zombie;
        p.exit_status = status;
        let (pid, parent) = (p.pid, p.parent);
        for other in table.iter_mut() {
            if other.parent == pid && other.state != ProcessState::Unused {
                other.parent = 0;
            }
            if other.pid == parent && other.state == ProcessState::Waiting {
                other.state = ProcessState::Ready;
            }
        }
        let Some(space) = space else { return };
        (space, pid)
    };
    teardown(space, pid);
    PROCESSES.lock()[slot].ttbr0 = 0;
    // Orphaned zombies nobody will wait for are reaped by the shell (`reap_orphans`).
    crate::debug::tinyos_debug_event(crate::debug::EVENT_PROCESS_EXIT, pid as u64, status as u64);
}

/// Reaps a zombie child of `parent_pid` (`want` = a pid, or 0 for any): frees its slot
/// and returns (pid, status). `Err(true)` when children exist but none exited,
/// `Err(false)` when there is no such child.
pub fn reap_child(parent_pid: usize, want: usize) -> Result<(usize, i64), bool> {
    let mut table = PROCESSES.lock();
    let mut has_child = false;
    for p in table.iter_mut() {
        let mine = p.state != ProcessState::Unused && p.parent == parent_pid && (want == 0 || p.pid == want);
        if !mine {
            continue;
        }
        if p.state == ProcessState::Zombie && p.ttbr0 == 0 {
            let result = (p.pid, p.exit_status);
            *p = Process::EMPTY;
            return Ok(result);
        }
        has_child = true;
    }
    Err(has_child)
}

/// Marks the process `pid` killed: if it is not running it exits now; the running one
/// is ended by the caller's path. Returns false when no live process has that pid.
pub fn kill(pid: usize) -> bool {
    let Some(slot) = slot_of_pid(pid) else { return false };
    if !snapshot(slot).is_live() || current_slot() == Some(slot) {
        return false;
    }
    exit(slot, user::KILLED_STATUS);
    true
}

/// Kills every live foreground process (Ctrl-C); calls `report(pid, name)` for each.
pub fn kill_foreground(report: &mut dyn FnMut(usize, &'static str)) {
    for slot in 0..MAX_PROCESSES {
        let p = snapshot(slot);
        if p.is_live() && !scheduler::is_background(slot) && kill(p.pid) {
            report(p.pid, p.name);
        }
    }
}

/// Starts `program` in the background (`run <program> &`): it and its descendants run
/// while the shell waits for input. Returns its pid.
pub fn spawn_background(program: &Program, arg: u64) -> Result<usize, SpawnError> {
    let pid = spawn(program, arg, 0)?;
    if let Some(slot) = slot_of_pid(pid) {
        scheduler::set_background(slot, true);
    }
    scheduler::update_background_ready();
    Ok(pid)
}

/// Reaps the zombies of background processes started by the shell; calls `report(pid,
/// name, status)` for each (the shell does so before its prompt).
pub fn reap_background(report: &mut dyn FnMut(usize, &'static str, i64)) {
    for slot in 0..MAX_PROCESSES {
        let p = snapshot(slot);
        if p.state == ProcessState::Zombie && p.parent == 0 && p.ttbr0 == 0 && scheduler::is_background(slot) {
            if let Ok((pid, status)) = reap_child(0, p.pid) {
                report(pid, p.name, status);
            }
        }
    }
}

/// Wakes every paused process; returns how many.
pub fn resume_paused() -> usize {
    let mut table = PROCESSES.lock();
    let mut woken = 0;
    for p in table.iter_mut().filter(|p| p.state == ProcessState::Paused) {
        p.state = ProcessState::Ready;
        woken += 1;
    }
    woken
}

/// Struct layouts the debugger decodes (for the `layout` command).
pub fn layout(out: &mut dyn FnMut(crate::layout::Line)) {
    crate::layout::fields!(out, Process, pid, state, ttbr0, asid, context, parent, exit_status, heap_start, brk, name);
}

/// How a program started by `run_program` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It exited with this status (`KILLED_STATUS` when the kernel killed it).
    Exited(i64),
    /// It is still alive (paused or waiting) when nothing is ready any more.
    Alive,
}

/// Starts `program` from the shell and runs processes until none is ready; returns its
/// pid and how it ended (its zombie is reaped).
pub fn run_program(program: &Program, arg: u64) -> Result<(usize, Outcome), SpawnError> {
    let pid = spawn(program, arg, 0)?;
    scheduler::run_until_idle();
    let outcome = match reap_child(0, pid) {
        Ok((_, status)) => Outcome::Exited(status),
        Err(_) => Outcome::Alive,
    };
    Ok((pid, outcome))
}

/// Reaps every zombie whose parent is the shell; calls `report(pid, name, status)`.
pub fn reap_shell_children(report: &mut dyn FnMut(usize, &'static str, i64)) {
    loop {
        let name = {
            let table = PROCESSES.lock();
            table.iter().find(|p| p.state == ProcessState::Zombie && p.parent == 0 && p.ttbr0 == 0).map(|p| p.name)
        };
        let Some(name) = name else { return };
        match reap_child(0, 0) {
            Ok((pid, status)) => report(pid, name, status),
            Err(_) => return,
        }
    }
}

/// Number of live processes (any state but unused, creating and zombie).
pub fn live_count() -> usize {
    PROCESSES.lock().iter().filter(|p| p.is_live()).count()
}
