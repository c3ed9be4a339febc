//! Link options of the `dmagent` binary.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        // Pack the ~7,000 relative relocations of the position-independent
        // binary into a compact RELR table (glibc >= 2.36, musl >= 1.2.4; the
        // linker leaves the plain table when the C library lacks it): ~160 KB
        // less file, and the loader no longer pages in the whole table at start.
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
