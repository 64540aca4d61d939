//! The command table: every shell command with its one-line description, grouped by
//! module, and the dispatcher (`help` lists them in this order).

mod fault;
pub mod layout;
mod memory;
mod selftest;
mod system;

use crate::println;

/// A shell command: `run` gets the arguments after the name (trimmed).
pub struct Command {
    pub name: &'static str,
    pub description: &'static str,
    pub run: fn(args: &str),
}

/// Every command, in `help` order. Issue 3 adds its commands to `system::COMMANDS`.
const GROUPS: &[&[Command]] = &[system::COMMANDS, memory::COMMANDS, fault::COMMANDS, layout::COMMANDS, selftest::COMMANDS];

/// Iterates over all commands.
pub fn all() -> impl Iterator<Item = &'static Command> {
    GROUPS.iter().flat_map(|group| group.iter())
}

/// Runs one command line; an empty line does nothing.
pub fn execute(line: &str) {
    let line = line.trim();
    if line.is_empty() {
        return;
    }
    let (name, args) = line.split_once(' ').unwrap_or((line, ""));
    match all().find(|command| command.name == name) {
        Some(command) => (command.run)(args.trim()),
        None => println!("error: unknown command '{name}' (try 'help')"),
    }
}

/// Parses a hex number with or without `0x`/`0X` (underscores allowed).
pub fn parse_hex(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
    if digits.is_empty() || digits.len() > 16 + digits.matches('_').count() {
        return None;
    }
    let mut value: u64 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        value = value.checked_mul(16)?.checked_add(c.to_digit(16)? as u64)?;
    }
    Some(value)
}
