//! `dm-server`, the reference management server. It is filled in by the
//! reference-server issue; the crate exists now so the workspace has its final shape.
#![forbid(unsafe_code)]

fn main() {
    eprintln!(
        "dm-server {}: the reference server is not built yet (see the reference-server issue)",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
