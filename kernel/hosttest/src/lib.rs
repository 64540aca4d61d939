//! The kernel's hardware-free modules compiled for the host so `cargo test` can prove
//! them: the copy-on-write bookkeeping and the spin lock, included by path from
//! `kernel/src` so the code tested is the code the kernel runs.

#[path = "../../src/sync.rs"]
pub mod sync;

#[path = "../../src/memory/cow.rs"]
pub mod cow;
