//! `selftest`: exercises the frame allocator and the address-space layer on the live
//! machine — allocation and refusal paths, then map/protect/remap/unmap of a user page
//! in a scratch address space, checking through real EL1 accesses (and the faults they
//! take) that every change reached the TLB. Prints `PASS <name>` / `FAIL <name>: <why>`
//! and `selftest: passed=<n> failed=<n>`.

use super::Command;
use crate::arch::aarch64::exception::Esr;
use crate::arch::aarch64::{fault_probe, mmu, tlb};
use crate::memory::address_space::{AddressSpace, MapError};
use crate::memory::descriptor::Attributes;
use crate::memory::frame::{self, FrameError};
use crate::memory::{Asid, PhysAddr, VirtAddr, image};
use crate::println;

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
    let space = AddressSpace::new_user(ASID)?;
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

    // SAFETY (all user accesses below): USER_VA is mapped EL1-accessible in TTBR0 or the
    // access goes through a recovering probe.
    r.check("read through mapping", unsafe { user.read_volatile() } == 0xaaaa, "wrong value");
    unsafe { user.write_volatile(0x1234) };
    r.check("write through mapping", unsafe { a.as_ptr::<u64>().read_volatile() } == 0x1234, "frame not written");

    space.protect(USER_VA, Attributes::USER_RODATA)?.flush();
    let faulted = fault_probe::quietly(|| unsafe { fault_probe::write(USER_VA.as_u64(), 0x5678) });
    let esr = Esr(fault_probe::last_esr());
    r.check("protect read-only takes effect", faulted && esr.is_permission_fault() && esr.is_write(), "write not refused");
    r.check("read-only still readable", unsafe { user.read_volatile() } == 0x1234, "wrong value");

    space.protect(USER_VA, Attributes::USER_DATA)?.flush();
    let faulted = fault_probe::quietly(|| unsafe { fault_probe::write(USER_VA.as_u64(), 0x5678) });
    r.check("protect writable takes effect", !faulted && unsafe { a.as_ptr::<u64>().read_volatile() } == 0x5678, "write failed");

    let (old, flush) = space.remap(USER_VA, b, Attributes::USER_DATA)?;
    flush.flush();
    r.check("remap returns old frame", old == a, "wrong frame");
    r.check("remap takes effect", unsafe { user.read_volatile() } == 0xbbbb, "old frame still visible");

    let (unmapped, flush) = space.unmap(USER_VA)?;
    flush.flush();
    let faulted = fault_probe::quietly(|| fault_probe::read(USER_VA.as_u64()));
    let esr = Esr(fault_probe::last_esr());
    r.check("unmap takes effect", unmapped == b && faulted && esr.is_translation_fault() && esr.fsc() & 3 == 3, "page still readable");
    r.check("unmap twice refused", matches!(space.unmap(USER_VA), Err(MapError::NotMapped(_))), "accepted");

    mmu::clear_user_table();
    tlb::invalidate_asid(ASID);
    r.check("tables freed, nothing mapped", space.free_tables() == 0, "pages still mapped");
    let freed = frame::free(a).is_ok() && frame::free(b).is_ok();
    r.check("frames freed", freed, "free refused");
    Ok(())
}
