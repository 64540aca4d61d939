//! TinyOS: a small AArch64 kernel for QEMU `virt` (cortex-a72), built to be debugged.
//!
//! `kernel_main` is entered from the boot code (arch/aarch64/boot.rs) at EL1 with the
//! MMU on (boot tables), running in the TTBR1 upper half. Init order: console, final
//! kernel translation tables (drops the identity map), interrupt controller and timer,
//! frame allocator, banner, shell.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod arch;
pub mod console;
pub mod debug;
pub mod drivers;
pub mod entry_points;
pub mod layout;
pub mod memory;
pub mod process;
pub mod shell;
pub mod sync;

use arch::aarch64::{gic, halt, mmu, sysreg, timer};
use core::sync::atomic::{AtomicU64, Ordering};

/// The exception level QEMU started the kernel at (3, 2 or 1), for the banner.
static BOOT_EL: AtomicU64 = AtomicU64::new(0);

/// The kernel's Rust entry point, called once by the boot code with the boot EL.
#[unsafe(no_mangle)]
pub extern "C" fn kernel_main(boot_el: u64) -> ! {
    BOOT_EL.store(boot_el, Ordering::Relaxed);
    drivers::pl011::UART.init();
    if let Err(err) = mmu::init() {
        println!("boot: cannot build the kernel page tables: {err}");
        halt();
    }
    gic::init();
    timer::init();
    let (image_start, image_end) = memory::image::physical();
    memory::frame::init(image_start, image_end);
    process::init();
    print_banner();
    println!("type 'help' for the commands");
    shell::run()
}

/// The boot banner (also printed by `version`).
pub fn print_banner() {
    println!("TinyOS {} (aarch64)", env!("CARGO_PKG_VERSION"));
    println!(
        "booted at EL{}, running at EL{}, MMU {}",
        BOOT_EL.load(Ordering::Relaxed),
        sysreg::current_el(),
        if sysreg::mmu_enabled() { "on" } else { "off" }
    );
    print!("build-id: ");
    for byte in memory::image::build_id() {
        print!("{byte:02x}");
    }
    println!();
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("panic: {info}");
    halt()
}
