//! The kernel console: `print!`/`println!` onto the PL011, turning "\n" into "\r\n"
//! (the shell's line-ending contract).

use crate::drivers::pl011::UART;
use core::fmt::{self, Write};

/// Writes formatted text to the UART.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                UART.put(b'\r');
            }
            UART.put(byte);
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn print_args(args: fmt::Arguments<'_>) {
    let _ = Console.write_fmt(args);
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print_args(format_args!($($arg)*)) };
}

/// Prints to the console with a "\r\n" line end.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::print_args(format_args!("{}\n", format_args!($($arg)*))) };
}
