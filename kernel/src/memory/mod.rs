//! Memory management: typed addresses and the kernel's memory map, the physical frame
//! allocator, translation-table descriptors, the table walker and address spaces
//! (map/unmap/protect/translate with TLB maintenance). Issue 3 adds `cow.rs` here.
pub mod address;
pub mod address_space;
pub mod cow;
pub mod descriptor;
pub mod frame;
pub mod walk;

pub use address::{Asid, PhysAddr, VirtAddr};

/// Size of a translation granule, a frame and a page.
pub const PAGE_SIZE: u64 = 4096;
/// Size of a level-2 block with the 4 KiB granule.
pub const BLOCK_2M: u64 = 2 * 1024 * 1024;
/// Kernel VA = PA + KERNEL_OFFSET (the TTBR1 linear map).
pub const KERNEL_OFFSET: u64 = 0xFFFF_0000_0000_0000;
/// Physical RAM of QEMU `virt` with `-m 128M`.
pub const RAM_START: u64 = 0x4000_0000;
/// Bytes of RAM (the `-m 128M` the project runs with).
pub const RAM_SIZE: u64 = 128 * 1024 * 1024;
/// First physical address after RAM.
pub const RAM_END: u64 = RAM_START + RAM_SIZE;
/// The PL011 UART's physical address.
pub const UART_PA: u64 = 0x0900_0000;

/// Rounds `value` down to a multiple of `align` (a power of two).
pub const fn align_down(value: u64, align: u64) -> u64 {
    value & !(align - 1)
}

/// Rounds `value` up to a multiple of `align` (a power of two).
pub const fn align_up(value: u64, align: u64) -> u64 {
    (value + align - 1) & !(align - 1)
}

/// The kernel image's bounds, from the linker script.
pub mod image {
    use super::{PhysAddr, VirtAddr};

    unsafe extern "C" {
        static __kernel_start: u8;
        static __text_start: u8;
        static __text_end: u8;
        static __rodata_start: u8;
        static __rodata_end: u8;
        static __data_start: u8;
        static __kernel_end: u8;
        static __build_id_start: u8;
        static __build_id_end: u8;
    }

    macro_rules! symbol_va {
        ($name:ident) => {
            VirtAddr::new(&raw const $name as u64)
        };
    }

    /// Start of the image (VA), page aligned.
    pub fn start() -> VirtAddr { symbol_va!(__kernel_start) }
    /// End of the image (VA) including .bss, boot tables and stacks, page aligned.
    pub fn end() -> VirtAddr { symbol_va!(__kernel_end) }
    /// Kernel text [start, end): read-only, executable at EL1.
    pub fn text() -> (VirtAddr, VirtAddr) { (symbol_va!(__text_start), symbol_va!(__text_end)) }
    /// Read-only data including the build-id note.
    pub fn rodata() -> (VirtAddr, VirtAddr) { (symbol_va!(__rodata_start), symbol_va!(__rodata_end)) }
    /// .data, .bss, boot tables and stacks: read-write, never executable.
    pub fn data() -> (VirtAddr, VirtAddr) { (symbol_va!(__data_start), symbol_va!(__kernel_end)) }
    /// Physical bounds of the whole image.
    pub fn physical() -> (PhysAddr, PhysAddr) { (start().to_phys(), end().to_phys()) }
    /// The GNU build-id note (header, "GNU\0", then the 20-byte SHA-1).
    pub fn build_id_note() -> &'static [u8] {
        let start = symbol_va!(__build_id_start).as_u64();
        let end = symbol_va!(__build_id_end).as_u64();
        // SAFETY: the linker script places the loaded, read-only note between the symbols.
        unsafe { core::slice::from_raw_parts(start as *const u8, (end - start) as usize) }
    }
    /// The build-id bytes (the note's descriptor), empty if the note is missing.
    pub fn build_id() -> &'static [u8] {
        let note = build_id_note();
        if note.len() < 16 {
            return &[];
        }
        let namesz = u32::from_le_bytes([note[0], note[1], note[2], note[3]]) as usize;
        let descsz = u32::from_le_bytes([note[4], note[5], note[6], note[7]]) as usize;
        let desc = 12 + super::align_up(namesz as u64, 4) as usize;
        note.get(desc..desc + descsz).unwrap_or(&[])
    }
}
