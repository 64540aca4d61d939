//! The serial shell: a line reader with echo and backspace, the `tinyos> ` prompt, and
//! dispatch through the command table in [`commands`].
//!
//! While it waits for a key the line reader runs the background processes (`run
//! <program> &`); a tick that finds input pending hands the CPU back. Bytes typed while a
//! foreground program runs are kept in a small type-ahead buffer (Ctrl-C is not: it kills
//! the foreground processes) and read first. The waiting loop itself calls nothing but
//! the UART and atomics, so a debugger that stops the kernel there finds
//! `tinyos::shell::read_line` at the top of the stack (its "shell" safe point).

pub mod commands;

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::debug::{EVENT_SHELL_COMMAND, EVENT_SHELL_DONE, tinyos_debug_event};
use crate::drivers::pl011::UART;
use crate::process::scheduler::{self, BACKGROUND_READY, Mode};
use crate::{print, println};

/// The prompt, exactly (no newline after it).
pub const PROMPT: &str = "tinyos> ";
/// Longest command line; further characters are ignored (not echoed).
pub const MAX_LINE: usize = 256;

const BACKSPACE: u8 = 0x08;
const DELETE: u8 = 0x7f;
/// Ctrl-C.
pub const INTERRUPT: u8 = 0x03;

/// Bytes of type-ahead kept while a foreground program runs (more are dropped).
const TYPEAHEAD: usize = 64;
static TYPEAHEAD_BYTES: [AtomicU8; TYPEAHEAD] = [const { AtomicU8::new(0) }; TYPEAHEAD];
static TYPEAHEAD_HEAD: AtomicUsize = AtomicUsize::new(0);
/// Bytes waiting in the type-ahead buffer.
static TYPEAHEAD_LEN: AtomicUsize = AtomicUsize::new(0);

/// Keeps a byte typed while a foreground program runs for the next `read_line`.
pub fn type_ahead(byte: u8) {
    let len = TYPEAHEAD_LEN.load(Ordering::Relaxed);
    if len < TYPEAHEAD {
        let at = (TYPEAHEAD_HEAD.load(Ordering::Relaxed) + len) % TYPEAHEAD;
        TYPEAHEAD_BYTES[at].store(byte, Ordering::Relaxed);
        TYPEAHEAD_LEN.store(len + 1, Ordering::Relaxed);
    }
}

fn take_type_ahead() -> u8 {
    let head = TYPEAHEAD_HEAD.load(Ordering::Relaxed);
    TYPEAHEAD_HEAD.store((head + 1) % TYPEAHEAD, Ordering::Relaxed);
    TYPEAHEAD_LEN.fetch_sub(1, Ordering::Relaxed);
    TYPEAHEAD_BYTES[head].load(Ordering::Relaxed)
}

/// Reads one line into `buf`, echoing printable characters, handling backspace (0x08
/// and 0x7f) and ending at CR or LF (a CR LF pair counts as one line end). Returns the
/// line's length.
fn read_line(buf: &mut [u8; MAX_LINE], last_was_cr: &mut bool) -> usize {
    let mut len = 0;
    loop {
        let byte = loop {
            if TYPEAHEAD_LEN.load(Ordering::Relaxed) != 0 {
                break take_type_ahead();
            }
            if let Some(byte) = UART.try_get() {
                break byte;
            }
            if BACKGROUND_READY.load(Ordering::Relaxed) {
                scheduler::run(Mode::Background);
            } else {
                core::hint::spin_loop();
            }
        };
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
        crate::process::reap_background(&mut |pid, name, status| {
            println!("process {pid} ({name}) exited with status {status}");
        });
        print!("{PROMPT}");
        let len = read_line(&mut buf, &mut last_was_cr);
        // Only printable ASCII is stored, so the line is valid UTF-8.
        let line = core::str::from_utf8(&buf[..len]).unwrap_or("");
        let (addr, size) = (line.as_ptr() as u64, line.len() as u64);
        tinyos_debug_event(EVENT_SHELL_COMMAND, addr, size);
        commands::execute(line);
        scheduler::update_background_ready();
        tinyos_debug_event(EVENT_SHELL_DONE, addr, size);
    }
}
