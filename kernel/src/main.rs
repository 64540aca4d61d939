#![no_std]
#![no_main]
use core::panic::PanicInfo;
core::arch::global_asm!(r#"
.section .text.boot
.global _start
_start:
    ldr x1, =0x09000000
    mov w2, #'O'
    str w2, [x1]
    mov w2, #'K'
    str w2, [x1]
1:  wfe
    b 1b
"#);
#[panic_handler]
fn panic(_: &PanicInfo) -> ! { loop {} }
