//! `dm-bench`: measures the agent and the reference server against named
//! baselines in the same run and writes `BENCHMARKS.md`.
//!
//! Run through `bench/run`, which installs the baselines (nginx, curl, wrk)
//! and builds the release binaries this program drives. Every figure is a
//! ratio or a difference against something measured in the same run, taken
//! several times; nothing here asserts on time.
#![forbid(unsafe_code)]

mod agent;
mod ctx;
mod nginx;
mod report;
mod rows;
mod stats;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::ctx::Ctx;
use crate::report::{Row, RunInfo};

#[derive(Debug, Parser)]
#[command(about = "Benchmarks of dmagent and dm-server against baselines measured in the same run")]
struct Args {
    /// Runs per figure (the median and spread are over these).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Only these rows, comma-separated (P1,P3,...); default all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where to write the report; omitted, only the terminal summary is printed.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Scratch directory for packages, databases and logs (needs ~3 GiB).
    #[arg(long)]
    work: Option<PathBuf>,
    /// The dm-server binary to measure; default `../server/dm-server` from
    /// dm-bench's directory (`cargo build --profile server -p dm-server`).
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// The command recorded in the report as the way to rerun it.
    #[arg(long, default_value = "bench/run")]
    command: String,
    /// Only write P7's client database of 10,000 package records to this
    /// file (it must not exist) and exit: what scripts/hot-text.sh profiles
    /// the agent on.
    #[arg(long, value_name = "PATH")]
    client_db: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.client_db {
        return match rows::write_client_database(path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dm-bench: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let ctx = match Ctx::new(args.runs, args.work.as_deref(), args.server_bin.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dm-bench: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let wanted =
        |id: &str| args.only.is_empty() || args.only.iter().any(|o| o.eq_ignore_ascii_case(id));
    let mut rows: Vec<Row> = Vec::new();
    for (id, title, measure) in rows::ALL {
        if !wanted(id) {
            continue;
        }
        eprintln!("== {id}: {title}");
        let row = match measure(&ctx) {
            Ok(row) => row,
            Err(e) => {
                let mut row = Row::new(id, title);
                row.error = Some(format!("{e:#}"));
                row
            }
        };
        if let Some(e) = &row.error {
            eprintln!("{id} not measured: {e}");
        }
        for line in &row.lines {
            println!("{}", report::terminal_line(&row, line));
        }
        rows.push(row);
    }
    if let Some(out) = &args.out {
        let info = RunInfo {
            command: args.command.clone(),
            date: ctx::utc_now(),
            commit: ctx::git_describe(),
            machine: ctx::machine(),
            runs: args.runs,
        };
        if let Err(e) = std::fs::write(out, report::markdown(&info, &rows)) {
            eprintln!("dm-bench: cannot write {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
        eprintln!("wrote {}", out.display());
    }
    let missed = rows.iter().filter(|r| !r.met()).count();
    eprintln!(
        "{} rows, {} met every goal, {} missed or not measured",
        rows.len(),
        rows.len() - missed,
        missed
    );
    ExitCode::SUCCESS
}
