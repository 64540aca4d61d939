//! Architecture-specific code. TinyOS runs only on AArch64; the generic kernel
//! (memory/, shell/) reaches the CPU through `arch::aarch64`.
pub mod aarch64;
