//! P6: how closely a download keeps to its `BandwidthLimit`.

use std::time::Duration;

use crate::ctx::Ctx;
use crate::report::{Baseline, Goal, Line, Row};
use crate::stats::Samples;
use crate::workload::{self, Catalog, PackageDef};

pub const P6: &str = "P6";
pub const P6_TITLE: &str = "throughput under a BandwidthLimit";

/// Ten seconds' worth at each limit, so the bucket's initial burst (an
/// eighth of a second) and the request round trips stay small against it.
const CASES: [(&str, u64, u64); 2] = [
    ("BENCH-1MBPS", 1_000_000, 10_000_000),
    ("BENCH-10MBPS", 10_000_000, 100_000_000),
];

/// Throughput = package size / (11031 arrival − 11030 arrival), dm-server
/// serving the file as fast as it can; the cap is the agent's alone.
pub fn p6(ctx: &Ctx) -> anyhow::Result<Row> {
    let mut row = Row::new(P6, P6_TITLE);
    let dir = ctx.scratch("p6")?;
    let defs: Vec<PackageDef> = CASES
        .iter()
        .map(|&(id, limit, size)| PackageDef {
            bandwidth_limit: Some(limit),
            ..PackageDef::new(id, size)
        })
        .collect();
    let mut catalog = Catalog::create(&dir.join("catalog"), &defs)?;
    let server = workload::start_server(&catalog, &dir.join("server"), 2)?;
    for (id, limit, size) in CASES {
        let mut rate = Samples::new("MB/s");
        for i in 0..ctx.runs {
            let device = format!("P6-{id}-{i}");
            catalog.assign(&server, &device, &[id])?;
            let got = workload::download_once(
                &ctx.agent_bin(),
                &server,
                &dir.join(&device),
                &device,
                id,
                Duration::from_secs(120),
            )?;
            std::fs::remove_dir_all(dir.join(&device))?;
            let secs = workload::interval_s(&got, 11030, 11031)?;
            rate.push(size as f64 / secs / 1e6);
            eprintln!("   {id} run {i}: {size} bytes in {secs:.3} s");
        }
        let mbps = limit as f64 / 1e6;
        let result = rate.median();
        row.lines.push(Line {
            what: format!(
                "BandwidthLimit {limit} bytes/s, {} MB package",
                size / 1_000_000
            ),
            measured: rate,
            baseline: Baseline::Reference(format!("the limit: {mbps} MB/s")),
            result,
            result_unit: " MB/s",
            goal: Goal::Within {
                target: mbps,
                pct: 5.0,
            },
        });
    }
    row.notes.push(
        "MB = 10^6 bytes, as `BandwidthLimit` counts bytes per second. The time is from the \
         server receiving the download start (11030) to receiving the end (11031), so it also \
         holds the request round trip and the final fsync and verification."
            .into(),
    );
    Ok(row)
}
