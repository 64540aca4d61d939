//! System commands: `help`, `version`, the processes (`ps`, `run`, `cont`, `kill`,
//! `sched`) and
//! the copy-on-write commands `~1`..`~6` (upstream TinyOS's names and output formats,
//! with true values).
//!
//! - `~1` status: the statistics summary and one line per tracked page:
//!   `  0x<PA> refs=<n> cow=yes va=0x<VA>/pid=<p> ...` (at most 64 lines, then a count).
//! - `~2` statistics, `Memory Efficiency` = Σ(refs − 1) / Σ refs (mapped bytes saved).
//! - `~3 [src_va dst_va [src_pid dst_pid]]` shares the page at src_va of one process
//!   with another at dst_va (unmapped there), copy-on-write. Defaults: src_va =
//!   0x10000000 (the heap's first page), dst_va = 0x30000000 (above the heap), the
//!   oldest and the newest live processes; with fewer than two live processes, two
//!   `idle` processes (one heap page each, paused) are started first.
//! - `~4 <va|pa> [pid]` protects a page (a RAM address is a PA, anything else a user VA
//!   looked up in pid, or in every live process); `~5 <va|pa> [pid]` removes the
//!   protection when only one mapping is left, and otherwise refuses with the reason.
//! - `~6` runs the self-test suite (`process::cow_selftest`).

use super::{Command, parse_hex};
use crate::memory::cow::{COW_MANAGER, CowPage};
use crate::process::cow_fault::{self, CowOpError};
use crate::process::user::{PROGRAMS, Program, USER_HEAP_LIMIT, USER_HEAP_START};
use crate::process::{self, MAX_PROCESSES, Outcome, PROCESSES, ProcessState, cow_selftest, scheduler};
use crate::drivers::pl011::UART;
use crate::println;

pub const COMMANDS: &[Command] = &[
    Command { name: "help", description: "list the commands", run: help },
    Command { name: "version", description: "kernel version, exception level and build-id", run: version },
    Command { name: "ps", description: "list the processes", run: ps },
    Command { name: "run", description: "run <program> [arg] [&]: start a user program (no name: list them)", run: run },
    Command { name: "cont", description: "wake the paused processes and run until idle", run: cont },
    Command { name: "kill", description: "kill <pid>: end a process that is not running", run: kill },
    Command { name: "sched", description: "timer ticks and preemptions since boot", run: sched },
    Command { name: "~1", description: "COW status: statistics and every tracked page", run: cow_status },
    Command { name: "~2", description: "COW statistics", run: cow_statistics },
    Command { name: "~3", description: "~3 [src_va dst_va [src_pid dst_pid]]: share a page copy-on-write", run: cow_create },
    Command { name: "~4", description: "~4 <va|pa> [pid]: force COW protection on a page", run: cow_protect },
    Command { name: "~5", description: "~5 <va|pa> [pid]: remove COW protection when safe", run: cow_unprotect },
    Command { name: "~6", description: "run the COW self-test suite", run: cow_test },
];

/// Lines of tracked pages `~1` prints before summarising.
const STATUS_PAGE_LINES: usize = 64;

fn help(_args: &str) {
    for command in super::all() {
        println!("  {:<10}{}", command.name, command.description);
    }
}

fn version(_args: &str) {
    crate::print_banner();
}

fn ps(_args: &str) {
    println!("  PID  PPID STATE     ASID TTBR0        BRK          NAME");
    let table = PROCESSES.lock();
    for p in table.iter().filter(|p| p.state != ProcessState::Unused) {
        println!(
            "{:>5} {:>5} {:<9} {:>4} 0x{:<10X} 0x{:<10X} {}",
            p.pid,
            p.parent,
            p.state.name(),
            p.asid,
            p.ttbr0,
            p.brk,
            p.name
        );
    }
}

fn report_reaped() {
    process::reap_shell_children(&mut |pid, name, status| {
        println!("process {pid} ({name}) exited with status {status}");
    });
}

fn report_alive() {
    let paused = PROCESSES
        .lock()
        .iter()
        .enumerate()
        .filter(|(slot, p)| p.is_live() && !scheduler::is_background(*slot))
        .count();
    if paused > 0 {
        println!("{paused} process(es) paused or waiting ('cont' resumes, 'kill <pid>' ends, 'ps' lists)");
    }
}

fn run(args: &str) {
    let (args, background) = match args.strip_suffix('&') {
        Some(rest) => (rest.trim_end(), true),
        None => (args, false),
    };
    let mut words = args.split_whitespace();
    let Some(name) = words.next() else {
        for p in PROGRAMS {
            println!("  {:<11}{}", p.name, p.summary);
        }
        return;
    };
    let Some(program) = Program::find(name) else {
        println!("error: run: no program '{name}' (run with no name lists them)");
        return;
    };
    let arg = match words.next().map(parse_number) {
        None => 0,
        Some(Some(value)) => value,
        Some(None) => {
            println!("error: run: the argument must be a number");
            return;
        }
    };
    if background {
        match process::spawn_background(program, arg) {
            Ok(pid) => println!("process {pid} ({name}) started in the background"),
            Err(err) => println!("error: run: cannot start {name}: {err}"),
        }
        return;
    }
    match process::spawn(program, arg, 0) {
        Ok(pid) => {
            println!("process {pid} ({name}) started");
            run_foreground();
            report_reaped();
            report_alive();
        }
        Err(err) => println!("error: run: cannot start {name}: {err}"),
    }
}

/// Runs the foreground processes until none is ready; console input meanwhile is kept
/// for the next line, except Ctrl-C, which kills them.
fn run_foreground() {
    while scheduler::run(scheduler::Mode::Interactive) == scheduler::Stop::Input {
        while let Some(byte) = UART.try_get() {
            if byte == crate::shell::INTERRUPT {
                println!("^C");
                process::kill_foreground(&mut |pid, name| println!("process {pid} ({name}) killed: interrupted"));
            } else {
                crate::shell::type_ahead(byte);
            }
        }
    }
}

fn cont(_args: &str) {
    let woken = process::resume_paused();
    println!("resumed {woken} process(es)");
    run_foreground();
    report_reaped();
    report_alive();
}

fn kill(args: &str) {
    let Some(pid) = parse_number(args) else {
        println!("error: kill: give a pid");
        return;
    };
    if process::kill(pid as usize) {
        println!("process {pid} killed");
        report_reaped();
    } else {
        println!("error: kill: no live process with pid {pid}");
    }
}

fn sched(_args: &str) {
    use core::sync::atomic::Ordering::Relaxed;
    let ticks = crate::arch::aarch64::timer::TICKS.load(Relaxed);
    println!("tick: {} Hz", crate::arch::aarch64::timer::HZ);
    println!("ticks: {ticks}");
    println!("preemptions: {}", scheduler::PREEMPTIONS.load(Relaxed));
}

/// A decimal number, or hex with 0x.
fn parse_number(text: &str) -> Option<u64> {
    if text.starts_with("0x") || text.starts_with("0X") { parse_hex(text) } else { text.parse().ok() }
}

fn print_page(page: &CowPage) {
    crate::print!(
        "  0x{:X} refs={} cow={}",
        page.physical_addr,
        page.ref_count,
        if page.is_cow { "yes" } else { "no" }
    );
    for (va, pid) in page.mappings() {
        crate::print!(" va=0x{va:X}/pid={pid}");
    }
    println!();
}

fn cow_status(_args: &str) {
    let cow = COW_MANAGER.lock();
    let s = &cow.statistics;
    println!("=== COW Status ===");
    println!("COW Pages: {}", s.cow_pages_count);
    println!("COW Faults: {}", s.cow_faults_handled);
    println!("Pages Duplicated: {}", s.pages_duplicated);
    println!("Memory Saved: {} bytes", s.memory_saved_bytes);
    println!("Peak COW Pages: {}", s.peak_cow_pages);
    println!();
    println!("COW Pages:");
    for page in cow.pages().take(STATUS_PAGE_LINES) {
        print_page(page);
    }
    if cow.active_pages > STATUS_PAGE_LINES {
        println!("  ... {} more", cow.active_pages - STATUS_PAGE_LINES);
    }
}

fn cow_statistics(_args: &str) {
    let cow = COW_MANAGER.lock();
    let s = &cow.statistics;
    println!("=== COW Statistics ===");
    println!("Total COW Pages: {}", s.cow_pages_count);
    println!("Total COW Faults: {}", s.cow_faults_handled);
    println!("Pages Duplicated: {}", s.pages_duplicated);
    println!("Memory Saved: {} bytes", s.memory_saved_bytes);
    println!("Metadata Memory: {} bytes", s.metadata_memory_bytes);
    println!("Peak COW Pages: {}", s.peak_cow_pages);
    println!("Memory Efficiency: {}%", cow.memory_efficiency_percent());
}

/// Parses `args` into at most `N` numbers.
fn numbers<const N: usize>(args: &str) -> Option<([u64; N], usize)> {
    let mut out = [0; N];
    let mut count = 0;
    for word in args.split_whitespace() {
        if count == N {
            return None;
        }
        out[count] = parse_number(word)?;
        count += 1;
    }
    Some((out, count))
}

fn cow_create(args: &str) {
    let Some((n, count)) = numbers::<4>(args).filter(|(_, c)| matches!(c, 0 | 2 | 4)) else {
        println!("error: ~3: usage: ~3 [src_va dst_va [src_pid dst_pid]]");
        return;
    };
    let (src_va, dst_va) = if count >= 2 { (n[0], n[1]) } else { (USER_HEAP_START, USER_HEAP_LIMIT) };
    let pair = if count == 4 {
        cow_fault::target(n[2] as usize).and_then(|a| Ok((a, cow_fault::target(n[3] as usize)?)))
    } else {
        ensure_two_processes();
        cow_fault::default_pair()
    };
    let result = pair.and_then(|(src, dst)| Ok((src, dst, cow_fault::create(src, src_va, dst, dst_va)?)));
    match result {
        Ok((src, dst, created)) => {
            println!("COW mapping created successfully");
            println!("Source VA: 0x{src_va:X} (pid {})", src.pid);
            println!("Dest VA: 0x{dst_va:X} (pid {})", dst.pid);
            println!("Physical: 0x{:X}", created.pa);
            println!("Refs: {}", created.refs);
        }
        Err(err) => println!("error: ~3: {err}"),
    }
}

/// Starts `idle` processes until two are live (for `~3` without pids).
fn ensure_two_processes() {
    let idle = Program::find("idle");
    while process::live_count() < 2 && process::live_count() < MAX_PROCESSES {
        let Some(idle) = idle else { return };
        match process::run_program(idle, 0) {
            Ok((pid, Outcome::Alive)) => println!("started idle process {pid}"),
            _ => return,
        }
    }
}

/// The frame a `~4`/`~5` argument names.
fn frame_argument(command: &str, args: &str) -> Option<crate::memory::PhysAddr> {
    let Some((n, count)) = numbers::<2>(args).filter(|(_, c)| *c >= 1) else {
        println!("error: {command}: usage: {command} <va|pa> [pid]");
        return None;
    };
    let pid = (count == 2).then_some(n[1] as usize);
    match cow_fault::resolve_frame(n[0], pid) {
        Ok(pa) => Some(pa),
        Err(err) => {
            println!("error: {command}: {err}");
            None
        }
    }
}

fn cow_protect(args: &str) {
    let Some(pa) = frame_argument("~4", args) else { return };
    match cow_fault::protect(pa) {
        Ok(_) => println!("COW protection enabled for page 0x{:X}", pa.as_u64()),
        Err(err) => println!("error: ~4: {err}"),
    }
}

fn cow_unprotect(args: &str) {
    let Some(pa) = frame_argument("~5", args) else { return };
    match cow_fault::unprotect(pa) {
        Ok(()) => println!("COW protection removed from page 0x{:X}", pa.as_u64()),
        Err(err @ CowOpError::Shared { .. }) => println!("error: ~5: refusing: {err}"),
        Err(err) => println!("error: ~5: {err}"),
    }
}

fn cow_test(_args: &str) {
    cow_selftest::run_suite();
}
