//! Kernel spin lock: the only lock type in TinyOS.
//!
//! `SpinLock<T> { locked: AtomicBool, data: UnsafeCell<T> }` — the lock word is the named
//! field `locked` so a debugger can tell from DWARF and two memory reads whether a lock is
//! held (1) or free (0) without running kernel code.
//!
//! Interrupts: a guard masks IRQs (PSTATE.I) for as long as it lives and restores the
//! previous DAIF when dropped, so the timer tick is never taken while a lock is held (a
//! tick handler that took the same lock would spin on a holder that cannot run). Guards
//! must therefore be dropped in the reverse order they were taken (Rust's scopes do so).
//!
//! TinyOS runs on one CPU, so a lock that is already held when `lock()` is called can
//! never be released by anyone else: it is a self-deadlock (the bug upstream TinyOS has in
//! its `~6` test). `lock()` therefore spins a bounded number of times (enough for a second
//! CPU to finish a critical section) and then panics, naming the caller, instead of
//! hanging silently. Code that may run while a lock is held by its caller (the debugger's
//! inferior calls) uses `try_lock()`.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

/// Spins before `lock()` decides the lock can never be released (see the module doc).
const DEADLOCK_SPINS: usize = 1 << 22;

/// A mutual-exclusion lock whose state lives in the named field `locked`.
pub struct SpinLock<T> {
    /// true while a guard exists. Read by the debugger: keep the name.
    locked: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialised by `locked`; T must be sendable between contexts.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: moving the lock moves the data it owns.
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// Byte offset of the lock word (for the `layout` report).
    pub const LOCKED_OFFSET: usize = core::mem::offset_of!(Self, locked);
    /// Byte offset of the protected data (for the `layout` report).
    pub const DATA_OFFSET: usize = core::mem::offset_of!(Self, data);

    pub const fn new(value: T) -> Self {
        Self { locked: AtomicBool::new(false), data: UnsafeCell::new(value) }
    }

    /// Takes the lock; panics (naming the caller) if it stays held, which on this
    /// single-CPU kernel means the caller already holds it.
    #[track_caller]
    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        for _ in 0..DEADLOCK_SPINS {
            if let Some(guard) = self.try_lock() {
                return guard;
            }
            core::hint::spin_loop();
        }
        panic!("SpinLock::lock: lock at {:p} is held and never released (taken twice?)", self)
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<SpinLockGuard<'_, T>> {
        let daif = mask_irqs();
        match self.locked.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => Some(SpinLockGuard { lock: self, daif }),
            Err(_) => {
                restore_irqs(daif);
                None
            }
        }
    }

    /// Releases the lock with no guard: for the debugger's recovery after it abandoned a
    /// call that held it.
    ///
    /// # Safety
    /// No guard of this lock may be alive (its holder's stack was discarded), and the
    /// protected data must be usable in whatever state the holder left it.
    pub unsafe fn force_unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }

    /// Whether some guard currently exists.
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }

    /// Raw pointer to the protected data, for diagnostics that only read addresses.
    pub const fn data_ptr(&self) -> *mut T {
        self.data.get()
    }
}

/// Proof of holding a `SpinLock`; releases it when dropped.
pub struct SpinLockGuard<'a, T> {
    lock: &'a SpinLock<T>,
    /// DAIF before the lock was taken, restored after it is released.
    daif: u64,
}

/// Masks IRQs; returns DAIF as it was.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn mask_irqs() -> u64 {
    let daif: u64;
    // SAFETY: reading DAIF and setting PSTATE.I only change which interrupts are taken.
    unsafe { core::arch::asm!("mrs {}, daif", "msr daifset, #2", out(reg) daif, options(nomem, nostack)) };
    daif
}

/// Puts DAIF back as [`mask_irqs`] found it.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn restore_irqs(daif: u64) {
    // SAFETY: `daif` was read from DAIF by `mask_irqs`; writing it back only re-enables
    // the interrupts that were enabled before.
    unsafe { core::arch::asm!("msr daif, {}", in(reg) daif, options(nomem, nostack)) };
}

/// The host build of this module (kernel/hosttest) has no interrupts to mask.
#[cfg(not(target_arch = "aarch64"))]
fn mask_irqs() -> u64 {
    0
}

#[cfg(not(target_arch = "aarch64"))]
fn restore_irqs(_daif: u64) {}

impl<T> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard's existence proves exclusive access.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard's existence proves exclusive access.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for SpinLockGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
        restore_irqs(self.daif);
    }
}
