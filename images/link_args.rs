// The link flags of every guest image. Each guest crate's build.rs is
// `include!("../images/link_args.rs");` so the flags live in one place.
// They make a freestanding static ELF with the ordinary x86_64-linux-gnu
// toolchain: our own linker script, no C start files or libraries, no PIE
// (the VMM loads segments at their link addresses and applies no relocations).
fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let script = std::path::Path::new(&manifest).join("../images/guest.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    for flag in [
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--build-id=none",
        "-Wl,-z,norelro",
        "-Wl,-z,noexecstack",
        // The index gdb uses to find a function's unwind entry.
        "-Wl,--eh-frame-hdr",
    ] {
        println!("cargo:rustc-link-arg-bins={flag}");
    }
}
