//! Boot: the first instructions of the kernel, from reset to `kernel_main` at EL1 with
//! the MMU on and the PC in the TTBR1 upper half.
//!
//! QEMU starts the CPU at the *physical* address of `_start` with the MMU off, at EL3
//! (`secure=on`), EL2 (`virtualization=on`) or EL1. This code:
//! 1. parks secondary CPUs, records the boot EL in x19;
//! 2. EL3: non-secure, EL below is AArch64 (SCR_EL3), then `eret` to EL2 when it is
//!    implemented, else to EL1; EL2: EL1 is AArch64 (HCR_EL2.RW), EL1 may use the
//!    physical timer/counter (CNTHCTL_EL2), no FP/trap config (CPTR_EL2, HSTR_EL2), then
//!    `eret` to EL1h with DAIF masked;
//! 3. at EL1: known SCTLR_EL1 (MMU off), zero .bss, a boot stack, boot tables (one L0 and
//!    one L1 shared by TTBR0 and TTBR1: 1 GiB device block at PA 0, 1 GiB normal block at
//!    PA 0x4000_0000; the identity map and the upper-half map use the same indices because
//!    T0SZ = T1SZ = 16), MAIR/TCR (IPS from ID_AA64MMFR0_EL1), MMU + caches on;
//! 4. jumps to the link-time (upper-half) address of `boot_high`, moves the stack there,
//!    installs the vectors and calls `kernel_main(boot_el)`.
//!
//! Everything before the jump is position-correct at the physical address: `adr`/`adrp`
//! (PC-relative) produce physical addresses, `movz`/`movk` with `:abs_g*:` produce
//! link-time virtual addresses. `mmu::init` later replaces the boot tables with the
//! final least-privilege ones and drops the identity map.

use core::arch::global_asm;

/// MAIR_EL1: Attr0 = Device-nGnRnE (0x00), Attr1 = Normal, inner/outer write-back
/// read/write-allocate (0xFF). Indices used by [`crate::memory::descriptor::MemoryType`].
pub const MAIR_VALUE: u64 = 0xFF << 8;

/// TCR_EL1 without IPS: T0SZ = T1SZ = 16, 4 KiB granules (TG0 = 0b00, TG1 = 0b10),
/// inner-shareable write-back table walks for both halves, 8-bit ASIDs (AS = 0), both
/// walks enabled. IPS is filled in from ID_AA64MMFR0_EL1.PARange at boot.
pub const TCR_VALUE_NO_IPS: u64 = 16
    | (0b01 << 8)
    | (0b01 << 10)
    | (0b11 << 12)
    | (0b00 << 14)
    | (16 << 16)
    | (0b01 << 24)
    | (0b01 << 26)
    | (0b11 << 28)
    | (0b10 << 30);

/// SCTLR_EL1 RES1 bits of ARMv8.0 (11, 20, 22, 23, 28, 29): the MMU-off value.
pub const SCTLR_RES1: u64 = 0x30d0_0800;
/// SCTLR_EL1 with the MMU on: M, C, SA, SA0, I, nTWI, nTWE (EL0 WFI/WFE not trapped).
/// WXN is added by `mmu::init` once the final tables exist (the boot blocks are RWX).
pub const SCTLR_MMU_ON: u64 =
    SCTLR_RES1 | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 12) | (1 << 16) | (1 << 18);
/// SCTLR_EL1.WXN: writable implies execute-never.
pub const SCTLR_WXN: u64 = 1 << 19;

/// Bytes of the boot stack (the shell and all kernel code before processes run on it).
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

global_asm!(
    r#"
.section .text.boot, "ax"
.global _start
_start:
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff
    cbnz    x0, tinyos_park

    mrs     x19, CurrentEL
    ubfx    x19, x19, #2, #2
    cmp     x19, #3
    b.ne    1f

    // ---- EL3: hand the machine to non-secure EL2 (if present) or EL1 ----
    msr     cptr_el3, xzr
    msr     mdcr_el3, xzr
    // GICv2 with security extensions: the banked SGIs/PPIs (the timer's among them) reset
    // Secure (group 0), which non-secure EL1 can neither enable nor acknowledge.
    movz    x0, #0x0800, lsl #16            // GICD (MMU off: physical)
    mov     w1, #-1
    str     w1, [x0, #0x80]                 // GICD_IGROUPR0: all group 1
    mov     w1, #3
    str     w1, [x0]                        // GICD_CTLR (secure view): both groups on
    movk    x0, #0x0801, lsl #16            // GICC
    str     w1, [x0]                        // GICC_CTLR (secure view): both groups on
    mov     w1, #0xff
    str     w1, [x0, #4]                    // GICC_PMR: every priority
    mrs     x0, id_aa64pfr0_el1
    ubfx    x0, x0, #8, #4                  // EL2 field: 0 = not implemented
    mov     x1, #0x4b1                      // RW | SMD | RES1(5:4) | NS
    cbz     x0, 2f
    orr     x1, x1, #0x100                  // HCE: HVC enabled when EL2 exists
    msr     scr_el3, x1
    mov     x2, #0x3c9                      // EL2h, DAIF masked
    msr     spsr_el3, x2
    adr     x2, tinyos_el2_setup
    msr     elr_el3, x2
    eret
2:  msr     scr_el3, x1
    mov     x2, #0x3c5                      // EL1h, DAIF masked
    msr     spsr_el3, x2
    adr     x2, tinyos_el1_setup
    msr     elr_el3, x2
    eret

1:  cmp     x19, #2
    b.ne    tinyos_el1_setup

    // ---- EL2: EL1 is AArch64, owns the timers, nothing trapped ----
tinyos_el2_setup:
    mov     x0, #(1 << 31)                  // HCR_EL2.RW
    msr     hcr_el2, x0
    mrs     x0, cnthctl_el2
    orr     x0, x0, #3                      // EL1PCTEN | EL1PCEN
    msr     cnthctl_el2, x0
    msr     cntvoff_el2, xzr
    mov     x0, #0x33ff                     // CPTR_EL2: RES1 bits, no FP/SIMD trap
    msr     cptr_el2, x0
    msr     hstr_el2, xzr
    msr     vttbr_el2, xzr
    mov     x0, #0x3c5                      // EL1h, DAIF masked
    msr     spsr_el2, x0
    adr     x0, tinyos_el1_setup
    msr     elr_el2, x0
    eret

    // ---- EL1, MMU off, running at the physical address ----
tinyos_el1_setup:
    movz    x0, #0x0800
    movk    x0, #0x30d0, lsl #16            // SCTLR_RES1: MMU and caches off
    msr     sctlr_el1, x0
    isb

    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
3:  cmp     x0, x1
    b.hs    4f
    stp     xzr, xzr, [x0], #16
    b       3b
4:
    adrp    x0, tinyos_boot_stack_top
    add     x0, x0, :lo12:tinyos_boot_stack_top
    mov     sp, x0

    // Boot tables: L0[0] -> L1; L1[0] = device block PA 0 (XN); L1[1] = normal block PA 1 GiB.
    adrp    x0, tinyos_boot_l0
    adrp    x1, tinyos_boot_l1
    orr     x2, x1, #3
    str     x2, [x0]
    mov     x2, #0x401                      // block | AttrIndx 0 | AF
    movk    x2, #0x60, lsl #48              // PXN | UXN
    str     x2, [x1]
    mov     x2, #0x705                      // block | AttrIndx 1 | SH inner | AF
    movk    x2, #0x4000, lsl #16
    str     x2, [x1, #8]
    dsb     ishst

    mov     x2, #0xff00
    msr     mair_el1, x2
    movz    x2, #0x3510
    movk    x2, #0xb510, lsl #16            // TCR_VALUE_NO_IPS
    mrs     x3, id_aa64mmfr0_el1
    ubfx    x3, x3, #0, #4                  // PARange
    cmp     x3, #5
    mov     x4, #5
    csel    x3, x3, x4, ls                  // clamp to 48 bits (the largest 4 KiB IPS)
    bfi     x2, x3, #32, #3
    msr     tcr_el1, x2
    msr     ttbr0_el1, x0
    msr     ttbr1_el1, x0
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    movz    x2, #0x181d
    movk    x2, #0x30d5, lsl #16            // SCTLR_MMU_ON
    msr     sctlr_el1, x2
    isb

    movz    x0, #:abs_g3:tinyos_boot_high
    movk    x0, #:abs_g2_nc:tinyos_boot_high
    movk    x0, #:abs_g1_nc:tinyos_boot_high
    movk    x0, #:abs_g0_nc:tinyos_boot_high
    br      x0

.global tinyos_park
tinyos_park:
    msr     daifset, #0xf
5:  wfe
    b       5b

// The identity-mapped trampoline that moves TTBR1 to the final tables (x0 = PA of L0).
// It runs at its physical address so that TTBR1 can point at an empty table in between
// (break-before-make for the whole upper half: the boot blocks and the final pages never
// coexist in the TLB). Leaf function: no stack use.
.global tinyos_switch_ttbr1
tinyos_switch_ttbr1:
    adr     x1, 6f
    and     x1, x1, #0xffffffffffff
    br      x1
6:  adrp    x2, tinyos_empty_l0
    and     x2, x2, #0xffffffffffff
    msr     ttbr1_el1, x2
    isb
    tlbi    vmalle1is
    dsb     ish
    isb
    msr     ttbr1_el1, x0
    isb
    tlbi    vmalle1is
    dsb     ish
    isb
    ret

.section .text, "ax"
tinyos_boot_high:
    movz    x0, #:abs_g3:tinyos_boot_stack_top
    movk    x0, #:abs_g2_nc:tinyos_boot_stack_top
    movk    x0, #:abs_g1_nc:tinyos_boot_stack_top
    movk    x0, #:abs_g0_nc:tinyos_boot_stack_top
    mov     sp, x0
    adrp    x0, tinyos_vectors
    add     x0, x0, :lo12:tinyos_vectors
    msr     vbar_el1, x0
    isb
    mov     x0, x19
    mov     x29, xzr
    mov     x30, xzr
    bl      kernel_main
    b       tinyos_park

.section .bss.boot, "aw", @nobits
.balign 4096
.global tinyos_boot_l0
tinyos_boot_l0:     .space 4096
.global tinyos_boot_l1
tinyos_boot_l1:     .space 4096
// An all-invalid L0 table: TTBR0 when no process runs (ASID 0), TTBR1 during the switch.
.global tinyos_empty_l0
tinyos_empty_l0:    .space 4096
// Unmapped by the final kernel tables: a boot-stack overflow faults here (see stacks.rs).
.global tinyos_boot_stack_guard
tinyos_boot_stack_guard: .space 4096
.balign 16
.global tinyos_boot_stack_bottom
tinyos_boot_stack_bottom:
    .space 65536
.global tinyos_boot_stack_top
tinyos_boot_stack_top:
"#
);

const _: () = assert!(BOOT_STACK_SIZE == 65536, "the .space in the boot asm must match");
const _: () = assert!(TCR_VALUE_NO_IPS == 0xb510_3510, "the movz/movk in the boot asm must match");
const _: () = assert!(SCTLR_MMU_ON == 0x30d5_181d, "the movz/movk in the boot asm must match");
const _: () = assert!(MAIR_VALUE == 0xff00, "the mov in the boot asm must match");
