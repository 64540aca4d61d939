//! Memory commands: `mem` (frame allocator counts, RAM and image bounds) and `pt <va>`
//! (the software walk of a VA through the live translation tables).

use super::{Command, parse_hex};
use crate::arch::aarch64::mmu;
use crate::memory::walk::Outcome;
use crate::memory::{PAGE_SIZE, RAM_END, RAM_START, VirtAddr, frame, image};
use crate::println;

pub const COMMANDS: &[Command] = &[
    Command { name: "mem", description: "physical frames: total, free, used", run: mem },
    Command { name: "pt", description: "<va>: walk the live translation tables for a hex VA", run: pt },
];

fn mem(_args: &str) {
    let stats = frame::stats();
    println!(
        "frames: total={} free={} used={} ({} bytes each)",
        stats.total,
        stats.free,
        stats.used(),
        PAGE_SIZE
    );
    let (start, end) = image::physical();
    println!("ram: {RAM_START:#x}-{RAM_END:#x} kernel image: {start:#x}-{end:#x}");
}

fn pt(args: &str) {
    if args.is_empty() {
        println!("error: usage: pt <va> (hex, e.g. pt 0xffff000040080000)");
        return;
    }
    let Some(va) = parse_hex(args).map(VirtAddr::new) else {
        println!("error: invalid address '{args}' (expected hex, e.g. pt 0xffff000040080000)");
        return;
    };
    let Some(walk) = mmu::with_live_space(va, |space| space.walk(va)) else {
        println!("error: {va:#x} is not a canonical address (bits 63:48 must be all 0 or all 1)");
        return;
    };
    for step in walk.steps() {
        println!(
            "L{} index={} table={:#x} desc={:#018x} {}",
            step.level,
            step.index,
            step.table,
            step.desc.bits(),
            kind_name(step.kind())
        );
    }
    match walk.outcome {
        Outcome::Mapped { pa, attrs, .. } => println!("va {va:#x} -> pa {pa:#x} {attrs}"),
        Outcome::NotMapped { level } => println!("va {va:#x}: not mapped (fault at level {level})"),
        Outcome::BadTable { level, table } => {
            println!("va {va:#x}: level {level} table at {table:#x} is outside RAM")
        }
    }
}

fn kind_name(kind: crate::memory::descriptor::Kind) -> &'static str {
    use crate::memory::descriptor::Kind;
    match kind {
        Kind::Invalid => "invalid",
        Kind::Table => "table",
        Kind::Block => "block",
        Kind::Page => "page",
        Kind::Reserved => "reserved",
    }
}
