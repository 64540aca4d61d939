//! The user programs built into the kernel image (`user_programs.S`) and the user
//! address-space layout every process gets.
//!
//! The image is one block of position-independent EL0 code and strings, kept in the
//! kernel's read-only data and copied into fresh frames mapped at [`USER_CODE_VA`]
//! (EL0 read + execute, never writable). A program is an entry point in that image.

use crate::debug::CONTRACT;
use crate::memory::PAGE_SIZE;

const _: () = assert!(CONTRACT.user_page_size == PAGE_SIZE);

core::arch::global_asm!(include_str!("user_programs.S"));

/// Where the program image is mapped: EL0 RX, never writable.
pub const USER_CODE_VA: u64 = CONTRACT.user_code_va;
/// The data page (zero-filled, RW, XN), after the code.
pub const USER_DATA_VA: u64 = CONTRACT.user_data_va;
/// Data pages every process starts with.
pub const USER_DATA_PAGES: u64 = CONTRACT.user_data_pages;
/// The heap (`sbrk`) starts here and grows up.
pub const USER_HEAP_START: u64 = CONTRACT.user_heap_start;
/// Upper bound of the heap (far more than RAM; `sbrk` fails earlier when frames run out).
pub const USER_HEAP_LIMIT: u64 = CONTRACT.user_heap_limit;
/// Initial user stack pointer; the stack grows down from here.
pub const USER_STACK_TOP: u64 = CONTRACT.user_stack_top;
/// Stack pages every process starts with (RW, XN), just below the top.
pub const USER_STACK_PAGES: u64 = CONTRACT.user_stack_pages;

/// The exit status a process killed by the kernel reports to `wait` (like a shell's
/// 128 + SIGKILL).
pub const KILLED_STATUS: i64 = CONTRACT.killed_status as i64;

unsafe extern "C" {
    static tinyos_user_image_start: u8;
    static tinyos_user_image_end: u8;
    static tinyos_user_hello: u8;
    static tinyos_user_forkwrite: u8;
    static tinyos_user_forkpause: u8;
    static tinyos_user_bigfork: u8;
    static tinyos_user_threeshare: u8;
    static tinyos_user_waitbuf: u8;
    static tinyos_user_oom: u8;
    static tinyos_user_reuse: u8;
    static tinyos_user_rowrite: u8;
    static tinyos_user_forkcycle: u8;
    static tinyos_user_idle: u8;
    static tinyos_user_sbrktest: u8;
    static tinyos_user_forkfail: u8;
    static tinyos_user_spin: u8;
    static tinyos_user_forkrace: u8;
}

/// A program of the image: its name and its entry symbol.
#[derive(Clone, Copy)]
pub struct Program {
    pub name: &'static str,
    pub summary: &'static str,
    /// Whether the timer tick may hand the CPU to another process while it runs. The
    /// stepwise programs check reference counts that are only defined for one
    /// interleaving (e.g. "shared by 2 right after fork", before the child can write):
    /// they run cooperatively, as they were written to, and with their descendants give
    /// the CPU up only in syscalls (or to the shell for console input).
    pub preemptible: bool,
    entry: fn() -> *const u8,
}

macro_rules! program {
    ($name:literal, $symbol:ident, $summary:literal) => {
        Program { name: $name, summary: $summary, preemptible: false, entry: || &raw const $symbol }
    };
    ($name:literal, $symbol:ident, $summary:literal, preemptible) => {
        Program { name: $name, summary: $summary, preemptible: true, entry: || &raw const $symbol }
    };
}

/// Every program `run` knows, in `help run` order.
pub const PROGRAMS: &[Program] = &[
    program!("hello", tinyos_user_hello, "print the pid and exit 0", preemptible),
    program!("forkwrite", tinyos_user_forkwrite, "fork; the child writes a shared page; both check their own value"),
    program!("forkpause", tinyos_user_forkpause, "[pages] fork with a heap, pausing between steps for inspection (cont)"),
    program!("bigfork", tinyos_user_bigfork, "fork twice while holding 2/3 of the free frames"),
    program!("threeshare", tinyos_user_threeshare, "three processes share 1/4 of the free frames, each writes its own values"),
    program!("waitbuf", tinyos_user_waitbuf, "wait() stores into a buffer shared with the parent: no leak"),
    program!("oom", tinyos_user_oom, "the child runs out of frames copying: killed, the parent intact"),
    program!("reuse", tinyos_user_reuse, "the last sharer's write reuses its page without a copy"),
    program!("rowrite", tinyos_user_rowrite, "write to the read-only code page: killed", preemptible),
    program!("forkcycle", tinyos_user_forkcycle, "[n] n fork/write/exit cycles (default 200)", preemptible),
    program!("sbrktest", tinyos_user_sbrktest, "sbrk grows zero-filled pages and shrinks freeing them"),
    program!("forkfail", tinyos_user_forkfail, "fork with almost no free frames fails and rolls back"),
    program!("idle", tinyos_user_idle, "one heap page holding the pid, then pause forever", preemptible),
    program!("spin", tinyos_user_spin, "loop forever without a syscall (only the timer takes the CPU back)", preemptible),
    program!("forkrace", tinyos_user_forkrace, "[n] n children and the parent write shared pages while preempted", preemptible),
];

impl Program {
    /// The program named `name`.
    pub fn find(name: &str) -> Option<&'static Program> {
        PROGRAMS.iter().find(|p| p.name == name)
    }

    /// The entry point's user VA.
    pub fn entry_va(&self) -> u64 {
        USER_CODE_VA + ((self.entry)() as u64 - image().as_ptr() as u64)
    }
}

/// The program image's bytes (page aligned, a whole number of pages).
pub fn image() -> &'static [u8] {
    let start = &raw const tinyos_user_image_start as usize;
    let end = &raw const tinyos_user_image_end as usize;
    // SAFETY: the assembly places the read-only image between the two symbols.
    unsafe { core::slice::from_raw_parts(start as *const u8, end - start) }
}

/// Pages the image occupies.
pub fn image_pages() -> u64 {
    (image().len() as u64).div_ceil(PAGE_SIZE)
}

/// The kind of user page at `va` by the layout (for messages).
pub fn region_name(va: u64) -> &'static str {
    let code_end = USER_CODE_VA + image_pages() * PAGE_SIZE;
    if (USER_CODE_VA..code_end).contains(&va) {
        "code"
    } else if (USER_DATA_VA..USER_DATA_VA + USER_DATA_PAGES * PAGE_SIZE).contains(&va) {
        "data"
    } else if (USER_HEAP_START..USER_HEAP_LIMIT).contains(&va) {
        "heap"
    } else if (USER_STACK_TOP - USER_STACK_PAGES * PAGE_SIZE..USER_STACK_TOP).contains(&va) {
        "stack"
    } else {
        "unmapped region"
    }
}
