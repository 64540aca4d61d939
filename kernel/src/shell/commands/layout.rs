//! `layout`: the compiler's sizes, alignments and field offsets of the structs the
//! debugger decodes, so the DWARF decoder can be checked against the running kernel.

use super::Command;
use crate::println;

pub const COMMANDS: &[Command] = &[Command {
    name: "layout",
    description: "sizes and field offsets of the structs the debugger decodes",
    run: layout,
}];

fn layout(_args: &str) {
    crate::layout::report(&mut |line| println!("{line}"));
}
