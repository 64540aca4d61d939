//! Kernel access to the running process's memory through its own user VAs (TTBR0).
//!
//! `copy_to_user` really stores through the user mapping, so a kernel write into a page
//! shared copy-on-write takes a permission fault at EL1 (ESR EC 0x25) exactly like the
//! process's own write would at EL0 (EC 0x24), and the same fault path breaks the
//! sharing (Linux: copy-out in a syscall must break COW). Only the two labelled
//! instructions of the copy loops may fault; `kernel_fault` (installed as the EL1 fault
//! hook) either resolves the fault and retries the instruction, or resumes at a fixup
//! that makes the copy return an error code (the Linux exception-table idea).

use super::cow_fault::{self, WriteFaultError};
use super::{current_slot, snapshot};
use crate::arch::aarch64::exception::{Esr, TrapFrame};
use crate::memory::VirtAddr;

/// Why a user copy failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserCopyError {
    /// The address is not mapped for this access (or not a user address).
    BadAddress,
    /// Breaking copy-on-write needed a frame and none is left.
    OutOfFrames,
}

/// Codes the fixup leaves in x0 (0 = success).
const CODE_BAD_ADDRESS: u64 = 1;
const CODE_OUT_OF_FRAMES: u64 = 2;

core::arch::global_asm!(
    r#"
.section .text, "ax"
// u64 tinyos_copy_to_user(user dst x0, kernel src x1, len x2): 0 or a fixup code.
.global tinyos_copy_to_user
tinyos_copy_to_user:
    cbz     x2, 2f
1:  ldrb    w3, [x1], #1
.global tinyos_uaccess_store
tinyos_uaccess_store:
    strb    w3, [x0]
    add     x0, x0, #1
    subs    x2, x2, #1
    b.ne    1b
2:  mov     x0, #0
    ret

// u64 tinyos_copy_from_user(kernel dst x0, user src x1, len x2): 0 or a fixup code.
.global tinyos_copy_from_user
tinyos_copy_from_user:
    cbz     x2, 2f
1:
.global tinyos_uaccess_load
tinyos_uaccess_load:
    ldrb    w3, [x1]
    add     x1, x1, #1
    strb    w3, [x0], #1
    subs    x2, x2, #1
    b.ne    1b
2:  mov     x0, #0
    ret

// Resumed here after an unresolvable fault: x0 already holds the error code.
.global tinyos_uaccess_fixup
tinyos_uaccess_fixup:
    ret
"#
);

unsafe extern "C" {
    fn tinyos_copy_to_user(dst: u64, src: *const u8, len: usize) -> u64;
    fn tinyos_copy_from_user(dst: *mut u8, src: u64, len: usize) -> u64;
    static tinyos_uaccess_store: u8;
    static tinyos_uaccess_load: u8;
    static tinyos_uaccess_fixup: u8;
}

fn check_range(va: u64, len: usize) -> Result<(), UserCopyError> {
    let end = va.checked_add(len as u64).ok_or(UserCopyError::BadAddress)?;
    if !VirtAddr::new(va).is_user() || (len > 0 && !VirtAddr::new(end - 1).is_user()) {
        return Err(UserCopyError::BadAddress);
    }
    Ok(())
}

fn decode(code: u64) -> Result<(), UserCopyError> {
    match code {
        0 => Ok(()),
        CODE_OUT_OF_FRAMES => Err(UserCopyError::OutOfFrames),
        _ => Err(UserCopyError::BadAddress),
    }
}

/// Stores `bytes` at user VA `dst` of the running process (breaking copy-on-write).
pub fn copy_to_user(dst: u64, bytes: &[u8]) -> Result<(), UserCopyError> {
    check_range(dst, bytes.len())?;
    // SAFETY: only user VAs are touched; faults are resolved or fixed up by `kernel_fault`.
    decode(unsafe { tinyos_copy_to_user(dst, bytes.as_ptr(), bytes.len()) })
}

/// Loads `buffer.len()` bytes from user VA `src` of the running process.
pub fn copy_from_user(buffer: &mut [u8], src: u64) -> Result<(), UserCopyError> {
    check_range(src, buffer.len())?;
    // SAFETY: as above; `buffer` is a kernel buffer of the given length.
    decode(unsafe { tinyos_copy_from_user(buffer.as_mut_ptr(), src, buffer.len()) })
}

/// The EL1 synchronous-exception hook: faults of the user-copy instructions. Returns
/// true when handled (the frame resumes, retrying or at the fixup).
pub fn kernel_fault(frame: &mut TrapFrame) -> bool {
    let esr = Esr(frame.esr);
    let store = &raw const tinyos_uaccess_store as u64;
    let load = &raw const tinyos_uaccess_load as u64;
    if esr.ec() != Esr::EC_DABT_CURRENT || (frame.elr != store && frame.elr != load) {
        return false;
    }
    let code = match resolve(esr, frame.far, frame.elr == store) {
        Ok(()) => return true,
        Err(UserCopyError::OutOfFrames) => CODE_OUT_OF_FRAMES,
        Err(UserCopyError::BadAddress) => CODE_BAD_ADDRESS,
    };
    frame.x[0] = code;
    frame.elr = &raw const tinyos_uaccess_fixup as u64;
    true
}

/// Breaks copy-on-write for a kernel store into a shared user page.
fn resolve(esr: Esr, far: u64, is_store: bool) -> Result<(), UserCopyError> {
    let Some(slot) = current_slot() else { return Err(UserCopyError::BadAddress) };
    if !is_store || !esr.is_permission_fault() || !VirtAddr::new(far).is_user() {
        return Err(UserCopyError::BadAddress);
    }
    let process = snapshot(slot);
    match cow_fault::handle_write_fault(process.pid, &process.space(), far) {
        Ok(_) => Ok(()),
        Err(WriteFaultError::OutOfFrames) => Err(UserCopyError::OutOfFrames),
        Err(_) => Err(UserCopyError::BadAddress),
    }
}
