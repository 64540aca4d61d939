//! The serial shell: a line reader with echo and backspace, the `tinyos> ` prompt, and
//! dispatch through the command table in [`commands`].

pub mod commands;

use crate::debug::{EVENT_SHELL_COMMAND, EVENT_SHELL_DONE, tinyos_debug_event};
use crate::drivers::pl011::UART;
use crate::print;

/// The prompt, exactly (no newline after it).
pub const PROMPT: &str = "tinyos> ";
/// Longest command line; further characters are ignored (not echoed).
pub const MAX_LINE: usize = 256;

const BACKSPACE: u8 = 0x08;
const DELETE: u8 = 0x7f;

/// Reads one line into `buf`, echoing printable characters, handling backspace (0x08
/// and 0x7f) and ending at CR or LF (a CR LF pair counts as one line end). Returns the
/// line's length.
fn read_line(buf: &mut [u8; MAX_LINE], last_was_cr: &mut bool) -> usize {
    let mut len = 0;
    loop {
        let byte = UART.get();
        let after_cr = core::mem::replace(last_was_cr, byte == b'\r');
        match byte {
            b'\n' if after_cr => {}
            b'\r' | b'\n' => {
                print!("\n");
                return len;
            }
            BACKSPACE | DELETE => {
                if len > 0 {
                    len -= 1;
                    print!("\x08 \x08");
                }
            }
            0x20..=0x7e if len < MAX_LINE => {
                buf[len] = byte;
                len += 1;
                UART.put(byte);
            }
            _ => {}
        }
    }
}

/// Runs the shell forever.
pub fn run() -> ! {
    let mut buf = [0u8; MAX_LINE];
    let mut last_was_cr = false;
    loop {
        print!("{PROMPT}");
        let len = read_line(&mut buf, &mut last_was_cr);
        // Only printable ASCII is stored, so the line is valid UTF-8.
        let line = core::str::from_utf8(&buf[..len]).unwrap_or("");
        let (addr, size) = (line.as_ptr() as u64, line.len() as u64);
        tinyos_debug_event(EVENT_SHELL_COMMAND, addr, size);
        commands::execute(line);
        tinyos_debug_event(EVENT_SHELL_DONE, addr, size);
    }
}
