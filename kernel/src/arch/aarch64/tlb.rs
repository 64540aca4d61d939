//! TLB maintenance. Every change to a live translation-table entry yields a
//! [`TlbFlush`] token that is `#[must_use]`: forgetting to invalidate the old
//! translation is a compile-time warning (the blog_os pattern).
//!
//! Operand of `tlbi vae1is`/`vale1is`: VA[55:12] in bits [43:0], ASID in bits [63:48].
//! User (nG) entries are invalidated by VA *and* ASID; global kernel entries by VA for
//! all ASIDs (`vaae1is`). Each invalidation is preceded by `dsb ishst` (the table write
//! is visible to the walkers) and followed by `dsb ish` + `isb`.

use crate::memory::{Asid, VirtAddr};

/// A pending invalidation of one page's translation.
#[must_use = "the TLB may still hold the old translation: call .flush()"]
#[derive(Debug)]
pub struct TlbFlush {
    va: VirtAddr,
    asid: Option<Asid>,
}

impl TlbFlush {
    /// A pending flush of `va`; `asid` is `Some` for user (nG) mappings, `None` for
    /// global kernel mappings.
    pub const fn new(va: VirtAddr, asid: Option<Asid>) -> Self { Self { va, asid } }

    /// Invalidates the translation on every CPU of the inner-shareable domain.
    pub fn flush(self) {
        invalidate_page(self.va, self.asid);
    }

    /// The VA this token covers.
    pub const fn va(&self) -> VirtAddr { self.va }

    /// Drops the token without invalidating.
    ///
    /// # Safety
    /// Only when the caller invalidates a wider range (e.g. the whole ASID) itself.
    pub unsafe fn ignore(self) {}
}

/// The `tlbi` operand for a VA (and ASID).
pub const fn tlbi_operand(va: VirtAddr, asid: Asid) -> u64 {
    ((va.as_u64() >> 12) & 0x0000_0FFF_FFFF_FFFF) | ((asid as u64) << 48)
}

/// Invalidates one page's translation (all levels): by VA and ASID for user mappings,
/// by VA in every ASID for kernel mappings.
pub fn invalidate_page(va: VirtAddr, asid: Option<Asid>) {
    // SAFETY: TLB invalidation and barriers never make a valid program incorrect.
    unsafe {
        match asid {
            Some(asid) => core::arch::asm!(
                "dsb ishst",
                "tlbi vae1is, {op}",
                "dsb ish",
                "isb",
                op = in(reg) tlbi_operand(va, asid),
                options(nostack)
            ),
            None => core::arch::asm!(
                "dsb ishst",
                "tlbi vaae1is, {op}",
                "dsb ish",
                "isb",
                op = in(reg) tlbi_operand(va, 0),
                options(nostack)
            ),
        }
    }
}

/// Invalidates every translation tagged with `asid` (before an ASID is reused).
pub fn invalidate_asid(asid: Asid) {
    // SAFETY: as above.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi aside1is, {op}",
            "dsb ish",
            "isb",
            op = in(reg) (asid as u64) << 48,
            options(nostack)
        )
    };
}

/// Invalidates all EL1&0 translations.
pub fn invalidate_all() {
    // SAFETY: as above.
    unsafe { core::arch::asm!("dsb ishst", "tlbi vmalle1is", "dsb ish", "isb", options(nostack)) };
}
