//! The `dmagent` binary: a thin shell around [`dmagent::cli`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    dmagent::cli::main()
}
