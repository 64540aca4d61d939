//! `selftest`: exercises the frame allocator and the address-space layer on the live
//! machine — allocation and refusal paths, then map/protect/remap/unmap of a user page
//! in a scratch address space, checking through real EL1 accesses (and the faults they
//! take) that every change reached the TLB; then a round trip through EL0 (enter with
//! the trap-return path, two SVCs, an EL0 fault, back to the shell by context switch). Prints `PASS <name>` / `FAIL <name>: <why>`
//! and `selftest: passed=<n> failed=<n>`.

use super::Command;
use crate::arch::aarch64::context::{CpuContext, switch_context};
use crate::arch::aarch64::exception::{self, Esr, SPSR_EL0T, TrapFrame, Vector};
use crate::arch::aarch64::{fault_probe, halt, mmu, tlb};
use crate::memory::address_space::{MapError, UserAddressSpace};
use crate::memory::descriptor::Attributes;
use crate::memory::frame::{self, FrameError};
use crate::memory::{Asid, PhysAddr, VirtAddr, image};
use crate::println;
use core::cell::UnsafeCell;
use core::mem::size_of;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub const COMMANDS: &[Command] = &[Command {
    name: "selftest",
    description: "test the frame allocator and page-table updates on this machine",
    run: selftest,
}];

/// The scratch address space's ASID (no process runs while the shell does).
const ASID: Asid = 255;
/// The user VA the test maps (where process code would start).
const USER_VA: VirtAddr = VirtAddr::new(0x0040_0000);

struct Results {
    passed: usize,
    failed: usize,
}

impl Results {
    fn check(&mut self, name: &str, ok: bool, why: &str) {
        if ok {
            self.passed += 1;
            println!("PASS {name}");
        } else {
            self.failed += 1;
            println!("FAIL {name}: {why}");
        }
    }
}

fn selftest(_args: &str) {
    let mut r = Results { passed: 0, failed: 0 };
    let before = frame::stats();
    frames(&mut r);
    if let Err(err) = address_space(&mut r) {
        r.check("address space", false, "a mapping operation was refused");
        println!("  {err}");
    }
    if let Err(err) = el0_round_trip(&mut r) {
        r.check("EL0 round trip", false, "a mapping operation was refused");
        println!("  {err}");
    }
    r.check("no frame leaked", frame::stats() == before, "free count differs from the start");
    println!("selftest: passed={} failed={}", r.passed, r.failed);
}

fn frames(r: &mut Results) {
    let start = frame::stats();
    let Some(pa) = frame::alloc() else {
        return r.check("frame alloc", false, "no frame");
    };
    r.check("frame alloc counts", frame::stats().free == start.free - 1, "free count not decremented");
    // SAFETY: the frame is ours and linearly mapped.
    let zeroed = unsafe { core::slice::from_raw_parts(pa.as_ptr::<u8>(), 4096) }.iter().all(|&b| b == 0);
    r.check("frame alloc zeroes", zeroed, "frame not zeroed");
    r.check("inc_ref", frame::inc_ref(pa) == Ok(2) && frame::ref_count(pa) == Some(2), "count not 2");
    r.check("free refuses shared", frame::free(pa) == Err(FrameError::StillShared(pa, 2)), "freed a shared frame");
    r.check("dec_ref", frame::dec_ref(pa) == Ok(1), "count not 1");
    r.check("free", frame::free(pa) == Ok(()) && frame::stats() == start, "counts not restored");
    r.check("double free refused", frame::free(pa) == Err(FrameError::NotAllocated(pa)), "second free accepted");
    r.check("dec_ref of free frame refused", frame::dec_ref(pa) == Err(FrameError::NotAllocated(pa)), "accepted");
    let image_pa = image::physical().0;
    r.check("image frame refused", frame::free(image_pa) == Err(FrameError::Reserved(image_pa)), "accepted");
    let odd = PhysAddr::new(pa.as_u64() + 8);
    r.check("unaligned refused", frame::free(odd) == Err(FrameError::BadAddress(odd)), "accepted");
    r.check("counts unchanged by refusals", frame::stats() == start, "counts changed");
}

fn address_space(r: &mut Results) -> Result<(), MapError> {
    let owner = UserAddressSpace::new(ASID)?;
    let space = owner.view();
    let (a, b) = (frame::alloc().ok_or(MapError::OutOfFrames)?, frame::alloc().ok_or(MapError::OutOfFrames)?);
    // SAFETY: both frames are ours.
    unsafe {
        a.as_ptr::<u64>().write_volatile(0xaaaa);
        b.as_ptr::<u64>().write_volatile(0xbbbb);
    }
    let user = USER_VA.as_u64() as *mut u64;
    r.check("kernel VA refused in user space", space.map(VirtAddr::new(0xffff_0000_4000_0000), a, Attributes::USER_DATA).is_err(), "accepted");
    space.map(USER_VA, a, Attributes::USER_DATA)?.flush();
    r.check("map twice refused", matches!(space.map(USER_VA, b, Attributes::USER_DATA), Err(MapError::AlreadyMapped(_))), "accepted");
    r.check("translate", space.translate(USER_VA) == Some((a, Attributes::USER_DATA)), "wrong translation");
    mmu::set_user_table(space.l0(), ASID);

    // SAFETY: USER_VA is mapped EL1-readable in TTBR0 (just selected) to frame `a`.
    r.check("read through mapping", unsafe { user.read_volatile() } == 0xaaaa, "wrong value");
    // SAFETY: USER_VA is mapped EL1-writable to frame `a`, which this test owns.
    unsafe { user.write_volatile(0x1234) };
    // SAFETY: `a` is a frame this test owns, linearly mapped.
    r.check("write through mapping", unsafe { a.as_ptr::<u64>().read_volatile() } == 0x1234, "frame not written");

    space.protect(USER_VA, Attributes::USER_RODATA)?.flush();
    // SAFETY: the page is read-only now: the probe's write faults and is recovered.
    let faulted = fault_probe::quietly(|| unsafe { fault_probe::write(USER_VA.as_u64(), 0x5678) });
    let esr = Esr(fault_probe::last_esr());
    r.check("protect read-only takes effect", faulted && esr.is_permission_fault() && esr.is_write(), "write not refused");
    // SAFETY: USER_VA is still mapped readable to frame `a`.
    r.check("read-only still readable", unsafe { user.read_volatile() } == 0x1234, "wrong value");

    space.protect(USER_VA, Attributes::USER_DATA)?.flush();
    // SAFETY: the page is writable again and maps frame `a`, which this test owns.
    let faulted = fault_probe::quietly(|| unsafe { fault_probe::write(USER_VA.as_u64(), 0x5678) });
    // SAFETY: `a` is a frame this test owns, linearly mapped.
    r.check("protect writable takes effect", !faulted && unsafe { a.as_ptr::<u64>().read_volatile() } == 0x5678, "write failed");

    let (old, flush) = space.remap(USER_VA, b, Attributes::USER_DATA)?;
    flush.flush();
    r.check("remap returns old frame", old == a, "wrong frame");
    // SAFETY: USER_VA now maps frame `b`, which this test owns.
    r.check("remap takes effect", unsafe { user.read_volatile() } == 0xbbbb, "old frame still visible");

    let (unmapped, flush) = space.unmap(USER_VA)?;
    flush.flush();
    let faulted = fault_probe::quietly(|| fault_probe::read(USER_VA.as_u64()));
    let esr = Esr(fault_probe::last_esr());
    r.check("unmap takes effect", unmapped == b && faulted && esr.is_translation_fault() && esr.fsc() & 3 == 3, "page still readable");
    r.check("unmap twice refused", matches!(space.unmap(USER_VA), Err(MapError::NotMapped(_))), "accepted");

    mmu::clear_user_table();
    tlb::invalidate_asid(ASID);
    r.check("tables freed, nothing mapped", owner.free_tables() == 0, "pages still mapped");
    let freed = frame::free(a).is_ok() && frame::free(b).is_ok();
    r.check("frames freed", freed, "free refused");
    Ok(())
}

/// A kernel context slot for the EL0 round trip (the shell's, or the test's kernel thread).
struct ContextCell(UnsafeCell<CpuContext>);
// SAFETY: used only by the single-threaded self-test, one side at a time.
unsafe impl Sync for ContextCell {}

/// The kernel stack the EL0 test program traps onto (its TrapFrame sits at the top).
#[repr(C, align(16))]
struct KernelStack(UnsafeCell<[u8; EL0_STACK_SIZE]>);
// SAFETY: as above.
unsafe impl Sync for KernelStack {}

const EL0_STACK_SIZE: usize = 8192;
static EL0_STACK: KernelStack = KernelStack(UnsafeCell::new([0; EL0_STACK_SIZE]));
static SHELL_CONTEXT: ContextCell = ContextCell(UnsafeCell::new(CpuContext { x19_x28: [0; 10], fp: 0, lr: 0, sp: 0 }));
static EL0_CONTEXT: ContextCell = ContextCell(UnsafeCell::new(CpuContext { x19_x28: [0; 10], fp: 0, lr: 0, sp: 0 }));

/// What each EL0 trap looked like: (vector, ESR, FAR, ELR, x0, SPSR).
static TRAPS: [[AtomicU64; 6]; 3] = [const { [const { AtomicU64::new(0) }; 6] }; 3];
static TRAP_COUNT: AtomicUsize = AtomicUsize::new(0);

/// The EL0 program: `mov x0, #42; svc #0x11; add x0, x0, #1; svc #0x12; ldr x2, [x3]; b .`
const EL0_PROGRAM: [u32; 6] = [0xd280_0540, 0xd400_0221, 0x9100_0400, 0xd400_0241, 0xf940_0062, 0x1400_0000];

fn el0_frame() -> *mut TrapFrame {
    (EL0_STACK.0.get() as usize + EL0_STACK_SIZE - size_of::<TrapFrame>()) as *mut TrapFrame
}

/// Runs on the test's kernel stack: enters EL0 through the trap-return path.
extern "C" fn el0_thread() -> ! {
    // SAFETY: the frame was filled by `el0_round_trip` and sits at the top of EL0_STACK;
    // TTBR0 selects the test address space.
    unsafe { exception::enter_frame(el0_frame()) }
}

/// The test's EL0 handler: records the trap; resumes EL0 after an SVC, returns to the
/// shell's context after any other trap.
fn el0_trap(frame: &mut TrapFrame, vector: Vector) -> *mut TrapFrame {
    let n = TRAP_COUNT.fetch_add(1, Ordering::Relaxed);
    if let Some(slot) = TRAPS.get(n) {
        for (cell, value) in slot.iter().zip([vector.0, frame.esr, frame.far, frame.elr, frame.x[0], frame.spsr]) {
            cell.store(value, Ordering::Relaxed);
        }
    }
    if Esr(frame.esr).ec() == Esr::EC_SVC64 {
        return frame;
    }
    // SAFETY: the shell's context was saved by `el0_round_trip`; this kernel stack is
    // abandoned (the test never resumes the EL0 program).
    unsafe { switch_context(&mut *EL0_CONTEXT.0.get(), &*SHELL_CONTEXT.0.get()) };
    halt()
}

/// Enters EL0 through `enter_frame`, takes two SVCs (resuming EL0 after the first) and
/// an EL0 permission fault, and comes back to the shell with `switch_context`.
fn el0_round_trip(r: &mut Results) -> Result<(), MapError> {
    const CODE: u64 = USER_VA.as_u64();
    let owner = UserAddressSpace::new(ASID)?;
    let space = owner.view();
    let code = frame::alloc().ok_or(MapError::OutOfFrames)?;
    for (i, insn) in EL0_PROGRAM.iter().enumerate() {
        // SAFETY: the frame is ours, linearly mapped.
        unsafe { code.as_ptr::<u32>().add(i).write_volatile(*insn) };
    }
    // Instructions written through the data side must reach the instruction side.
    // SAFETY: cache maintenance only.
    unsafe { core::arch::asm!("dc cvau, {0}", "dsb ish", "ic ivau, {1}", "dsb ish", "isb", in(reg) code.as_ptr::<u8>(), in(reg) CODE, options(nostack)) };
    space.map(USER_VA, code, Attributes::USER_CODE)?.flush();
    let kernel_va = image::start().as_u64();
    // SAFETY: the frame lies inside EL0_STACK, which nothing else uses.
    unsafe {
        el0_frame().write(TrapFrame { elr: CODE, spsr: SPSR_EL0T, sp_el0: CODE + 0x1000, ..TrapFrame::default() });
        (*el0_frame()).x[3] = kernel_va;
        let fresh = &mut *EL0_CONTEXT.0.get();
        *fresh = CpuContext::default();
        fresh.sp = el0_frame() as u64;
        fresh.lr = el0_thread as *const () as u64;
    }
    TRAP_COUNT.store(0, Ordering::Relaxed);
    let previous = exception::set_user_handler(el0_trap);
    mmu::set_user_table(space.l0(), ASID);
    // SAFETY: EL0_CONTEXT is fresh (top of an unused stack, a never-returning entry); the
    // shell's context stays valid until `el0_trap` resumes it.
    unsafe { switch_context(&mut *SHELL_CONTEXT.0.get(), &*EL0_CONTEXT.0.get()) };
    mmu::clear_user_table();
    tlb::invalidate_asid(ASID);
    match previous {
        Some(handler) => { exception::set_user_handler(handler); }
        None => exception::clear_user_handler(),
    }

    let trap = |i: usize| TRAPS[i].each_ref().map(|cell| cell.load(Ordering::Relaxed));
    let svc = |imm: u64| (Esr::EC_SVC64 << 26) | (1 << 25) | imm;
    r.check("EL0 traps", TRAP_COUNT.load(Ordering::Relaxed) == 3, "not exactly three traps from EL0");
    let [v, esr, _, elr, x0, spsr] = trap(0);
    r.check("EL0 svc", v == Vector::LOWER_SYNC.0 && esr == svc(0x11) && elr == CODE + 8 && x0 == 42 && spsr & 0xf == 0, "wrong first trap");
    let [v, esr, _, elr, x0, _] = trap(1);
    r.check("EL0 resumed after svc", v == Vector::LOWER_SYNC.0 && esr == svc(0x12) && elr == CODE + 16 && x0 == 43, "registers not restored on eret");
    let [_, esr, far, elr, _, _] = trap(2);
    let esr = Esr(esr);
    r.check(
        "EL0 cannot read the kernel",
        esr.ec() == Esr::EC_DABT_LOWER && esr.is_permission_fault() && far == kernel_va && elr == CODE + 16,
        "wrong fault",
    );
    let (_, flush) = space.unmap(USER_VA)?;
    flush.flush();
    r.check("EL0 space freed", owner.free_tables() == 0 && frame::free(code).is_ok(), "leak");
    Ok(())
}
