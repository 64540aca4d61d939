//! Build script: links the kernel with its linker script (upper-half VAs, physical
//! load addresses) and a SHA-1 GNU build-id the debugger compares with the running image.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rustc-link-arg=-T{dir}/link.ld");
    println!("cargo:rustc-link-arg=--build-id=sha1");
    println!("cargo:rustc-link-arg=-zmax-page-size=4096");
    // No dynamic loader ever applies RELRO; without this lld marks .data as a RELRO segment.
    println!("cargo:rustc-link-arg=-znorelro");
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=build.rs");
}
