//! Link options of the `dmagent` binary.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "linux" {
        return;
    }
    // Pack the ~7,000 relative relocations of the position-independent
    // binary into a compact RELR table (glibc >= 2.36, musl >= 1.2.4; the
    // linker leaves the plain table when the C library lacks it): ~160 KB
    // less file, and the loader no longer pages in the whole table at start.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");

    let profile = std::env::var("PROFILE").unwrap_or_default();
    println!("cargo:rerun-if-env-changed=DMAGENT_KEEP_SYMBOLS");
    if profile == "release" && std::env::var_os("DMAGENT_KEEP_SYMBOLS").is_none() {
        // What `strip = true` would do; see the profile in Cargo.toml.
        println!("cargo:rustc-link-arg-bins=-Wl,--strip-all");
    }

    // Place the functions an idle agent has run (link/hot-text.ld, made by
    // scripts/hot-text.sh) together, before the rest of the code: the kernel
    // maps code in 64 KiB blocks around each page touched, and scattered
    // start-up and idle code kept nearly all of .text resident. The script
    // only groups sections (GNU ld and LLD both take it); set
    // DMAGENT_HOT_TEXT=0 for a linker that does not.
    let script = Path::new("link/hot-text.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-env-changed=DMAGENT_HOT_TEXT");
    let wanted = std::env::var("DMAGENT_HOT_TEXT").map_or(true, |v| v != "0");
    if profile == "release" && wanted && script.exists() {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/link/hot-text.ld");
    }
}
