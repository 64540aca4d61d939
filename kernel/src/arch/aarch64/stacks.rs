//! Kernel stacks with guard pages, and the emergency stack a stack overflow is reported on.
//!
//! Layout (all in .bss, so part of the reserved kernel image):
//! - `tinyos_kernel_stacks`: [`COUNT`] slots of [`SLOT_SIZE`] (32 KiB, aligned to it),
//!   one per process-table slot; each is [`GUARD_SIZE`] of guard pages, then the
//!   [`KERNEL_STACK_SIZE`] stack above them (stacks grow down, into their guard);
//! - the boot stack (the shell's, in boot.rs) with one guard page, `tinyos_boot_stack_guard`,
//!   below it;
//! - `tinyos_overflow_stack`: where the exception entry reports an overflow.
//!
//! `mmu::init` leaves every guard page unmapped in the kernel's linear map, so the first
//! access below a stack takes a translation fault. Taking that fault needs stack too: the
//! EL1 vectors (exception.rs) check, before storing anything, whether the frame they are
//! about to push would land in a guard; if so they switch to the overflow stack and the
//! exception is reported as a stack overflow (with the owner's pid, through the hook the
//! process layer installs) before the CPU halts: a kernel whose stack overflowed may hold
//! any lock, so it is not resumed. A stack frame larger than its guard could still jump
//! over it (like Linux without stack probes); TinyOS has no such frame.

/// Kernel stacks in the stacks area (one per process-table slot).
pub const COUNT: usize = 16;
/// Bytes of each stack (its process's `TrapFrame` sits at the top).
pub const KERNEL_STACK_SIZE: usize = 16 * 1024;
/// Bytes of unmapped guard below each stack.
pub const GUARD_SIZE: usize = 16 * 1024;
/// Guard plus stack: a power of two, so the vectors find a slot's guard with a mask.
pub const SLOT_SIZE: usize = GUARD_SIZE + KERNEL_STACK_SIZE;
/// Bytes of the whole stacks area.
pub const AREA_SIZE: usize = COUNT * SLOT_SIZE;
/// Bytes of the boot stack's guard (one page).
pub const BOOT_GUARD_SIZE: usize = 4096;
/// Bytes of the stack overflows are reported on.
pub const OVERFLOW_STACK_SIZE: usize = 16 * 1024;

const _: () = assert!(SLOT_SIZE.is_power_of_two() && GUARD_SIZE % 4096 == 0);
// The vectors compare with `cmp` immediates (12 bits, optionally shifted by 12).
const _: () = assert!(AREA_SIZE % 4096 == 0 && AREA_SIZE >> 12 < 4096 && GUARD_SIZE >> 12 < 4096);

core::arch::global_asm!(
    r#"
.section .bss.tinyos_kernel_stacks, "aw", @nobits
.balign {slot}
.global tinyos_kernel_stacks
tinyos_kernel_stacks:
    .space {area}

.section .bss.tinyos_overflow_stack, "aw", @nobits
.balign 4096
.global tinyos_overflow_stack
tinyos_overflow_stack:
    .space {overflow}
.global tinyos_overflow_stack_top
tinyos_overflow_stack_top:
"#,
    slot = const SLOT_SIZE,
    area = const AREA_SIZE,
    overflow = const OVERFLOW_STACK_SIZE,
);

unsafe extern "C" {
    static tinyos_kernel_stacks: u8;
    static tinyos_boot_stack_guard: u8;
}

fn area_start() -> usize { &raw const tinyos_kernel_stacks as usize }
fn boot_guard() -> usize { &raw const tinyos_boot_stack_guard as usize }

/// The top of stack `index` (exclusive; 16-byte aligned).
pub fn top(index: usize) -> usize {
    assert!(index < COUNT, "kernel stack {index} does not exist");
    area_start() + (index + 1) * SLOT_SIZE
}

/// Whose stack a guard belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Owner {
    /// The boot stack: the shell and all kernel code outside processes.
    Boot,
    /// Stack `index` of the stacks area (process-table slot `index`).
    Slot(usize),
}

/// The guard ranges [start, end) (kernel VAs), the boot stack's first.
pub fn guards() -> impl Iterator<Item = (Owner, usize, usize)> {
    let boot = (Owner::Boot, boot_guard(), boot_guard() + BOOT_GUARD_SIZE);
    let slots = (0..COUNT).map(|i| {
        let start = area_start() + i * SLOT_SIZE;
        (Owner::Slot(i), start, start + GUARD_SIZE)
    });
    core::iter::once(boot).chain(slots)
}

/// The stack whose guard `va` lies in, if any.
pub fn guard_owner(va: u64) -> Option<Owner> {
    let va = va as usize;
    guards().find(|&(_, start, end)| (start..end).contains(&va)).map(|(owner, _, _)| owner)
}
