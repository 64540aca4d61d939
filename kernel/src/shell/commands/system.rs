//! System commands: `help`, `version`. Issue 3 adds the COW commands (`~1`..`~6`), `ps`
//! and `run` to this table.

use super::Command;
use crate::println;

pub const COMMANDS: &[Command] = &[
    Command { name: "help", description: "list the commands", run: help },
    Command { name: "version", description: "kernel version, exception level and build-id", run: version },
];

fn help(_args: &str) {
    for command in super::all() {
        println!("  {:<10}{}", command.name, command.description);
    }
}

fn version(_args: &str) {
    crate::print_banner();
}
