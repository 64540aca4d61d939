//! VMSAv8-64 translation-table descriptors (4 KiB granule, stage 1) as a typed `u64`
//! with named fields, the permission/memory-type attributes they encode, and the
//! 512-entry table page.
//!
//! Bit layout (ARM ARM D8.3): [0] valid, [1] table/page (vs block), [4:2] AttrIndx,
//! [7:6] AP, [9:8] SH, [10] AF, [11] nG, [47:12] output address, [53] PXN, [54] UXN,
//! [58:55] reserved for software. Table descriptors: [47:12] next-level table address.

use super::PhysAddr;
use core::fmt;

/// One translation-table entry.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct Descriptor(u64);

/// AP[2:1]: data access permissions for EL1 and EL0.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Ap {
    /// EL1 read-write, EL0 no access.
    El1Rw = 0b00,
    /// EL1 and EL0 read-write.
    El1RwEl0Rw = 0b01,
    /// EL1 read-only, EL0 no access.
    El1Ro = 0b10,
    /// EL1 and EL0 read-only.
    El1RoEl0Ro = 0b11,
}

/// SH[1:0]: shareability of Normal memory.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Shareability {
    Non = 0b00,
    Outer = 0b10,
    Inner = 0b11,
}

/// AttrIndx: an index into MAIR_EL1 as programmed at boot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum MemoryType {
    /// MAIR Attr0: Device-nGnRnE.
    Device = 0,
    /// MAIR Attr1: Normal, write-back, read/write-allocate.
    Normal = 1,
}

/// What a descriptor is, which depends on its level.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Invalid,
    /// Points to a next-level table (levels 0-2).
    Table,
    /// Maps a 1 GiB (level 1) or 2 MiB (level 2) block.
    Block,
    /// Maps a 4 KiB page (level 3).
    Page,
    /// Valid bit set with an encoding the architecture reserves (e.g. a level-0 block).
    Reserved,
}

/// The attributes of a leaf mapping, independent of its size.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Attributes {
    pub ap: Ap,
    /// Privileged execute-never (EL1 may not execute).
    pub pxn: bool,
    /// Unprivileged execute-never (EL0 may not execute).
    pub uxn: bool,
    /// nG: the TLB entry belongs to one ASID (all user mappings).
    pub not_global: bool,
    pub memory: MemoryType,
    /// The four software-defined bits [58:55], free for the COW layer.
    pub software: u8,
}

const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
const ATTR_INDX_SHIFT: u32 = 2;
const AP_SHIFT: u32 = 6;
const SH_SHIFT: u32 = 8;
const AF: u64 = 1 << 10;
const NG: u64 = 1 << 11;
const ADDRESS_MASK: u64 = 0x0000_FFFF_FFFF_F000;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const SOFTWARE_SHIFT: u32 = 55;

impl Descriptor {
    pub const INVALID: Self = Self(0);

    pub const fn from_bits(bits: u64) -> Self { Self(bits) }
    pub const fn bits(self) -> u64 { self.0 }
    pub const fn is_valid(self) -> bool { self.0 & VALID != 0 }

    /// A table descriptor pointing at the next-level table at `table`.
    pub const fn table(table: PhysAddr) -> Self {
        Self((table.as_u64() & ADDRESS_MASK) | TABLE_OR_PAGE | VALID)
    }

    /// A leaf for `pa` at `level` (2 MiB block at level 2, 1 GiB at level 1, page at 3).
    pub const fn leaf(pa: PhysAddr, level: usize, attrs: Attributes) -> Self {
        let kind_bits = if level == 3 { TABLE_OR_PAGE | VALID } else { VALID };
        let shareability = match attrs.memory {
            MemoryType::Normal => Shareability::Inner,
            MemoryType::Device => Shareability::Non,
        };
        let mut bits = (pa.as_u64() & ADDRESS_MASK)
            | kind_bits
            | ((attrs.memory as u64) << ATTR_INDX_SHIFT)
            | ((attrs.ap as u64) << AP_SHIFT)
            | ((shareability as u64) << SH_SHIFT)
            | AF
            | (((attrs.software & 0xf) as u64) << SOFTWARE_SHIFT);
        if attrs.not_global { bits |= NG; }
        if attrs.pxn { bits |= PXN; }
        if attrs.uxn { bits |= UXN; }
        Self(bits)
    }

    /// What the entry is when found at translation `level`.
    pub const fn kind(self, level: usize) -> Kind {
        if !self.is_valid() {
            return Kind::Invalid;
        }
        let table_bit = self.0 & TABLE_OR_PAGE != 0;
        match (level, table_bit) {
            (3, true) => Kind::Page,
            (3, false) | (0, false) => Kind::Reserved,
            (_, true) => Kind::Table,
            (_, false) => Kind::Block,
        }
    }

    /// Output address: next table, block or page base.
    pub const fn address(self) -> PhysAddr { PhysAddr::new(self.0 & ADDRESS_MASK) }

    pub const fn attr_index(self) -> u8 { ((self.0 >> ATTR_INDX_SHIFT) & 0b111) as u8 }
    pub const fn ap(self) -> Ap {
        match (self.0 >> AP_SHIFT) & 0b11 {
            0b00 => Ap::El1Rw,
            0b01 => Ap::El1RwEl0Rw,
            0b10 => Ap::El1Ro,
            _ => Ap::El1RoEl0Ro,
        }
    }
    pub const fn sh(self) -> u8 { ((self.0 >> SH_SHIFT) & 0b11) as u8 }
    pub const fn af(self) -> bool { self.0 & AF != 0 }
    pub const fn ng(self) -> bool { self.0 & NG != 0 }
    pub const fn pxn(self) -> bool { self.0 & PXN != 0 }
    pub const fn uxn(self) -> bool { self.0 & UXN != 0 }
    pub const fn software(self) -> u8 { ((self.0 >> SOFTWARE_SHIFT) & 0xf) as u8 }

    /// The leaf's attributes (meaningful for blocks and pages only).
    pub const fn attributes(self) -> Attributes {
        Attributes {
            ap: self.ap(),
            pxn: self.pxn(),
            uxn: self.uxn(),
            not_global: self.ng(),
            memory: if self.attr_index() == MemoryType::Device as u8 {
                MemoryType::Device
            } else {
                MemoryType::Normal
            },
            software: self.software(),
        }
    }
}

impl Ap {
    /// `R-` / `RW` as seen from EL1.
    pub const fn el1(self) -> &'static str {
        match self {
            Ap::El1Rw | Ap::El1RwEl0Rw => "RW",
            Ap::El1Ro | Ap::El1RoEl0Ro => "R-",
        }
    }
    /// `--` / `R-` / `RW` as seen from EL0.
    pub const fn el0(self) -> &'static str {
        match self {
            Ap::El1Rw | Ap::El1Ro => "--",
            Ap::El1RwEl0Rw => "RW",
            Ap::El1RoEl0Ro => "R-",
        }
    }
    pub const fn writable(self) -> bool { matches!(self, Ap::El1Rw | Ap::El1RwEl0Rw) }
}

impl Attributes {
    const fn kernel(ap: Ap, pxn: bool) -> Self {
        Self { ap, pxn, uxn: true, not_global: false, memory: MemoryType::Normal, software: 0 }
    }
    const fn user(ap: Ap, uxn: bool) -> Self {
        Self { ap, pxn: true, uxn, not_global: true, memory: MemoryType::Normal, software: 0 }
    }
    /// Kernel text: EL1 read + execute, EL0 nothing.
    pub const KERNEL_TEXT: Self = Self::kernel(Ap::El1Ro, false);
    /// Kernel read-only data.
    pub const KERNEL_RODATA: Self = Self::kernel(Ap::El1Ro, true);
    /// Kernel data, stacks, tables and the rest of RAM.
    pub const KERNEL_DATA: Self = Self::kernel(Ap::El1Rw, true);
    /// MMIO: Device-nGnRnE, EL1 read-write, never executable.
    pub const DEVICE: Self = Self {
        ap: Ap::El1Rw,
        pxn: true,
        uxn: true,
        not_global: false,
        memory: MemoryType::Device,
        software: 0,
    };
    /// User code: EL0 read + execute, never writable, EL1 never executes it.
    pub const USER_CODE: Self = Self::user(Ap::El1RoEl0Ro, false);
    /// User data, heap and stack: EL0 read-write, never executable.
    pub const USER_DATA: Self = Self::user(Ap::El1RwEl0Rw, true);
    /// User read-only data (also a COW-shared writable page while shared).
    pub const USER_RODATA: Self = Self::user(Ap::El1RoEl0Ro, true);

    /// Same attributes, writable (EL0 write allowed if EL0 could read).
    pub const fn writable(self) -> Self {
        let ap = match self.ap {
            Ap::El1Ro => Ap::El1Rw,
            Ap::El1RoEl0Ro => Ap::El1RwEl0Rw,
            other => other,
        };
        Self { ap, ..self }
    }
    /// Same attributes, read-only.
    pub const fn read_only(self) -> Self {
        let ap = match self.ap {
            Ap::El1Rw => Ap::El1Ro,
            Ap::El1RwEl0Rw => Ap::El1RoEl0Ro,
            other => other,
        };
        Self { ap, ..self }
    }
    /// Writable and executable at the same level (forbidden by policy and by WXN).
    pub const fn is_writable_executable(self) -> bool {
        self.ap.writable() && (!self.pxn || (!self.uxn && matches!(self.ap, Ap::El1RwEl0Rw)))
    }
}

impl fmt::Display for Attributes {
    /// `EL1:R- EL0:-- UXN normal` — the `pt` command's attribute format.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EL1:{} EL0:{}", self.ap.el1(), self.ap.el0())?;
        if self.pxn { f.write_str(" PXN")?; }
        if self.uxn { f.write_str(" UXN")?; }
        if self.not_global { f.write_str(" nG")?; }
        f.write_str(match self.memory {
            MemoryType::Normal => " normal",
            MemoryType::Device => " device",
        })
    }
}

impl fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { write!(f, "Descriptor({:#018x})", self.0) }
}

/// Entries per table with the 4 KiB granule.
pub const ENTRIES: usize = 512;

/// One 4 KiB translation table.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
pub struct PageTable {
    pub entries: [Descriptor; ENTRIES],
}

impl PageTable {
    pub const EMPTY: Self = Self { entries: [Descriptor::INVALID; ENTRIES] };
}

const _: () = assert!(core::mem::size_of::<PageTable>() == 4096);
const _: () = assert!(core::mem::size_of::<Descriptor>() == 8);
const _: () = assert!(!Attributes::KERNEL_TEXT.is_writable_executable());
const _: () = assert!(!Attributes::KERNEL_DATA.is_writable_executable());
const _: () = assert!(!Attributes::USER_DATA.is_writable_executable());
const _: () = assert!(!Attributes::USER_CODE.is_writable_executable());
