//! The `dmagent` binary: a thin shell around [`dmagent::cli`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    #[cfg(feature = "failpoints")]
    let _crash_points = dmagent::failpoint::setup();
    dmagent::cli::main()
}
