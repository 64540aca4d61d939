//! Typed addresses: physical and virtual addresses never mix silently, and the only
//! conversion between them is the kernel linear map (VA = PA + KERNEL_OFFSET).

use super::{KERNEL_OFFSET, RAM_END, RAM_START};
use core::fmt;

/// A physical address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[repr(transparent)]
pub struct PhysAddr(u64);

/// A virtual address (either half).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[repr(transparent)]
pub struct VirtAddr(u64);

/// An 8-bit address-space identifier (TCR_EL1.AS = 0); ASID 0 is the kernel's / no process.
pub type Asid = u16;

impl PhysAddr {
    pub const fn new(pa: u64) -> Self { Self(pa) }
    pub const fn as_u64(self) -> u64 { self.0 }
    /// Whether the address lies in RAM (and so in the kernel linear map).
    pub const fn is_ram(self) -> bool { self.0 >= RAM_START && self.0 < RAM_END }
    /// The address of this RAM byte in the kernel linear map.
    pub const fn to_virt(self) -> VirtAddr { VirtAddr(self.0 + KERNEL_OFFSET) }
    /// Pointer through the linear map. Only meaningful for RAM.
    pub const fn as_ptr<T>(self) -> *mut T { self.to_virt().0 as *mut T }
    pub const fn is_aligned(self, align: u64) -> bool { self.0 & (align - 1) == 0 }
}

impl VirtAddr {
    pub const fn new(va: u64) -> Self { Self(va) }
    pub const fn as_u64(self) -> u64 { self.0 }
    /// Whether the VA is in the TTBR1 (kernel) half: bits 63:48 all ones.
    pub const fn is_kernel(self) -> bool { self.0 >> 48 == 0xFFFF }
    /// Whether the VA is in the TTBR0 (user) half: bits 63:48 all zeros.
    pub const fn is_user(self) -> bool { self.0 >> 48 == 0 }
    /// Whether either translation table base covers the VA (48-bit VAs).
    pub const fn is_canonical(self) -> bool { self.is_kernel() || self.is_user() }
    /// The PA behind a linear-map VA (kernel image and RAM only).
    pub const fn to_phys(self) -> PhysAddr { PhysAddr(self.0 - KERNEL_OFFSET) }
    pub const fn is_aligned(self, align: u64) -> bool { self.0 & (align - 1) == 0 }
    /// Translation-table index of this VA at `level` (0..=3).
    pub const fn table_index(self, level: usize) -> usize {
        ((self.0 >> (39 - 9 * level)) & 0x1ff) as usize
    }
}

impl fmt::Debug for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { write!(f, "PA({:#x})", self.0) }
}
impl fmt::Debug for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { write!(f, "VA({:#x})", self.0) }
}
impl fmt::LowerHex for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { fmt::LowerHex::fmt(&self.0, f) }
}
impl fmt::LowerHex for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { fmt::LowerHex::fmt(&self.0, f) }
}
